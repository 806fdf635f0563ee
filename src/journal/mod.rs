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

mod fold;
#[cfg(test)]
mod props;
pub mod replay;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::exit::usage;
use crate::sweep::SweepPlan;

pub use fold::{SummaryContext, SummaryFold, summarize};
pub use replay::Replay;

/// File names inside a sweep directory.
pub const PLAN_FILE: &str = "sweep.json";
pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const SUMMARY_FILE: &str = "summary.json";
pub const LOCK_FILE: &str = ".lock";

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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slurm_id: Option<String>,
    },
    /// memsweep stopped the job's process group (SIGSTOP) under memory pressure.
    JobPause { t: f64, job: usize, reason: String },
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

/// What an earlier run left in a sweep directory.
#[derive(Debug, Clone)]
pub struct ResumeState {
    pub plan: SweepPlan,
    /// Jobs that already succeeded (never rerun).
    pub succeeded: Vec<usize>,
    /// The summary of the earlier run, if any, to carry finished jobs' records over.
    pub previous: Option<Summary>,
    /// Every event of the earlier runs, in order (the engine need not keep them: the open
    /// [`SweepDir`] has already folded them, see [`SweepDir::summary`]).
    pub events: Vec<Event>,
}

/// An open, locked sweep directory.
pub struct SweepDir {
    root: PathBuf,
    /// Held open for the lifetime of the runner: the flock is released when this closes.
    _lock: File,
    journal: File,
    /// Serialized events not yet written (see [`Self::sync`]).
    pending: Vec<u8>,
    /// Every event recorded so far (including earlier runs on resume), folded.
    fold: SummaryFold,
}

impl SweepDir {
    /// Rewrite `sweep.json` (`memsweep guard` learns its jobs, the processes, as they appear).
    pub fn write_plan(&self, plan: &SweepPlan) -> anyhow::Result<()> {
        atomic_write_json(&self.root.join(PLAN_FILE), plan)
    }

    /// Create DIR (and parents), take the lock, write `sweep.json`, open the journal.
    /// Errors (usage) if DIR already holds a sweep: suggest `--resume DIR`.
    pub fn create(root: &Path, plan: &SweepPlan) -> anyhow::Result<SweepDir> {
        fs::create_dir_all(root).map_err(|e| {
            usage(format!(
                "cannot create the sweep directory {}: {e}; choose another --out",
                root.display()
            ))
        })?;
        let lock = take_lock(root)?;
        if root.join(PLAN_FILE).exists() || root.join(JOURNAL_FILE).exists() {
            return Err(usage(format!(
                "{} already holds a sweep; continue it with `memsweep run --resume {}` or choose another --out",
                root.display(),
                root.display()
            )));
        }
        // The journal first: a sweep.json without a journal then only comes from a deleted
        // journal, which `--resume` refuses (it would rerun every job).
        let journal = open_journal(root)?;
        atomic_write_json(&root.join(PLAN_FILE), plan)?;
        Ok(SweepDir {
            root: root.to_path_buf(),
            _lock: lock,
            journal,
            pending: Vec::new(),
            fold: SummaryFold::default(),
        })
    }

    /// Take the lock on an existing DIR and read back what ran. Errors (usage) if DIR is not a
    /// sweep directory or another runner holds it (naming its pid).
    /// `force`: go on when the journal is missing (without it every job reruns).
    pub fn resume(root: &Path, force: bool) -> anyhow::Result<(SweepDir, ResumeState)> {
        if !root.is_dir() {
            return Err(usage(format!(
                "--resume {}: no such directory; give the --out directory of an earlier sweep",
                root.display()
            )));
        }
        let lock = take_lock(root)?;
        let plan_path = root.join(PLAN_FILE);
        let plan_text = fs::read(&plan_path).map_err(|e| {
            usage(format!(
                "{}: {e}; {} is not a memsweep sweep directory (give the --out directory of an earlier sweep)",
                plan_path.display(),
                root.display()
            ))
        })?;
        let plan: SweepPlan = serde_json::from_slice(&plan_text).map_err(|e| {
            usage(format!(
                "{}: {e}; not a memsweep sweep directory, or sweep.json was edited or written by another memsweep version",
                plan_path.display()
            ))
        })?;

        let journal_path = root.join(JOURNAL_FILE);
        let (events, good_len) = match fs::read(&journal_path) {
            Ok(bytes) => parse_journal(&bytes, &journal_path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound && force => (Vec::new(), 0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(usage(format!(
                    "{} is missing: without it memsweep cannot tell which of the {} jobs \
                     already succeeded, and would run every one again; restore it, or pass \
                     --force to rerun them all",
                    journal_path.display(),
                    plan.jobs.len()
                )));
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("reading {}", journal_path.display()))
                );
            }
        };
        let journal = open_journal(root)?;
        // Drop a torn last line so the next appended line does not glue onto it (which would
        // turn a harmless torn tail into corruption in the middle on the next resume).
        if journal.metadata()?.len() > good_len {
            journal.set_len(good_len).with_context(|| {
                format!(
                    "truncating the torn last line of {}",
                    journal_path.display()
                )
            })?;
            journal.sync_data()?;
        }

