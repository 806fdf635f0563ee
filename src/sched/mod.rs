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
//! and — with nothing firm known, past its estimate, or growing again after its plateau gave its
//! reservation back — at least where its growth rate takes it in
//! [`MOMENTUM_S`]. A small excess over the budget pauses only when the next sample confirms
//! it. A job whose estimate was
//! learned from other jobs gives its reservation back once it has plateaued (expected becomes its
//! own peak), so jobs are packed by what they really hold; own-history and `--mem-per-job`
//! estimates are kept for the job's whole life because they already include its late growth.
//!
//! Each [`Sched::decide`] runs, in order: requeue (working set half-way into the reserve, or over
//! the budget and growing with `--on-pressure requeue`: stop the youngest, never the last); pause
//! (projection over budget + slack: pause the youngest jobs growing now until it fits); resume
//! (oldest first, when it fits with a margin); admit — the chain: not interrupted, nothing paused
//! or stopping, under the `-j` cap, PSI below [`PSI_HOLD`], no job just grew past its estimate;
//! then, when every queued and running job has its own recorded size and run time (and none has
//! overrun it), the job whose rollout ends the sweep soonest, or nothing if waiting is clearly
//! better (`lookahead.rs`); else the queue head if `proj + estimate ≤ budget` (and, for a learned
//! estimate, `proj + high quantile ≤ critical`), else an EASY backfill of a smaller job that does
//! not delay the head, else (pause mode) one speculative start at the low quantile once everything
//! has plateaued. With no estimate at all it ramps up as a slow start (each plateaued job vouches
//! for one more start while the room left is 1.5× the largest usage seen; in pause mode, one more
//! speculative start once everything has plateaued and the room is ¾ of it); on a guess (template
//! history, or parameter values shared with finished jobs before any parameter is shown to explain
//! peaks), jobs not yet plateaued may be at most as many as those that plateaued within their
//! estimates, and a job beyond the template's peaks drops it. An empty runner always starts the
//! head, however big (no deadlock).
//!
//! Estimates transfer by parameters ([`features`], [`similar`]); history keeps each job's memory
//! over time ([`profile`]). A job on its own profile is admitted when the memory held over its
//! expected life fits (`fits_timeline`); the pause, resume and requeue rules read only the
//! growth due soon (`projection_soon`). A turn that pauses does nothing else; a turn that
//! resumes admits nothing; a pause past [`MAX_PAUSE_S`] requeues the youngest paused job.
//!
//! "Working set" above is [`level`]: the container's, or with an explicit `--limit` the larger
//! of the jobs' own sum (what `--limit` bounds) and the container's working set against its own
//! budget ([`Config::container`]); each has its own critical line.
//!
//! Where the rules live: this file holds the state, the projection and the turn order
//! ([`Sched::decide`]); `pressure.rs` the requeue, pause and resume rules; `admit.rs` the
//! admission chain; `lookahead.rs` its rollout.

mod admit;
pub mod budget;
pub mod estimate;
pub mod features;
mod lookahead;
mod on_pressure;
mod pressure;
pub mod profile;
mod reason;
#[cfg(test)]
mod sim;
pub mod similar;

use std::collections::VecDeque;

pub use budget::{Budget, default_reserve, parallel_cap};
pub use estimate::{Estimate, Estimator, MIN_ESTIMATE, Source};
pub use on_pressure::OnPressure;
pub use profile::Profile;
pub use reason::Reason;

const MIB: u64 = 1 << 20;

/// A job counts as plateaued when its peak has not grown by more than [`growth_tolerance`]
/// for this long.
pub const PLATEAU_S: f64 = 0.25;
/// Ramp-up with nothing known: another job starts only if the headroom is this many times the
/// largest usage seen.
pub const RAMP_HEADROOM: f64 = 1.5;
/// Ramp-up past that, with `--on-pressure pause` and every running job plateaued: one job starts
/// speculatively if the room left is at least this share of the largest usage seen.
pub const SPECULATIVE_ROOM: f64 = 0.75;
/// Largest-first ordering reorders this many jobs at the head of the queue.
pub const ORDER_WINDOW: usize = 1024;
/// Largest-first ordering treats sizes within this ratio of a larger one as the same size.
pub const ORDER_STEP: f64 = 0.03;

