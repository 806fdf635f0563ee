//! The sweep directory: its file names, the lock that keeps two runners out of it, the
//! buffered, fsync'd journal writer, per-job folders, and reading it all back for `--resume`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::atomic::{Durable, atomic_write_json, atomic_write_with};
use super::parse::parse_journal;
use super::{Event, JobStatus, Summary, SummaryContext, SummaryFold};
use crate::exit::usage;
use crate::sweep::SweepPlan;

/// File names inside a sweep directory.
pub const PLAN_FILE: &str = "sweep.json";
pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const SUMMARY_FILE: &str = "summary.json";
pub const LOCK_FILE: &str = ".lock";

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
    /// Shared with whoever makes written events durable off the runner's loop (see
    /// [`Self::journal_file`]).
    journal: Arc<File>,
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
            journal: Arc::new(journal),
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
            journal: Arc::new(journal),
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
        if self.write()? {
            self.journal
                .sync_data()
                .map_err(|e| self.journal_error(e.into()))?;
        }
        Ok(())
    }

    /// Write buffered events (as [`Self::sync`]) without waiting for them to be durable: the
    /// caller has [`Self::journal_file`]'s `sync_data` done, and nothing that depends on them
    /// happens before. Returns whether anything was written.
    pub fn write(&mut self) -> anyhow::Result<bool> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        (&*self.journal)
            .write_all(&self.pending)
            .map_err(|e| self.journal_error(e.into()))?;
        self.pending.clear();
        Ok(true)
    }

    /// The journal file, for an fdatasync made elsewhere (see [`Self::write`]).
    pub fn journal_file(&self) -> Arc<File> {
        Arc::clone(&self.journal)
    }

    /// An error writing or syncing the journal, naming it.
    pub fn journal_error(&self, e: anyhow::Error) -> anyhow::Error {
        e.context(format!(
            "writing the journal {}",
            self.root.join(JOURNAL_FILE).display()
        ))
    }

    /// The summary of every event recorded in this directory so far (earlier runs included),
    /// for these jobs; see [`summarize`](super::summarize).
    pub fn summary(&self, jobs: &crate::sweep::JobList, ctx: &SummaryContext) -> Summary {
        self.fold.summary(jobs, ctx)
    }

    /// Write `summary.json` atomically (temp file + rename).
    pub fn write_summary(&self, summary: &Summary) -> anyhow::Result<()> {
        atomic_write_json(&self.root.join(SUMMARY_FILE), summary)
    }

    /// (succeeded, failed) of [`Self::summary`], without building it.
    pub fn counts(&self, jobs: &crate::sweep::JobList) -> (usize, usize) {
        self.fold.counts(jobs)
    }

    /// The fold behind [`Self::summary`], for a summary read without holding its rows
    /// ([`SummaryFold::header`] and [`SummaryFold::rows`]).
    pub fn fold(&self) -> &SummaryFold {
        &self.fold
    }

    /// Write the live `summary.json` from the fold of what was recorded, as [`Self::summary`] +
    /// [`Self::write_summary`] would, without holding every row at once, and without fsync: the
    /// journal, fsync'd every turn, is what survives a power loss (see [`Durable::No`]).
    pub fn write_summary_streamed(
        &self,
        jobs: &crate::sweep::JobList,
        ctx: &SummaryContext,
        peak_working_set: u64,
    ) -> anyhow::Result<()> {
        self.write_summary_from_fold(jobs, ctx, peak_working_set, Durable::No)
    }

    /// The final `summary.json`: [`Self::write_summary_streamed`], fsync'd.
    pub fn write_final_summary(
        &self,
        jobs: &crate::sweep::JobList,
        ctx: &SummaryContext,
        peak_working_set: u64,
    ) -> anyhow::Result<()> {
        self.write_summary_from_fold(jobs, ctx, peak_working_set, Durable::Yes)
    }

    fn write_summary_from_fold(
        &self,
        jobs: &crate::sweep::JobList,
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
