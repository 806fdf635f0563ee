//! The event schema: journal lines (`Event`), job statuses, `summary.json` (`Summary`,
//! `JobSummary`) and the version of the JSON formats memsweep writes.

use serde::{Deserialize, Serialize};

/// Status of a job in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    Succeeded,
    Failed,
    /// `memsweep guard`: a process of the command ended; its exit status went to its own parent.
    Exited,
    Killed,
    Oom,
    /// Stopped by memsweep after running longer than `--timeout`.
    Timeout,
    /// Stopped because the sweep was interrupted (Ctrl-C, SIGTERM, or the runner died): not
    /// the job's failure; `--resume` runs it again.
    Interrupted,
    RequeuedOut,
    Skipped,
    /// Interim summaries only: started, not ended yet.
    Running,
    /// Interim summaries only: not started yet (or requeued and waiting).
    Pending,
}

impl JobStatus {
    /// Ended without succeeding (what makes a sweep exit 1). Skipped, interrupted, running and
    /// pending jobs did not fail: they did not run to an end.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            JobStatus::Failed
                | JobStatus::Killed
                | JobStatus::Oom
                | JobStatus::Timeout
                | JobStatus::RequeuedOut
        )
    }

    /// The word used in tables, logs and JSON (`requeued-out`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Exited => "exited",
            JobStatus::Killed => "killed",
            JobStatus::Oom => "oom",
            JobStatus::Timeout => "timeout",
            JobStatus::Interrupted => "interrupted",
            JobStatus::RequeuedOut => "requeued-out",
            JobStatus::Skipped => "skipped",
            JobStatus::Running => "running",
            JobStatus::Pending => "pending",
        }
    }
}

/// One journal line (and one `--json` line on stdout). `t` is seconds since the Unix epoch.
/// The tag is the `"event"` field (`sweep_start`, `job_start`, ...); sizes are bytes; job ids are
/// the 0-based ids of `sweep.json` (and the folder names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run of the runner begins (again, with `resumed: true`, after `--resume`).
    /// `parallel_cap`: `-j` (null: memory is the only cap). `accounting`: cgroup-v1, cgroup-v2, proc.
    /// `downgrades`: what this run could not do here (also printed once at start).
    SweepStart {
        t: f64,
        /// [`SCHEMA_VERSION`] of the events that follow.
        #[serde(default = "schema_version")]
        schema_version: u32,
        out: String,
        jobs: usize,
        limit_bytes: u64,
        budget_bytes: u64,
        reserve_bytes: u64,
        parallel_cap: Option<usize>,
        accounting: String,
        resumed: bool,
        #[serde(default)]
        downgrades: Vec<String>,
    },
    /// An attempt starts (attempt counts from 1). `command`: the display command. Under the
    /// Slurm backend: the attempt was submitted, `estimate_bytes` is its `--mem` and `slurm_id`
    /// its `ARRAYID_INDEX` (the field is absent for local jobs).
    JobStart {
        t: f64,
        job: usize,
        attempt: u32,
        command: String,
        estimate_bytes: Option<u64>,
        /// Where the estimate came from (`job-history`, `similar`, `sweep`, ...): why the job
        /// was admitted when it was. Absent before 0.2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimate_source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slurm_id: Option<String>,
    },
    /// memsweep stopped the job's process group (SIGSTOP) under memory pressure. `usage_bytes`:
    /// what it held then (absent in journals before 0.2, and for a guarded process held at its
    /// start).
    JobPause {
        t: f64,
        job: usize,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage_bytes: Option<u64>,
    },
    /// A paused job continues (SIGCONT).
    JobResume { t: f64, job: usize },
    /// memsweep stopped this attempt (`attempt`: the one stopped) to run the job again later;
    /// `usage_bytes`: what it held then. The attempt needs no `job_end`.
    JobRequeue {
        t: f64,
        job: usize,
        attempt: u32,
        reason: String,
        usage_bytes: u64,
    },
    /// An attempt ended. `signal` is set when a signal ended it; `peak_source` names how the peak
    /// was measured (cgroup-v1, cgroup-v2, proc) or is empty.
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
        /// CPU seconds (user + system) of the attempt; null when unknown (journals written
        /// before this field count as null).
        #[serde(default)]
        cpu_s: Option<f64>,
    },
    /// A memory sample, at most once a second: the container's working set and each running job.
    Sample {
        t: f64,
        working_set_bytes: u64,
        available_bytes: u64,
        budget_bytes: u64,
        /// (job, current bytes) for every running job.
        running: Vec<(usize, u64)>,
        psi_some_avg10: Option<f64>,
    },
    /// The run ends (all jobs done, or interrupted).
    SweepEnd {
        t: f64,
        makespan_s: f64,
        succeeded: usize,
        failed: usize,
        exit_code: i32,
        interrupted: bool,
        /// `--fail-fast` started no more jobs after this job failed.
        #[serde(default)]
        fail_fast_job: Option<usize>,
    },
}

