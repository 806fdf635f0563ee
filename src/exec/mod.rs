//! The effects of running jobs: spawning each in its own process group (and memory cgroup when
//! the hierarchy is writable), measuring them (cgroup counters or /proc sampling), signalling them
//! (pause, resume, terminate, kill), oom_score_adj, and making sure no job outlives the runner.
//!
//! All `unsafe` and OS-specific code of the crate lives here, each block with a `// SAFETY:` comment.
//!
//! Files: `spawn` (clone/exec of one job), `spawner` (the thread that starts jobs), `syncer`
//! (the thread that opens a turn's gate once the journal is durable), `cgroup` (job cgroups, v1 slot pool, v2 leaves, stale
//! trees), `events` (kernel memory events: v1 usage thresholds, v2 `memory.high` and
//! `memory.events` watches, PSI triggers), `sample` (/proc trees for Proc mode), `attribution`
//! (which processes are a job's: process tree plus the inherited environment marker, so daemons
//! count and end with their job), `signals` (self-pipes), `guard` (the process
//! that kills the jobs if the runner dies), `sys` (raw syscall wrappers). Cgroup paths go through
//! the probe's `Fs` root (so v2 can be tested on fixture trees); processes and /proc are real.

#![allow(unsafe_code)]

pub mod attribution;
mod cgroup;
mod events;
mod guard;
pub mod sample;
mod signals;
mod spawn;
mod spawner;
mod syncer;
mod sys;
#[cfg(test)]
mod tests;
pub mod tree;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use rustix::event::PollFlags;

use serde::Serialize;

use crate::probe::{CgroupVersion, Layout};
use crate::sweep::JobCommand;
pub use sys::err_text;

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
    /// How often /proc is sampled in Proc mode (`wait` samples on its own between events).
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
    /// A folder to create (if missing) and the text of the `command` file to write in it, before
    /// the output files are opened. The child does it: creating inodes is slow on some
    /// filesystems (ext4 skips recently deleted inodes one by one), and done there it runs beside
    /// the runner's loop instead of in it. A failure ends the job as `FailedToSpawn`.
    pub job_dir: Option<(PathBuf, String)>,
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
    /// Killed by the kernel's OOM killer: the job died by SIGKILL (or its shell exited 137) and
    /// its cgroup counted an oom_kill — whether its own `--job-mem-max` or an ancestor's limit
    /// was hit. Where the kernel has no counter: SIGKILL under a cap. Never reported in Proc mode.
    OomKilled,
    /// Ended after memsweep sent it a signal through `Executor::signal` (pressure requeue,
    /// interrupt); `signal` is the one sent. A job that still exits with code 0 is `Succeeded`.
    Stopped {
        signal: i32,
    },
    FailedToSpawn {
        error: String,
    },
}

/// How one attempt of a job ended, with what the executor measured of it.
#[derive(Debug, Clone)]
pub struct JobExit {
    pub job: usize,
    pub attempt: u32,
    pub outcome: Outcome,
    pub wall: Duration,
    /// Peak memory of the job (bytes), and how it was measured.
    pub peak_bytes: Option<u64>,
    pub accounting: Accounting,
    /// OOM kills the kernel counted in the job's own cgroup during this attempt (v1 counts a
    /// kill only there, so the container's counter misses it); 0 in Proc mode.
    pub oom_kills: u64,
    /// CPU time of the job (user + system, with the descendants it waited for); None when it
    /// never ran.
    pub cpu: Option<Duration>,
}

/// Something that happened while waiting.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Exited(JobExit),
    /// SIGINT (Ctrl-C), SIGTERM or SIGHUP (terminal closed) reached the runner.
    Interrupt {
        signal: i32,
    },
    /// The kernel reported memory news (a usage threshold crossed, a `memory.events` change, a
    /// PSI trigger): sample now rather than at the next sample time.
    Memory,
}

/// Memory of one running job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobUsage {
    pub job: usize,
    pub current_bytes: u64,
    pub peak_bytes: u64,
}

