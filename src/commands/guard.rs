//! `memsweep guard -- CMD`: run a command memsweep does not launch the jobs of (xargs -P,
//! Hydra's joblib launcher, a worker pool) and apply memsweep's pressure policy to every process
//! of its tree. The policy is `sched`'s own — budget, projection, pause youngest first, resume
//! oldest first — with each process as a job: `Sched::adopt` decides whether a process that just
//! appeared may run or waits stopped. The effects are in `exec::tree`.
//!
//! Which processes the policy sees: the leaves of the tree (a launcher waiting for its workers,
//! or a shell waiting for its program, holds no growing memory and must never be paused), minus
//! small idle leaves (an idle pool worker, a resource tracker) so they do not count as the one
//! process that must keep running. Since some runner may still be waiting for a paused process
//! in a way no scan can see, nothing changing for [`STALL_S`] while something is paused resumes
//! the oldest paused one. Killing is the last resort (`sched`'s requeue at the critical line):
//! the youngest process holding memory, never the command itself, logged with the reason.
//!
//! Each process is a job of a sweep directory (journal, summary; ids in order of discovery), so
//! `memsweep show` reads it. A process whose exit status went to its own parent ends `exited`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cli::GuardArgs;
use crate::exec::tree::{self, Ended, TreeCgroup};
use crate::exit::usage;
use crate::journal::{Event, JobStatus, SummaryContext, SweepDir};
use crate::probe::{CgroupVersion, Fs, Probe};
use crate::sched::OnPressure;
use crate::sched::{self, Action, Budget, Estimator, Observation, Sched, Usage};
use crate::size::human;
use crate::sweep::{Job, JobCommand, RunConfig, SweepPlan};

const MIB: u64 = 1 << 20;
/// A leaf below this (or below a quarter of the largest process) that has neither grown nor
/// used CPU for [`IDLE_S`] is not a memory user.
const SMALL: u64 = 32 * MIB;
const IDLE_S: f64 = 1.0;
/// Nothing grew, ended, resumed or used CPU for this long while something waits: resume the
/// oldest paused (or start the oldest held) process if it fits below the critical line...
const STALL_S: f64 = 1.0;
/// ...and after this long, regardless (at least one process must run).
const LONG_STALL_S: f64 = 10.0;
/// Peaks below this (shell wrappers, tiny helpers) are not learned as job sizes.
const LEARN_MIN: u64 = 16 * MIB;
/// After the command ends, how long its leftovers get to end before the guard stops watching.
const LINGER_S: f64 = 2.0;

/// The `job_start` of a process (with its command line read now, after its exec) and the
/// events that waited for it; nothing once written.
fn start_events(t_epoch: f64, t: &mut Tracked) -> Vec<Event> {
    if t.started {
        return Vec::new();
    }
    if let Some(c) = tree::cmdline(t.pid) {
        t.command = c;
    }
    t.started = true;
    let mut out = vec![Event::JobStart {
        t: t_epoch + t.seen_at,
        job: t.id,
        attempt: 1,
        command: t.command.clone(),
        estimate_bytes: None,
        estimate_source: None,
        slurm_id: None,
    }];
    out.append(&mut t.pending);
    out
}

/// One process of the command's tree.
struct Tracked {
    id: usize,
    pid: i32,
    ppid: i32,
    seen_at: f64,
    command: String,
    /// Its `job_start` is journaled (delayed until it has exec'd: a process caught between fork
    /// and exec still shows its parent's command line).
    started: bool,
    pending: Vec<Event>,
    in_sched: bool,
    /// The guard stopped it (SIGSTOP) and has not continued it yet.
    stopped: bool,
    killed: bool,
    current: u64,
    /// CPU ticks at the last scan, and when they last went up.
    cpu: u64,
    busy_at: f64,
    peak: u64,
    level: u64,
    grew_at: f64,
    pauses: u32,
}

use crate::journal::epoch_now as epoch;

