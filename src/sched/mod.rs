//! Scheduling policy as pure functions over a snapshot of state: admission (which job may start
//! now), estimates (what a job will need, from this sweep and history), and pressure handling
//! (pause, resume, requeue). No I/O: every rule has a unit test with numbers.
//!
//! The engine feeds [`Sched`] observations (time, the container's working set, PSI, each running
//! job's usage) and exits, and applies the [`Action`]s that [`Sched::decide`] returns. All
//! accounting is in bytes; time is seconds on any monotonic clock the caller picks.
//!
//! The projection behind every rule: `proj = working set + Σ growth(running)`, where a running
//! job's growth is `max(0, expected − current)`. `expected` is its estimate, at least its peak,
//! and at least where its growth rate takes it in [`MOMENTUM_S`]. A job whose estimate was
//! learned from other jobs gives its reservation back once it has plateaued (expected becomes its
//! own peak), so jobs are packed by what they really hold; own-history and `--mem-per-job`
//! estimates are kept for the job's whole life because they already include its late growth.
//!
//! Each [`Sched::decide`] runs, in order: requeue (working set half-way into the reserve, or
//! over the budget and growing with `--on-pressure requeue`: stop the youngest, never the last);
//! pause (projection over budget + slack: pause the youngest jobs growing now until it fits);
//! resume (oldest first, when it fits with a margin); admit — the chain: not interrupted, nothing
//! paused or stopping, under the `-j` cap, PSI below [`PSI_HOLD`], no job just grew past its
//! estimate, then the queue head if `proj + estimate ≤ budget` (and, for a learned estimate,
//! `proj + high quantile ≤ critical`), else an EASY backfill of a smaller job that does not delay
//! the head, else (pause mode) one speculative start at the low quantile once everything has
//! plateaued. With no estimate at all it ramps up as a slow start (each plateaued job vouches for
//! one more start); on template history alone, jobs not yet plateaued may be at most one more
//! than those that plateaued within it, and a job beyond the template's peaks drops it. An empty
//! runner always starts the head, however big (no deadlock).
//!
//! "Working set" above is [`level`]: the container's, or with an explicit `--limit` the larger
//! of the jobs' own sum (what `--limit` bounds) and the container's working set against its own
//! budget ([`Config::container`]); each has its own critical line.

pub mod budget;
pub mod estimate;

use std::collections::VecDeque;

pub use budget::{Budget, default_reserve, parallel_cap};
pub use estimate::{Estimate, Estimator, MIN_ESTIMATE, Source};

use crate::cli::OnPressure;
use crate::size::human;

const MIB: u64 = 1 << 20;

/// A job counts as plateaued when its peak has not grown by more than [`growth_tolerance`]
/// for this long.
pub const PLATEAU_S: f64 = 0.25;
/// Ramp-up with nothing known: another job starts only if the headroom is this many times the
/// largest usage seen.
pub const RAMP_HEADROOM: f64 = 1.5;
/// A job past its estimate gets this much more, as it is probably still growing.
pub const GROWTH_RAISE: f64 = 1.1;
/// A paused job stays paused at least this long (unless nothing else runs), so that memory
/// freed for a moment does not make it flap.
pub const MIN_PAUSE_S: f64 = 0.05;
/// How far ahead a running job's current growth rate is projected.
pub const MOMENTUM_S: f64 = 0.1;
/// A requeued job comes back with at least this much more than the peak it reached.
pub const REQUEUE_RAISE: f64 = 1.2;
/// Hold admissions this long after a job grew past its estimate.
pub const OVER_ESTIMATE_HOLD_S: f64 = 0.3;
/// PSI `some avg10` (percent) at which admission stops while something runs.
pub const PSI_HOLD: f64 = 40.0;
/// How far ahead of the queue head backfill looks for a smaller job that fits.
pub const BACKFILL_WINDOW: usize = 64;
/// Without run times to plan with, the head of the queue lets at most this many smaller jobs
/// pass it; then admission waits for it (no starvation).
pub const MAX_BYPASS: u32 = 4;
/// The working-set fraction of the budget above which the engine samples fast.
pub const FAST_SAMPLE_FRACTION: f64 = 0.5;

