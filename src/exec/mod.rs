//! The effects of running jobs: spawning each in its own process group (and memory cgroup when
//! the hierarchy is writable), measuring them (cgroup counters or /proc sampling), signalling them
//! (pause, resume, terminate, kill), oom_score_adj, and making sure no job outlives the runner.
//!
//! All `unsafe` and OS-specific code of the crate lives here, each block with a `// SAFETY:` comment.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::probe::Layout;
use crate::sweep::JobCommand;

/// How jobs' memory is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accounting {
    /// Each job in its own v1 memory cgroup: exact usage and peak (`memory.max_usage_in_bytes`).
    CgroupV1,
    /// Each job in its own v2 cgroup (needs delegation): `memory.current`, `memory.peak`.
    CgroupV2,
    /// Each job's process tree sampled from /proc (RSS); peaks between samples can be missed.
    Proc,
}

/// What the executor needs to know, decided by the caller.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// `--no-cgroups`: sample /proc even where cgroups are writable.
    pub no_cgroups: bool,
    /// `--job-mem-max`, resolved: hard cap per job (cgroup modes only).
    pub job_mem_max: Option<u64>,
    /// How often /proc is sampled in Proc mode, and job cgroups read.
    pub sample_interval: Duration,
}

/// A job to start.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub job: usize,
    pub attempt: u32,
    pub command: JobCommand,
    /// The job inherits memsweep's working directory; its stdout and stderr go to these files.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Extra environment (MEMSWEEP_JOB_ID, MEMSWEEP_JOB_DIR, ...).
    pub env: Vec<(String, String)>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed {
        code: i32,
    },
    /// Killed by a signal nobody in memsweep sent (or the user's).
    Signaled {
        signal: i32,
    },
    /// Killed by the kernel's OOM killer (the job's cgroup counted an oom_kill, or SIGKILL under a cap).
    OomKilled,
    /// Stopped by memsweep (pressure requeue, interrupt, cap).
    Stopped {
        signal: i32,
    },
    FailedToSpawn {
        error: String,
    },
}

/// Something that happened while waiting.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Exited {
        job: usize,
        attempt: u32,
        outcome: Outcome,
        wall: Duration,
        /// Peak memory of the job (bytes), and how it was measured.
        peak_bytes: Option<u64>,
        accounting: Accounting,
    },
    /// SIGINT (Ctrl-C) or SIGTERM reached the runner.
    Interrupt { signal: i32 },
}

/// Memory of one running job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobUsage {
    pub job: usize,
    pub current_bytes: u64,
    pub peak_bytes: u64,
}

/// Runs jobs. Created once per sweep; dropping it kills whatever still runs.
pub struct Executor {
    _private: (),
}

impl Executor {
    /// Prepare: lower memsweep's own oom_score_adj, install signal handling (SIGCHLD, SIGINT,
    /// SIGTERM), start the orphan guard, and set up per-job cgroups under `layout` when writable
    /// (else Proc mode). Never fails for lack of cgroups: falls back and says why in [`Self::accounting_note`].
    pub fn new(
        cfg: ExecConfig,
        layout: &Layout,
        fs: &crate::probe::Fs,
    ) -> anyhow::Result<Executor> {
        let _ = (cfg, layout, fs);
        todo!("exec helper")
    }

    pub fn accounting(&self) -> Accounting {
        todo!("exec helper")
    }

    /// A sentence for the user: which mode and why (e.g. "per-job cgroups under /sys/fs/cgroup/memory/x").
    pub fn accounting_note(&self) -> String {
        todo!("exec helper")
    }

    /// Start a job (own process group, oom_score_adj 1000, own cgroup when available).
    /// A spawn failure is returned as an `Exited { outcome: FailedToSpawn }` by the next `wait`.
    pub fn spawn(&mut self, spec: SpawnSpec) -> anyhow::Result<()> {
        let _ = spec;
        todo!("exec helper")
    }

    /// Block until a job exits, a signal arrives, or `timeout` passes; return what happened.
    pub fn wait(&mut self, timeout: Duration) -> Vec<ExecEvent> {
        let _ = timeout;
        todo!("exec helper")
    }

    /// Current and peak memory of every running job.
    pub fn usage(&mut self) -> Vec<JobUsage> {
        todo!("exec helper")
    }

    /// SIGSTOP the job's process group.
    pub fn pause(&mut self, job: usize) -> anyhow::Result<()> {
        let _ = job;
        todo!("exec helper")
    }

    /// SIGCONT the job's process group.
    pub fn resume(&mut self, job: usize) -> anyhow::Result<()> {
        let _ = job;
        todo!("exec helper")
    }

    /// Send `signal` to the job's process group (resuming it first if paused); the job's
    /// outcome will be `Stopped { signal }`.
    pub fn signal(&mut self, job: usize, signal: i32) -> anyhow::Result<()> {
        let _ = (job, signal);
        todo!("exec helper")
    }

    /// Number of running (incl. paused) jobs.
    pub fn running(&self) -> usize {
        todo!("exec helper")
    }
}