pub fn run(fs: &Fs, args: &GuardArgs) -> anyhow::Result<u8> {
    let interval = args.sample_interval.unwrap_or(0.1);
    if !(interval.is_finite() && (0.005..=10.0).contains(&interval)) {
        return Err(usage(format!(
            "--sample-interval {interval}: give a number of seconds between 0.005 and 10"
        )));
    }
    let probe = Probe::new(fs.clone())?;
    let status = probe.status()?;
    let (budget, container) = match args.limit {
        Some(l) => (
            Budget::new(l, args.reserve)?,
            Some(Budget::new(status.limit_bytes, None)?),
        ),
        None => (Budget::new(status.limit_bytes, args.reserve)?, None),
    };
    let sched = Sched::new(
        sched::Config {
            budget,
            container,
            cap: None,
            on_pressure: OnPressure::Pause,
            retries: 0,
        },
        Estimator::new(None, Vec::new(), &[]),
        Vec::new(),
        0,
    );
    let mut waiter = tree::Waiter::install()?;
    for n in &waiter.notes {
        crate::errln!("memsweep guard: warning: {n}");
    }
    let layout = probe.layout();
    let cg = match (layout.version, &layout.dir) {
        _ if args.no_cgroups => Err("--no-cgroups".to_string()),
        (Some(CgroupVersion::V1), Some(dir)) => TreeCgroup::create(&fs.path(dir)),
        _ => Err("no v1 memory cgroup here".to_string()),
    };
    let (cg, accounting, note) = match cg {
        Ok(c) => {
            let note = format!("the command's own cgroup {}", c.dir.display());
            (Some(c), "cgroup-v1", note)
        }
        Err(why) => (None, "proc", format!("/proc only: {why}")),
    };
    let display = JobCommand::Argv(args.command.clone()).display();
    let mut plan = SweepPlan {
        schema_version: crate::journal::SCHEMA_VERSION,
        jobs: Default::default(),
        config: run_config(args, interval),
        template: format!("{}{display}", super::show::GUARD_TEMPLATE),
    };
    let mut dir = super::run::create_dir(&plan)?;
    let out = dir.root().display().to_string();
    crate::errln!(
        "memsweep guard: budget {} (limit {}, reserve {}); watching through {note}; journal in {out}",
        human(budget.budget),
        human(budget.limit),
        human(budget.reserve)
    );
    let t_epoch = epoch();
    dir.record(&Event::SweepStart {
        t: t_epoch,
        schema_version: crate::journal::SCHEMA_VERSION,
        downgrades: Vec::new(),
        out: out.clone(),
        jobs: 0,
        limit_bytes: budget.limit,
        budget_bytes: budget.budget,
        reserve_bytes: budget.reserve,
        parallel_cap: None,
        accounting: accounting.into(),
        resumed: false,
    })?;
    dir.sync()?;
    let oom_before = status.oom_kills.unwrap_or(0);
    let procs_file = cg.as_ref().map(|c| c.procs_file());
    let root = match tree::spawn(&args.command, procs_file.as_deref()) {
        Ok(pid) => pid,
        Err(e) => {
            dir.record(&Event::SweepEnd {
                t: epoch(),
                makespan_s: 0.0,
                succeeded: 0,
                failed: 0,
                exit_code: 127,
                interrupted: false,
                fail_fast_job: None,
            })?;
            dir.sync()?;
            return Err(usage(format!(
                "cannot run {:?}: {e}; check the command after `--` and PATH",
                args.command[0]
            )));
        }
    };

    let mut g = Guard {
        sched,
        dir,
        t0: Instant::now(),
        t_epoch,
        root,
        me: std::process::id() as i32,
        procs: HashMap::new(),
        by_id: HashMap::new(),
        jobs: Vec::new(),
        next_id: 0,
        progress: 0.0,
        kills: 0,
        pauses: 0,
        resumes: 0,
    };
    let page = tree::page_size();
    let mut root_end: Option<(Ended, f64)> = None;
    let mut reaped: HashMap<i32, Ended> = HashMap::new();
    let mut interrupts = 0;
    let mut last_sample = f64::NEG_INFINITY;
    let mut peak_ws = 0u64;
    loop {
        let wait = if root_end.is_some() {
            0.05
        } else {
            g.sched.sample_interval(interval)
        };
        for sig in waiter.wait(Duration::from_secs_f64(wait)) {
            interrupts += 1;
            g.sched.stop();
            g.continue_all();
            let sig = if interrupts == 1 { sig } else { libc::SIGKILL };
            let _ = tree::signal(root, sig);
            if interrupts > 1 {
                for t in g.procs.values() {
                    let _ = tree::signal(t.pid, libc::SIGKILL);
                }
            }
        }
        for (pid, e) in waiter.reap() {
            reaped.insert(pid, e);
        }
        let now = g.t0.elapsed().as_secs_f64();
        if root_end.is_none()
            && let Some(&e) = reaped.get(&root)
        {
            root_end = Some((e, now));
            // Nothing may stay stopped once the command has ended.
            g.sched.stop();
            g.continue_all();
        }
        let all = tree::scan(page);
        let members = cg.as_ref().map(|c| c.members()).unwrap_or_default();
        let seen = tree::tree(&all, g.me, &members);
        g.end_vanished(&seen, now, &mut waiter, &mut reaped)?;
        let watching = root_end.is_none() && interrupts == 0;
        g.update(&seen, now, watching)?;
        if let Some((_, ended_at)) = root_end {
            g.continue_all();
            if seen.is_empty() || now - ended_at >= LINGER_S {
                break;
            }
            g.dir.sync()?;
            continue;
        }
        let st = probe.status()?;
        peak_ws = peak_ws.max(st.working_set_bytes);
        let psi = st.pressure.map(|p| p.some_avg10);
        let usage: Vec<Usage> = g
            .procs
            .values()
            .filter(|t| t.in_sched)
            .map(|t| Usage {
                job: t.id,
                current: t.current,
                peak: t.peak,
            })
            .collect();
        g.sched.observe(&Observation {
            now,
            working_set: st.working_set_bytes,
            psi_some_avg10: psi,
            jobs: &usage,
        });
        if watching {
            for a in g.sched.decide() {
                g.apply(a, now)?;
            }
            let stalled = now - g.progress;
            if (g.sched.paused() > 0 || g.sched.queued() > 0)
                && stalled >= STALL_S
                && let Some(a) = g.sched.force_progress(stalled >= LONG_STALL_S)
            {
                g.apply(a, now)?;
            }
        }
        if now - last_sample >= 1.0 {
            last_sample = now;
            let mut running: Vec<(usize, u64)> = g
                .procs
                .values()
                .filter(|t| t.in_sched)
                .map(|t| (t.id, t.current))
                .collect();
            running.sort_unstable();
            g.dir.record(&Event::Sample {
                t: epoch(),
                working_set_bytes: st.working_set_bytes,
                available_bytes: st.available_bytes,
                budget_bytes: budget.budget,
                running,
                psi_some_avg10: psi,
            })?;
        }
        g.dir.sync()?;
    }

    // Whatever is left (a daemon the command started) keeps running, continued, unwatched.
    let now = g.t0.elapsed().as_secs_f64();
    let left: Vec<(i32, u64)> = g.procs.keys().copied().collect();
    for key in left {
        if let Some(t) = g.procs.remove(&key) {
            g.end(t, now, JobStatus::Exited, None, None)?;
        }
    }
    let (ended, _) = root_end.unwrap_or((Ended::Signal(libc::SIGKILL), now));
    let code = match ended {
        Ended::Code(c) => c.clamp(0, 255) as u8,
        Ended::Signal(s) => (128 + s).clamp(0, 255) as u8,
    };
    let oom_after = probe.status().ok().and_then(|s| s.oom_kills).unwrap_or(0);
    let oom_kills = oom_after.saturating_sub(oom_before) + cg.as_ref().map_or(0, |c| c.oom_kills());
    g.jobs.sort_by_key(|j| j.id);
    plan.jobs = std::mem::take(&mut g.jobs).into();
    let (succeeded, failed) = g.dir.counts(&plan.jobs);
    g.dir.record(&Event::SweepEnd {
        t: epoch(),
        makespan_s: epoch() - g.t_epoch,
        succeeded,
        failed,
        exit_code: code as i32,
        interrupted: interrupts > 0,
        fail_fast_job: None,
    })?;
    g.dir.sync()?;
    g.dir.write_plan(&plan)?;
    let ctx = SummaryContext {
        out: out.clone(),
        limit_bytes: budget.limit,
        budget_bytes: budget.budget,
        accounting: accounting.into(),
        oom_kills,
        cpus: status.cpus,
    };
    g.dir.write_summary_streamed(&plan.jobs, &ctx, peak_ws)?;
    drop(cg);
    crate::errln!(
        "memsweep guard: {} processes, {} pauses, {} killed, {} OOM kills; peak working set {} of {}; \
         exit {code}; `memsweep show {out}` for the table",
        plan.jobs.len(),
        g.pauses,
        g.kills,
        oom_kills,
        human(peak_ws),
        human(budget.limit)
    );
    Ok(code)
}