/// A running (or paused) job.
struct Running {
    job: usize,
    attempt: u32,
    /// 0 until the spawner thread reports the pid.
    pid: i32,
    started: Instant,
    paused: bool,
    /// The last signal memsweep sent through [`Executor::signal`].
    sent: Option<i32>,
    slot: Option<cgroup::Slot>,
    /// Proc mode (and the v2 fallback when memory.peak is missing): max over samples.
    sampled_peak: u64,
    current: u64,
    /// Process groups of the job's tree registered with the guard (the job's own first).
    pgids: Vec<i32>,
    /// Why the child never became the job (it failed before exec), once reported.
    error: Option<String>,
    /// v1: the job cgroup's usage threshold; v2: the `memory.high` written, and whether its
    /// `memory.events` is watched.
    threshold: Option<events::Threshold>,
    high: Option<u64>,
    watched: bool,
}

/// Runs jobs. Created once per sweep; dropping it kills whatever still runs.
///
/// It reaps every child of the process (`waitpid(-1)`, as the subreaper of the jobs' orphans),
/// so a process should hold one executor and not wait for other children concurrently.
pub struct Executor {
    cfg: ExecConfig,
    accounting: Accounting,
    note: String,
    notes: Vec<String>,
    cgroups: Option<cgroup::JobCgroups>,
    guard: Option<guard::Guard>,
    signals: signals::Signals,
    jobs: Vec<Running>,
    pending: VecDeque<ExecEvent>,
    last_sample: Option<Instant>,
    page: u64,
    /// Proc mode: which processes are which job's (tree + inherited marker).
    attribution: attribution::Attribution,
    /// Orphans of the jobs are re-parented to us (else to init, out of sight).
    subreaper: bool,
    events: events::Events,
    /// Jobs started this turn and held before exec until [`Self::open_gate`].
    gate: Option<spawn::Gate>,
    spawner: spawner::Spawner,
    syncer: syncer::Syncer,
    /// Exits reaped before the spawner reported their pid (waitpid(-1) may beat the report).
    early: Vec<sys::Reaped>,
}

/// Jobs younger than this get no threshold or `memory.high` of their own (the container's
/// threshold covers them): a trivial job should not pay for its registration.
const EVENTS_MIN_AGE: Duration = Duration::from_millis(25);

/// Lower memsweep's own OOM score so the kernel never picks the runner; Err(why) if refused.
fn protect_self() -> Result<(), String> {
    std::fs::write("/proc/self/oom_score_adj", "-500").map_err(|e| {
        format!(
            "could not lower memsweep's own oom_score_adj to -500 ({}); the kernel still prefers \
             the jobs (1000)",
            sys::err_text(&e)
        )
    })
}

