//! The `potential` command; see the crate docs and `potential --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use potential_cli::cli::{Cli, Command};
use potential_cli::{CliError, generate};

fn main() -> ExitCode {
    // First: in a worker process (the constraint under --workers) this
    // serves the pool and exits.
    potential_runtime::init();
    let cli = Cli::parse();
    let Command::Generate(args) = cli.command;
    match generate::run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(CliError::FAILED),
        Err(e) => {
            eprintln!("potential: {e}");
            e.exit_code()
        }
    }
}
