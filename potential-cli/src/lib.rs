//! # potential-cli
//!
//! The `potential` command: constrained generation from the shell, with
//! the samplers of `potential-smc` over a language model and a constraint
//! (a JSON schema, a Lark grammar, a regular expression, or none).
//!
//! ```text
//! potential generate --model smollm2 --prompt "Name a city and its population as JSON." \
//!     --json-schema city.json --particles 8 --max-tokens 40
//! ```
//!
//! It prints the distinct texts with their posterior probabilities (with
//! `--format json`, one JSON object a particle), checks JSON-schema
//! answers with an independent validator ([`boon`]) and regular-expression
//! answers with an independent engine (the DFA of
//! [`potential_builtins::Regex`]), shows a progress bar on a terminal and
//! nothing extra when piped. Exit status: 0 when the run went through and
//! no finished text failed its check, 1 when one did or the run failed, 2
//! for bad usage or input (see [`CliError`]).
//!
//! The library holds the command's pieces so that other programs (the
//! main job of the examples) reuse them: the command line ([`cli`]), the
//! constraint and its independent check ([`constraint`]), the model
//! ([`model`]), the samplers ([`sample`]) and the output ([`output`]).

#![forbid(unsafe_code)]

pub mod cli;
pub mod constraint;
mod error;
pub mod generate;
pub mod model;
pub mod output;
pub mod sample;

pub use error::CliError;