        let mut fold = SummaryFold::default();
        let mut succeeded = BTreeSet::new();
        for e in &events {
            fold.add(e);
            if let Event::JobEnd {
                job,
                status: JobStatus::Succeeded,
                ..
            } = e
            {
                succeeded.insert(*job);
            }
        }
        // A success is final: even a later end of the same job (only possible if the journal
        // was edited) does not make it rerun.
        let previous = fs::read(root.join(SUMMARY_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Summary>(&b).ok());
        let dir = SweepDir {
            root: root.to_path_buf(),
            _lock: lock,
            journal,
            pending: Vec::new(),
            fold,
        };
        let state = ResumeState {
            plan,
            succeeded: succeeded.into_iter().collect(),
            previous,
            events,
        };
        Ok((dir, state))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `DIR/N/`, created with its `command` file; stdout and stderr paths inside it.
    pub fn job_dir(&self, job: &crate::sweep::Job) -> anyhow::Result<PathBuf> {
        self.make_job_dir(job.id, &job.command.display())
    }

    /// [`Self::job_dir`] given the id and the display command.
    pub fn make_job_dir(&self, id: usize, display: &str) -> anyhow::Result<PathBuf> {
        let dir = self.job_path(id);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cmd = dir.join("command");
        fs::write(&cmd, format!("{display}\n"))
            .with_context(|| format!("writing {}", cmd.display()))?;
        Ok(dir)
    }

    /// `DIR/N` (not created).
    pub fn job_path(&self, id: usize) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// `DIR/N/stdout`: where job N's standard output goes.
    pub fn stdout_path(&self, id: usize) -> PathBuf {
        self.job_path(id).join("stdout")
    }

    /// `DIR/N/stderr`: where job N's standard error goes.
    pub fn stderr_path(&self, id: usize) -> PathBuf {
        self.job_path(id).join("stderr")
    }

    /// Append an event to the journal (buffered until [`Self::sync`]).
    pub fn record(&mut self, event: &Event) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.pending, event).context("serializing a journal event")?;
        self.pending.push(b'\n');
        self.fold.add(event);
        Ok(())
    }

    /// Write buffered events and fsync. One `write` of whole lines, so a crash leaves whole lines
    /// plus at most one torn line at the end.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.root.join(JOURNAL_FILE);
        self.journal
            .write_all(&self.pending)
            .and_then(|()| self.journal.sync_data())
            .with_context(|| format!("writing the journal {}", path.display()))?;
        self.pending.clear();
        Ok(())
    }

    /// The summary of every event recorded in this directory so far (earlier runs included),
    /// for these jobs; see [`summarize`].
    pub fn summary(&self, jobs: &[crate::sweep::Job], ctx: &SummaryContext) -> Summary {
        self.fold.summary(jobs, ctx)
    }

    /// Write `summary.json` atomically (temp file + rename).
    pub fn write_summary(&self, summary: &Summary) -> anyhow::Result<()> {
        atomic_write_json(&self.root.join(SUMMARY_FILE), summary)
    }

    /// (succeeded, failed) of [`Self::summary`], without building it.
    pub fn counts(&self, jobs: &[crate::sweep::Job]) -> (usize, usize) {
        self.fold.counts(jobs)
    }

    /// [`Self::summary`] for the last time: the fold is consumed (see
    /// [`SummaryFold::into_summary_with`], whose `full` picks the rows that keep their command
    /// and parameters), so later summaries only count later events.
    pub fn take_summary(
        &mut self,
        jobs: &[crate::sweep::Job],
        ctx: &SummaryContext,
        full: impl Fn(JobStatus) -> bool,
    ) -> Summary {
        std::mem::take(&mut self.fold).into_summary_with(jobs, ctx, full)
    }

    /// Write the live `summary.json` from the fold of what was recorded, as [`Self::summary`] +
    /// [`Self::write_summary`] would, without holding every row at once, and without fsync: the
    /// journal, fsync'd every turn, is what survives a power loss (see [`Durable::No`]).
    pub fn write_summary_streamed(
        &self,
        jobs: &[crate::sweep::Job],
        ctx: &SummaryContext,
        peak_working_set: u64,
    ) -> anyhow::Result<()> {
        self.write_summary_from_fold(jobs, ctx, peak_working_set, Durable::No)
    }

    /// The final `summary.json`: [`Self::write_summary_streamed`], fsync'd.
    pub fn write_final_summary(
        &self,
        jobs: &[crate::sweep::Job],
        ctx: &SummaryContext,
        peak_working_set: u64,
    ) -> anyhow::Result<()> {
        self.write_summary_from_fold(jobs, ctx, peak_working_set, Durable::Yes)
    }

    fn write_summary_from_fold(
        &self,
        jobs: &[crate::sweep::Job],
        ctx: &SummaryContext,
        peak_working_set: u64,
        durable: Durable,
    ) -> anyhow::Result<()> {
        atomic_write_with(&self.root.join(SUMMARY_FILE), durable, |w| {
            self.fold
                .write_pretty(&mut *w, jobs, ctx, peak_working_set)
                .map_err(io::Error::other)
        })
    }
}

