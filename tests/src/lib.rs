//! Integration tests live in `tests/`; this crate holds them and the
//! potentials they send to worker processes.
#![forbid(unsafe_code)]

pub mod worker_potentials;

/// The pids of this process's children, from `/proc` (empty where there
/// is no `/proc`): what a test that must leave no worker behind counts.
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

/// The parent of process `pid`, from `/proc`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}