/// Growth smaller than this is noise, not growth: max(2% of the level, 2 MiB).
pub fn growth_tolerance(level: u64) -> u64 {
    (level / 50).max(2 * MIB)
}

/// Hysteresis: pause only when the projection exceeds the budget by this much...
pub fn pause_slack(budget: u64) -> u64 {
    (budget / 50).max(16 * MIB)
}

/// ...and resume only when the projection with the resumed job stays this far below it.
pub fn resume_margin(budget: u64) -> u64 {
    (budget / 20).max(32 * MIB)
}

/// The policy's fixed inputs.
#[derive(Debug, Clone)]
pub struct Config {
    /// What memsweep's jobs may hold. With no `--limit` it is checked against the container's
    /// working set (everything in it counts, as the kernel counts it).
    pub budget: Budget,
    /// With `--limit`: the container's own limit (or the host's) with its reserve. `budget` then
    /// bounds the sum of memsweep's jobs, so unrelated processes on a shared machine do not
    /// cause pauses, while this one still bounds the container's working set: both hold, the
    /// tighter binds.
    pub container: Option<Budget>,
    /// At most this many jobs at once (None: memory only).
    pub cap: Option<usize>,
    pub on_pressure: OnPressure,
    /// Requeues a job may have before it ends `requeued-out`.
    pub retries: u32,
}

/// One running job's memory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub job: usize,
    pub current: u64,
    pub peak: u64,
}

/// What the engine saw at one sample.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub now: f64,
    pub working_set: u64,
    pub psi_some_avg10: Option<f64>,
    pub jobs: &'a [Usage],
}

/// A decision for the engine to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start this job. `oversized`: its estimate exceeds the budget, so it runs alone.
    Start {
        job: usize,
        estimate: Estimate,
        oversized: bool,
    },
    /// SIGSTOP the job's process group.
    Pause { job: usize, reason: String },
    /// SIGCONT it.
    Resume { job: usize },
    /// Stop it now (SIGKILL) and run it again later with a larger estimate.
    Requeue {
        job: usize,
        reason: String,
        usage: u64,
    },
}

/// What became of a job that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ran to its end (whatever its exit status).
    Done,
    /// memsweep stopped it under pressure; it is queued again (`attempt` = the requeue count).
    Requeued { requeues: u32 },
    /// memsweep stopped it under pressure and it has no retries left.
    RequeuedOut,
}

#[derive(Debug, Clone)]
struct Run {
    job: usize,
    estimate: Estimate,
    current: u64,
    peak: u64,
    started: f64,
    /// Growth rate at the last sample (bytes/s) and that sample's time (−1: none yet).
    rate: f64,
    sampled_at: f64,
    /// The peak at the last significant growth, and when that was.
    level: u64,
    grew_at: f64,
    paused: bool,
    paused_at: f64,
    /// memsweep is stopping it to requeue; its memory is about to be freed.
    stopping: bool,
    /// Started speculatively at the low quantile: until it plateaus, no other speculation.
    speculative: bool,
}

impl Run {
    /// A job that has just started at `now`, nothing measured yet.
    fn new(job: usize, estimate: Estimate, now: f64) -> Run {
        Run {
            job,
            estimate,
            current: 0,
            peak: 0,
            started: now,
            rate: 0.0,
            sampled_at: -1.0,
            level: 0,
            grew_at: now,
            paused: false,
            paused_at: 0.0,
            stopping: false,
            speculative: false,
        }
    }
}

/// The scheduler's state. Per queued job it keeps 12 bytes (raise + requeues) besides the
/// estimator's 8, so 10 000 queued jobs cost about 200 KB.
#[derive(Debug, Clone)]
pub struct Sched {
    cfg: Config,
    est: Estimator,
    queue: VecDeque<usize>,
    /// Running jobs, oldest first.
    runs: Vec<Run>,
    raised: Vec<u64>,
    requeues: Vec<u32>,
    now: f64,
    /// The level every rule compares with the budget: the container's working set, or with
    /// [`Config::container`] the larger of the jobs' sum and the working set shifted by the
    /// difference of the two budgets.
    working_set: u64,
    /// The container's working set and the jobs' sum as sampled (for the two critical lines).
    container_ws: u64,
    jobs_total: u64,
    psi: Option<f64>,
    largest_seen: u64,
    over_estimate_at: Option<f64>,
    stopped: bool,
    /// The queue head and how many jobs backfill let pass it.
    bypass: (usize, u32),
}