/// Take the exclusive lock on DIR/.lock and write our pid into it.
fn take_lock(root: &Path) -> anyhow::Result<File> {
    let path = root.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| usage(format!("cannot open the lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "a process that has not written its pid yet".to_string(),
            };
            return Err(usage(format!(
                "{} is in use by another memsweep runner ({holder}); wait for it to finish, or stop it, before running or resuming this sweep",
                root.display()
            )));
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(usage(format!("cannot lock {}: {e}", path.display())));
        }
    }
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
        .with_context(|| format!("writing the pid into {}", path.display()))?;
    Ok(file)
}

fn open_journal(root: &Path) -> anyhow::Result<File> {
    let path = root.join(JOURNAL_FILE);
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("opening the journal {}", path.display()))
}

/// Parse a journal. Returns the events and the byte length of the good prefix. An unparsable
/// *last* line is a write torn by a killed runner and is dropped; corruption anywhere else is an
/// error naming FILE:LINE.
pub fn parse_journal(bytes: &[u8], path: &Path) -> anyhow::Result<(Vec<Event>, u64)> {
    let mut events = Vec::new();
    let mut good_len = 0usize;
    let mut start = 0usize;
    let mut lineno = 0usize;
    while start < bytes.len() {
        lineno += 1;
        let (end, next) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1),
            None => (bytes.len(), bytes.len()),
        };
        let line = &bytes[start..end];
        let is_last = next >= bytes.len();
        let complete = end < bytes.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                good_len = next;
            }
            start = next;
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(ev) if complete => {
                events.push(ev);
                good_len = next;
            }
            // A last line without its newline was cut short by a crash; even if what is left
            // parses, treat it as torn (at worst, that job runs again).
            Ok(_) => {}
            Err(_) if is_last => {}
            Err(e) => {
                return Err(usage(format!(
                    "{}:{lineno}: corrupt journal line ({e}); only the last line may be torn by a crash. Remove or repair that line to resume",
                    path.display()
                )));
            }
        }
        start = next;
    }
    Ok((events, good_len as u64))
}

/// [`atomic_write_with`] of a value as pretty JSON, streamed through a small buffer: the plan and
/// the summary of a 10 000-job sweep are megabytes, and holding them as one string would double
/// the runner's footprint.
pub fn atomic_write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    atomic_write_with(path, Durable::Yes, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::other)
    })
}

/// Whether an atomic write must also survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    /// fsync the file and the directory (the plan, the final summary).
    Yes,
    /// Rename only: readers and a killed runner still see the old or the new content, never a
    /// mix; only a power loss may lose it. For the live summary, which the fsync'd journal
    /// rebuilds (`show`, `--resume`), and which a big sweep rewrites while jobs wait.
    No,
}