impl Executor {
    /// Prepare: lower memsweep's own oom_score_adj, install signal handling (SIGCHLD, SIGINT,
    /// SIGTERM, SIGHUP), start the orphan guard, and set up per-job cgroups under `layout` when writable
    /// (else Proc mode). Never fails for lack of cgroups: falls back and says why in [`Self::accounting_note`].
    pub fn new(
        cfg: ExecConfig,
        layout: &Layout,
        fs: &crate::probe::Fs,
    ) -> anyhow::Result<Executor> {
        let mut notes = Vec::new();
        if let Err(why) = protect_self() {
            notes.push(why);
        }
        let subreaper = sys::set_child_subreaper();
        if let Err(e) = &subreaper {
            notes.push(format!(
                "could not become the subreaper of the jobs' orphans ({}); grandchildren whose \
                 parent exits are reaped by init",
                sys::err_text(e)
            ));
        }
        let subreaper = subreaper.is_ok();
        let signals = signals::Signals::install()
            .map_err(|e| anyhow::anyhow!("cannot install signal handlers: {e}"))?;

        let interval_ms = cfg.sample_interval.as_millis();
        let proc_note = |why: &str| format!("sampling /proc every {interval_ms} ms: {why}");
        let (cgroups, note) = match (cfg.no_cgroups, layout.version, &layout.dir) {
            (true, _, _) => (None, proc_note("--no-cgroups")),
            (false, None, _) | (false, _, None) => (None, proc_note("no memory cgroup found")),
            (false, Some(v), Some(dir)) => {
                let version = match v {
                    CgroupVersion::V1 => cgroup::Version::V1,
                    CgroupVersion::V2 => cgroup::Version::V2,
                };
                match cgroup::JobCgroups::setup(version, &fs.path(dir), cfg.job_mem_max) {
                    Ok(cg) => {
                        let mut n = format!("per-job cgroups under {}", cg.base.display());
                        if !cg.removed_stale.is_empty() {
                            n.push_str(&format!(
                                " (removed stale {} of dead runners)",
                                cg.removed_stale.join(", ")
                            ));
                        }
                        (Some(cg), n)
                    }
                    Err(why) => (None, proc_note(&why)),
                }
            }
        };
        if cgroups.is_none() && cfg.job_mem_max.is_some() {
            notes.push(format!(
                "--job-mem-max is not enforced: it needs per-job memory cgroups, and jobs are \
                 measured by {note}"
            ));
        }
        let accounting = match cgroups.as_ref().map(|c| c.version) {
            Some(cgroup::Version::V1) => Accounting::CgroupV1,
            Some(cgroup::Version::V2) => Accounting::CgroupV2,
            None => Accounting::Proc,
        };
        let marker = attribution::Marker::for_this_process();
        let guard =
            match guard::Guard::start(cgroups.as_ref().map(|c| c.base.as_path()), marker.tag()) {
                Ok(g) => Some(g),
                Err(e) => {
                    notes.push(format!(
                        "could not start the orphan guard ({e}); jobs may outlive a killed memsweep"
                    ));
                    None
                }
            };
        let container = layout.dir.as_ref().map(|d| fs.path(d));
        let v2 = layout.version == Some(CgroupVersion::V2);
        let psi = container
            .as_ref()
            .map(|d| d.join("memory.pressure"))
            .filter(|p| v2 && p.exists())
            .unwrap_or_else(|| fs.path(std::path::Path::new("/proc/pressure/memory")));
        let events = events::Events::new(container.as_deref(), v2, Some(&psi));
        let spawner = spawner::Spawner::start()
            .map_err(|e| anyhow::anyhow!("cannot start the thread that starts jobs: {e}"))?;
        let syncer = syncer::Syncer::start()
            .map_err(|e| anyhow::anyhow!("cannot start the thread that syncs the journal: {e}"))?;
        Ok(Executor {
            cfg,
            accounting,
            note,
            notes,
            cgroups,
            guard,
            signals,
            jobs: Vec::new(),
            pending: VecDeque::new(),
            last_sample: None,
            page: sys::page_size(),
            attribution: attribution::Attribution::new(marker),
            subreaper,
            events,
            gate: None,
            spawner,
            syncer,
            early: Vec::new(),
        })
    }

    pub fn accounting(&self) -> Accounting {
        self.accounting
    }

    /// A sentence for the user: which mode and why (e.g. "per-job cgroups under /sys/fs/cgroup/memory/x").
    pub fn accounting_note(&self) -> String {
        match self.accounting {
            Accounting::Proc => format!("{} (peaks are sampled)", self.note),
            _ => self.note.clone(),
        }
    }

    /// The kernel memory events that wake the runner between samples (e.g. "usage thresholds",
    /// "a PSI trigger"); empty where the kernel offers none.
    pub fn events_active(&self) -> &[&'static str] {
        &self.events.active
    }

    /// What this executor cannot do here, worth showing once and journaling: oom_score_adj
    /// refused, no subreaper, no orphan guard, `--job-mem-max` without cgroups.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Start a job (own process group, oom_score_adj 1000, own cgroup when available).
    /// A spawn failure is returned as an `Exited` with outcome `FailedToSpawn` by the next `wait`.
    pub fn spawn(&mut self, spec: SpawnSpec) -> anyhow::Result<()> {
        self.start(spec, false)
    }

    /// [`Self::spawn`], but the job is held just before exec until [`Self::open_gate`] (or
    /// [`Self::open_gate_when_durable`]): its set-up (folder, output files, cgroup) overlaps
    /// the journal's fsync of its start. Each spawner thread starts one job at a time, so only
    /// the turn's first job per thread is set up while held; the others follow once the gate
    /// opens. If
    /// the gate is dropped instead (an error, the runner's death), the job ends as
    /// `FailedToSpawn` without running.
    pub fn spawn_gated(&mut self, spec: SpawnSpec) -> anyhow::Result<()> {
        self.start(spec, true)
    }

    /// Let the jobs held by [`Self::spawn_gated`] exec.
    pub fn open_gate(&mut self) -> anyhow::Result<()> {
        if let Some(g) = self.gate.take() {
            g.open()
                .map_err(|e| anyhow::anyhow!("cannot release the started jobs: {e}"))?;
        }
        Ok(())
    }

