//! The pressure policy a sweep runs under (`--on-pressure`, sweep.toml's `on_pressure`): a
//! scheduling choice, so it lives here; the CLI parses it through the clap derive below and
//! sweep.json keeps its lowercase names.

/// What to do when memory runs short while jobs are running.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OnPressure {
    /// Pause the youngest jobs (SIGSTOP) and resume them when memory frees; requeue if that is not enough.
    Pause,
    /// Stop the youngest job and run it again later, with a larger estimate.
    Requeue,
    /// Only stop admitting new jobs.
    None,
}
