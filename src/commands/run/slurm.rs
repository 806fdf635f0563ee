//! `memsweep run --backend slurm`: the loop that submits a sweep's jobs as Slurm arrays, each
//! job asking for its learned peak plus a margin as `--mem` (`slurm::policy`), polls `squeue`,
//! reads what the wrapper recorded on the node, resubmits OUT_OF_MEMORY (larger) and lost jobs
//! (TIMEOUT, PREEMPTED, NODE_FAIL), and keeps the same journal, summary and history as a local
//! run. Slurm does the scheduling; memsweep only sizes, watches and records.
//!
//! Jobs outlive this process: after a kill -9, `--resume DIR` re-attaches to the attempts the
//! journal shows submitted and not ended, and adopts any job of the sweep that `squeue` shows but
//! the journal missed (submitted just before the kill), through the batch list named in its
//! `--comment`. Ctrl-C or SIGTERM cancels every job of the sweep (`scancel --name`), waits until
//! the controller shows none running, and exits 130.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::exit::Exit;
use crate::history::Record;
use crate::journal::{Event, JobStatus, SummaryContext, SweepDir};
use crate::output::progress::{Progress, State};
use crate::output::report::{self, Style};
use crate::size::human;
use crate::slurm::policy::{self, Basis, Limits, Verdict};
use crate::slurm::{self, Batch, Cluster, SLURM_DIR};
use crate::sweep::SweepPlan;

use super::{Prior, Setup};

/// How often `squeue` is asked (one call covers the whole sweep).
const POLL: Duration = Duration::from_millis(500);
/// A job the controller no longer lists, with no result, counts as lost only after this long
/// since its submission (a controller that restarts may briefly list nothing).
const LOST_AFTER: Duration = Duration::from_secs(30);
/// After a job ends COMPLETED or FAILED, how long to wait for the wrapper's record to become
/// visible (a shared filesystem may show it late).
const RESULT_GRACE: Duration = Duration::from_secs(10);
/// After Ctrl-C, how long to wait for the controller to show the cancelled jobs gone.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

use crate::journal::epoch_now as epoch;

/// A submitted attempt this run watches.
struct Active {
    job: usize,
    attempt: u32,
    slurm_id: String,
    mem: u64,
    since: Instant,
    /// When the controller first showed it ended (or stopped listing it).
    ended_at: Option<Instant>,
    probe: bool,
}

pub struct SlurmRun {
    plan: SweepPlan,
    setup: Setup,
    cluster: Cluster,
    dir: SweepDir,
    /// The sweep directory, absolute (scripts and the wrapper use it on other nodes).
    abs: PathBuf,
    name: String,
    exe: PathBuf,
    limits: Limits,
    node_mem: u64,
    throttle: Option<usize>,
    progress: Progress,
    resumed: bool,
    /// Jobs to submit, in order.
    waiting: Vec<usize>,
    active: Vec<Active>,
    /// The next request of a job after OUT_OF_MEMORY (or the one to repeat after a lost run).
    raised: HashMap<usize, u64>,
    oom_retries: Vec<u32>,
    lost_retries: Vec<u32>,
    /// Largest peak of a job of this sweep that ended here (sizes jobs nothing else is known of).
    siblings_max: u64,
    next_seq: usize,
    ended_here: usize,
    oom_ends: u64,
    history_batch: Vec<Record>,
    interrupted: Arc<AtomicBool>,
    t0: Instant,
}

