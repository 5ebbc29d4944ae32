//! The rows of the bench example (§7 of the design brief): each figure
//! with its same-run reference, its target and whether it is met.
//!
//! Each area of the library has a module here with a `rows()` function
//! that measures its figures; `examples/bench.rs` prints them all.

pub mod autobatch;
#[cfg(unix)]
pub mod awrs;
mod cli;
pub mod gemma;
pub mod grammar;
mod llama_cpp;
pub mod llm;
pub mod main_job;
pub mod stats;
#[cfg(unix)]
pub mod worker;

pub use cli::{MISSED_TARGET, check_selection, select, wanted};
use serde::Serialize;

/// One figure of the §7 table, as printed and as written to JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The stable name of the figure (`autobatch_overhead`, …).
    pub id: &'static str,
    /// What is measured, in words.
    pub figure: String,
    /// The measured value (a median).
    pub value: f64,
    /// The unit of `value` and `reference` (`µs`, `x`, `ms`).
    pub unit: &'static str,
    /// The baseline measured in the same run, in the same unit, if any.
    pub reference: Option<f64>,
    /// The target, in words.
    pub target: String,
    /// Whether the target is met in this run (see [`MISSED_TARGET`]).
    pub met: bool,
}

/// Prints rows as an aligned table.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<22} {:>12} {:>12}  {:<5} {:<40} figure",
        "id", "value", "reference", "met", "target"
    );
    for r in rows {
        let reference = r.reference.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<22} {:>9.3} {:<2} {:>12}  {:<5} {:<40} {}",
            r.id,
            r.value,
            r.unit,
            reference,
            if r.met { "yes" } else { "NO" },
            r.target,
            r.figure
        );
    }
}

/// Prints rows as the JSON array of §7, and nothing else.
pub fn print_json(rows: &[Row]) {
    println!(
        "{}",
        serde_json::to_string_pretty(rows).expect("rows are plain data")
    );
}
