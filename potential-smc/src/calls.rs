//! Counting the potential calls of a run.

/// The potential calls of a run (or of one proposal step), for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Calls {
    /// `logw_next` calls.
    pub logw_next: usize,
    /// Calls of a constraint's `prefix` or `complete` that check one drawn
    /// token (AWRS).
    pub checks: usize,
    /// Calls of the critic's `prefix` or `complete` (one per particle and
    /// step, made by the sampler, never by a proposal).
    pub critic: usize,
}

impl std::ops::AddAssign for Calls {
    fn add_assign(&mut self, other: Calls) {
        self.logw_next += other.logw_next;
        self.checks += other.checks;
        self.critic += other.critic;
    }
}
