//! What the bench's command line selects (`--rows`), and what its output
//! explains.

use std::sync::{Mutex, OnceLock};

/// What a row whose `met` is false means, printed under the table and in
/// `--help`.
pub const MISSED_TARGET: &str = "\
A row whose met column says NO missed its target in this run, on this machine. \
It is a shortfall of speed, not a wrong answer: correctness is what the tests \
check. Each value is a median measured beside its reference in the same run, \
so the ratio holds on any machine that is not busy; a miss on a loaded machine, \
or with fewer cores than the row's workers, is expected. Run the row alone \
(--rows ID) on an idle machine before reading a miss as a regression.";

/// The rows that `--rows` selected (empty: every row), and every row id
/// that [`wanted`] was asked about, to tell a misspelled id from a row.
static SELECTED: OnceLock<Vec<String>> = OnceLock::new();
static ASKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Measures only the rows `ids` (every row when empty). Call it once,
/// before the modules' `rows()`.
pub fn select(ids: Vec<String>) {
    // A second call keeps the first selection: the bench calls it once.
    let _ = SELECTED.set(ids);
}

/// Whether the row `id` is to be measured (see [`select`]).
pub fn wanted(id: &str) -> bool {
    ASKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(id.to_string());
    SELECTED
        .get()
        .is_none_or(|ids| ids.is_empty() || ids.iter().any(|i| i == id))
}

/// After the modules' `rows()`: an error naming the selected ids that no
/// row has, and the ids there are.
pub fn check_selection() -> Result<(), String> {
    let asked = ASKED.lock().unwrap_or_else(|e| e.into_inner());
    let unknown: Vec<&str> = SELECTED
        .get()
        .into_iter()
        .flatten()
        .filter(|id| !asked.contains(id))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no row has the id {}; the rows are {}",
            unknown.join(", "),
            asked.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The selection is process-wide, so one test covers it.
    #[test]
    fn only_selected_rows_are_wanted_and_unknown_ids_are_named() {
        select(vec!["a".to_string(), "nope".to_string()]);
        assert!(wanted("a"));
        assert!(!wanted("b"));
        let err = check_selection().unwrap_err();
        assert_eq!(err, "no row has the id nope; the rows are a, b");
    }
}
