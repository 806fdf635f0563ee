//! The sweep directory: the append-only, fsync'd event journal, per-job folders, `summary.json`,
//! the lock that keeps two runners out of one directory, and reading it all back for `--resume`.
//!
//! Layout of DIR: `sweep.json` (the plan: jobs and options), `journal.jsonl` (one event a line),
//! `summary.json` (rewritten atomically after every job), `.lock`, and `N/` per job with
//! `command`, `stdout`, `stderr`.
//!
//! Durability: events are buffered by [`SweepDir::record`] and written with one `write` plus one
//! `fdatasync` by [`SweepDir::sync`], which the engine calls once per loop turn and right after a
//! job starts or ends. A runner killed mid-write leaves at most a torn last line, which resume
//! drops (and truncates away, so the lines appended next start on a clean line).
//!
//! Modules: `event` (the schema), `dir` (the directory, its lock and journal writer),
//! `parse` (reading the journal back), `atomic` (atomic writes), `fold` (the summary),
//! `replay` (attempts from events).

mod atomic;
mod dir;
mod event;
#[cfg(test)]
pub(crate) mod fixtures;
mod fold;
mod parse;
#[cfg(test)]
mod props;
pub mod replay;
#[cfg(test)]
mod tests;

pub use atomic::atomic_write_json;
pub use dir::{JOURNAL_FILE, LOCK_FILE, PLAN_FILE, ResumeState, SUMMARY_FILE, SweepDir};
pub use event::{Event, JobStatus, JobSummary, SCHEMA_VERSION, Summary, SummaryRows, epoch_now};
pub use fold::{FoldRows, SummaryContext, SummaryFold, summarize};
pub use parse::parse_journal;
pub use replay::Replay;
