//! Prints every figure of §7 of the design brief with its same-run
//! reference and its target.
//!
//! ```sh
//! cargo run --release -p potential-examples --example bench                      # a table
//! cargo run --release -p potential-examples --example bench -- --json            # JSON only
//! cargo run --release -p potential-examples --example bench -- --rows worker_roundtrip,worker_startup
//! cargo run --release -p potential-examples --example bench -- --help
//! ```

use clap::Parser;
use potential_examples::bench::{MISSED_TARGET, Row, print_json, print_table};

/// Measures the figures of §7 of the design brief (autobatching, worker
/// processes, the main job), each against a reference measured in the
/// same run, and says whether each meets its target.
#[derive(Parser)]
#[command(after_help = MISSED_TARGET)]
struct Args {
    /// Print the rows as a JSON array of objects (id, figure, value, unit,
    /// reference, target, met) and nothing else on stdout.
    #[arg(long)]
    json: bool,

    /// Measure only these rows, by id (comma-separated); all rows when
    /// absent. An id that names no row is an error.
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    rows: Vec<String>,
}

fn main() {
    // Workers, the raw reference server and the spinning competitors are
    // this program started again: these lines come first, before anything else runs.
    potential_runtime::init();
    potential_examples::bench::autobatch::spin_if_asked();
    #[cfg(unix)]
    potential_examples::bench::worker::serve_reference_if_asked();
    potential_examples::memory::keep_freed_memory();

    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this bench was built without optimizations, so its figures miss their \
             targets; run it with `cargo run --release`"
        );
    }
    potential_examples::bench::select(args.rows);
    let mut rows: Vec<Row> = Vec::new();
    rows.extend(potential_examples::bench::autobatch::rows());
    #[cfg(unix)]
    rows.extend(potential_examples::bench::worker::rows());
    rows.extend(potential_examples::bench::main_job::rows());
    rows.extend(potential_examples::bench::llm::rows());
    rows.extend(potential_examples::bench::gemma::rows());
    rows.extend(potential_examples::bench::grammar::rows());
    #[cfg(unix)]
    rows.extend(potential_examples::bench::awrs::rows());
    if let Err(message) = potential_examples::bench::check_selection() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
    if args.json {
        print_json(&rows);
    } else {
        print_table(&rows);
        println!("\n{MISSED_TARGET}");
    }
}