/// Write a file so readers see the old or the new content, never a mix, even across a crash:
/// `write` fills a temp file in the same directory, then (if durable) fsync, rename, fsync the
/// directory.
fn atomic_write_with(
    path: &Path,
    durable: Durable,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(64 << 10, File::create(&tmp)?);
        write(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        if durable == Durable::No {
            return fs::rename(&tmp, path);
        }
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is only durable once the directory entry is.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Fixtures shared by the unit tests of the journal, history and output modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::sweep::{Job, JobCommand, RunConfig};

    pub fn jobs(n: usize) -> Vec<Job> {
        (0..n)
            .map(|id| Job {
                id,
                command: JobCommand::Argv(vec![
                    "python3".into(),
                    "train.py".into(),
                    format!("lr={id}"),
                ]),
                params: vec![("lr".into(), id.to_string())],
                key: format!("python3 train.py lr={id}"),
            })
            .collect()
    }

    pub fn plan(n: usize) -> SweepPlan {
        SweepPlan {
            schema_version: SCHEMA_VERSION,
            jobs: jobs(n),
            config: RunConfig {
                jobs: Some(4),
                sample_interval_s: 1.0,
                ..RunConfig::default()
            },
            template: "python3 train.py lr={lr}".into(),
        }
    }

    pub fn ctx(out: &str) -> SummaryContext {
        SummaryContext {
            out: out.into(),
            limit_bytes: 2 << 30,
            budget_bytes: 1 << 30,
            accounting: "cgroup-v1".into(),
            oom_kills: 0,
            cpus: None,
        }
    }

    pub fn sweep_start(t: f64, resumed: bool) -> Event {
        Event::SweepStart {
            t,
            schema_version: SCHEMA_VERSION,
            out: "sweeps/x".into(),
            jobs: 3,
            limit_bytes: 2 << 30,
            budget_bytes: 1 << 30,
            reserve_bytes: 1 << 30,
            parallel_cap: Some(4),
            accounting: "cgroup-v1".into(),
            resumed,
            downgrades: Vec::new(),
        }
    }

    pub fn start(t: f64, job: usize, attempt: u32) -> Event {
        Event::JobStart {
            t,
            job,
            attempt,
            command: format!("python3 train.py lr={job}"),
            estimate_bytes: None,
            slurm_id: None,
        }
    }

    pub fn end(t: f64, job: usize, attempt: u32, status: JobStatus, peak: u64) -> Event {
        Event::JobEnd {
            t,
            job,
            attempt,
            status,
            exit_code: Some(if status == JobStatus::Succeeded { 0 } else { 1 }),
            signal: None,
            wall_s: 2.0,
            peak_bytes: Some(peak),
            peak_source: "cgroup-v1".into(),
            cpu_s: Some(0.5),
        }
    }

    pub fn sample(t: f64, ws: u64) -> Event {
        Event::Sample {
            t,
            working_set_bytes: ws,
            available_bytes: (1 << 30) - ws,
            budget_bytes: 1 << 30,
            running: vec![(0, ws)],
            psi_some_avg10: Some(0.5),
        }
    }

    pub fn sweep_end(t: f64, makespan_s: f64) -> Event {
        Event::SweepEnd {
            t,
            makespan_s,
            succeeded: 0,
            failed: 0,
            exit_code: 0,
            interrupted: false,
            fail_fast_job: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::exit::UsageError;

    fn usage_msg(err: anyhow::Error) -> String {
        err.downcast_ref::<UsageError>()
            .unwrap_or_else(|| panic!("expected a usage error, got: {err:#}"))
            .to_string()
    }

    fn err_of<T>(r: anyhow::Result<T>) -> anyhow::Error {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn create_writes_the_plan_and_refuses_a_directory_that_holds_a_sweep() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b/sweep");
        let plan = plan(3);
        drop(SweepDir::create(&root, &plan).unwrap());
        let back: SweepPlan =
            serde_json::from_slice(&fs::read(root.join(PLAN_FILE)).unwrap()).unwrap();
        assert_eq!(back, plan);
        assert!(root.join(JOURNAL_FILE).exists());

        let msg = usage_msg(err_of(SweepDir::create(&root, &plan)));
        assert!(msg.contains("already holds a sweep"), "{msg}");
        assert!(
            msg.contains(&format!("--resume {}", root.display())),
            "{msg}"
        );
    }

    #[test]
    fn a_second_runner_is_refused_and_told_the_holders_pid() {
        // A child forked by a concurrent test would hold the lock's descriptor until it execs.
        let _children = crate::testutil::children();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s");
        let first = SweepDir::create(&root, &plan(2)).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(
            fs::read_to_string(root.join(LOCK_FILE)).unwrap().trim(),
            pid
        );

        let msg = usage_msg(err_of(SweepDir::resume(&root, false)));
        assert!(msg.contains(&format!("pid {pid}")), "{msg}");
        assert!(msg.contains("in use by another memsweep runner"), "{msg}");
        // The lock is checked before "already holds a sweep": the user learns who holds it.
        let msg = usage_msg(err_of(SweepDir::create(&root, &plan(2))));
        assert!(msg.contains(&format!("pid {pid}")), "{msg}");

        drop(first);
        let (dir, state) = SweepDir::resume(&root, false).unwrap();
        assert_eq!(dir.root(), root);
        assert_eq!(state.plan, plan(2));
        assert!(state.succeeded.is_empty());
    }

    #[test]
    fn record_buffers_until_sync_and_resume_replays_what_succeeded() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s");
        let journal = root.join(JOURNAL_FILE);
        let mut dir = SweepDir::create(&root, &plan(3)).unwrap();
        for e in [
            sweep_start(100.0, false),
            start(100.5, 0, 1),
            start(100.6, 1, 1),
            start(100.7, 2, 1),
            end(102.0, 0, 1, JobStatus::Succeeded, 300 << 20),
            end(102.5, 2, 1, JobStatus::Failed, 100 << 20),
        ] {
            dir.record(&e).unwrap();
        }
        assert_eq!(
            fs::metadata(&journal).unwrap().len(),
            0,
            "nothing before sync"
        );
        dir.sync().unwrap();
        let synced = fs::read(&journal).unwrap();
        assert_eq!(synced.iter().filter(|&&b| b == b'\n').count(), 6);
        drop(dir); // the runner dies with job 1 still running

        let (mut dir, state) = SweepDir::resume(&root, false).unwrap();
        assert_eq!(state.succeeded, vec![0], "job 1 never ended, job 2 failed");
        assert_eq!(state.events.len(), 6);
        let s = dir.summary(&plan(3).jobs, &ctx("s"));
        assert_eq!(s.jobs[1].status, JobStatus::Running);

        dir.record(&sweep_start(200.0, true)).unwrap();
        dir.record(&start(200.5, 1, 1)).unwrap();
        dir.sync().unwrap();
        let s = dir.summary(&plan(3).jobs, &ctx("s"));
        assert_eq!(s.jobs[1].status, JobStatus::Running);
        assert_eq!(s.jobs[1].attempts, 2, "the killed attempt counts");
        let (events, _) = parse_journal(&fs::read(&journal).unwrap(), &journal).unwrap();
        assert_eq!(events.len(), 8, "appending continues in the same journal");
        assert_eq!(events[6], sweep_start(200.0, true));
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_cut_away_before_appending() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s");
        let journal = root.join(JOURNAL_FILE);
        let mut dir = SweepDir::create(&root, &plan(2)).unwrap();
        dir.record(&sweep_start(1.0, false)).unwrap();
        dir.record(&start(1.5, 0, 1)).unwrap();
        dir.record(&end(3.0, 0, 1, JobStatus::Succeeded, 1 << 20))
            .unwrap();
        dir.sync().unwrap();
        drop(dir);
        let good = fs::metadata(&journal).unwrap().len();
        // SIGKILL in the middle of writing job 1's end.
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(br#"{"event":"job_end","t":4.0,"job":1,"att"#)
            .unwrap();
        drop(f);

        let (mut dir, state) = SweepDir::resume(&root, false).unwrap();
        assert_eq!(state.succeeded, vec![0]);
        assert_eq!(state.events.len(), 3);
        assert_eq!(fs::metadata(&journal).unwrap().len(), good);
        dir.record(&sweep_start(10.0, true)).unwrap();
        dir.sync().unwrap();
        drop(dir);
        // The next resume reads every line: no torn fragment glued to the new line.
        let (_, state) = SweepDir::resume(&root, false).unwrap();
        assert_eq!(state.events.len(), 4);
    }

    #[test]
    fn corruption_before_the_last_line_is_an_error_naming_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s");
        let journal = root.join(JOURNAL_FILE);
        drop(SweepDir::create(&root, &plan(1)).unwrap());
        let line = |e: &Event| serde_json::to_string(e).unwrap() + "\n";
        let text = line(&sweep_start(1.0, false)) + "{not json\n" + &line(&start(2.0, 0, 1));
        fs::write(&journal, text).unwrap();
        let msg = usage_msg(err_of(SweepDir::resume(&root, false)));
        assert!(msg.contains(&format!("{}:2:", journal.display())), "{msg}");
        // A complete but unparsable last line (e.g. zeros after a crash) is torn, not corrupt.
        let text = line(&sweep_start(1.0, false)) + "\0\0\0\0\n";
        fs::write(&journal, text).unwrap();
        let (_, state) = SweepDir::resume(&root, false).unwrap();
        assert_eq!(state.events.len(), 1);
    }

    #[test]
    fn resume_refuses_what_is_not_a_sweep_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let msg = usage_msg(err_of(SweepDir::resume(&tmp.path().join("missing"), false)));
        assert!(msg.contains("no such directory"), "{msg}");

        let msg = usage_msg(err_of(SweepDir::resume(tmp.path(), false)));
        assert!(msg.contains("not a memsweep sweep directory"), "{msg}");
        assert!(msg.contains("sweep.json"), "{msg}");

        fs::write(tmp.path().join(PLAN_FILE), "{\"jobs\": 3}").unwrap();
        let msg = usage_msg(err_of(SweepDir::resume(tmp.path(), false)));
        assert!(msg.contains("not a memsweep sweep directory"), "{msg}");
        assert!(
            msg.contains(&tmp.path().join(PLAN_FILE).display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn summary_is_replaced_atomically_and_read_back_on_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s");
        let mut dir = SweepDir::create(&root, &plan(2)).unwrap();
        let jobs = plan(2).jobs;
        dir.record(&sweep_start(1.0, false)).unwrap();
        dir.write_summary(&dir.summary(&jobs, &ctx("s"))).unwrap();
        dir.record(&start(1.0, 0, 1)).unwrap();
        dir.record(&end(2.0, 0, 1, JobStatus::Succeeded, 5 << 20))
            .unwrap();
        dir.sync().unwrap();
        let second = dir.summary(&jobs, &ctx("s"));
        dir.write_summary(&second).unwrap();
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains(".tmp")),
            "temp file left behind: {names:?}"
        );
        drop(dir);
        let (_, state) = SweepDir::resume(&root, false).unwrap();
        assert_eq!(state.previous, Some(second));
    }

    #[test]
    fn job_dir_holds_the_command_and_names_the_output_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SweepDir::create(tmp.path(), &plan(1)).unwrap();
        let d = dir.make_job_dir(7, "python3 train.py 'lr=0.1'").unwrap();
        assert_eq!(d, tmp.path().join("7"));
        assert_eq!(
            fs::read_to_string(d.join("command")).unwrap(),
            "python3 train.py 'lr=0.1'\n"
        );
        assert_eq!(dir.stdout_path(7), d.join("stdout"));
        assert_eq!(dir.stderr_path(7), d.join("stderr"));
    }

    #[test]
    fn every_event_type_round_trips_through_json() {
        for e in [
            sweep_start(1.0, true),
            start(1.0, 0, 1),
            Event::JobPause {
                t: 1.0,
                job: 0,
                reason: "pressure".into(),
            },
            Event::JobResume { t: 1.0, job: 0 },
            Event::JobRequeue {
                t: 1.0,
                job: 0,
                attempt: 1,
                reason: "grew".into(),
                usage_bytes: 9,
            },
            end(1.0, 0, 1, JobStatus::RequeuedOut, 1),
            sample(1.0, 5),
            sweep_end(1.0, 2.0),
        ] {
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e, "{text}");
        }
        let text = serde_json::to_string(&end(1.0, 0, 1, JobStatus::RequeuedOut, 1)).unwrap();
        assert!(text.starts_with(r#"{"event":"job_end","#), "{text}");
        assert!(text.contains(r#""status":"requeued-out""#), "{text}");
        // The Hydra launcher reads these field names and shapes: pin one line exactly.
        assert_eq!(
            serde_json::to_string(&sample(1.5, 5)).unwrap(),
            r#"{"event":"sample","t":1.5,"working_set_bytes":5,"available_bytes":1073741819,"budget_bytes":1073741824,"running":[[0,5]],"psi_some_avg10":0.5}"#
        );
    }
}