impl Event {
    /// When it happened (seconds since the Unix epoch).
    pub fn t(&self) -> f64 {
        match self {
            Event::SweepStart { t, .. }
            | Event::JobStart { t, .. }
            | Event::JobPause { t, .. }
            | Event::JobResume { t, .. }
            | Event::JobRequeue { t, .. }
            | Event::JobEnd { t, .. }
            | Event::Sample { t, .. }
            | Event::SweepEnd { t, .. } => *t,
        }
    }

    /// The end of a requeued job that was still waiting when the sweep stopped: skipped, not
    /// out of retries.
    pub fn skipped(t: f64, job: usize, attempt: u32) -> Event {
        Event::JobEnd {
            t,
            job,
            attempt,
            status: JobStatus::Skipped,
            exit_code: None,
            signal: None,
            wall_s: 0.0,
            peak_bytes: None,
            peak_source: String::new(),
            cpu_s: None,
        }
    }
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
    /// Times memsweep paused it (SIGSTOP), over all its attempts.
    #[serde(default)]
    pub pauses: u32,
    /// CPU seconds of the latest attempt, or null.
    #[serde(default)]
    pub cpu_s: Option<f64>,
}

/// The rows of a summary handed out one at a time: the end-of-sweep report of a big sweep reads
/// them from the journal's fold ([`super::SummaryFold::rows`]) instead of holding them all (a
/// row is ~160 bytes, plus its text).
pub trait SummaryRows {
    /// How many rows: one per job.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `f` on each row, in order. A row whose status fails `text` may come without its command,
    /// parameters and peak source: only its numbers are read.
    fn each(&self, text: &dyn Fn(JobStatus) -> bool, f: &mut dyn FnMut(&JobSummary));
}

impl SummaryRows for Vec<JobSummary> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn each(&self, _text: &dyn Fn(JobStatus) -> bool, f: &mut dyn FnMut(&JobSummary)) {
        self.iter().for_each(f);
    }
}

/// The version of the JSON formats memsweep writes (`summary.json`, `sweep.json`, the events,
/// `mem --json`, `check --json`): raised when a field changes meaning or goes away; new fields
/// may appear without a raise.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`] (absent before version 1: read as 1).
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    pub out: String,
    pub makespan_s: f64,
    pub limit_bytes: u64,
    pub budget_bytes: u64,
    pub accounting: String,
    pub peak_working_set_bytes: u64,
    /// Every OOM kill the kernel made during the sweep: the container's counter and each job
    /// cgroup's, read before the cgroup was reset or removed.
    pub oom_kills: u64,
    pub requeues: u64,
    pub pauses: u64,
    /// Pauses of jobs that never grew past what they held when paused: the projection foresaw
    /// growth that did not come (absent before 0.2: read as 0).
    #[serde(default)]
    pub false_pauses: u64,
    pub succeeded: usize,
    /// Jobs whose status [`JobStatus::is_failure`].
    pub failed: usize,
    /// Jobs that never ran to an end (skipped, or still running/pending in an interim summary).
    #[serde(default)]
    pub skipped: usize,
    /// `--fail-fast` started no more jobs after this job failed.
    #[serde(default)]
    pub fail_fast_job: Option<usize>,
    /// The CPUs the sweep ran on (quota, cpuset, online), for the advice; null when unknown.
    #[serde(default)]
    pub cpus: Option<f64>,
    pub jobs: Vec<JobSummary>,
}

/// Now, as the events' `t`: seconds since the Unix epoch (0 if the clock is before it).
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
