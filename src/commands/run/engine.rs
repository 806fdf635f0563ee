//! The engine loop of `memsweep run`: one thread, woken by whatever happens first (a job exits,
//! a sample is due, a signal). Each turn: take in exits → sample (probe + per-job usage) → ask
//! `sched` for decisions → apply them through `exec` → record them in the journal (fsync'd).
//! Decisions stay in `sched`, effects in `exec`; this file only wires them.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::cli::OutputMode;
use crate::exec::{Accounting, ExecEvent, Executor, JobExit, Outcome, SpawnSpec};
use crate::exit::Exit;
use crate::history::Record;
use crate::journal::{Event, JobStatus, Summary, SummaryContext, SweepDir};
use crate::output::live::Live;
use crate::output::progress::{Progress, State};
use crate::output::report::{self, Style};
use crate::probe::{MemStatus, Probe};
use crate::sched::Estimate;
use crate::sched::{Action, Ended, Exited, Observation, Usage};
use crate::size::human;
use crate::sweep::SweepPlan;

use super::Setup;

/// Journal a memory sample at most this often.
const JOURNAL_SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// After an exit, sample again if the last sample is older than this, so freed memory is seen
/// before the next admission.
const RESAMPLE_AFTER_EXIT: Duration = Duration::from_millis(20);
/// Summaries of sweeps up to this many jobs are rewritten after every job end; bigger ones at
/// most once a second (the journal, fsync'd every turn, already holds every end).
const SUMMARY_EVERY_END_MAX_JOBS: usize = 200;
/// The live summary of a big sweep is rewritten at most once a second per this many jobs.
const SUMMARY_JOBS_PER_SECOND: f64 = 5000.0;
/// Rewriting the live summary may take at most 1/this of the time between rewrites.
const SUMMARY_SHARE_INV: u32 = 20;
/// A sample may take at most 1/this of the time between samples.
const MAX_SAMPLE_SHARE_INV: u32 = 20;
/// History records are appended in batches of this many (bounded memory with huge sweeps).
const HISTORY_BATCH: usize = 256;

/// A job running now (or paused), as the engine tracks it.
struct Running {
    job: usize,
    attempt: u32,
    /// Running time before the current stretch (time paused by memsweep does not count
    /// towards `--timeout`).
    ran: Duration,
    /// When the current stretch of running began; None while paused.
    active_since: Option<Instant>,
    /// `--timeout` passed: SIGTERM was sent; SIGKILL follows at this instant (None once sent).
    timed_out: Option<Option<Instant>>,
}

impl Running {
    fn new(job: usize, attempt: u32) -> Running {
        Running {
            job,
            attempt,
            ran: Duration::ZERO,
            active_since: Some(Instant::now()),
            timed_out: None,
        }
    }