/// `(size, job)` pairs in queue order, largest first (`u64::MAX`, unknown, before all), where
/// sizes within [`ORDER_STEP`] below the largest of their run count as one and keep their queue
/// order: jobs of one size have peaks that differ by noise, and sorting on it shuffled them from
/// run to run, which could leave the longest for the end.
fn largest_first(keyed: Vec<(u64, usize)>) -> Vec<usize> {
    // (size, queue position, job)
    let mut keyed: Vec<(u64, usize, usize)> = keyed
        .into_iter()
        .enumerate()
        .map(|(i, (size, job))| (size, i, job))
        .collect();
    keyed.sort_by_key(|k| std::cmp::Reverse(k.0));
    let mut out = Vec::with_capacity(keyed.len());
    let mut rest = &mut keyed[..];
    while let Some(&(lead, ..)) = rest.first() {
        let floor = (lead as f64 / (1.0 + ORDER_STEP)) as u64;
        let n = rest.iter().take_while(|k| k.0 >= floor).count();
        let (same, tail) = rest.split_at_mut(n);
        same.sort_by_key(|k| k.1);
        out.extend(same.iter().map(|k| k.2));
        rest = tail;
    }
    out
}

/// A job past its estimate gets this much more, as it is probably still growing.
pub const GROWTH_RAISE: f64 = 1.1;
/// A paused job stays paused at least this long (unless nothing else runs), so that memory
/// freed for a moment does not make it flap.
pub const MIN_PAUSE_S: f64 = 0.05;
/// A pause longer than this (and longer than the paused job had run) ends in a requeue of the
/// youngest paused job, so memory held by jobs that cannot resume is freed.
pub const MAX_PAUSE_S: f64 = 3.0;
/// Timing slack of a profile, as a share of the job's life: a job is expected to hold, at each
/// moment, the most its profile holds within this much before or after.
pub const PROFILE_SLACK: f64 = 0.1;
/// How far ahead the pause rule looks along a job's recorded profile (seconds): growth due
/// later is planned for at admission, not paused for now.
pub const PROFILE_SOON_S: f64 = 0.3;
/// Points of a candidate's life checked by profile-based admission.
const TIMELINE_POINTS: usize = 32;
/// A parameter's weight (how well it explains peaks, 0–1) from which the queue is ordered by
/// the estimates it gives.
pub const FIRM_WEIGHT: f64 = 0.8;
/// A job that grew within this long is growing now (a late jump under way).
const GROWING_NOW_S: f64 = 0.1;
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

/// Whether a pause at `at_pause` bytes was false: the job never grew past it (by more than
/// [`growth_tolerance`]) until `later` — the projection saw growth that did not come.
pub fn pause_was_false(at_pause: u64, later: u64) -> bool {
    at_pause > 0 && later <= at_pause + growth_tolerance(at_pause)
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
    /// SIGSTOP the job's process group. `usage`: what it holds now (a pause is false if the job
    /// never grows past it).
    Pause {
        job: usize,
        reason: Reason,
        usage: u64,
    },
    /// SIGCONT it.
    Resume { job: usize },
    /// Stop it now (SIGKILL) and run it again later with a larger estimate.
    Requeue {
        job: usize,
        reason: Reason,
        usage: u64,
    },
}

/// How a job's process ended, as the executor saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Exited {
    /// Its measured peak, if any.
    pub peak: Option<u64>,
    /// It died of memsweep's own signal (a requeue that raced with a normal exit counts as done).
    pub stopped: bool,
    /// It exited 0: only such a run shows how closely jobs repeat their records (a job that
    /// failed at start-up peaked at nothing like its record and proves nothing).
    pub succeeded: bool,
    /// Seconds from its start to its exit, pauses included, as the executor timed them. The
    /// scheduler's own clock moves in samples, so a run time taken from it came out short by up
    /// to a sample interval (0.2 s at the default) and the next run found the job overdue.
    pub wall: Option<f64>,
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
    /// Admitted on a guess from other jobs not yet backed by evidence (template history, or
    /// parameter values shared with a few finished jobs): until it plateaus within its
    /// estimate, it vouches for nothing (see `guesses_confirmed`).
    guess: bool,
    /// Seconds spent paused before the current pause (the job's own clock stops meanwhile).
    paused_total: f64,
    /// Its expected memory over time: a profile, the wall time it spans, and whether it is the
    /// job's own (else that of the largest job sharing its parameter values).
    plan: Option<(Profile, f64, bool)>,
    recorder: profile::Recorder,
    /// Usage when last paused (a pause is false if the job never grows past it).
    paused_usage: u64,
}

