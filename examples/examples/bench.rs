//! Prints every figure of §7 of the design brief with its target.
//!
//! ```sh
//! cargo run --release -p potential-examples --example bench            # a table
//! cargo run --release -p potential-examples --example bench -- --json  # JSON only
//! ```

use potential_examples::bench::{Row, print_json, print_table};

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut rows: Vec<Row> = Vec::new();
    rows.extend(potential_examples::bench::autobatch::rows());
    if json {
        print_json(&rows);
    } else {
        print_table(&rows);
    }
}