    /// Time spent running (not paused) so far.
    fn ran(&self) -> Duration {
        self.ran + self.active_since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

pub struct Engine {
    plan: SweepPlan,
    setup: Setup,
    probe: Probe,
    dir: SweepDir,
    exec: Executor,
    progress: Progress,
    resumed: bool,

    t0: Instant,
    status: MemStatus,
    oom_at_start: Option<u64>,
    /// OOM kills counted in the jobs' own cgroups (read before each is reset or removed).
    job_oom_kills: u64,
    peak_ws: u64,
    running: Vec<Running>,
    ended_here: usize,
    last_sample: Instant,
    /// How long a sample takes (smoothed).
    sample_cost: Duration,
    last_journal_sample: Option<Instant>,
    last_summary: Option<Instant>,
    /// How long the last live summary took to write.
    summary_cost: Duration,
    history_batch: Vec<Record>,
    warned_oversized: bool,
    warned_probe: bool,

    interrupted: Option<i32>,
    kill_at: Option<Instant>,
    killed_all: bool,
    /// `--fail-fast` stopped admissions after this job failed.
    fail_fast_job: Option<usize>,
    /// `--output live`: the running jobs' output files, followed.
    live: Option<Live>,
    /// The latest sample, until journaled.
    unjournaled: Option<Event>,
    /// The sample of the highest working set not journaled yet.
    unjournaled_peak: Option<Event>,
    journaled_peak_ws: u64,
}

use crate::journal::epoch_now as epoch;

/// Every kernel OOM kill of the sweep, from the container's counter (its increase) and the sum
/// of the job cgroups' counters. v1 counts a kill only in the victim's own cgroup, so the two
/// add up (and in Proc mode the jobs have no cgroup of their own). v2's `memory.events` is
/// hierarchical, so the container's counter already includes the jobs' kills, unless the
/// hierarchy is mounted with `memory_localevents`: the larger of the two is the count.
fn oom_kills(accounting: Accounting, container: u64, jobs: u64) -> u64 {
    match accounting {
        Accounting::CgroupV2 => container.max(jobs),
        Accounting::CgroupV1 | Accounting::Proc => container + jobs,
    }
}

fn accounting_str(a: Accounting) -> &'static str {
    match a {
        Accounting::CgroupV1 => "cgroup-v1",
        Accounting::CgroupV2 => "cgroup-v2",
        Accounting::Proc => "proc",
    }
}

impl Engine {
    pub fn new(
        plan: SweepPlan,
        setup: Setup,
        probe: Probe,
        status: MemStatus,
        dir: SweepDir,
        exec: Executor,
        resumed: bool,
    ) -> anyhow::Result<Engine> {
        let progress = Progress::new(plan.config.json);
        let live = (plan.config.output == OutputMode::Live).then(Live::default);
        let now = Instant::now();
        Ok(Engine {
            oom_at_start: status.oom_kills,
            job_oom_kills: 0,
            // From the samples only (the first is taken and journaled at the start), so the
            // peak the summary reports is one the journal, and the plot, hold.
            peak_ws: 0,
            plan,
            setup,
            probe,
            dir,
            exec,
            progress,
            resumed,
            t0: now,
            status,
            running: Vec::new(),
            ended_here: 0,
            last_sample: now,
            sample_cost: Duration::ZERO,
            last_journal_sample: None,
            last_summary: None,
            summary_cost: Duration::ZERO,
            history_batch: Vec::new(),
            warned_oversized: false,
            warned_probe: false,
            interrupted: None,
            kill_at: None,
            killed_all: false,
            fail_fast_job: None,
            live,
            unjournaled: None,
            unjournaled_peak: None,
            journaled_peak_ws: 0,
        })
    }

    fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn state(&self) -> State {
        let paused = self.setup.sched.paused();
        State {
            total: self.plan.jobs.len(),
            done: self.setup.done_before + self.ended_here,
            running: self.running.len().saturating_sub(paused),
            paused,
            queued: self.setup.sched.queued(),
            mem_used_bytes: self.status.working_set_bytes,
            budget_bytes: self.setup.budget.budget,
        }
    }

    /// An error if a journal sync made off the loop failed (the jobs it held did not run);
    /// with `wait`, once every sync asked for is done.
    fn check_durable(&self, wait: bool) -> anyhow::Result<()> {
        match self.exec.durability_error(wait) {
            Some(e) => Err(self.dir.journal_error(anyhow::anyhow!(e))),
            None => Ok(()),
        }
    }

    /// Journal an event and show it.
    fn emit(&mut self, event: Event) -> anyhow::Result<()> {
        self.dir.record(&event)?;
        let state = self.state();
        self.progress.event(&event, &state);
        Ok(())
    }