/// The level compared with `budget`. Without a container constraint: the working set. With one
/// (an explicit `--limit`): the jobs' sum must stay within `budget` and the working set within
/// the container's budget, so the level is the larger of the jobs' sum and the working set
/// moved onto the budget's scale (`ws + budget − container budget`, at least 0).
pub fn level(budget: Budget, container: Option<Budget>, working_set: u64, jobs: u64) -> u64 {
    match container {
        None => working_set,
        Some(c) => jobs.max((working_set + budget.budget).saturating_sub(c.budget)),
    }
}

/// Order a queue by history: jobs without history first (in their order, so they are learned
/// early), then the rest by memory × time, largest first — big jobs first, small ones backfill.
pub fn order_by_history(
    jobs: Vec<usize>,
    history: impl Fn(usize) -> Option<(u64, f64)>,
) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = jobs
        .into_iter()
        .map(|j| {
            let k = history(j).map_or(f64::INFINITY, |(peak, wall)| peak as f64 * wall.max(0.001));
            (k, j)
        })
        .collect();
    // Stable: equal keys keep sweep order.
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, j)| j).collect()
}

impl Sched {
    /// `queue`: the jobs to run, in order; `n_jobs`: one more than the largest job id.
    pub fn new(cfg: Config, est: Estimator, queue: Vec<usize>, n_jobs: usize) -> Sched {
        Sched {
            cfg,
            est,
            queue: queue.into(),
            runs: Vec::new(),
            raised: vec![0; n_jobs],
            requeues: vec![0; n_jobs],
            now: 0.0,
            working_set: 0,
            container_ws: 0,
            jobs_total: 0,
            psi: None,
            largest_seen: 0,
            over_estimate_at: None,
            stopped: false,
            bypass: (usize::MAX, 0),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn running(&self) -> usize {
        self.runs.len()
    }

    pub fn paused(&self) -> usize {
        self.runs.iter().filter(|r| r.paused).count()
    }

    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.runs.is_empty()
    }

    /// The jobs never started (after [`Self::stop`]): they end `skipped`.
    pub fn take_queue(&mut self) -> Vec<usize> {
        self.queue.drain(..).collect()
    }

    /// Interrupted: admit and resume nothing more.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// The estimate a queued job would get now.
    pub fn estimate(&mut self, job: usize) -> Estimate {
        let running_max = self.runs.iter().map(|r| r.peak).max().unwrap_or(0);
        let raised = self.raised.get(job).copied().unwrap_or(0);
        self.est.estimate(job, running_max, raised)
    }

    /// How long until the next sample: fast (25 ms) when the working set is past half the
    /// budget, a job is paused, or a job is still growing — growth near the limit is when a late
    /// sample costs an OOM kill, and a plateau seen late is parallelism lost.
    pub fn sample_interval(&self, base: f64) -> f64 {
        let near = self.working_set as f64 >= self.cfg.budget.budget as f64 * FAST_SAMPLE_FRACTION;
        if near || self.runs.iter().any(|r| r.paused || !self.plateaued(r)) {
            base.min(0.025)
        } else {
            base
        }
    }

    /// Take in a sample.
    pub fn observe(&mut self, obs: &Observation) {
        self.now = obs.now;
        self.container_ws = obs.working_set;
        self.jobs_total = obs.jobs.iter().map(|u| u.current).sum();
        self.working_set = level(
            self.cfg.budget,
            self.cfg.container,
            obs.working_set,
            self.jobs_total,
        );
        self.psi = obs.psi_some_avg10;
        for u in obs.jobs {
            let Some(r) = self.runs.iter_mut().find(|r| r.job == u.job) else {
                continue;
            };
            let dt = obs.now - r.sampled_at;
            r.rate = if r.sampled_at >= 0.0 && dt > 0.0 {
                u.current.saturating_sub(r.current) as f64 / dt
            } else {
                0.0
            };
            r.sampled_at = obs.now;
            r.current = u.current;
            r.peak = r.peak.max(u.peak).max(u.current);
            if r.peak > r.level + growth_tolerance(r.level) {
                r.level = r.peak;
                r.grew_at = obs.now;
            }
            self.largest_seen = self.largest_seen.max(r.peak);
            if let Some(th) = self.est.template_high()
                && r.peak > th + growth_tolerance(th).max((th as f64 * (GROWTH_RAISE - 1.0)) as u64)
            {
                // Template history is a prior; a job of this sweep beyond its largest peaks
                // refutes it (the same app with other parameters): learn this sweep instead.
                self.est.drop_template();
            }
            if !r.estimate.source.is_provisional() {
                let est = r.estimate.bytes.max(self.raised[r.job]);
                if r.peak > est {
                    self.raised[r.job] = (r.peak as f64 * GROWTH_RAISE) as u64;
                    self.over_estimate_at = Some(obs.now);
                }
            }
        }
    }

    /// Flat for [`PLATEAU_S`], and running for twice that: a job that has not started growing
    /// yet (still exec'ing, importing) must not pass for one that has finished growing.
    fn plateaued(&self, r: &Run) -> bool {
        self.now - r.grew_at >= PLATEAU_S && self.now - r.started >= 2.0 * PLATEAU_S
    }

    /// What a running job is expected to reach.
    /// What a running job is expected to reach: its estimate (or, for a learned estimate once
    /// plateaued, its own peak), and at least where its current growth rate takes it within
    /// [`MOMENTUM_S`] — a job jumping late is seen a few samples before it gets there.
    fn expected(&self, r: &Run) -> u64 {
        let src = r.estimate.source;
        let base = if src.is_provisional() || (!src.is_own() && self.plateaued(r)) {
            r.peak
        } else if let (Source::JobHistory, Some(p)) = (src, self.est.own_peak(r.job)) {
            // Once admitted, a job is expected to reach its recorded peak (late jumps included),
            // not the margin on top: the margin is for the one job being admitted, so that
            // each running job's 3% does not add up to keep a whole job out. One that does go
            // past its record is raised like any other.
            p.max(r.peak).max(self.raised[r.job])
        } else {
            r.estimate.bytes.max(self.raised[r.job]).max(r.peak)
        };
        // An own estimate is the job's recorded peak, late jumps included: a ramp heading for it
        // is no surprise (and one beyond it raises the estimate anyway).
        if src.is_own() {
            return base;
        }
        base.max(r.current + (r.rate * MOMENTUM_S) as u64)
    }

    fn growth(&self, r: &Run) -> u64 {
        self.expected(r).saturating_sub(r.current)
    }

    /// Working set + expected further growth of the jobs not paused or stopping.
    pub fn projection(&self) -> u64 {
        self.working_set
            + self
                .runs
                .iter()
                .filter(|r| !r.paused && !r.stopping)
                .map(|r| self.growth(r))
                .sum::<u64>()
    }

    /// The decisions for now: requeue, then pause or resume, then admit.
    pub fn decide(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.requeue_if_critical(&mut out);
        let paused_now = self.pause_if_over(&mut out);
        if !paused_now {
            self.resume_if_room(&mut out);
        }
        self.admit(&mut out);
        out
    }

    /// Half-way into the reserve (or, with `--on-pressure requeue`, over the budget and still
    /// growing): stop the youngest job and requeue it — never the last one running.
    fn requeue_if_critical(&mut self, out: &mut Vec<Action>) {
        if self.cfg.on_pressure == OnPressure::None {
            return;
        }
        let b = self.cfg.budget;
        let freeing: u64 = self
            .runs
            .iter()
            .filter(|r| r.stopping)
            .map(|r| r.current)
            .sum();
        let ws = self.working_set.saturating_sub(freeing);
        let live = self.runs.iter().filter(|r| !r.stopping).count();
        if live < 2 {
            return;
        }
        let reason = if let Some(why) = self.critical_reason(freeing) {
            why
        } else if self.cfg.on_pressure == OnPressure::Requeue
            && ws > b.budget
            && self.projection() > b.budget + pause_slack(b.budget)
        {
            format!(
                "working set {} is over the budget {} and growing",
                human(ws),
                human(b.budget)
            )
        } else {
            return;
        };
        if let Some(r) = self.runs.iter_mut().rev().find(|r| !r.stopping) {
            r.stopping = true;
            out.push(Action::Requeue {
                job: r.job,
                reason,
                usage: r.current,
            });
        }
    }

    /// Why memory is half-way into the reserve, if it is: the container's working set with no
    /// `--limit`; with one, the jobs' sum against it or the container's working set against the
    /// container's own line.
    fn critical_reason(&self, freeing: u64) -> Option<String> {
        let b = self.cfg.budget;
        match self.cfg.container {
            None => {
                let ws = self.container_ws.saturating_sub(freeing);
                (ws >= b.critical()).then(|| {
                    format!(
                        "working set {} is half-way into the reserve (limit {})",
                        human(ws),
                        human(b.limit)
                    )
                })
            }
            Some(c) => {
                let jobs = self.jobs_total.saturating_sub(freeing);
                let ws = self.container_ws.saturating_sub(freeing);
                if jobs >= b.critical() {
                    Some(format!(
                        "jobs hold {}, half-way into the reserve of --limit {}",
                        human(jobs),
                        human(b.limit)
                    ))
                } else if ws >= c.critical() {
                    Some(format!(
                        "working set {} is half-way into the reserve (container limit {})",
                        human(ws),
                        human(c.limit)
                    ))
                } else {
                    None
                }
            }
        }
    }

    /// The projection exceeds the budget: pause the youngest jobs growing now until it fits,
    /// always leaving one running. Returns whether anything is over (no resume this turn).
    fn pause_if_over(&mut self, out: &mut Vec<Action>) -> bool {
        let budget = self.cfg.budget.budget;
        let mut proj = self.projection();
        if proj <= budget + pause_slack(budget) {
            return false;
        }
        if self.cfg.on_pressure != OnPressure::Pause {
            return true;
        }
        let reason = format!(
            "memory would reach {} of a {} budget",
            human(proj),
            human(budget)
        );
        for i in (0..self.runs.len()).rev() {
            if proj <= budget {
                break;
            }
            let active = self
                .runs
                .iter()
                .filter(|r| !r.paused && !r.stopping)
                .count();
            let r = &self.runs[i];
            if active < 2 || r.paused || r.stopping {
                continue;
            }
            // Only a job growing right now: pausing one that merely has room reserved for it
            // frees nothing real and costs its progress.
            let g = self.growth(r);
            if g == 0 || r.rate <= 0.0 {
                continue;
            }
            proj -= g;
            let job = r.job;
            self.runs[i].paused = true;
            self.runs[i].paused_at = self.now;
            out.push(Action::Pause {
                job,
                reason: reason.clone(),
            });
        }
        true
    }

    /// Resume paused jobs, oldest first, while they fit with a margin (hysteresis); if nothing
    /// else runs, resume the oldest regardless.
    fn resume_if_room(&mut self, out: &mut Vec<Action>) {
        if self.stopped {
            return;
        }
        let budget = self.cfg.budget.budget;
        let mut proj = self.projection();
        for i in 0..self.runs.len() {
            if !self.runs[i].paused {
                continue;
            }
            let active = self
                .runs
                .iter()
                .filter(|r| !r.paused && !r.stopping)
                .count();
            let g = self.growth(&self.runs[i]);
            let fits = self.working_set + resume_margin(budget) <= budget
                && proj + g + resume_margin(budget) <= budget
                && self.now - self.runs[i].paused_at >= MIN_PAUSE_S;
            if !(fits || active == 0) {
                break;
            }
            proj += g;
            self.runs[i].paused = false;
            out.push(Action::Resume {
                job: self.runs[i].job,
            });
        }
    }

    /// The admission chain: each filter can stop admission; the first queued job (or a later,
    /// smaller one: backfill) that fits starts.
    fn admit(&mut self, out: &mut Vec<Action>) {
        if self.stopped || self.runs.iter().any(|r| r.paused || r.stopping) {
            return;
        }

        let budget = self.cfg.budget.budget;
        let mut proj = self.projection();
        while !self.queue.is_empty() {
            if self.cfg.cap.is_some_and(|c| self.runs.len() >= c) {
                return;
            }
            if self.runs.is_empty() {
                // At least one job always runs: an oversized job runs alone, no deadlock.
                let job = self.queue[0];
                let e = self.estimate(job);
                proj += e.bytes;
                self.start(0, e, e.bytes > budget, out);
                continue;
            }
            if self.psi.is_some_and(|p| p >= PSI_HOLD) {
                return;
            }
            if self
                .over_estimate_at
                .is_some_and(|t| self.now - t < OVER_ESTIMATE_HOLD_S)
            {
                return;
            }
            let head = self.queue[0];
            let e = self.estimate(head);
            if e.source == Source::TemplateHistory && !self.template_confirmed() {
                return;
            }
            if e.source.is_provisional() {
                // Nothing firm known: ramp up like a slow start — each job that has plateaued
                // vouches for one more, so 1 running becomes 2, then 4 — while jobs not yet flat
                // are fewer than flat ones and the headroom stays comfortably above the largest
                // usage seen for each start.
                let need = (self.largest_seen.max(e.bytes) as f64 * RAMP_HEADROOM) as u64;
                let flat = self.runs.iter().filter(|r| self.plateaued(r)).count();
                let growing = self.runs.len() - flat;
                if growing >= flat || budget.saturating_sub(proj) < need {
                    return;
                }
                proj += e.bytes;
                self.start(0, e, false, out);
                continue;
            }
            if self.fits(proj, e) {
                proj += e.bytes;
                self.start(0, e, false, out);
                continue;
            }
            // Backfill: a later, smaller job that fits now and does not delay the head.
            if let Some((pos, ej)) = self.backfill(proj, head, e) {
                proj += ej.bytes;
                self.start(pos, ej, false, out);
                continue;
            }
            // Speculative start: sizes learned from other jobs vary, and this one may well be
            // small. With pause as the safety net, start it assuming the low quantile — one at a
            // time, only while everything else has plateaued; if it grows beyond the room left,
            // it is paused (keeping its progress) until memory frees.
            if let Some(low) = self.speculative(proj, e) {
                let e = Estimate {
                    bytes: low,
                    source: e.source,
                };
                self.start(0, e, false, out);
                if let Some(r) = self.runs.last_mut() {
                    r.speculative = true;
                }
            }
            return;
        }
    }

    /// Template history is a prior from other sweeps: admit on it only as far as this sweep's
    /// jobs confirm it. Jobs started on it that have not plateaued yet are unconfirmed; another
    /// may start only while they are no more than the confirmed ones (a plateau within the
    /// template's peaks), so starts double per confirmation: 1, then 2 more, then 4...
    fn template_confirmed(&self) -> bool {
        let (mut confirmed, mut unconfirmed) = (0usize, 0usize);
        for r in &self.runs {
            if r.estimate.source != Source::TemplateHistory {
                continue;
            }
            if self.plateaued(r) {
                confirmed += 1;
            } else {
                unconfirmed += 1;
            }
        }
        unconfirmed <= confirmed
    }

    /// EASY backfill: find when the head will fit (the shadow time: running jobs end, by their
    /// own recorded run times) and start a later, smaller job only if it ends before then or
    /// fits beside the head at that time. Without run times, let the head be passed at most
    /// [`MAX_BYPASS`] times.
    fn backfill(&mut self, proj: u64, head: usize, e: Estimate) -> Option<(usize, Estimate)> {
        if self.bypass.0 != head {
            self.bypass = (head, 0);
        }
        let shadow = self.shadow(proj, e.bytes);
        if shadow.is_none() && self.bypass.1 >= MAX_BYPASS {
            return None;
        }
        for pos in 1..self.queue.len().min(BACKFILL_WINDOW + 1) {
            let job = self.queue[pos];
            let ej = self.estimate(job);
            if ej.source.is_provisional() || ej.bytes >= e.bytes || !self.fits(proj, ej) {
                continue;
            }
            let harmless = match shadow {
                Some((t, extra)) => {
                    ej.bytes <= extra || self.est.own_wall(job).is_some_and(|w| self.now + w <= t)
                }
                None => true,
            };
            if harmless {
                self.bypass.1 += 1;
                return Some((pos, ej));
            }
        }
        None
    }

    /// When `need` bytes will be free, and how many more then, if every running job has a
    /// recorded run time: (shadow time, extra bytes).
    fn shadow(&self, proj: u64, need: u64) -> Option<(f64, u64)> {
        let mut ends: Vec<(f64, u64)> = Vec::with_capacity(self.runs.len());
        for r in &self.runs {
            let wall = self.est.own_wall(r.job)?;
            ends.push((r.started + wall, self.expected(r)));
        }
        ends.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut free = self.cfg.budget.budget.saturating_sub(proj);
        for (end, bytes) in ends {
            free += bytes;
            if free >= need {
                return Some((end.max(self.now), free - need));
            }
        }
        None
    }

    fn speculative(&mut self, proj: u64, e: Estimate) -> Option<u64> {
        if self.cfg.on_pressure != OnPressure::Pause
            || e.source.is_own()
            || !self.runs.iter().all(|r| self.settled(r))
        {
            return None;
        }
        let low = self.est.low()?.max(self.raised[self.queue[0]]);
        (proj + low <= self.cfg.budget.budget).then_some(low)
    }

    /// Whether a running job leaves the projection firm enough for a speculative start: it has
    /// plateaued, or it was admitted on an estimate (not speculatively), has been sampled since,
    /// and is still clearly below the estimate (a job at it may be heading past it), so its
    /// remaining growth is already reserved. Waiting for such a job to plateau (0.5 s
    /// after its start) left 400–600 MiB idle half a second at a time.
    fn settled(&self, r: &Run) -> bool {
        self.plateaued(r)
            || (!r.speculative
                && r.sampled_at > r.started
                && !r.estimate.source.is_provisional()
                && {
                    let est = r.estimate.bytes.max(self.raised[r.job]);
                    r.peak + growth_tolerance(est) <= est
                })
    }

    /// A job fits when the projection plus its estimate stays within the budget and — when the
    /// estimate was learned from other jobs, so this one may be bigger — the projection plus the
    /// high quantile of their peaks stays below the point where a requeue would be needed.
    fn fits(&mut self, proj: u64, e: Estimate) -> bool {
        let b = self.cfg.budget;
        if proj + e.bytes > b.budget {
            return false;
        }
        if e.source.is_own() {
            return true;
        }
        let running_max = self.runs.iter().map(|r| r.peak).max().unwrap_or(0);
        proj + self.est.high(running_max).max(e.bytes) <= b.critical()
    }

    fn start(&mut self, pos: usize, estimate: Estimate, oversized: bool, out: &mut Vec<Action>) {
        let job = self.queue.remove(pos).expect("queue position in range");
        self.runs.push(Run::new(job, estimate, self.now));
        out.push(Action::Start {
            job,
            estimate,
            oversized,
        });
    }

    /// A job that ran elsewhere (the Slurm backend) ended with this peak: learn it as if it had
    /// run here.
    pub fn learn(&mut self, peak: u64) {
        self.largest_seen = self.largest_seen.max(peak);
        self.est.learn(peak);
    }

    /// A start the engine could not carry out (e.g. its folder could not be created): forget it.
    pub fn abandon(&mut self, job: usize) {
        self.runs.retain(|r| r.job != job);
    }

    /// A job exited. `peak`: its measured peak, if any; `stopped`: it died of memsweep's own
    /// signal (a requeue that raced with a normal exit counts as done).
    pub fn exited(&mut self, job: usize, peak: Option<u64>, stopped: bool) -> Ended {
        let Some(i) = self.runs.iter().position(|r| r.job == job) else {
            return Ended::Done;
        };
        let r = self.runs.remove(i);
        let peak = peak.unwrap_or(0).max(r.peak);
        self.largest_seen = self.largest_seen.max(peak);
        if !(r.stopping && stopped) {
            self.est.learn(peak);
            return Ended::Done;
        }
        let raise = ((peak.max(r.current) as f64) * REQUEUE_RAISE) as u64;
        self.raised[job] = self.raised[job].max(raise).max(r.estimate.bytes);
        self.requeues[job] += 1;
        if self.requeues[job] > self.cfg.retries {
            return Ended::RequeuedOut;
        }
        // Back at the head: it has waited longest; backfill lets smaller jobs pass it.
        self.queue.push_front(job);
        Ended::Requeued {
            requeues: self.requeues[job],
        }
    }
}

#[cfg(test)]
mod tests;
