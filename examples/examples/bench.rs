//! Prints every figure of §7 of the design brief with its target.
//!
//! ```sh
//! cargo run --release -p potential-examples --example bench            # a table
//! cargo run --release -p potential-examples --example bench -- --json  # JSON only
//! ```

use potential_examples::bench::{Row, print_json, print_table};

fn main() {
    // Workers and the raw reference server are this program started again:
    // these two lines come first, before anything else runs.
    potential_runtime::init();
    #[cfg(unix)]
    potential_examples::bench::worker::serve_reference_if_asked();
    potential_examples::memory::keep_freed_memory();

    let json = std::env::args().any(|a| a == "--json");
    let mut rows: Vec<Row> = Vec::new();
    rows.extend(potential_examples::bench::autobatch::rows());
    #[cfg(unix)]
    rows.extend(potential_examples::bench::worker::rows());
    rows.extend(potential_examples::bench::main_job::rows());
    rows.extend(potential_examples::bench::llm::rows());
    if json {
        print_json(&rows);
    } else {
        print_table(&rows);
    }
}