    pub fn run(mut self) -> anyhow::Result<Exit> {
        match self.main_loop() {
            Ok(()) => self.finish(),
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// An error the loop cannot go on after (the sweep directory became unwritable, the
    /// executor failed): stop every job, record what can be recorded, keep the summary.
    fn abort(&mut self) {
        if !self.running.is_empty() {
            crate::errln!(
                "memsweep: stopping {} running job(s) after an error",
                self.running.len()
            );
        }
        self.kill_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.running.is_empty() && Instant::now() < deadline {
            for ev in self.exec.wait(Duration::from_millis(100)) {
                if let ExecEvent::Exited(end) = ev {
                    let _ = self.on_exit(end);
                }
            }
        }
        self.journal_samples();
        let _ = self.dir.sync();
        let summary = self.summary();
        let _ = self.dir.write_summary(&summary);
        self.flush_history();
        self.progress.finish();
    }

    fn main_loop(&mut self) -> anyhow::Result<()> {
        let accounting = accounting_str(self.exec.accounting()).to_string();
        if !self.plan.config.json {
            let ev = self.exec.events_active();
            let woken = if ev.is_empty() {
                String::new()
            } else {
                format!("; memory events: {}", ev.join(", "))
            };
            crate::errln!("memsweep: {}{woken}", self.exec.accounting_note());
        }
        // What cannot be done here: printed once, whatever the output mode, and journaled.
        let downgrades = self.exec.notes().to_vec();
        for d in &downgrades {
            crate::errln!("memsweep: warning: {d}");
        }
        let b = self.setup.budget;
        let out = self.dir.root().display().to_string();
        self.emit(Event::SweepStart {
            t: epoch(),
            schema_version: crate::journal::SCHEMA_VERSION,
            out,
            jobs: self.plan.jobs.len(),
            limit_bytes: b.limit,
            budget_bytes: b.budget,
            reserve_bytes: b.reserve,
            parallel_cap: self.setup.cap,
            accounting,
            resumed: self.resumed,
            downgrades,
        })?;
        self.dir.sync()?;
        self.observe(true);

        let mut exited = false;
        loop {
            let to_spawn = if self.interrupted.is_none() {
                self.decide_and_record()?
            } else {
                Vec::new()
            };
            // The jobs are started first and held before exec, so their set-up overlaps the
            // fsync, which runs on the executor's syncer thread while this loop goes on. One
            // fsync per turn (or fewer: turns queued behind a sync share the next) covers the
            // ends taken in last turn and the starts decided now: every end is on disk before
            // the next job starts, every start before its job runs (the gate opens after the
            // fsync).
            for spec in to_spawn {
                let job = spec.job;
                if let Some(live) = self.live.as_mut() {
                    live.follow(job, spec.stdout.clone(), spec.stderr.clone());
                }
                // --timeout counts from the spawn, not from the journal's fsync before it.
                if let Some(r) = self.running.iter_mut().find(|r| r.job == job) {
                    r.active_since = Some(Instant::now());
                }
                self.exec
                    .spawn_gated(spec)
                    .map_err(|e| e.context(format!("starting job {job}")))?;
            }
            let wrote = self.dir.write()?;
            self.exec
                .open_gate_when_durable(wrote.then(|| self.dir.journal_file()))?;
            self.check_durable(false)?;
            if exited {
                self.maybe_write_summary(false)?;
            }
            self.show_live(None);
            let state = self.state();
            self.progress.tick(&state);
            if self.running.is_empty() && (self.interrupted.is_some() || self.setup.sched.is_done())
            {
                break;
            }

            // Sampling costs at most ~5% of a core: on a host with thousands of processes a
            // /proc walk is slow, and sampling every 25 ms would cost more than it saves.
            let interval = Duration::from_secs_f64(
                self.setup
                    .sched
                    .sample_interval(self.plan.config.sample_interval_s),
            )
            .max(self.sample_cost * MAX_SAMPLE_SHARE_INV);
            let mut wake = self.last_sample + interval;
            if let Some(k) = self.kill_at.filter(|_| !self.killed_all) {
                wake = wake.min(k);
            }
            if let Some(t) = self.next_timeout() {
                wake = wake.min(t);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            let events = self.exec.wait(timeout);
            exited = false;
            let mut memory_event = false;
            for ev in events {
                match ev {
                    ExecEvent::Exited(end) => {
                        exited = true;
                        self.on_exit(end)?;
                    }
                    ExecEvent::Interrupt { signal } => self.on_interrupt(signal),
                    ExecEvent::Memory => memory_event = true,
                }
            }
            if let Some(k) = self.kill_at
                && !self.killed_all
                && Instant::now() >= k
            {
                self.kill_all();
            }
            self.enforce_timeouts();
            let due = self.last_sample.elapsed() >= interval;
            // A kernel memory event (usage crossed a threshold, PSI) is sampled at once: a
            // burst of hundreds of MiB takes a few ms, less than one sample interval.
            if due || memory_event || (exited && self.last_sample.elapsed() >= RESAMPLE_AFTER_EXIT)
            {
                self.observe(false);
            }
        }
        Ok(())
    }

    /// Read the probe and the jobs' usage, tell the scheduler, journal a sample once a second.
    fn observe(&mut self, force_journal: bool) {
        let began = Instant::now();
        match self.probe.status() {
            Ok(s) => self.status = s,
            Err(e) => {
                if !self.warned_probe {
                    crate::errln!(
                        "memsweep: warning: cannot read memory status ({e:#}); using the last reading"
                    );
                    self.warned_probe = true;
                }
            }
        }
        self.last_sample = Instant::now();
        let usage: Vec<Usage> = self
            .exec
            .usage()
            .into_iter()
            .map(|u| Usage {
                job: u.job,
                current: u.current_bytes,
                peak: u.peak_bytes,
            })
            .collect();
        self.sample_cost = (self.sample_cost * 3 + began.elapsed()) / 4;
        let ws = self.status.working_set_bytes;
        self.exec.rearm(
            self.setup.budget.budget.saturating_sub(ws),
            self.status.usage_bytes,
        );
        self.peak_ws = self.peak_ws.max(ws);
        let psi = self.status.pressure.map(|p| p.some_avg10);
        let now = self.secs();
        self.setup.sched.observe(&Observation {
            now,
            working_set: ws,
            psi_some_avg10: psi,
            jobs: &usage,
        });
        let journal_due = self
            .last_journal_sample
            .is_none_or(|t| t.elapsed() >= JOURNAL_SAMPLE_EVERY);
        let ev = Event::Sample {
            t: epoch(),
            working_set_bytes: ws,
            available_bytes: self.status.available_bytes,
            budget_bytes: self.setup.budget.budget,
            running: usage.iter().map(|u| (u.job, u.current)).collect(),
            psi_some_avg10: psi,
        };
        // The journal keeps a sample a second, plus the sample of each new peak working set
        // (written at the next journal time), so the plot reaches the peak the summary reports.
        // Against the held peak too: a lower sample must not replace a higher one not yet written.
        let held = match &self.unjournaled_peak {
            Some(Event::Sample {
                working_set_bytes, ..
            }) => *working_set_bytes,
            _ => 0,
        };
        if ws > self.journaled_peak_ws.max(held) {
            self.unjournaled_peak = Some(ev.clone());
        }
        self.unjournaled = Some(ev);
        if force_journal || journal_due {
            self.journal_samples();
        }
    }

    /// Journal the held samples: the latest peak not yet journaled, then the latest sample. Also
    /// called before a pause or requeue, so the sample it was decided on is in the journal.
    fn journal_samples(&mut self) {
        self.last_journal_sample = Some(Instant::now());
        let peak = self.unjournaled_peak.take();
        let last = self.unjournaled.take();
        let same = matches!((&peak, &last), (Some(a), Some(b)) if a == b);
        for ev in [peak.filter(|_| !same), last].into_iter().flatten() {
            if let Event::Sample {
                working_set_bytes, ..
            } = &ev
            {
                self.journaled_peak_ws = self.journaled_peak_ws.max(*working_set_bytes);
            }
            if let Err(e) = self.emit(ev) {
                crate::errln!("memsweep: warning: {e:#}");
            }
        }
    }

    /// Ask the scheduler, carry out pauses, resumes and requeues, and journal everything; the
    /// starts are returned to be spawned once the journal is synced.
    fn decide_and_record(&mut self) -> anyhow::Result<Vec<SpawnSpec>> {
        let actions = self.setup.sched.decide();
        if actions
            .iter()
            .any(|a| matches!(a, Action::Pause { .. } | Action::Requeue { .. }))
        {
            // The reason cites what this sample saw: the journal (and the plot) must hold it.
            self.journal_samples();
        }
        let mut to_spawn = Vec::new();
        for a in actions {
            match a {
                Action::Start {
                    job,
                    estimate,
                    oversized,
                } => {
                    if oversized && !self.warned_oversized {
                        self.warned_oversized = true;
                        crate::errln!(
                            "memsweep: job {job} is expected to need {} ({}), more than the budget {}; it runs alone",
                            human(estimate.bytes),
                            estimate.source.as_str(),
                            human(self.setup.budget.budget)
                        );
                    }
                    match self.prepare_start(job, estimate) {
                        Ok(spec) => to_spawn.push(spec),
                        Err(e) => {
                            // The sweep directory is unusable: stop cleanly. Nothing of this
                            // turn was spawned yet.
                            self.setup.sched.abandon(job);
                            for spec in &to_spawn {
                                let j = spec.job;
                                self.running.retain(|r| r.job != j);
                            }
                            return Err(e);
                        }
                    }
                }
                Action::Pause { job, reason, usage } => {
                    if let Err(e) = self.exec.pause(job) {
                        crate::errln!("memsweep: warning: cannot pause job {job}: {e:#}");
                        continue;
                    }
                    if let Some(r) = self.running.iter_mut().find(|r| r.job == job) {
                        r.ran = r.ran();
                        r.active_since = None;
                    }
                    self.emit(Event::JobPause {
                        t: epoch(),
                        job,
                        reason: reason.to_string(),
                        usage_bytes: Some(usage),
                    })?;
                }
                Action::Resume { job } => {
                    if let Err(e) = self.exec.resume(job) {
                        crate::errln!("memsweep: warning: cannot resume job {job}: {e:#}");
                    }
                    if let Some(r) = self.running.iter_mut().find(|r| r.job == job)
                        && r.active_since.is_none()
                    {
                        r.active_since = Some(Instant::now());
                    }
                    self.emit(Event::JobResume { t: epoch(), job })?;
                }
                Action::Requeue { job, reason, usage } => {
                    if let Err(e) = self.exec.signal(job, libc::SIGKILL) {
                        crate::errln!("memsweep: warning: cannot stop job {job}: {e:#}");
                    }
                    let attempt = self.attempt_of(job);
                    self.emit(Event::JobRequeue {
                        t: epoch(),
                        job,
                        attempt,
                        reason: reason.to_string(),
                        usage_bytes: usage,
                    })?;
                }
            }
        }
        Ok(to_spawn)
    }

    fn attempt_of(&self, job: usize) -> u32 {
        self.running
            .iter()
            .find(|r| r.job == job)
            .map_or(0, |r| r.attempt)
    }

    fn prepare_start(&mut self, job: usize, estimate: Estimate) -> anyhow::Result<SpawnSpec> {
        let j = self.plan.jobs.at(job);
        // Created by the job's child process (SpawnSpec::job_dir), off the runner's loop.
        let jdir = self.dir.job_path(job);
        let jdir = std::path::absolute(&jdir).unwrap_or(jdir);
        let command = j.display();
        let sweep_dir =
            std::path::absolute(self.dir.root()).unwrap_or_else(|_| self.dir.root().to_path_buf());
        self.setup.attempts[job] += 1;
        let attempt = self.setup.attempts[job];
        let spec = SpawnSpec {
            job,
            attempt,
            command: j.command(),
            stdout: self.dir.stdout_path(job),
            stderr: self.dir.stderr_path(job),
            env: vec![
                ("MEMSWEEP_JOB_ID".into(), job.to_string()),
                ("MEMSWEEP_JOB_DIR".into(), jdir.display().to_string()),
                ("MEMSWEEP_ATTEMPT".into(), attempt.to_string()),
                ("MEMSWEEP_SWEEP_DIR".into(), sweep_dir.display().to_string()),
            ],
            job_dir: Some((jdir, format!("{command}\n"))),
        };
        self.running.push(Running::new(job, attempt));
        self.emit(Event::JobStart {
            t: epoch(),
            job,
            attempt,
            command,
            estimate_bytes: (estimate.bytes > 0).then_some(estimate.bytes),
            estimate_source: Some(estimate.source.key().to_string()),
            slurm_id: None,
        })?;
        Ok(spec)
    }

    fn on_exit(&mut self, end: JobExit) -> anyhow::Result<()> {
        let JobExit {
            job,
            attempt,
            outcome,
            wall,
            peak_bytes: peak,
            accounting,
            oom_kills,
            cpu,
        } = end;
        // Counted for every attempt, requeued ones too: the job's cgroup is reset or removed
        // after this, and v1 counts a kill nowhere else.
        self.job_oom_kills += oom_kills;
        let timed_out = self
            .running
            .iter()
            .any(|r| r.job == job && r.timed_out.is_some());
        self.running.retain(|r| r.job != job);
        self.show_live(Some(job));
        let stopped = matches!(outcome, Outcome::Stopped { .. });
        let ended = self.setup.sched.ended(
            job,
            Exited {
                peak,
                stopped: stopped && self.interrupted.is_none(),
                succeeded: matches!(outcome, Outcome::Succeeded),
                wall: Some(wall.as_secs_f64()),
            },
        );
        let (status, exit_code, signal) = match (&ended, &outcome) {
            (Ended::Requeued { .. }, _) => {
                if self.fail_fast_job.is_some() {
                    self.skip_queued()?;
                }
                return Ok(());
            }
            (Ended::RequeuedOut, _) => (JobStatus::RequeuedOut, None, Some(libc::SIGKILL)),
            (_, Outcome::Succeeded) => (JobStatus::Succeeded, Some(0), None),
            (_, Outcome::Stopped { signal }) if timed_out => {
                (JobStatus::Timeout, None, Some(*signal))
            }
            (_, Outcome::Stopped { signal }) if self.interrupted.is_some() => {
                (JobStatus::Interrupted, None, Some(*signal))
            }
            (_, Outcome::Failed { code }) => (JobStatus::Failed, Some(*code), None),
            (_, Outcome::Signaled { signal }) => (JobStatus::Killed, None, Some(*signal)),
            (_, Outcome::Stopped { signal }) => (JobStatus::Killed, None, Some(*signal)),
            (_, Outcome::OomKilled) => (JobStatus::Oom, None, Some(libc::SIGKILL)),
            (_, Outcome::FailedToSpawn { error }) => {
                crate::errln!("memsweep: job {job} could not start: {error}");
                (JobStatus::Failed, None, None)
            }
        };
        self.ended_here += 1;
        let wall_s = wall.as_secs_f64();
        let source = accounting_str(accounting).to_string();
        self.emit(Event::JobEnd {
            t: epoch(),
            job,
            attempt,
            status,
            exit_code,
            signal,
            wall_s,
            peak_bytes: peak,
            peak_source: if peak.is_some() {
                source
            } else {
                String::new()
            },
            cpu_s: cpu.map(|c| c.as_secs_f64()),
        })?;
        if status.is_failure() && self.plan.config.fail_fast && self.fail_fast_job.is_none() {
            self.fail_fast(job);
        }
        if status == JobStatus::Succeeded
            && let Some(p) = peak
            && let Some(record) = self.setup.history_record(
                &self.plan,
                job,
                p,
                wall_s,
                self.setup.sched.last_profile(),
            )
        {
            self.history_batch.push(record);
            if self.history_batch.len() >= HISTORY_BATCH {
                self.flush_history();
            }
        }
        Ok(())
    }

    /// Take the jobs still queued out of the scheduler. Requeued jobs among them did not run
    /// out of retries: they end skipped (jobs never started are skipped by the summary).
    fn skip_queued(&mut self) -> anyhow::Result<()> {
        for job in self.setup.sched.take_queue() {
            if self.setup.attempts[job] > 0 {
                let attempt = self.setup.attempts[job];
                self.emit(Event::skipped(epoch(), job, attempt))?;
            }
        }
        Ok(())
    }

    /// `--fail-fast`: the first failure stops admissions; running jobs finish (an interrupt
    /// stops them as usual), and the sweep exits 1.
    fn fail_fast(&mut self, job: usize) {
        self.fail_fast_job = Some(job);
        let queued = self.setup.sched.queued();
        if let Err(e) = self.skip_queued() {
            crate::errln!("memsweep: warning: {e:#}");
        }
        if !self.plan.config.json {
            self.progress.finish();
            let running = self.running.len();
            crate::errln!(
                "memsweep: job {job} failed; --fail-fast: {queued} queued job{} will not start{}",
                if queued == 1 { "" } else { "s" },
                if running > 0 {
                    format!(
                        ", waiting for {running} running (Ctrl-C stops {})",
                        if running == 1 { "it" } else { "them" }
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    /// The earliest instant a running job reaches `--timeout` (or its SIGKILL is due).
    fn next_timeout(&self) -> Option<Instant> {
        let limit = Duration::from_secs_f64(self.plan.config.timeout_s?);
        let now = Instant::now();
        self.running
            .iter()
            .filter_map(|r| match r.timed_out {
                Some(kill) => kill,
                None => r.active_since.map(|_| now + limit.saturating_sub(r.ran())),
            })
            .min()
    }

    /// Stop the jobs that ran past `--timeout`: SIGTERM to the process group, SIGKILL after
    /// `--grace`. They end with status `timeout`.
    fn enforce_timeouts(&mut self) {
        let Some(secs) = self.plan.config.timeout_s else {
            return;
        };
        let limit = Duration::from_secs_f64(secs);
        let grace = Duration::from_secs_f64(self.plan.config.grace_s);
        let now = Instant::now();
        let mut term = Vec::new();
        let mut kill = Vec::new();
        for r in &mut self.running {
            match r.timed_out {
                None if r.ran() >= limit => {
                    r.timed_out = Some(Some(now + grace));
                    term.push(r.job);
                }
                Some(Some(at)) if now >= at => {
                    r.timed_out = Some(None);
                    kill.push(r.job);
                }
                _ => {}
            }
        }
        for job in term {
            if let Err(e) = self.exec.signal(job, libc::SIGTERM) {
                crate::errln!("memsweep: warning: cannot stop job {job} at its --timeout: {e:#}");
            }
        }
        for job in kill {
            let _ = self.exec.signal(job, libc::SIGKILL);
        }
    }

    /// `--output live`: show what the jobs wrote since the last turn (all of a job's output
    /// once it ended, `ended`). To stdout, or to stderr under `--json`.
    fn show_live(&mut self, ended: Option<usize>) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let mut buf = Vec::new();
        let res = match ended {
            Some(job) => live.finish(job, &mut buf),
            None => live.poll(&mut buf),
        };
        if let Err(e) = res {
            crate::errln!("memsweep: warning: live output stopped: {e}");
            self.live = None;
            return;
        }
        if buf.is_empty() {
            return;
        }
        // The status line shares the terminal: take it down first (the next tick redraws it).
        self.progress.finish();
        // Under the one output policy: a closed terminal or pipe never stops the sweep.
        let mut out = if self.plan.config.json {
            crate::output::stdio::stderr()
        } else {
            crate::output::stdio::stdout()
        };
        let _ = out.write_all(&buf);
    }

    fn flush_history(&mut self) {
        if let Some(h) = &self.setup.history
            && !self.history_batch.is_empty()
        {
            if let Err(e) = h.append(&self.history_batch) {
                crate::errln!("memsweep: warning: history not saved: {e:#}");
            }
            self.history_batch.clear();
        }
    }

    /// Ctrl-C / SIGTERM / SIGHUP: forward it (SIGHUP as SIGTERM) to every job's process group, SIGKILL after `--grace`;
    /// a second one kills at once.
    fn on_interrupt(&mut self, signal: i32) {
        if self.interrupted.is_some() {
            if !self.killed_all {
                crate::errln!("memsweep: interrupted again: killing every job now");
                self.kill_all();
            }
            return;
        }
        self.interrupted = Some(signal);
        self.setup.sched.stop();
        let grace = self.plan.config.grace_s;
        if !self.running.is_empty() {
            crate::errln!(
                "memsweep: interrupted: stopping {} job{} (SIGKILL in {grace} s; interrupt again to kill now)",
                self.running.len(),
                if self.running.len() == 1 { "" } else { "s" }
            );
        }
        // The jobs run in their own sessions' groups and never saw the hangup: ask them to stop.
        let forward = if signal == libc::SIGHUP {
            libc::SIGTERM
        } else {
            signal
        };
        let jobs: Vec<usize> = self.running.iter().map(|r| r.job).collect();
        for job in jobs {
            let _ = self.exec.signal(job, forward);
        }
        self.kill_at = Some(Instant::now() + Duration::from_secs_f64(grace));
    }

    fn kill_all(&mut self) {
        self.killed_all = true;
        let jobs: Vec<usize> = self.running.iter().map(|r| r.job).collect();
        for job in jobs {
            let _ = self.exec.signal(job, libc::SIGKILL);
        }
    }

    fn summary(&mut self) -> Summary {
        let ctx = self.summary_context();
        let mut s = self.dir.summary(&self.plan.jobs, &ctx);
        s.peak_working_set_bytes = s.peak_working_set_bytes.max(self.peak_ws);
        s
    }

    fn summary_context(&self) -> SummaryContext {
        let container = match (self.oom_at_start, self.status.oom_kills) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        SummaryContext {
            out: self.dir.root().display().to_string(),
            limit_bytes: self.setup.budget.limit,
            budget_bytes: self.setup.budget.budget,
            accounting: accounting_str(self.exec.accounting()).to_string(),
            oom_kills: oom_kills(self.exec.accounting(), container, self.job_oom_kills),
            cpus: self.status.cpus,
        }
    }

    fn maybe_write_summary(&mut self, force: bool) -> anyhow::Result<()> {
        // A big sweep's summary is megabytes: rewritten at most once a second per
        // SUMMARY_JOBS_PER_SECOND jobs (a 100 000-job summary is ~40 MB, and its writeback
        // stalls the journal's fsyncs behind it), and never more often than keeps its own cost
        // under 1/SUMMARY_SHARE_INV of the time.
        let n = self.plan.jobs.len();
        let wait = (self.summary_cost * SUMMARY_SHARE_INV)
            .max(Duration::from_secs(1))
            .max(Duration::from_secs_f64(n as f64 / SUMMARY_JOBS_PER_SECOND));
        let due = force
            || n <= SUMMARY_EVERY_END_MAX_JOBS
            || self.last_summary.is_none_or(|t| t.elapsed() >= wait);
        if due {
            // Streamed: the live summary of a big sweep never holds every row at once.
            let began = Instant::now();
            let ctx = self.summary_context();
            self.dir
                .write_summary_streamed(&self.plan.jobs, &ctx, self.peak_ws)?;
            self.summary_cost = began.elapsed();
            self.last_summary = Some(Instant::now());
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<Exit> {
        self.check_durable(true)?;
        // Read the OOM counter once more: a kill may have happened since the last sample.
        if let Ok(s) = self.probe.status() {
            self.status = s;
        }
        self.journal_samples();
        self.skip_queued()?;
        // The counts without the rows: a 10 000-job summary is megabytes, built once, below.
        let (succeeded, failed) = self.dir.counts(&self.plan.jobs);
        let code = if self.interrupted.is_some() {
            Exit::Interrupted
        } else if failed > 0 || succeeded < self.plan.jobs.len() {
            Exit::Failed
        } else {
            Exit::Ok
        };
        self.emit(Event::SweepEnd {
            t: epoch(),
            makespan_s: self.secs(),
            succeeded,
            failed,
            exit_code: code as i32,
            interrupted: self.interrupted.is_some(),
            fail_fast_job: self.fail_fast_job,
        })?;
        self.dir.sync()?;
        // The last summary.json, streamed from the fold; then the report, whose rows are made
        // from the fold as they are written (a 100 000-job summary is tens of MB).
        let ctx = self.summary_context();
        self.dir
            .write_final_summary(&self.plan.jobs, &ctx, self.peak_ws)?;
        self.flush_history();
        self.progress.finish();
        let fold = self.dir.fold();
        let mut summary = fold.header(&self.plan.jobs, &ctx);
        summary.peak_working_set_bytes = summary.peak_working_set_bytes.max(self.peak_ws);
        let rows = fold.rows(&self.plan.jobs);
        let budget = self.setup.budget.budget;
        let res = if self.plan.config.json {
            let mut err = crate::output::stdio::stderr();
            report::write_report_rows(&mut err, &summary, &rows, budget, None, Style::for_stderr())
        } else {
            let mut out = crate::output::stdio::stdout();
            report::write_report_rows(
                &mut out,
                &summary,
                &rows,
                budget,
                report::stdout_width(),
                Style::for_stdout(),
            )
        };
        let _ = res;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_add_the_job_cgroups_to_the_container_where_the_kernel_counts_them_apart() {
        // v1: 2 jobs killed in their own cgroups, none in the container's: 2, not 0.
        assert_eq!(oom_kills(Accounting::CgroupV1, 0, 2), 2);
        assert_eq!(oom_kills(Accounting::CgroupV1, 1, 2), 3);
        // v2's container counter is hierarchical: the same kills are not counted twice.
        assert_eq!(oom_kills(Accounting::CgroupV2, 2, 2), 2);
        assert_eq!(oom_kills(Accounting::CgroupV2, 3, 2), 3);
        // ...unless mounted with memory_localevents (container counter local).
        assert_eq!(oom_kills(Accounting::CgroupV2, 0, 2), 2);
        assert_eq!(oom_kills(Accounting::Proc, 4, 0), 4);
    }
}