    /// Let the jobs held by [`Self::spawn_gated`] exec once the data written to `file` (the
    /// journal, with their starts) is durable: the fdatasync runs on a thread of its own and
    /// this returns at once. With no file, nothing waits to be durable: open now. A sync that
    /// fails leaves its jobs unrun (`FailedToSpawn`) and shows in [`Self::durability_error`].
    pub fn open_gate_when_durable(
        &mut self,
        file: Option<std::sync::Arc<std::fs::File>>,
    ) -> anyhow::Result<()> {
        match file {
            None => self.open_gate(),
            Some(file) => self
                .syncer
                .send(file, self.gate.take())
                .map_err(|e| anyhow::anyhow!("cannot release the started jobs: {e}")),
        }
    }

    /// Why a sync of [`Self::open_gate_when_durable`] failed, if one did. With `wait`, once
    /// every sync asked for so far is done.
    pub fn durability_error(&self, wait: bool) -> Option<String> {
        if wait {
            self.syncer.flush();
        }
        self.syncer.error()
    }

    fn start(&mut self, mut spec: SpawnSpec, gated: bool) -> anyhow::Result<()> {
        if self.jobs.iter().any(|r| r.job == spec.job) {
            bail!("job {} is already running", spec.job);
        }
        // The marker every process of the job inherits (attribution in Proc mode, the guard).
        let marker = self.attribution.marker().env(spec.job);
        spec.env.retain(|(k, _)| marker.iter().all(|(m, _)| m != k));
        spec.env.extend(marker);
        let started = Instant::now();
        let exe = match spawn::program(&spec) {
            Ok(exe) => exe,
            Err(e) => {
                spawner::make_job_dir(&spec);
                self.failed_to_spawn(spec.job, spec.attempt, started, e.to_string());
                return Ok(());
            }
        };
        let slot = match self.cgroups.as_mut().map(|c| c.acquire()) {
            None => None,
            Some(Ok(slot)) => Some(slot),
            Some(Err(e)) => {
                spawner::make_job_dir(&spec);
                self.failed_to_spawn(spec.job, spec.attempt, started, e.to_string());
                return Ok(());
            }
        };
        if gated && self.gate.is_none() {
            self.gate = Some(spawn::Gate::new()?);
        }
        let gate = if gated {
            self.gate.as_mut().map(|g| g.hold())
        } else {
            None
        };
        let (job, attempt) = (spec.job, spec.attempt);
        let req = spawner::Request {
            exe,
            cgroup_procs: slot.as_ref().map(|s| s.procs.clone()),
            spec,
            gate,
        };
        if let Err(e) = self.spawner.send(req) {
            if let Some(slot) = slot {
                self.release_slot(slot);
            }
            self.failed_to_spawn(job, attempt, started, e.to_string());
            return Ok(());
        }
        self.jobs.push(Running {
            job,
            attempt,
            pid: 0,
            started,
            paused: false,
            sent: None,
            slot,
            sampled_peak: 0,
            current: 0,
            pgids: Vec::new(),
            error: None,
            threshold: None,
            high: None,
            watched: false,
        });
        Ok(())
    }

    /// Take in what the spawner thread has reported: pids of started jobs (registered with the
    /// guard), and jobs that could not start (ended as `FailedToSpawn`). With `wait`, wait for
    /// every outstanding report; a gate still closed is dropped first, since the jobs held at it
    /// could never report (a caller that needs them before opening the gate gave up on them).
    fn take_reports(&mut self, wait: bool) {
        if self.spawner.in_flight() == 0 {
            return;
        }
        let reports = if wait {
            self.gate = None;
            let (reports, lost) = self.spawner.wait_all();
            if lost > 0 {
                // The thread died: whatever it never reported has no pid and never will.
                let mut gone = Vec::new();
                let reported: Vec<usize> = reports.iter().map(|r| r.job).collect();
                self.jobs.retain(|j| {
                    let lost = j.pid == 0 && !reported.contains(&j.job);
                    if lost {
                        gone.push((j.job, j.attempt, j.started));
                    }
                    !lost
                });
                for (job, attempt, started) in gone {
                    let error = "the thread that starts jobs has stopped".to_string();
                    self.failed_to_spawn(job, attempt, started, error);
                }
            }
            reports
        } else {
            self.spawner.take()
        };
        for r in reports {
            let Some(i) = self.jobs.iter().position(|j| j.job == r.job && j.pid == 0) else {
                continue;
            };
            match r.result {
                Ok(spawn::Started { pid, error }) => {
                    if let Some(g) = self.guard.as_mut() {
                        g.add_pgid(pid);
                    }
                    let j = &mut self.jobs[i];
                    j.pid = pid;
                    j.pgids = vec![pid];
                    j.error = error;
                }
                Err(e) => {
                    let j = self.jobs.swap_remove(i);
                    if let Some(slot) = j.slot {
                        self.release_slot(slot);
                    }
                    self.failed_to_spawn(j.job, j.attempt, j.started, e.to_string());
                }
            }
        }
    }