fn run_config(args: &GuardArgs, interval: f64) -> RunConfig {
    RunConfig {
        jobs: Some(0),
        limit: args.limit,
        reserve: args.reserve,
        history: false,
        cgroups: !args.no_cgroups,
        on_pressure: OnPressure::Pause,
        retries: 0,
        out: args.out.clone(),
        sample_interval_s: interval,
        ..RunConfig::default()
    }
}

struct Guard {
    sched: Sched,
    dir: SweepDir,
    t0: Instant,
    t_epoch: f64,
    root: i32,
    me: i32,
    procs: HashMap<(i32, u64), Tracked>,
    by_id: HashMap<usize, (i32, u64)>,
    jobs: Vec<Job>,
    next_id: usize,
    /// When something last grew, ended or was resumed (the stall clock).
    progress: f64,
    kills: u32,
    pauses: u32,
    resumes: u32,
}

/// Whatever ends the guard — the command's end, an error writing the journal, a panic — nothing
/// it stopped stays stopped.
impl Drop for Guard {
    fn drop(&mut self) {
        self.continue_all();
    }
}

impl Guard {
    fn at(&self, now: f64) -> f64 {
        self.t_epoch + now
    }

    /// Journal an event of a process, or keep it until its `job_start` is written.
    fn event(&mut self, id: usize, e: Event) -> anyhow::Result<()> {
        let Some(t) = self.by_id.get(&id).and_then(|k| self.procs.get_mut(k)) else {
            return Ok(());
        };
        if t.started {
            self.dir.record(&e)
        } else {
            t.pending.push(e);
            Ok(())
        }
    }

