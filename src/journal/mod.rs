//! The sweep directory: the append-only, fsync'd event journal, per-job folders, `summary.json`,
//! the lock that keeps two runners out of one directory, and reading it all back for `--resume`.
//!
//! Layout of DIR: `sweep.json` (the plan: jobs and options), `journal.jsonl` (one event a line),
//! `summary.json` (rewritten atomically after every job), `.lock`, and `N/` per job with
//! `command`, `stdout`, `stderr`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sweep::SweepPlan;

/// Status of a job in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    Succeeded,
    Failed,
    Killed,
    Oom,
    RequeuedOut,
    Skipped,
}

/// One journal line (and one `--json` line on stdout). `t` is seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    SweepStart {
        t: f64,
        out: String,
        jobs: usize,
        limit_bytes: u64,
        budget_bytes: u64,
        reserve_bytes: u64,
        parallel_cap: Option<usize>,
        accounting: String,
        resumed: bool,
    },
    JobStart {
        t: f64,
        job: usize,
        attempt: u32,
        command: String,
        estimate_bytes: Option<u64>,
    },
    JobPause {
        t: f64,
        job: usize,
        reason: String,
    },
    JobResume {
        t: f64,
        job: usize,
    },
    JobRequeue {
        t: f64,
        job: usize,
        attempt: u32,
        reason: String,
        usage_bytes: u64,
    },
    JobEnd {
        t: f64,
        job: usize,
        attempt: u32,
        status: JobStatus,
        exit_code: Option<i32>,
        signal: Option<i32>,
        wall_s: f64,
        peak_bytes: Option<u64>,
        peak_source: String,
    },
    Sample {
        t: f64,
        working_set_bytes: u64,
        available_bytes: u64,
        budget_bytes: u64,
        /// (job, current bytes) for every running job.
        running: Vec<(usize, u64)>,
        psi_some_avg10: Option<f64>,
    },
    SweepEnd {
        t: f64,
        makespan_s: f64,
        succeeded: usize,
        failed: usize,
        exit_code: i32,
        interrupted: bool,
    },
}

/// One job in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: usize,
    pub command: String,
    pub params: Vec<(String, String)>,
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub attempts: u32,
    pub wall_s: Option<f64>,
    pub peak_bytes: Option<u64>,
    /// "cgroup-v1", "cgroup-v2", "proc" (sampled), or null.
    pub peak_source: Option<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub out: String,
    pub makespan_s: f64,
    pub limit_bytes: u64,
    pub budget_bytes: u64,
    pub accounting: String,
    pub peak_working_set_bytes: u64,
    /// OOM kills counted by the container's cgroup during the sweep (the probe's counter).
    pub oom_kills: u64,
    pub requeues: u64,
    pub pauses: u64,
    pub succeeded: usize,
    pub failed: usize,
    pub jobs: Vec<JobSummary>,
}

/// What an earlier run left in a sweep directory.
#[derive(Debug, Clone)]
pub struct ResumeState {
    pub plan: SweepPlan,
    /// Jobs that already succeeded (never rerun).
    pub succeeded: Vec<usize>,
    /// The summary of the earlier run, if any, to carry finished jobs' records over.
    pub previous: Option<Summary>,
}

/// An open, locked sweep directory.
pub struct SweepDir {
    root: PathBuf,
}

impl SweepDir {
    /// Create DIR (and parents), take the lock, write `sweep.json`, open the journal.
    /// Errors (usage) if DIR already holds a sweep: suggest `--resume DIR`.
    pub fn create(root: &Path, plan: &SweepPlan) -> anyhow::Result<SweepDir> {
        let _ = (root, plan);
        todo!("journal helper")
    }

    /// Take the lock on an existing DIR and read back what ran. Errors (usage) if DIR is not a
    /// sweep directory or another runner holds it (naming its pid).
    pub fn resume(root: &Path) -> anyhow::Result<(SweepDir, ResumeState)> {
        let _ = root;
        todo!("journal helper")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `DIR/N/`, created with its `command` file; stdout and stderr paths inside it.
    pub fn job_dir(&self, job: &crate::sweep::Job) -> anyhow::Result<PathBuf> {
        let _ = job;
        todo!("journal helper")
    }

    /// Append an event to the journal (buffered until [`Self::sync`]).
    pub fn record(&mut self, event: &Event) -> anyhow::Result<()> {
        let _ = event;
        todo!("journal helper")
    }

    /// Write buffered events and fsync.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        todo!("journal helper")
    }

    /// Write `summary.json` atomically (temp file + rename).
    pub fn write_summary(&self, summary: &Summary) -> anyhow::Result<()> {
        let _ = summary;
        todo!("journal helper")
    }
}