impl SlurmRun {
    pub fn new(
        plan: SweepPlan,
        mut setup: Setup,
        cluster: Cluster,
        dir: SweepDir,
        prior: Option<Prior>,
    ) -> anyhow::Result<SlurmRun> {
        let resumed = prior.is_some();
        let node_mem = cluster.node_memory()?;
        let limits = Limits::new(node_mem, setup.job_mem_max);
        let abs = std::path::absolute(dir.root()).context("resolving the sweep directory")?;
        let exe = std::env::current_exe().context("finding the memsweep binary")?;
        let n = plan.jobs.len();
        let mut raised = HashMap::new();
        let mut open = vec![None; n];
        if let Some(p) = prior {
            for (j, last) in p.last_mem.iter().enumerate() {
                if let Some((mem, true)) = last
                    && let Some(next) = policy::after_oom(*mem, *mem, limits)
                {
                    raised.insert(j, next);
                }
            }
            open = p.open;
        }
        let queue = setup.sched.take_queue();
        let waiting: Vec<usize> = queue.into_iter().filter(|&j| open[j].is_none()).collect();
        let interrupted = Arc::new(AtomicBool::new(false));
        for sig in [libc::SIGINT, libc::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&interrupted))
                .context("installing the signal handler")?;
        }
        let next_seq = next_seq(&abs.join(SLURM_DIR));
        let mut run = SlurmRun {
            name: slurm::job_name(&abs),
            throttle: plan.config.jobs.filter(|&j| j > 0),
            progress: Progress::new(plan.config.json),
            resumed,
            oom_retries: vec![0; n],
            lost_retries: vec![0; n],
            plan,
            setup,
            cluster,
            dir,
            abs,
            exe,
            limits,
            node_mem,
            waiting,
            active: Vec::new(),
            raised,
            siblings_max: 0,
            next_seq,
            ended_here: 0,
            oom_ends: 0,
            history_batch: Vec::new(),
            interrupted,
            t0: Instant::now(),
        };
        for (job, o) in open.into_iter().enumerate() {
            if let Some((attempt, slurm_id, mem)) = o {
                run.active.push(Active {
                    job,
                    attempt,
                    slurm_id,
                    mem,
                    since: Instant::now(),
                    ended_at: None,
                    probe: false,
                });
            }
        }
        Ok(run)
    }

    fn state(&self) -> State {
        State {
            total: self.plan.jobs.len(),
            done: self.setup.done_before + self.ended_here,
            running: self.active.len(),
            paused: 0,
            queued: self.waiting.len(),
            mem_used_bytes: self.active.iter().map(|a| a.mem).sum(),
            budget_bytes: self.limits.cap,
        }
    }

    fn emit(&mut self, event: Event) -> anyhow::Result<()> {
        self.dir.record(&event)?;
        let state = self.state();
        self.progress.event(&event, &state);
        Ok(())
    }

    pub fn run(mut self) -> anyhow::Result<Exit> {
        let resumed = self.resumed;
        self.emit(Event::SweepStart {
            schema_version: crate::journal::SCHEMA_VERSION,
            downgrades: Vec::new(),
            t: epoch(),
            out: self.dir.root().display().to_string(),
            jobs: self.plan.jobs.len(),
            limit_bytes: self.node_mem,
            budget_bytes: self.limits.cap,
            reserve_bytes: 0,
            parallel_cap: self.throttle,
            accounting: slurm::ACCOUNTING.to_string(),
            resumed,
        })?;
        self.dir.sync()?;
        self.adopt()?;
        let res = self.main_loop();
        if res.is_err() || self.interrupted.load(Ordering::SeqCst) {
            self.cancel_all();
        }
        let code = self.finish();
        res.and(code)
    }

    fn main_loop(&mut self) -> anyhow::Result<()> {
        let mut failures = 0u32;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.submit_ready()?;
            self.dir.sync()?;
            let state = self.state();
            self.progress.tick(&state);
            if self.active.is_empty() && self.waiting.is_empty() {
                return Ok(());
            }
            let wake = Instant::now() + POLL;
            while Instant::now() < wake && !self.interrupted.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            match self.poll() {
                Ok(()) => failures = 0,
                Err(e) => {
                    // The controller may be restarting: keep trying for a while.
                    failures += 1;
                    if failures >= 120 {
                        return Err(e.context("squeue failed for a minute"));
                    }
                    if failures == 1 {
                        crate::errln!("memsweep: warning: {e:#}; retrying");
                    }
                }
            }
            self.dir.sync()?;
        }
    }

    /// Jobs of this sweep the controller lists but no attempt here watches: submitted by a
    /// runner killed before it journaled them. Their batch list (named by `--comment`) says
    /// which job and attempt they are.
    fn adopt(&mut self) -> anyhow::Result<()> {
        if self.next_seq == 0 {
            return Ok(());
        }
        let listed = self.cluster.jobs(&self.name)?;
        let mut lists: HashMap<String, Vec<(usize, u32)>> = HashMap::new();
        for (id, q) in listed {
            if policy::is_terminal(&q.state) || self.active.iter().any(|a| a.slurm_id == id) {
                continue;
            }
            let Some(seq) = q.comment.strip_prefix("memsweep-batch-") else {
                continue;
            };
            let Some(index) = id
                .split_once('_')
                .and_then(|(_, i)| i.parse::<usize>().ok())
            else {
                continue;
            };
            let list = lists.entry(seq.to_string()).or_insert_with(|| {
                std::fs::read_to_string(self.abs.join(SLURM_DIR).join(format!("batch-{seq}.jobs")))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(slurm::parse_batch_line)
                    .collect()
            });
            let Some(&(job, attempt)) = list.get(index) else {
                continue;
            };
            if job >= self.plan.jobs.len() || self.active.iter().any(|a| a.job == job) {
                continue;
            }
            self.waiting.retain(|&j| j != job);
            let mem = q.mem_bytes.unwrap_or(0);
            self.setup.attempts[job] = self.setup.attempts[job].max(attempt);
            self.record_submitted(job, attempt, &id, mem, false)?;
        }
        Ok(())
    }

    /// The request of each waiting job, or None while it waits for the probes.
    fn requests(&mut self) -> Vec<(usize, Option<(u64, Basis)>)> {
        let probing = self.active.iter().any(|a| a.probe);
        let waiting = self.waiting.clone();
        waiting
            .into_iter()
            .map(|j| {
                let r = match self.raised.get(&j) {
                    Some(&m) => Some((m, Basis::Raised)),
                    None => {
                        let est = self.setup.sched.estimate(j);
                        policy::request(est, self.siblings_max, probing, self.limits)
                    }
                };
                (j, r)
            })
            .collect()
    }

    /// Submit every waiting job whose request is known, grouped into arrays by request; when
    /// nothing is known of some and no probe runs, submit the probes.
    fn submit_ready(&mut self) -> anyhow::Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let reqs = self.requests();
        let mut ready = Vec::new();
        let mut hold = Vec::new();
        for (j, r) in reqs {
            match r {
                Some((mem, _)) => ready.push((j, mem)),
                None => hold.push(j),
            }
        }
        let probing = self.active.iter().any(|a| a.probe);
        let mut probes = Vec::new();
        if !hold.is_empty() && !probing {
            probes = policy::probes(&hold);
            hold.retain(|j| !probes.contains(j));
        }
        self.waiting = hold;
        let mut plan = Vec::new();
        for (j, mem) in ready {
            plan.push((j, self.next_attempt(j), mem));
        }
        for &j in &probes {
            plan.push((j, self.next_attempt(j), self.limits.probe));
        }
        for (mem, jobs) in policy::arrays(&plan) {
            let batch = Batch {
                seq: self.next_seq,
                mem_bytes: mem,
                jobs,
            };
            self.next_seq += 1;
            self.submit(&batch, &probes)?;
        }
        Ok(())
    }

    fn next_attempt(&mut self, job: usize) -> u32 {
        self.setup.attempts[job] += 1;
        self.setup.attempts[job]
    }

    fn submit(&mut self, batch: &Batch, probes: &[usize]) -> anyhow::Result<()> {
        let sdir = self.abs.join(SLURM_DIR);
        std::fs::create_dir_all(&sdir).with_context(|| format!("creating {}", sdir.display()))?;
        for &(job, _) in &batch.jobs {
            let display = self.plan.jobs.at(job).display();
            self.dir.make_job_dir(job, &display)?;
        }
        std::fs::write(batch.list_path(&self.abs), batch.list())?;
        let script = batch.script(
            &self.abs,
            &self.exe,
            &self.name,
            self.throttle,
            &self.plan.config.slurm_args,
        );
        std::fs::write(batch.script_path(&self.abs), script)?;
        let array = self
            .cluster
            .submit(&batch.script_path(&self.abs))
            .map_err(|e| {
                crate::exit::usage(format!(
                    "submitting {}: {e:#}\n  (check --slurm-arg values; the script is kept there)",
                    batch.script_path(&self.abs).display()
                ))
            })?;
        for (i, &(job, attempt)) in batch.jobs.iter().enumerate() {
            let id = format!("{array}_{i}");
            self.record_submitted(job, attempt, &id, batch.mem_bytes, probes.contains(&job))?;
        }
        Ok(())
    }

    fn record_submitted(
        &mut self,
        job: usize,
        attempt: u32,
        id: &str,
        mem: u64,
        probe: bool,
    ) -> anyhow::Result<()> {
        self.active.push(Active {
            job,
            attempt,
            slurm_id: id.to_string(),
            mem,
            since: Instant::now(),
            ended_at: None,
            probe,
        });
        let command = self.plan.jobs.at(job).display();
        self.emit(Event::JobStart {
            t: epoch(),
            job,
            attempt,
            command,
            estimate_bytes: (mem > 0).then_some(mem),
            estimate_source: None,
            slurm_id: Some(id.to_string()),
        })
    }

    /// Ask the controller about every job of the sweep; handle those that ended.
    fn poll(&mut self) -> anyhow::Result<()> {
        if self.active.is_empty() {
            return Ok(());
        }
        let listed = self.cluster.jobs(&self.name)?;
        let unlisted: Vec<String> = self
            .active
            .iter()
            .filter(|a| !listed.contains_key(&a.slurm_id))
            .map(|a| a.slurm_id.clone())
            .collect();
        let acct = if unlisted.is_empty() {
            None
        } else {
            self.cluster.sacct(&unlisted)
        };
        let mut done = Vec::new();
        for (i, a) in self.active.iter_mut().enumerate() {
            let jdir = self.abs.join(a.job.to_string());
            let result = slurm::read_result(&jdir, a.attempt);
            let state = match listed.get(&a.slurm_id) {
                Some(q) => q.state.clone(),
                None => match acct.as_ref().and_then(|m| m.get(&a.slurm_id)) {
                    Some(s) => s.clone(),
                    // Gone from the controller: the record decides; without one, lost.
                    None => match &result {
                        Some(r) if r.exit_code == Some(0) => "COMPLETED".into(),
                        Some(_) => "FAILED".into(),
                        None if a.since.elapsed() >= LOST_AFTER => "NODE_FAIL".into(),
                        None => continue,
                    },
                },
            };
            if !policy::is_terminal(&state) {
                continue;
            }
            let ended_at = *a.ended_at.get_or_insert_with(Instant::now);
            if result.is_none()
                && matches!(state.as_str(), "COMPLETED" | "FAILED")
                && ended_at.elapsed() < RESULT_GRACE
            {
                continue;
            }
            done.push((i, state, result));
        }
        for (i, state, result) in done.into_iter().rev() {
            let a = self.active.remove(i);
            self.ended(a, &state, result)?;
        }
        Ok(())
    }

    fn ended(
        &mut self,
        a: Active,
        state: &str,
        result: Option<slurm::JobResult>,
    ) -> anyhow::Result<()> {
        let peak = result.as_ref().and_then(|r| r.peak_bytes);
        let wall_s = result.as_ref().map_or(0.0, |r| r.wall_s);
        let source = result
            .as_ref()
            .map_or(String::new(), |r| r.peak_source.clone());
        let v = policy::verdict(
            state,
            result.as_ref().map(|r| (r.exit_code, r.signal, r.oom)),
        );
        let job = a.job;
        let requeue = |this: &mut Self, reason: String, next: u64| -> anyhow::Result<()> {
            this.raised.insert(job, next);
            this.waiting.push(job);
            this.emit(Event::JobRequeue {
                t: epoch(),
                job,
                attempt: a.attempt,
                reason,
                usage_bytes: peak.unwrap_or(0),
            })
        };
        let (status, exit_code, signal) = match v {
            Verdict::Oom => {
                self.oom_retries[job] += 1;
                let next = policy::after_oom(a.mem, peak.unwrap_or(a.mem), self.limits);
                match next {
                    Some(next) if self.oom_retries[job] <= self.plan.config.retries => {
                        let reason = format!(
                            "OUT_OF_MEMORY at --mem {} (peak {}); resubmitted with --mem {}",
                            human(a.mem),
                            peak.map_or("?".into(), human),
                            human(next)
                        );
                        return requeue(self, reason, next);
                    }
                    _ => {
                        self.oom_ends += 1;
                        (JobStatus::Oom, None, Some(libc::SIGKILL))
                    }
                }
            }
            Verdict::Lost => {
                self.lost_retries[job] += 1;
                if self.lost_retries[job] <= policy::INFRA_RETRIES {
                    let reason = format!("{state}; resubmitted");
                    return requeue(self, reason, a.mem);
                }
                let status = if state == "TIMEOUT" {
                    JobStatus::Timeout
                } else {
                    JobStatus::Killed
                };
                (status, None, None)
            }
            Verdict::Cancelled => (JobStatus::Killed, None, Some(libc::SIGTERM)),
            Verdict::Succeeded => (JobStatus::Succeeded, Some(0), None),
            Verdict::Failed { code } => {
                if result.is_none() {
                    crate::errln!(
                        "memsweep: job {job} ended {state} without a record from the wrapper; see {}",
                        self.abs
                            .join(SLURM_DIR)
                            .join(format!("slurm-{}.out", a.slurm_id))
                            .display()
                    );
                }
                (JobStatus::Failed, code, None)
            }
            Verdict::Signaled { signal } => (JobStatus::Killed, None, Some(signal)),
        };
        if let Some(p) =
            peak.filter(|_| status == JobStatus::Succeeded || status == JobStatus::Failed)
        {
            self.setup
                .sched
                .learn(job, p, wall_s, status == JobStatus::Succeeded);
            self.siblings_max = self.siblings_max.max(p);
        }
        self.ended_here += 1;
        self.emit(Event::JobEnd {
            t: epoch(),
            job,
            attempt: a.attempt,
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
            cpu_s: None,
        })?;
        // The wrapper records the peak, not a profile over time.
        if status == JobStatus::Succeeded
            && let Some(p) = peak
            && let Some(record) = self.setup.history_record(&self.plan, job, p, wall_s, None)
        {
            self.history_batch.push(record);
        }
        self.write_summary()?;
        Ok(())
    }

    /// Cancel every job of the sweep and wait (bounded) until the controller shows none left.
    fn cancel_all(&mut self) {
        if self.active.is_empty() {
            return;
        }
        crate::errln!(
            "memsweep: cancelling {} Slurm job{} of this sweep ({})",
            self.active.len(),
            if self.active.len() == 1 { "" } else { "s" },
            self.name
        );
        if let Err(e) = self.cluster.cancel(&self.name) {
            crate::errln!(
                "memsweep: warning: {e:#}; cancel them with: scancel --name {}",
                self.name
            );
        }
        let deadline = Instant::now() + CANCEL_WAIT;
        while Instant::now() < deadline {
            match self.cluster.jobs(&self.name) {
                Ok(l) if l.values().all(|q| policy::is_terminal(&q.state)) => break,
                Err(_) => break,
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        for a in std::mem::take(&mut self.active) {
            let jdir = self.abs.join(a.job.to_string());
            let r = slurm::read_result(&jdir, a.attempt);
            let (status, code, signal) = match &r {
                Some(r) if r.exit_code == Some(0) => (JobStatus::Succeeded, Some(0), None),
                _ => (JobStatus::Interrupted, None, Some(libc::SIGTERM)),
            };
            self.ended_here += 1;
            let _ = self.emit(Event::JobEnd {
                t: epoch(),
                job: a.job,
                attempt: a.attempt,
                status,
                exit_code: code,
                signal,
                wall_s: r.as_ref().map_or(0.0, |r| r.wall_s),
                peak_bytes: r.as_ref().and_then(|r| r.peak_bytes),
                peak_source: r.map_or(String::new(), |r| r.peak_source),
                cpu_s: None,
            });
        }
    }

    fn context(&self) -> SummaryContext {
        SummaryContext {
            out: self.dir.root().display().to_string(),
            limit_bytes: self.node_mem,
            budget_bytes: self.limits.cap,
            accounting: slurm::ACCOUNTING.to_string(),
            oom_kills: self.oom_ends,
            // The cluster's cores, not this machine's, bound a Slurm sweep: unknown here.
            cpus: None,
        }
    }

    fn write_summary(&mut self) -> anyhow::Result<()> {
        let ctx = self.context();
        self.dir.write_summary_streamed(&self.plan.jobs, &ctx, 0)
    }

    fn finish(&mut self) -> anyhow::Result<Exit> {
        let interrupted = self.interrupted.load(Ordering::SeqCst);
        // Jobs never submitted (interrupted) end skipped if they had run before.
        for job in std::mem::take(&mut self.waiting) {
            if self.setup.attempts[job] > 0 {
                let attempt = self.setup.attempts[job];
                self.emit(Event::skipped(epoch(), job, attempt))?;
            }
        }
        let (succeeded, failed) = self.dir.counts(&self.plan.jobs);
        let code = if interrupted {
            Exit::Interrupted
        } else if failed > 0 || succeeded < self.plan.jobs.len() {
            Exit::Failed
        } else {
            Exit::Ok
        };
        self.emit(Event::SweepEnd {
            t: epoch(),
            makespan_s: self.t0.elapsed().as_secs_f64(),
            succeeded,
            failed,
            exit_code: code as i32,
            interrupted,
            fail_fast_job: None,
        })?;
        self.dir.sync()?;
        if let Some(h) = &self.setup.history
            && let Err(e) = h.append(&self.history_batch)
        {
            crate::errln!("memsweep: warning: history not saved: {e:#}");
        }
        let ctx = self.context();
        self.dir.write_final_summary(&self.plan.jobs, &ctx, 0)?;
        self.progress.finish();
        let budget = self.limits.cap;
        let summary = self.dir.fold().header(&self.plan.jobs, &ctx);
        let rows = self.dir.fold().rows(&self.plan.jobs);
        let _ = if self.plan.config.json {
            report::write_report_rows(
                &mut std::io::stderr(),
                &summary,
                &rows,
                budget,
                None,
                Style::for_stderr(),
            )
        } else {
            report::write_report_rows(
                &mut std::io::stdout(),
                &summary,
                &rows,
                budget,
                report::stdout_width(),
                Style::for_stdout(),
            )
        };
        Ok(code)
    }
}

/// The next free batch number in `.slurm/` (0 for a new sweep).
fn next_seq(sdir: &Path) -> usize {
    std::fs::read_dir(sdir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("batch-")?
                        .strip_suffix(".jobs")?
                        .parse::<usize>()
                        .ok()
                })
                .map(|s| s + 1)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// `--dry-run --backend slurm`: each job's `--mem` and why, and the sbatch script of each array,
/// as the first submission would send them; nothing is submitted.
pub fn dry_run(plan: &SweepPlan, mut setup: Setup, cluster: &Cluster) -> anyhow::Result<Exit> {
    use std::fmt::Write as _;
    let node_mem = cluster.node_memory()?;
    let limits = Limits::new(node_mem, setup.job_mem_max);
    let queue = setup.sched.take_queue();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} job{} ({} to run) on Slurm; largest node {}, largest --mem {}:",
        plan.jobs.len(),
        if plan.jobs.len() == 1 { "" } else { "s" },
        queue.len(),
        human(node_mem),
        human(limits.cap)
    );
    let mut known = Vec::new();
    let mut hold = Vec::new();
    for &j in &queue {
        match policy::request(setup.sched.estimate(j), 0, false, limits) {
            Some((mem, basis)) => known.push((j, mem, basis)),
            None => hold.push(j),
        }
    }
    let probes = policy::probes(&hold);
    for &j in &queue {
        let (mem, why) = match known.iter().find(|k| k.0 == j) {
            Some(&(_, m, b)) => (format!("{}M", m >> 20), b.as_str().to_string()),
            None if probes.contains(&j) => (
                format!("{}M", limits.probe >> 20),
                Basis::Probe.as_str().to_string(),
            ),
            None => (
                "?".into(),
                format!(
                    "sized from the probes' peaks × {} + 16 MiB once they end",
                    policy::SIBLING_MARGIN
                ),
            ),
        };
        let _ = writeln!(
            o,
            "  {:>4}  --mem {:>7}  {:<40}  {}",
            j,
            mem,
            why,
            plan.jobs.at(j).display()
        );
    }
    let dir = match &plan.config.out {
        Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
        None => PathBuf::from("<sweep dir>"),
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("memsweep"));
    let mut first = Vec::new();
    for &(j, m, _) in &known {
        first.push((j, 1, m));
    }
    for &j in &probes {
        first.push((j, 1, limits.probe));
    }
    for (seq, (mem, jobs)) in policy::arrays(&first).into_iter().enumerate() {
        let b = Batch {
            seq,
            mem_bytes: mem,
            jobs,
        };
        let _ = writeln!(
            o,
            "\n# {} (jobs {}):",
            b.script_path(&dir).display(),
            b.jobs
                .iter()
                .map(|(j, _)| j.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        o.push_str(&b.script(
            &dir,
            &exe,
            &slurm::job_name(&dir),
            plan.config.jobs.filter(|&j| j > 0),
            &plan.config.slurm_args,
        ));
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout(), o.as_bytes());
    Ok(Exit::Ok)
}