    fn start_record(&mut self, key: (i32, u64)) -> anyhow::Result<()> {
        let t_epoch = self.t_epoch;
        let Some(t) = self.procs.get_mut(&key) else {
            return Ok(());
        };
        for e in start_events(t_epoch, t) {
            self.dir.record(&e)?;
        }
        Ok(())
    }

    /// Processes gone since the last scan end; their exit status is known when the guard was
    /// their parent (the command, adopted orphans).
    fn end_vanished(
        &mut self,
        seen: &[(tree::Proc, bool)],
        now: f64,
        waiter: &mut tree::Waiter,
        reaped: &mut HashMap<i32, Ended>,
    ) -> anyhow::Result<()> {
        let alive: std::collections::HashSet<(i32, u64)> =
            seen.iter().map(|(p, _)| (p.pid, p.start)).collect();
        let mut gone: Vec<(i32, u64)> = self
            .procs
            .keys()
            .filter(|k| !alive.contains(k))
            .copied()
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        gone.sort_by_key(|k| self.procs[k].id);
        // A child of ours that just became a zombie is reapable now.
        for (pid, e) in waiter.reap() {
            reaped.insert(pid, e);
        }
        for key in gone {
            let Some(t) = self.procs.remove(&key) else {
                continue;
            };
            let ended = if t.ppid == self.me || t.pid == self.root {
                reaped.get(&t.pid).copied()
            } else {
                None
            };
            let (status, code, signal) = match (t.killed, ended) {
                (true, _) => (JobStatus::Killed, None, Some(libc::SIGKILL)),
                (false, Some(Ended::Code(0))) => (JobStatus::Succeeded, Some(0), None),
                (false, Some(Ended::Code(c))) => (JobStatus::Failed, Some(c), None),
                (false, Some(Ended::Signal(s))) => (JobStatus::Killed, None, Some(s)),
                (false, None) => (JobStatus::Exited, None, None),
            };
            self.progress = now;
            self.end(t, now, status, code, signal)?;
        }
        Ok(())
    }

    fn end(
        &mut self,
        t: Tracked,
        now: f64,
        status: JobStatus,
        exit_code: Option<i32>,
        signal: Option<i32>,
    ) -> anyhow::Result<()> {
        if t.in_sched {
            if t.peak >= LEARN_MIN && self.sched.is_running(t.id) {
                self.sched.exited(t.id, Some(t.peak), t.killed);
            } else {
                self.sched.abandon(t.id);
            }
        }
        let mut t = t;
        for e in start_events(self.t_epoch, &mut t) {
            self.dir.record(&e)?;
        }
        self.by_id.remove(&t.id);
        let (id, seen_at, peak) = (t.id, t.seen_at, t.peak);
        self.dir.record(&Event::JobEnd {
            t: self.at(now),
            job: id,
            attempt: 1,
            status,
            exit_code,
            signal,
            wall_s: (now - seen_at).max(0.0),
            peak_bytes: Some(peak),
            peak_source: "proc".into(),
            cpu_s: None,
        })?;
        self.jobs
            .push(Job::new(id, JobCommand::Shell(t.command), Vec::new(), None));
        Ok(())
    }