    /// Make sure `job`'s pid is known (waiting for the spawner thread if need be).
    fn settle(&mut self, job: usize) {
        if self.jobs.iter().any(|j| j.job == job && j.pid == 0) {
            self.take_reports(true);
        }
    }

    fn failed_to_spawn(&mut self, job: usize, attempt: u32, started: Instant, error: String) {
        self.pending.push_back(ExecEvent::Exited(JobExit {
            job,
            attempt,
            outcome: Outcome::FailedToSpawn { error },
            wall: started.elapsed(),
            peak_bytes: None,
            accounting: self.accounting,
            oom_kills: 0,
            cpu: None,
        }));
    }

    fn release_slot(&mut self, slot: cgroup::Slot) {
        if let Some(cg) = self.cgroups.as_mut() {
            cg.release(slot);
        }
    }

    /// Block until a job exits, a signal arrives, or `timeout` passes; return what happened.
    /// In Proc mode it also samples the jobs' trees every `sample_interval` meanwhile, so peaks
    /// are tracked even when the caller waits long.
    pub fn wait(&mut self, timeout: Duration) -> Vec<ExecEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            self.reap();
            if !self.pending.is_empty() {
                return self.pending.drain(..).collect();
            }
            let now = Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            let mut until = deadline;
            if self.accounting == Accounting::Proc && !self.jobs.is_empty() {
                let due = self
                    .last_sample
                    .map_or(now, |t| t + self.cfg.sample_interval);
                if due <= now {
                    self.sample_proc();
                    continue;
                }
                until = until.min(due);
            }
            self.poll(until - now);
        }
    }

    /// One poll() on the signal pipes and every memory event source; queue what arrived.
    fn poll(&mut self, timeout: Duration) {
        let sig = self.signals.fds();
        let n_sig = sig.len();
        let mut fds: Vec<_> = sig.into_iter().map(|fd| (fd, PollFlags::IN)).collect();
        self.events.fds(&mut fds);
        let container_end = fds.len();
        fds.push((self.spawner.wake_fd(), PollFlags::IN));
        for j in &self.jobs {
            if let Some(t) = &j.threshold {
                fds.push((t.fd(), PollFlags::IN));
            }
        }
        let revents = sys::poll(&fds, timeout);
        drop(fds);
        let mut ready = [false; 4];
        for (r, ev) in ready.iter_mut().zip(&revents) {
            *r = !ev.is_empty();
        }
        let woken = self.signals.take(ready);
        let mut memory = self.events.take(&revents[n_sig..container_end]);
        if !revents[container_end].is_empty() {
            // A report to take in; the next reap does.
            self.spawner.drain_wake();
        }
        let mut k = container_end + 1;
        for j in &mut self.jobs {
            if let Some(t) = &mut j.threshold {
                if !revents[k].is_empty() {
                    t.take();
                    memory = true;
                }
                k += 1;
            }
        }
        for signal in woken.interrupts {
            self.pending.push_back(ExecEvent::Interrupt { signal });
        }
        if memory {
            self.pending.push_back(ExecEvent::Memory);
        }
    }

    /// After a sample: move the kernel's wake-up points to the usage now plus
    /// [`events::step`]`(room)`, `room` being what is left of the budget. v1: the container's
    /// usage threshold (`container_usage` is its `memory.usage_in_bytes`) and each job's; v2:
    /// each job's `memory.high` at its usage plus the whole room (a job alone may not take more
    /// before the engine decides), and a watch on its `memory.events`. Jobs younger than
    /// 25 ms are left to the container's threshold.
    pub fn rearm(&mut self, room: u64, container_usage: u64) {
        let step = events::step(room);
        self.events.rearm_container(container_usage, step);
        let Some(cg) = self.cgroups.as_ref() else {
            return;
        };
        for j in &mut self.jobs {
            let Some(slot) = &j.slot else { continue };
            if j.paused || j.started.elapsed() < EVENTS_MIN_AGE {
                continue;
            }
            match cg.version {
                cgroup::Version::V1 => {
                    let want = j.current.saturating_add(step);
                    let stale = match &j.threshold {
                        Some(t) => t.fired || events::should_move(Some(t.at), want, step),
                        None => true,
                    };
                    if stale {
                        j.threshold = events::Threshold::arm(&slot.dir, want).ok();
                    }
                }
                cgroup::Version::V2 => {
                    let want = j.current.saturating_add(room.max(step));
                    if events::should_move(j.high, want, step)
                        && std::fs::write(slot.dir.join("memory.high"), want.to_string()).is_ok()
                    {
                        j.high = Some(want);
                    }
                    if !j.watched {
                        j.watched = self.events.watch(&slot.dir);
                    }
                }
            }
        }
    }

    /// Reap every child that has exited; turn jobs among them into events.
    fn reap(&mut self) {
        // Children that are not jobs (the jobs' orphans we adopted as subreaper, a dead
        // guard) are reaped too and otherwise ignored, so no zombies pile up.
        self.take_reports(false);
        let mut ended = Vec::new();
        while let Some(r) = sys::try_wait(-1) {
            if let Some(i) = self.jobs.iter().position(|j| j.pid == r.pid) {
                ended.push((self.jobs.swap_remove(i), r));
            } else if self.spawner.in_flight() > 0
                && self.guard.as_ref().is_none_or(|g| g.pid() != r.pid)
            {
                // Perhaps a job whose pid the spawner thread has not reported yet.
                self.early.push(r);
            } else if self.guard.as_ref().is_some_and(|g| g.pid() == r.pid) {
                self.notes.push(
                    "the orphan guard exited unexpectedly; jobs may outlive a killed memsweep"
                        .into(),
                );
                if let Some(g) = self.guard.as_mut() {
                    g.mark_reaped();
                }
                self.guard = None;
            }
        }
        if !self.early.is_empty() {
            self.claim_early(&mut ended);
            if !self.early.is_empty() {
                // While an exit waits for its report, every report must wake the poll; look
                // once more after saying so, in case the report came just before.
                self.spawner.set_waiting(true);
                self.claim_early(&mut ended);
            }
            if self.early.is_empty() {
                self.spawner.set_waiting(false);
            }
        }
        if ended.is_empty() {
            return;
        }
        if self.cgroups.is_none() && self.may_have_leftovers() {
            // What the jobs left behind (daemons re-parented to us, processes in other
            // sessions) ends with them, as a cgroup would end it.
            let roots: Vec<(usize, i32)> = ended.iter().map(|(j, _)| (j.job, j.pid)).collect();
            let trees = self.attribution.trees(&sample::scan(), &roots, self.page);
            for tree in trees {
                for pid in tree.pids {
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
            }
        }
        for (job, r) in ended {
            self.finish(job, r);
        }
    }

    /// Match exits reaped before their report with the pids reported since; an exit no job can
    /// claim any more (nothing in flight) was not a job's.
    fn claim_early(&mut self, ended: &mut Vec<(Running, sys::Reaped)>) {
        self.take_reports(false);
        for r in std::mem::take(&mut self.early) {
            if let Some(i) = self.jobs.iter().position(|j| j.pid == r.pid) {
                ended.push((self.jobs.swap_remove(i), r));
            } else if self.spawner.in_flight() > 0 {
                self.early.push(r);
            }
        }
    }

    /// Whether an ended job may have left processes: as the subreaper, anything a job left
    /// hangs below a child of ours that is neither a running job nor the guard, so one small
    /// read spares the /proc walk after most exits. Without the subreaper, always walk.
    fn may_have_leftovers(&self) -> bool {
        if !self.subreaper {
            return true;
        }
        let guard = self.guard.as_ref().map_or(0, |g| g.pid());
        // A job being started is a child whose pid the spawner has not reported yet.
        let starting: Vec<i32> = self.spawner.starting().collect();
        match sample::own_children() {
            Some(kids) => kids.iter().any(|&k| {
                k != guard && !starting.contains(&k) && !self.jobs.iter().any(|j| j.pid == k)
            }),
            None => true,
        }
    }

    fn finish(&mut self, job: Running, r: sys::Reaped) {
        let wall = job.started.elapsed();
        let ended = sys::decode(r.status);
        // Leftovers of the job (its background children) die with it: nothing outlives its job.
        for &pg in &job.pgids {
            let _ = sys::kill(-pg, libc::SIGKILL);
        }
        let (peak, oom_kills) = match (&job.slot, self.cgroups.as_ref()) {
            (Some(slot), Some(cg)) => {
                let f = cg.finish(slot);
                (
                    f.peak
                        .or((job.sampled_peak > 0).then_some(job.sampled_peak)),
                    f.oom_kills,
                )
            }
            // The job's own maximum RSS (and that of descendants it waited for) from wait4
            // catches short peaks between samples.
            _ => (Some(job.sampled_peak.max(r.maxrss_bytes)), None),
        };
        if let Some(g) = self.guard.as_mut() {
            for &pg in &job.pgids {
                g.del_pgid(pg);
            }
        }
        if let Some(slot) = job.slot {
            self.release_slot(slot);
        }
        let capped = self.cfg.job_mem_max.is_some() && self.cgroups.is_some();
        let oom = match oom_kills {
            Some(n) => n > 0,
            None => capped,
        };
        let oom_kills = oom_kills.unwrap_or(0);
        let outcome = if let Some(error) = job.error {
            Outcome::FailedToSpawn { error }
        } else {
            match ended {
                sys::Ended::Code(0) => Outcome::Succeeded,
                _ if job.sent.is_some() => Outcome::Stopped {
                    signal: job.sent.unwrap_or(libc::SIGTERM),
                },
                // A shell reports its child's OOM kill as exit code 128 + 9.
                sys::Ended::Signal(libc::SIGKILL) | sys::Ended::Code(137) if oom => {
                    Outcome::OomKilled
                }
                sys::Ended::Code(code) => Outcome::Failed { code },
                sys::Ended::Signal(signal) => Outcome::Signaled { signal },
            }
        };
        let spawned = !matches!(outcome, Outcome::FailedToSpawn { .. });
        self.pending.push_back(ExecEvent::Exited(JobExit {
            job: job.job,
            attempt: job.attempt,
            outcome,
            wall,
            peak_bytes: peak.filter(|_| spawned),
            accounting: self.accounting,
            oom_kills,
            cpu: spawned.then_some(r.cpu),
        }));
    }

    /// One /proc walk for all jobs: update current and sampled peaks, and keep each job's set of
    /// process groups (its own plus any its descendants created) current with the guard.
    /// Groups that emptied are dropped at once, so a group id reused later by an unrelated
    /// process is never killed.
    fn sample_proc(&mut self) {
        self.last_sample = Some(Instant::now());
        let roots: Vec<(usize, i32)> = self.jobs.iter().map(|j| (j.job, j.pid)).collect();
        let procs = sample::scan();
        let trees = self.attribution.trees(&procs, &roots, self.page);
        let own = sys::own_pgid();
        for (job, tree) in self.jobs.iter_mut().zip(trees) {
            if tree.pids.is_empty() || job.pid == 0 {
                continue; // exited (reaped next turn), or its pid not reported yet
            }
            job.current = tree.rss_bytes;
            job.sampled_peak = job.sampled_peak.max(tree.rss_bytes);
            let mut now = vec![job.pid];
            // A descendant may join any group of our session, even memsweep's: never that one.
            now.extend(
                tree.pgids
                    .into_iter()
                    .filter(|&pg| pg > 1 && pg != own && pg != job.pid),
            );
            if let Some(g) = self.guard.as_mut() {
                for &pg in now.iter().filter(|pg| !job.pgids.contains(pg)) {
                    g.add_pgid(pg);
                }
                for &pg in job.pgids.iter().filter(|pg| !now.contains(pg)) {
                    g.del_pgid(pg);
                }
            }
            job.pgids = now;
        }
    }

    /// Current and peak memory of every running job.
    pub fn usage(&mut self) -> Vec<JobUsage> {
        match &self.cgroups {
            None => self.sample_proc(),
            Some(cg) => {
                for job in &mut self.jobs {
                    if let Some(slot) = &job.slot {
                        let (cur, peak) = cg.usage(slot);
                        job.current = cur.unwrap_or(0);
                        job.sampled_peak = job.sampled_peak.max(peak.unwrap_or(job.current));
                    }
                }
            }
        }
        self.jobs
            .iter()
            .map(|j| JobUsage {
                job: j.job,
                current_bytes: j.current,
                peak_bytes: j.sampled_peak,
            })
            .collect()
    }

    fn find(&mut self, job: usize) -> anyhow::Result<&mut Running> {
        self.settle(job);
        match self.jobs.iter_mut().find(|j| j.job == job) {
            Some(r) => Ok(r),
            None => bail!("job {job} is not running"),
        }
    }

    /// SIGSTOP the job's process group.
    pub fn pause(&mut self, job: usize) -> anyhow::Result<()> {
        let r = self.find(job)?;
        group_kill(r.pid, libc::SIGSTOP)?;
        r.paused = true;
        Ok(())
    }

    /// SIGCONT the job's process group.
    pub fn resume(&mut self, job: usize) -> anyhow::Result<()> {
        let r = self.find(job)?;
        group_kill(r.pid, libc::SIGCONT)?;
        r.paused = false;
        Ok(())
    }

    /// Send `signal` to the job's process group (resuming it first if paused); the job's
    /// outcome will be `Stopped { signal }` (or `Succeeded` if it still exits with code 0).
    pub fn signal(&mut self, job: usize, signal: i32) -> anyhow::Result<()> {
        let r = self.find(job)?;
        r.sent = Some(signal);
        group_kill(r.pid, signal)?;
        if r.paused {
            // The signal is queued first so the job acts on it as soon as it runs again.
            group_kill(r.pid, libc::SIGCONT)?;
            r.paused = false;
        }
        Ok(())
    }

    /// Number of running (incl. paused) jobs.
    pub fn running(&self) -> usize {
        self.jobs.len()
    }

    /// The pid (= process group id) of a running job.
    pub fn pid(&mut self, job: usize) -> Option<u32> {
        self.settle(job);
        self.jobs
            .iter()
            .find(|j| j.job == job)
            .map(|j| j.pid as u32)
    }

    /// Whether a running job is paused.
    pub fn is_paused(&self, job: usize) -> bool {
        self.jobs.iter().any(|j| j.job == job && j.paused)
    }
}