impl Run {
    /// A job that has just started at `now`, nothing measured yet.
    fn new(job: usize, estimate: Estimate, now: f64, plan: Option<(Profile, f64, bool)>) -> Run {
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
            guess: false,
            paused_total: 0.0,
            plan,
            recorder: profile::Recorder::default(),
            paused_usage: 0,
        }
    }

    /// Running on: neither paused nor being stopped for a requeue.
    fn moving(&self) -> bool {
        !self.paused && !self.stopping
    }

    /// Seconds the job has run on its own clock (paused time excluded).
    fn age(&self, now: f64) -> f64 {
        let paused_now = if self.paused {
            now - self.paused_at
        } else {
            0.0
        };
        (now - self.started - self.paused_total - paused_now).max(0.0)
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
    /// The profile of the job that exited last (for its history record).
    last_profile: Option<Profile>,
    /// Pauses so far, and those of jobs that never grew past their usage when paused.
    pauses: u32,
    false_pauses: u32,
    /// The per-value model's version the queue was last ordered by.
    ordered_at: Option<usize>,
    /// When the projection was first seen over the budget (a small excess pauses only if the
    /// next sample confirms it).
    over_since: Option<f64>,
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
            last_profile: None,
            pauses: 0,
            false_pauses: 0,
            ordered_at: None,
            over_since: None,
        }
    }

    /// The profile recorded for the job that exited last (None for one never sampled).
    pub fn last_profile(&self) -> Option<Profile> {
        self.last_profile
    }

    /// (pauses, false pauses): a false pause is one of a job that never grew past the usage it
    /// had when paused — its growth was projected, not real.
    pub fn pause_counts(&self) -> (u32, u32) {
        (self.pauses, self.false_pauses)
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
            if !r.paused {
                let age = r.age(obs.now);
                r.recorder.record(age, u.current);
            }
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
                // Past it by more than noise: an estimate learned from jobs sharing its
                // parameters is their peak to the byte, and a job a few KiB over it (the page
                // cache of the result file it writes as it ends) held admissions for 0.3 s after
                // every such job (0.2–0.6 s gaps after ends, heterogeneous without hints).
                let est = r.estimate.bytes.max(self.raised[r.job]);
                if r.peak > est + growth_tolerance(est) {
                    self.raised[r.job] = (r.peak as f64 * GROWTH_RAISE) as u64;
                    self.over_estimate_at = Some(obs.now);
                }
            }
        }
    }

    /// Flat for [`PLATEAU_S`], and running for twice that: a job that has not started growing
    /// yet (still exec'ing, importing) must not pass for one that has finished growing.
    /// A paused job is flat because it is stopped, not because it has finished growing: it is
    /// never plateaued, and a resumed one counts from its resume.
    fn plateaued(&self, r: &Run) -> bool {
        !r.paused && self.now - r.grew_at >= PLATEAU_S && self.now - r.started >= 2.0 * PLATEAU_S
    }

    /// What a running job is expected to reach.
    /// What a running job is expected to reach: its estimate (or, for a learned estimate once
    /// plateaued, its own peak), and at least where its current growth rate takes it within
    /// [`MOMENTUM_S`] — a job jumping late is seen a few samples before it gets there.
    fn expected(&self, r: &Run) -> u64 {
        let src = r.estimate.source;
        let est = r.estimate.bytes.max(self.raised[r.job]);
        let base = if src.is_provisional() || (!src.is_own() && self.plateaued(r)) {
            // A plateau is the end of growth — unless its profile (own or of jobs sharing its
            // parameters) says a jump comes later: then what is still to come stays reserved.
            match self.still_to_come(r, est) {
                Some(later) => r.peak.max(later),
                None => r.peak,
            }
        } else if let (Source::JobHistory, Some(p)) = (src, self.est.own_peak(r.job)) {
            // Once admitted, a job is expected to reach its recorded peak (late jumps included),
            // not the margin on top: the margin is for the one job being admitted, so that
            // each running job's 3% does not add up to keep a whole job out. One that does go
            // past its record is raised like any other.
            p.max(r.peak).max(self.raised[r.job])
        } else {
            est.max(r.peak)
        };
        // An own estimate is the job's recorded peak, late jumps included: a ramp heading for it
        // is no surprise (and one beyond it raises the estimate anyway).
        if src.is_own() {
            return base;
        }
        base.max(self.momentum(r, base))
    }

    /// Where the growth rate takes a job within [`MOMENTUM_S`] — counted when nothing firm is
    /// expected, when the job has gone past its estimate, or when its plateau gave its
    /// reservation back and it grows again (a late jump). A ramp heading for its estimate is
    /// already reserved: projecting its last steps past the estimate (neighbours' peaks are
    /// often its own to the MiB) paused jobs at the top of their ramps for nothing.
    fn momentum(&self, r: &Run, base: u64) -> u64 {
        let ahead = r.current + (r.rate * MOMENTUM_S) as u64;
        let est = r.estimate.bytes.max(self.raised[r.job]);
        let given_back = base + growth_tolerance(est) < est;
        if r.estimate.source.is_provisional()
            || r.peak > r.estimate.bytes + growth_tolerance(r.estimate.bytes)
            || (given_back && r.current + growth_tolerance(base) >= base)
        {
            ahead
        } else {
            0
        }
    }

    /// The most a plateaued job's plan says it will still reach, if its profile jumps late
    /// and that is clearly above where it is now.
    fn still_to_come(&self, r: &Run, est: u64) -> Option<u64> {
        let Some((p, wall, _)) = r.plan else {
            // No profile of its own or of its neighbours: if this sweep's jobs jump late, the
            // estimate learned from them still stands.
            let learned = matches!(
                r.estimate.source,
                Source::Sweep | Source::TemplateHistory | Source::Similar
            );
            return (learned
                && self.est.sweep_jumps_late()
                && est > r.peak + growth_tolerance(r.peak))
            .then_some(est);
        };
        if !p.jumps_late() {
            return None;
        }
        let f = self.progress(r, &p, wall, est);
        let later = (p.max_between(f - PROFILE_SLACK, 1.0) * est as f64) as u64;
        (later > r.peak + growth_tolerance(r.peak)).then_some(later)
    }

    /// How far through its profile a job is: its age over its recorded run time, but no further
    /// than its usage shows — where the profile first reaches the level the job holds, plus the
    /// time since the job itself first reached it. On a busy machine jobs run slower than they
    /// did, and a spike predicted by the clock alone came early and paused jobs for nothing.
    /// (Counting from the job's last growth instead put a job on its plateau back at the start
    /// of its life the moment its late jump began: the jump was then 0.7 of a life away, and
    /// admission started a 600 MiB job into it.) And at least
    /// as far as its usage shows: a job holding clearly more than its profile holds before a
    /// late jump has begun that jump, whatever the clock says (a jump that came early was taken
    /// for the start of the job's life, and four jobs were admitted into it).
    fn progress(&self, r: &Run, p: &Profile, wall: f64, est: u64) -> f64 {
        let age = r.age(self.now);
        let by_clock = age / wall;
        let held = r.current as f64 / est.max(1) as f64 * 1000.0;
        // Within this many thousandths of the peak, a level counts as reached: by the profile,
        // and by the job itself.
        let tol = 50.0;
        let first = |tol: f64| {
            p.seg
                .iter()
                .position(|&s| f64::from(s) + tol >= held)
                .map(|k| k as f64 / profile::SEGMENTS as f64)
        };
        let reached = first(tol).unwrap_or(1.0);
        // Begun: growing now, and clearly (a quarter of the jump, at least 3% of the peak) above
        // the level before the jump — not a job flat a little above its recorded level.
        let pre = p.before_jump() * 1000.0;
        let mark = pre + (0.25 * (1000.0 - pre)).max(30.0);
        let begun = if p.jumps_late() && held >= mark && self.now - r.grew_at <= GROWING_NOW_S {
            p.seg
                .iter()
                .position(|&s| f64::from(s) >= mark)
                .map_or(0.0, |k| k as f64 / profile::SEGMENTS as f64)
        } else {
            0.0
        };
        let level = ((held - tol).max(0.0) / 1000.0 * est as f64) as u64;
        let since = match r.recorder.first_reached(level) {
            Some(at) => (age - at).max(0.0),
            None => (self.now - r.grew_at.max(r.started)).max(0.0),
        } / wall;
        by_clock.min(reached + since).max(begun)
    }

    /// What a job is expected to reach soon: for a job on its own recorded profile, the most
    /// the profile holds within [`PROFILE_SOON_S`] (growth later in its life was planned for at
    /// admission and is not a reason to pause anything now); else [`Self::expected`].
    fn expected_soon(&self, r: &Run) -> u64 {
        match self.own_plan(r) {
            Some((p, wall, est)) => {
                let f = self.progress(r, &p, wall, est);
                let soon = (p.level_between(f - PROFILE_SLACK, f + PROFILE_SOON_S / wall)
                    * est as f64) as u64;
                let soon = soon.max(self.raised[r.job]);
                // Its own history covers its growth: the last steps of a ramp heading for its
                // recorded peak are no surprise (projecting them paused jobs at the top of
                // their ramps for their neighbours' whole lives). Only a job past its record is
                // projected ahead.
                if r.current > est + growth_tolerance(est) {
                    soon.max(self.momentum(r, soon))
                } else {
                    soon
                }
            }
            _ => self.expected(r),
        }
    }

    /// A job on its own recorded profile, within its record, expected to end within
    /// [`PROFILE_SOON_S`]: its end gives its memory back sooner than pausing it would save any.
    /// Pausing it freezes what it holds and puts its end off.
    fn ending_soon(&self, r: &Run) -> bool {
        match self.own_plan(r) {
            Some((p, wall, est)) if r.current <= est + growth_tolerance(est) => {
                let f = self.progress(r, &p, wall, est);
                (1.0 - f) * wall <= PROFILE_SOON_S
            }
            _ => false,
        }
    }

    /// A job admitted on its own recorded profile: that profile, its recorded run time and its
    /// own recorded peak (the estimate where history has none).
    fn own_plan(&self, r: &Run) -> Option<(Profile, f64, u64)> {
        match r.plan {
            Some((p, wall, true)) if r.estimate.source == Source::JobHistory => Some((
                p,
                wall,
                self.est.own_peak(r.job).unwrap_or(r.estimate.bytes),
            )),
            _ => None,
        }
    }

    /// What a running job holds at `t` (≥ now), for profile-based admission: along its plan
    /// (0 once it is expected to have ended, unless it is already overdue), else what it is
    /// expected to reach, held throughout.
    fn held_at(&self, r: &Run, t: f64) -> u64 {
        if r.paused || r.stopping {
            return self.expected(r).max(r.current);
        }
        match self.own_plan(r) {
            Some((p, wall, own)) => {
                let age = r.age(self.now);
                let est = own.max(r.peak.min(self.raised[r.job]));
                let overdue = age > wall * (1.0 + PROFILE_SLACK);
                let f = self.progress(r, &p, wall, est) + (t - self.now) / wall;
                if f > 1.0 + PROFILE_SLACK && !overdue {
                    return 0;
                }
                let level =
                    (p.level_between(f - PROFILE_SLACK, f + PROFILE_SLACK) * est as f64) as u64;
                level.max(r.current).max(self.raised[r.job])
            }
            _ => self.expected(r),
        }
    }

    fn growth(&self, r: &Run) -> u64 {
        self.expected(r).saturating_sub(r.current)
    }

    /// Working set + growth the jobs not paused or stopping are expected to make soon: what the
    /// pause, resume and requeue rules compare with the budget.
    pub fn projection_soon(&self) -> u64 {
        self.working_set
            + self
                .runs
                .iter()
                .filter(|r| r.moving())
                .map(|r| self.expected_soon(r).saturating_sub(r.current))
                .sum::<u64>()
    }

    /// Working set + expected further growth of the jobs not paused or stopping.
    pub fn projection(&self) -> u64 {
        self.working_set
            + self
                .runs
                .iter()
                .filter(|r| r.moving())
                .map(|r| self.growth(r))
                .sum::<u64>()
    }

    /// The decisions for now: requeue, then pause or resume, then admit.
    pub fn decide(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.requeue_if_critical(&mut out);
        // Only a pause issued in this turn holds back resumes: with nothing left to pause (every
        // job paused, or the rest not growing) the resume rule is the way forward — it resumes
        // the oldest when nothing else runs. Returning "over" there stalled the sweep (issue 8).
        if self.pause_if_over(&mut out) {
            return out;
        }
        self.requeue_long_paused(&mut out);
        // Resumed jobs come before any new admission: a turn that resumes admits nothing, so the
        // resumed jobs' growth is seen before memory is handed to a newcomer.
        if self.resume_if_room(&mut out) {
            return out;
        }
        self.admit(&mut out);
        out
    }

    /// A job that ran elsewhere (the Slurm backend) ended with this peak: learn it as if it had
    /// run here (`succeeded`: it exited 0).
    pub fn learn(&mut self, job: usize, peak: u64, wall_s: f64, succeeded: bool) {
        self.largest_seen = self.largest_seen.max(peak);
        self.est.learn(job, peak, None, wall_s, succeeded);
    }

    /// Once jobs sharing parameter values say what queued jobs need, run the largest first
    /// (as a peak-reserving packer would: small jobs fill in around them, and no big job is left
    /// to run alone at the end), after the jobs nothing firm is known about yet (learned early).
    /// Redone whenever the per-value model's weights move (amortised), never for a sweep whose
    /// parameters do not group.
    fn order_by_estimates(&mut self) {
        let Some(v) = self.est.similar_version() else {
            return;
        };
        if self.ordered_at == Some(v) || self.queue.len() < 2 {
            return;
        }
        self.ordered_at = Some(v);
        // The next ORDER_WINDOW jobs only: a neighbour search costs microseconds, and scoring a
        // 40 000-job queue at every refresh stalled the loop for 0.4 s; the rest keep their order
        // until they come near the head.
        let n = self.queue.len().min(ORDER_WINDOW);
        let mut keyed: Vec<(u64, usize)> = Vec::with_capacity(n);
        for &job in self.queue.iter().take(n) {
            let size = match self.est.own_peak(job) {
                Some(p) => p,
                None => self.est.firm_similar(job, FIRM_WEIGHT).unwrap_or(u64::MAX),
            };
            keyed.push((size, job));
        }
        for (i, job) in largest_first(keyed).into_iter().enumerate() {
            self.queue[i] = job;
        }
    }

    /// `memsweep guard`: a process it did not start appeared. It joins the back of the queue
    /// and goes through the admission chain at once, as a job would; the returned starts say
    /// which queued processes may run now (itself among them, or not: then the guard holds it
    /// stopped until a later [`Self::decide`] starts it).
    pub fn adopt(&mut self, job: usize, now: f64) -> Vec<Action> {
        self.make_room_for(job);
        self.now = self.now.max(now);
        self.queue.push_back(job);
        let mut out = Vec::new();
        self.admit(&mut out);
        out
    }

    /// `memsweep guard`: a process already running (never held) becomes a memory user again
    /// (an idle worker given new work): a running job from `now`, for the pressure rules.
    pub fn track(&mut self, job: usize, now: f64) {
        self.make_room_for(job);
        self.now = self.now.max(now);
        let e = self.estimate(job);
        self.runs.push(Run::new(job, e, now, None));
    }

    fn make_room_for(&mut self, job: usize) {
        if self.raised.len() <= job {
            self.raised.resize(job + 1, 0);
            self.requeues.resize(job + 1, 0);
        }
    }

    /// `memsweep guard`'s way out of a standstill it cannot see into: the processes left running
    /// may be waiting for the paused or held ones (a launcher waiting for its workers). Resume
    /// the oldest paused job, else start the head of the queue — if its expected growth stays
    /// below the critical line, or, with `anyway`, regardless of room (a long standstill: at
    /// least one process must run; the critical line's requeue is the last resort).
    pub fn force_progress(&mut self, anyway: bool) -> Option<Action> {
        let critical = self.cfg.budget.critical();
        let ws = self.container_ws.max(self.working_set);
        if let Some(i) = self.runs.iter().position(|r| r.paused && !r.stopping) {
            // A job the pressure rule paused was growing then: it may be mid-ramp to a size
            // its estimate (from other jobs) knows nothing of. Count its growth up to the
            // largest size seen (guard + xargs: a 700 MiB job paused at 396 MiB, resumed on a
            // 251 MiB estimate, killed at the critical line 30 ms later).
            let r = &self.runs[i];
            let mut growth = self.growth(r);
            if r.paused_usage > 0 {
                growth = growth.max(self.largest_seen.saturating_sub(r.current));
            }
            if !anyway && ws + growth > critical {
                return None;
            }
            let r = &mut self.runs[i];
            r.paused = false;
            r.paused_total += self.now - r.paused_at;
            r.grew_at = self.now;
            return Some(Action::Resume {
                job: self.runs[i].job,
            });
        }
        if self.stopped || self.queue.is_empty() {
            return None;
        }
        let e = self.estimate(self.queue[0]);
        if !anyway && ws + e.bytes > critical {
            return None;
        }
        let mut out = Vec::new();
        self.start(0, e, e.bytes > self.cfg.budget.budget, &mut out);
        out.pop()
    }

    /// Undo a [`Action::Requeue`] the caller carried out on another job instead.
    pub fn cancel_stop(&mut self, job: usize) {
        if let Some(r) = self.runs.iter_mut().find(|r| r.job == job) {
            r.stopping = false;
        }
    }

    /// A start the engine could not carry out (e.g. its folder could not be created), or a
    /// guarded process that is no memory user or vanished while queued: forget it.
    pub fn abandon(&mut self, job: usize) {
        self.runs.retain(|r| r.job != job);
        self.queue.retain(|&j| j != job);
    }

    /// Whether `job` is running (or paused), as opposed to queued or unknown.
    pub fn is_running(&self, job: usize) -> bool {
        self.runs.iter().any(|r| r.job == job)
    }

    /// A job exited: `peak` measured if any, `stopped` by memsweep's own signal. Succeeded
    /// unless stopped, timed by the scheduler's clock: the short form of [`Self::ended`].
    pub fn exited(&mut self, job: usize, peak: Option<u64>, stopped: bool) -> Ended {
        self.ended(
            job,
            Exited {
                peak,
                stopped,
                succeeded: !stopped,
                wall: None,
            },
        )
    }

    /// A job exited (see [`Exited`]).
    pub fn ended(&mut self, job: usize, exit: Exited) -> Ended {
        let Exited {
            peak,
            stopped,
            succeeded,
            wall,
        } = exit;
        let Some(i) = self.runs.iter().position(|r| r.job == job) else {
            return Ended::Done;
        };
        let r = self.runs.remove(i);
        // Its memory is free now (the process is gone): the working set stops counting what it
        // held at the last sample. The engine samples again after an exit only when the last
        // sample is over 20 ms old, so the turn's admission read a working set that still held
        // the job, and a small job was backfilled past a head that fit (a 700 MiB job passed
        // by two 250 MiB ones, and the heterogeneous sweep ended with 450 MiB jobs in pairs).
        self.container_ws = self.container_ws.saturating_sub(r.current);
        self.jobs_total = self.jobs_total.saturating_sub(r.current);
        self.working_set = level(
            self.cfg.budget,
            self.cfg.container,
            self.container_ws,
            self.jobs_total,
        );
        let peak = peak.unwrap_or(0).max(r.peak);
        self.largest_seen = self.largest_seen.max(peak);
        if pause_was_false(r.paused_usage, peak) {
            self.false_pauses += 1;
        }
        // Its own run time: the executor's wall time less the time it spent paused.
        let paused = (self.now - r.started) - r.age(self.now);
        let age = wall.map_or(r.age(self.now), |w| (w - paused).max(0.0));
        self.last_profile = r.recorder.finish(age, peak);
        if !(r.stopping && stopped) {
            self.est.learn(job, peak, self.last_profile, age, succeeded);
            self.order_by_estimates();
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