    /// New processes are adopted (and held when memory is tight); known ones are measured and
    /// enter or leave the policy's view as they become or stop being memory users.
    fn update(
        &mut self,
        seen: &[(tree::Proc, bool)],
        now: f64,
        watching: bool,
    ) -> anyhow::Result<()> {
        let mut fresh: Vec<(tree::Proc, bool)> = Vec::new();
        let largest = seen.iter().map(|(p, _)| p.rss_bytes).max().unwrap_or(0);
        for &(p, parent) in seen {
            let key = (p.pid, p.start);
            let Some(t) = self.procs.get_mut(&key) else {
                fresh.push((p, parent));
                continue;
            };
            t.ppid = p.ppid;
            if p.cpu > t.cpu {
                t.busy_at = now;
                if !t.stopped && t.in_sched {
                    // A memory user computing is progress (one that sleeps, or waits for a
                    // paused one, is not).
                    self.progress = now;
                }
            }
            t.cpu = p.cpu;
            t.current = p.rss_bytes;
            t.peak = t.peak.max(p.rss_bytes);
            if p.rss_bytes > t.level + sched::growth_tolerance(t.level) {
                t.level = p.rss_bytes;
                t.grew_at = now;
                if !t.stopped {
                    self.progress = now;
                }
            }
            let (id, stopped, in_sched) = (t.id, t.stopped, t.in_sched);
            // Idle: neither growing nor computing for a while, and small next to the largest
            // (an idle pool worker, not a job holding its memory asleep). RSS 0 is a process
            // exiting (its memory already freed), not an idle one.
            let idle = now - t.seen_at >= IDLE_S
                && now - t.grew_at >= IDLE_S
                && now - t.busy_at >= IDLE_S
                && t.current < SMALL.max(largest / 4)
                && t.current > 0;
            let grew = t.grew_at == now;
            if !t.started && !stopped && now - t.seen_at >= 0.05 && p.state != b'T' {
                self.start_record(key)?;
            }
            if in_sched && !stopped && (parent || idle) {
                self.sched.abandon(id);
                self.set(key, |t| t.in_sched = false);
            } else if !in_sched
                && !parent
                && watching
                && p.pid != self.root
                && (grew || p.rss_bytes >= SMALL)
                && !idle
            {
                self.set(key, |t| t.in_sched = true);
                self.sched.track(id, now);
            }
        }
        // Oldest first, so the first of a burst runs and the later ones wait.
        fresh.sort_by_key(|(p, _)| (p.start, p.pid));
        for (p, parent) in fresh {
            let key = (p.pid, p.start);
            let id = self.next_id;
            self.next_id += 1;
            let command = tree::cmdline(p.pid).unwrap_or_else(|| format!("[pid {}]", p.pid));
            self.procs.insert(
                key,
                Tracked {
                    id,
                    pid: p.pid,
                    ppid: p.ppid,
                    seen_at: now,
                    command,
                    started: false,
                    pending: Vec::new(),
                    in_sched: false,
                    stopped: false,
                    killed: false,
                    current: p.rss_bytes,
                    cpu: p.cpu,
                    busy_at: now,
                    peak: p.rss_bytes,
                    level: p.rss_bytes,
                    grew_at: now,
                    pauses: 0,
                },
            );
            self.by_id.insert(id, key);
            self.progress = now;
            // The command itself is never stopped or killed: it is what must go on.
            if !parent && watching && p.pid != self.root {
                self.adopt(key, now)?;
            }
        }
        Ok(())
    }

    fn set(&mut self, key: (i32, u64), f: impl FnOnce(&mut Tracked)) {
        if let Some(t) = self.procs.get_mut(&key) {
            f(t);
        }
    }