fn group_kill(pgid: i32, sig: i32) -> anyhow::Result<()> {
    match sys::kill(-pgid, sig) {
        Ok(()) => Ok(()),
        // Already gone: its exit is about to be reaped.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(e) => bail!("cannot send signal {sig} to job process group {pgid}: {e}"),
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Every job's pid, first: the syncs asked for open their gates (or drop them), and a
        // job held at a gate never opened does not run.
        self.syncer.finish();
        self.take_reports(true);
        if self.cgroups.is_none() {
            // Descendants that left the job's groups since the last sample are still in its
            // tree or carry its marker; orphans adopted without a marker are children of ours.
            let procs = sample::scan();
            let roots: Vec<(usize, i32)> = self.jobs.iter().map(|j| (j.job, j.pid)).collect();
            let marked: Vec<(usize, i32)> = self
                .attribution
                .marked(&procs)
                .into_iter()
                .map(|(pid, job)| (job, pid))
                .collect();
            let me = std::process::id() as i32;
            let guard = self.guard.as_ref().map_or(0, |g| g.pid());
            let adopted: Vec<(usize, i32)> = procs
                .iter()
                .filter(|p| p.ppid == me && p.pid != guard)
                .map(|p| (usize::MAX, p.pid))
                .collect();
            let all: Vec<(usize, i32)> = roots.into_iter().chain(marked).chain(adopted).collect();
            for tree in self.attribution.trees(&procs, &all, self.page) {
                for pid in tree.pids {
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
            }
        }
        for j in &self.jobs {
            for &pg in &j.pgids {
                let _ = sys::kill(-pg, libc::SIGKILL);
            }
        }
        if let Some(cg) = self.cgroups.as_mut() {
            for j in &mut self.jobs {
                if let Some(s) = &j.slot {
                    cgroup::kill_all(&s.dir);
                }
            }
            for j in &self.jobs {
                sys::wait_blocking(j.pid);
            }
            for j in &mut self.jobs {
                if let Some(s) = j.slot.take() {
                    let _ = cgroup::remove_tree(&s.dir);
                }
            }
            cg.teardown();
        } else {
            for j in &self.jobs {
                sys::wait_blocking(j.pid);
            }
        }
        self.jobs.clear();
        // Reap orphans killed above that we adopted.
        while sys::try_wait(-1)
            .is_some_and(|r| self.guard.as_ref().is_none_or(|g| g.pid() != r.pid))
        {}
        if let Some(mut g) = self.guard.take() {
            g.quit();
        }
    }
}
