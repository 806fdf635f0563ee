//! Why the scheduler paused or requeued a job, as data: the figures behind each rule, so the
//! policy holds no text. `output::reason` renders them for the journal and the terminal.

/// The rule that fired and the numbers it fired on (all bytes, or seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// The projection would pass the budget (`--on-pressure pause`).
    OverBudget { projection: u64, budget: u64 },
    /// The container's working set is half-way into the reserve below `limit`.
    Critical { working_set: u64, limit: u64 },
    /// With `--limit`: the jobs' sum is half-way into its reserve.
    JobsCritical { jobs: u64, limit: u64 },
    /// With `--limit`: the container's working set is half-way into the container's reserve.
    ContainerCritical {
        working_set: u64,
        container_limit: u64,
    },
    /// `--on-pressure requeue`: over the budget and still growing.
    GrowingOverBudget { working_set: u64, budget: u64 },
    /// Paused for `waited` seconds with no room to resume; requeued to free `usage`.
    PausedTooLong { waited: f64, usage: u64 },
}