    /// A new process goes through admission like a queued job: it runs if admitted, else it is
    /// stopped at once, before it grows, and waits in the queue. Admission may also start
    /// processes held earlier.
    fn adopt(&mut self, key: (i32, u64), now: f64) -> anyhow::Result<()> {
        let Some(t) = self.procs.get_mut(&key) else {
            return Ok(());
        };
        t.in_sched = true;
        let id = t.id;
        let pid = t.pid;
        let mut admitted = false;
        for a in self.sched.adopt(id, now) {
            match a {
                Action::Start { job, .. } if job == id => admitted = true,
                a => self.apply(a, now)?,
            }
        }
        if !admitted {
            let _ = tree::signal(pid, libc::SIGSTOP);
            self.pauses += 1;
            self.set(key, |t| {
                t.stopped = true;
                t.pauses += 1;
            });
            self.event(
                id,
                Event::JobPause {
                    t: self.at(now),
                    job: id,
                    reason: "memory is tight: held at its start until there is room".into(),
                    usage_bytes: None,
                },
            )?;
        }
        Ok(())
    }

    fn apply(&mut self, a: Action, now: f64) -> anyhow::Result<()> {
        match a {
            Action::Pause { job, reason, usage } => {
                let Some(&key) = self.by_id.get(&job) else {
                    return Ok(());
                };
                let pid = self.procs[&key].pid;
                let _ = tree::signal(pid, libc::SIGSTOP);
                self.pauses += 1;
                self.set(key, |t| {
                    t.stopped = true;
                    t.pauses += 1;
                });
                self.event(
                    job,
                    Event::JobPause {
                        t: self.at(now),
                        job,
                        reason: reason.to_string(),
                        usage_bytes: Some(usage),
                    },
                )?;
            }
            Action::Resume { job } | Action::Start { job, .. } => self.resume(job, now)?,
            Action::Requeue { job, reason, .. } => {
                self.kill_youngest(job, &reason.to_string(), now)?
            }
        }
        Ok(())
    }

    /// Continue a paused or held process.
    fn resume(&mut self, job: usize, now: f64) -> anyhow::Result<()> {
        let Some(&key) = self.by_id.get(&job) else {
            return Ok(());
        };
        let (pid, stopped) = (self.procs[&key].pid, self.procs[&key].stopped);
        if !stopped {
            return Ok(());
        }
        let _ = tree::signal(pid, libc::SIGCONT);
        self.resumes += 1;
        self.progress = now;
        self.set(key, |t| t.stopped = false);
        self.event(
            job,
            Event::JobResume {
                t: self.at(now),
                job,
            },
        )
    }

    /// The last resort, at the critical line: SIGKILL the youngest process holding memory
    /// (`sched` picked `job`; a process that holds next to nothing frees nothing, so the
    /// youngest one that does is taken instead), never the command itself, one at a time.
    fn kill_youngest(&mut self, job: usize, reason: &str, now: f64) -> anyhow::Result<()> {
        let in_flight = self.procs.values().any(|t| t.killed);
        // Holding a real share: not a helper or an idle pool worker (killing one of those frees
        // little and may break the launcher).
        let largest = self.procs.values().map(|t| t.current).max().unwrap_or(0);
        let worth = LEARN_MIN.max(largest / 4);
        let victim = self
            .procs
            .values()
            .filter(|t| t.in_sched && !t.killed && t.pid != self.root && t.current >= worth)
            .max_by_key(|t| (t.id == job, t.id))
            .map(|t| (t.id, t.pid, t.current, t.command.clone()));
        let Some((id, pid, usage_bytes, command)) = victim.filter(|_| !in_flight) else {
            self.sched.cancel_stop(job);
            return Ok(());
        };
        if id != job {
            self.sched.cancel_stop(job);
        }
        let _ = tree::signal(pid, libc::SIGKILL);
        let _ = tree::signal(pid, libc::SIGCONT);
        self.kills += 1;
        if let Some(&key) = self.by_id.get(&id) {
            self.set(key, |t| {
                t.killed = true;
                t.stopped = false;
            });
        }
        crate::errln!(
            "memsweep guard: killed pid {pid} ({command}) holding {}: {reason}",
            human(usage_bytes)
        );
        self.event(
            id,
            Event::JobRequeue {
                t: self.at(now),
                job: id,
                attempt: 1,
                reason: format!("killed by memsweep guard: {reason}"),
                usage_bytes,
            },
        )
    }

    /// SIGCONT everything the guard stopped.
    fn continue_all(&mut self) {
        for t in self.procs.values_mut() {
            if t.stopped {
                let _ = tree::signal(t.pid, libc::SIGCONT);
                t.stopped = false;
            }
        }
    }
}
