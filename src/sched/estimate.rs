//! What a job will need: `--mem-per-job`, else its own history, else finished jobs (this sweep
//! and history) sharing its parameter values ([`Similar`]), else this sweep's finished jobs, else
//! the template's history, else a lower bound from the running jobs, else unknown.

use serde::Serialize;

use super::profile::Profile;
use super::similar::Similar;

const MIB: u64 = 1 << 20;

/// No estimate goes below this: even `true` costs a process, and a zero estimate with `-j 0`
/// would admit without bound.
pub const MIN_ESTIMATE: u64 = 8 * MIB;

/// Margin on a job's own recorded peak at admission, until this sweep shows how closely its
/// jobs repeat their records: runs of the same command vary a little (under 1% on the
/// benchmark's jobs); a run that goes past it is raised and paused like any other. 5% kept a
/// third 450 MiB job out of a 1382 MiB budget.
pub const OWN_HISTORY_MARGIN: f64 = 1.03;

/// Once [`CALIBRATED_AFTER`] jobs of this sweep have succeeded against their own record, the
/// margin is what they showed: their largest overshoot of the record (beyond a few MiB of
/// noise) plus this much. At 3%, a 700, a 450 and a 100 MiB job admitted in one turn
/// (1290 MiB with margins) did not fit a 1280 MiB budget that their recorded 1254 MiB fit: the
/// third waited for a sample, and in the real run lost 0.55 s to the backfill's shadow check.
pub const CALIBRATED_EXTRA: f64 = 0.01;
/// Finished jobs with a record needed before the margin follows them instead of
/// [`OWN_HISTORY_MARGIN`].
pub const CALIBRATED_AFTER: u32 = 3;
/// The margin never grows past this: a job past its record by more is raised and paused as
/// one that outgrew its estimate.
pub const MAX_OWN_MARGIN: f64 = 1.25;

/// Where an estimate came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `--mem-per-job`.
    Given,
    /// This job's peak in an earlier sweep (same parameters, run-varying parts aligned).
    JobHistory,
    /// The largest peak of finished jobs (this sweep or history) sharing the parameter values
    /// that explain peaks.
    Similar,
    /// Peaks of jobs of this sweep that finished (and, as a lower bound, those running).
    Sweep,
    /// Peaks of earlier sweeps of the same template.
    TemplateHistory,
    /// Only running jobs seen so far, none finished: a lower bound, so admission ramps up.
    Running,
    /// Nothing known: start one job and learn.
    Unknown,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Given => "--mem-per-job",
            Source::JobHistory => "job history",
            Source::Similar => "jobs with its parameter values",
            Source::Sweep => "this sweep",
            Source::TemplateHistory => "template history",
            Source::Running => "running jobs (lower bound)",
            Source::Unknown => "unknown",
        }
    }

    /// The name journaled with a job's start (as serialized).
    pub fn key(self) -> &'static str {
        match self {
            Source::Given => "given",
            Source::JobHistory => "job-history",
            Source::Similar => "similar",
            Source::Sweep => "sweep",
            Source::TemplateHistory => "template-history",
            Source::Running => "running",
            Source::Unknown => "unknown",
        }
    }

    /// A firm estimate is trusted for the whole life of a job; a soft one (learned from other
    /// jobs) gives way to the job's own plateau.
    pub fn is_own(self) -> bool {
        matches!(self, Source::Given | Source::JobHistory)
    }

    /// Sources that are only a lower bound: admit more jobs only by ramping up.
    pub fn is_provisional(self) -> bool {
        matches!(self, Source::Running | Source::Unknown)
    }
}

/// An estimate of a job's peak; `bytes` is 0 when the source is Unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Estimate {
    pub bytes: u64,
    pub source: Source,
}

/// Learns estimates. Per-job state is one u64 (its own history, 0 = none) so that 10 000
/// queued jobs cost 80 KB.
#[derive(Debug, Clone)]
pub struct Estimator {
    given: Option<u64>,
    own: Vec<u64>,
    /// Each job's own recorded wall time in seconds (0 = none).
    walls: Vec<f32>,
    template: Option<Spread>,
    /// Each job's own recorded profile (empty: none).
    profiles: Vec<Option<Profile>>,
    similar: Similar,
    /// Finished jobs of this sweep with a profile, and how many of them jumped late.
    profiled: u32,
    late: u32,
    finished: Vec<u64>,
    finished_spread: Option<Spread>,
    /// How many finished peaks `finished_spread` was computed from.
    spread_at: usize,
    /// Finished jobs of this sweep that had a recorded peak, and the largest factor by which
    /// one went past it (1.0: none did).
    repeats: u32,
    worst_repeat: f64,
}

/// What peaks of other jobs say about a job not yet measured: a typical size to admit it with,
/// and a high one that must still fit below the point where memsweep would have to requeue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// p25 (as soon as two are known): what a speculative start assumes.
    pub low: u64,
    pub typical: u64,
    pub high: u64,
}

/// The typical size: the max while fewer than 4 are known, then p75 (nearest rank) — admitting
/// with the max would serialise a sweep behind its largest job; the job that turns out bigger
/// is caught by pressure handling, and [`Spread::high`] bounds how far it can go.
pub fn typical_quantile(values: &mut [u64]) -> Option<u64> {
    quantile(values, TYPICAL_MIN_N, 0.75)
}

/// Peaks known before the typical size is a quantile rather than the max.
const TYPICAL_MIN_N: usize = 4;

/// Below this many finished peaks their quantiles are recomputed after every one.
const SPREAD_EXACT_UNTIL: usize = 256;

/// A high quantile of peaks: the max while few are known, then p95 (nearest rank) so that one
/// outlier in twenty does not serialise the rest — pressure handling covers the outliers.
pub fn high_quantile(values: &mut [u64]) -> Option<u64> {
    quantile(values, 20, 0.95)
}

fn quantile(values: &mut [u64], min_n: usize, q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    if values.len() < min_n {
        return values.iter().copied().max();
    }
    let rank = ((values.len() as f64) * q).ceil() as usize - 1;
    let (_, v, _) = values.select_nth_unstable(rank.min(values.len() - 1));
    Some(*v)
}

fn spread(values: &[u64]) -> Option<Spread> {
    let mut v = values.to_vec();
    Some(Spread {
        low: quantile(&mut v, 2, 0.25)?,
        typical: typical_quantile(&mut v)?,
        high: high_quantile(&mut v)?,
    })
}

impl Estimator {
    /// `own[i]`: job i's recorded peak (0 = none); `template`: peaks of the template's
    /// earlier jobs.
    pub fn new(given: Option<u64>, own: Vec<u64>, template: &[u64]) -> Estimator {
        Estimator {
            given,
            own,
            walls: Vec::new(),
            template: spread(template),
            profiles: Vec::new(),
            similar: Similar::default(),
            profiled: 0,
            late: 0,
            finished: Vec::new(),
            finished_spread: None,
            spread_at: 0,
            repeats: 0,
            worst_repeat: 1.0,
        }
    }

    /// The factor on a job's own recorded peak at admission: [`OWN_HISTORY_MARGIN`] until
    /// [`CALIBRATED_AFTER`] jobs of this sweep have succeeded against their records, then their
    /// largest overshoot plus [`CALIBRATED_EXTRA`] — never less than an overshoot already seen
    /// calls for, and at most [`MAX_OWN_MARGIN`].
    pub fn own_margin(&self) -> f64 {
        let shown = self.worst_repeat + CALIBRATED_EXTRA;
        let m = if self.repeats >= CALIBRATED_AFTER {
            shown
        } else {
            shown.max(OWN_HISTORY_MARGIN)
        };
        m.min(MAX_OWN_MARGIN)
    }

    /// A job of this sweep finished with this peak (and, if recorded, its profile and wall
    /// time); `succeeded`: it exited 0, so its peak is a repeat of its record worth comparing.
    pub fn learn(
        &mut self,
        job: usize,
        peak: u64,
        profile: Option<Profile>,
        wall: f64,
        succeeded: bool,
    ) {
        if let Some(own) = self.own_peak(job)
            && succeeded
            && peak > 0
        {
            // Overshoot beyond noise (2%, at least 4 MiB: allocators and sampling move small
            // jobs by a few MiB): an 8 MiB job at 11 MiB, ×1.375, had set a 25% margin on
            // every 700 MiB job of the sweep.
            let noise = super::growth_tolerance(own).max(MIN_ESTIMATE / 2);
            let over = peak.saturating_sub(noise);
            self.repeats += 1;
            self.worst_repeat = self.worst_repeat.max(over as f64 / own as f64);
        }
        self.finished.push(peak);
        if let Some(p) = profile {
            self.profiled += 1;
            self.late += u32::from(p.jumps_late());
        }
        self.similar.learn_job(job, peak, profile, wall as f32);
    }

    /// Whether this sweep's jobs grow late: at least a quarter of the finished ones with a
    /// profile jumped after a plateau. Then a plateau of a job estimated from them is not the
    /// end of its growth.
    pub fn sweep_jumps_late(&self) -> bool {
        self.late > 0 && self.late * 4 >= self.profiled
    }

    /// The per-value model's version (see [`Similar::version`]); refreshed by this call.
    pub fn similar_version(&mut self) -> Option<usize> {
        if self.similar.is_empty() {
            return None;
        }
        let _ = self.similar.estimate(usize::MAX);
        Some(self.similar.version())
    }

    /// What jobs sharing this job's parameter values say, when the parameters that say it
    /// are backed by evidence (weight ≥ `firm`).
    pub fn firm_similar(&mut self, job: usize, firm: f64) -> Option<u64> {
        self.similar
            .estimate(job)
            .filter(|n| n.weight >= firm)
            .map(|n| n.bytes)
    }

    /// The per-value model over this sweep's parameters (history already learned into it).
    pub fn with_similar(mut self, similar: Similar) -> Estimator {
        self.similar = similar;
        self
    }

    /// Each job's own recorded profile.
    pub fn with_profiles(mut self, profiles: Vec<Option<Profile>>) -> Estimator {
        self.profiles = profiles;
        self
    }

    /// How the job is expected to use memory over its life, and for how long: its own recorded
    /// profile and wall time, else those of the largest job sharing its parameter values.
    /// `own` says which.
    pub fn profile(&mut self, job: usize) -> Option<(Profile, f64, bool)> {
        let span = |p: &Profile, wall: f64| {
            if p.run_s > 0.0 {
                f64::from(p.run_s)
            } else {
                wall
            }
        };
        if let (Some(Some(p)), Some(w)) = (self.profiles.get(job), self.own_wall(job)) {
            return Some((*p, span(p, w), true));
        }
        let n = self.similar.estimate(job)?;
        let p = n.profile?;
        Some((p, span(&p, f64::from(n.wall)), false)).filter(|p| p.1 > 0.0)
    }

    /// The quantiles of this sweep's finished peaks, recomputed once they grew by an eighth
    /// (exactly while fewer than [`SPREAD_EXACT_UNTIL`]): a copy and three selections over every
    /// peak after each finished job was O(n) per job, a quadratic cost for 100 000 jobs.
    fn sweep_spread(&mut self) -> Option<Spread> {
        let n = self.finished.len();
        if n != self.spread_at
            && (n < SPREAD_EXACT_UNTIL || n >= self.spread_at + self.spread_at / 8)
        {
            self.finished_spread = spread(&self.finished);
            self.spread_at = n;
        }
        self.finished_spread
    }

    /// How big a job estimated from others (this sweep, else the template) may turn out: the
    /// high quantile of their peaks, and at least the largest running job's peak (a lower bound
    /// on what jobs of this sweep reach).
    pub fn high(&mut self, running_max: u64) -> u64 {
        self.sweep_spread()
            .or(self.template)
            .map_or(0, |s| s.high)
            .max(running_max)
    }

    /// The template's high quantile while its history is in use (nothing of this sweep finished
    /// and not dropped): a job of this sweep above it shows the template's earlier sweeps were
    /// another parameterisation.
    pub fn template_high(&mut self) -> Option<u64> {
        if self.sweep_spread().is_some() {
            return None;
        }
        self.template.map(|t| t.high)
    }

    /// This sweep's jobs do not look like the template's earlier ones: forget its history, so
    /// that estimates fall back to what this sweep shows (a lower bound, then its own peaks).
    pub fn drop_template(&mut self) {
        self.template = None;
    }

    /// The low quantile of other jobs' peaks (this sweep, else the template), if any are known.
    pub fn low(&mut self) -> Option<u64> {
        self.sweep_spread()
            .or(self.template)
            .map(|s| s.low.max(MIN_ESTIMATE))
    }

    /// Whether this sweep's typical size is still the max of the few jobs finished (fewer than
    /// [`TYPICAL_MIN_N`]): a guess, not yet a quantile.
    pub fn sweep_is_max_of_few(&self) -> bool {
        self.finished.len() < TYPICAL_MIN_N
    }

    pub fn has_own(&self, job: usize) -> bool {
        self.own.get(job).is_some_and(|&p| p > 0)
    }

    /// Each job's own recorded wall time (seconds, 0 = none), for backfill that does not delay
    /// the head of the queue.
    pub fn with_walls(mut self, walls: Vec<f32>) -> Estimator {
        self.walls = walls;
        self
    }

    pub fn own_wall(&self, job: usize) -> Option<f64> {
        self.walls
            .get(job)
            .copied()
            .filter(|&w| w > 0.0)
            .map(f64::from)
    }

    pub fn own_peak(&self, job: usize) -> Option<u64> {
        self.own.get(job).copied().filter(|&p| p > 0)
    }

    /// The estimate for `job`, given the largest peak among the running jobs (the estimate while
    /// nothing has finished) and a floor raised by the job's own growth or requeue.
    pub fn estimate(&mut self, job: usize, running_max: u64, raised: u64) -> Estimate {
        let floor = |b: u64| b.max(raised).max(MIN_ESTIMATE);
        if let Some(g) = self.given {
            return Estimate {
                bytes: floor(g),
                source: Source::Given,
            };
        }
        if let Some(p) = self.own_peak(job) {
            return Estimate {
                bytes: floor((p as f64 * self.own_margin()) as u64),
                source: Source::JobHistory,
            };
        }
        if let Some(n) = self.similar.estimate(job) {
            return Estimate {
                bytes: floor(n.bytes),
                source: Source::Similar,
            };
        }
        if let Some(s) = self.sweep_spread() {
            return Estimate {
                bytes: floor(s.typical),
                source: Source::Sweep,
            };
        }
        if let Some(t) = self.template {
            return Estimate {
                bytes: floor(t.typical),
                source: Source::TemplateHistory,
            };
        }
        if running_max > 0 || raised > 0 {
            return Estimate {
                bytes: floor(running_max),
                source: Source::Running,
            };
        }
        Estimate {
            bytes: 0,
            source: Source::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Estimator {
        fn learn_peak(&mut self, peak: u64) {
            self.learn(usize::MAX, peak, None, 1.0, true);
        }
    }

    #[test]
    fn sources_in_order_of_preference() {
        let mut e = Estimator::new(None, vec![0, 500 * MIB], &[300 * MIB, 200 * MIB]);
        // Own history wins, with a 3% margin.
        let own = e.estimate(1, 0, 0);
        assert_eq!(own.source, Source::JobHistory);
        assert_eq!(own.bytes, 515 * MIB);
        // No own history, nothing finished: the template's typical size (the max of two).
        assert_eq!(
            e.estimate(0, 0, 0),
            Estimate {
                bytes: 300 * MIB,
                source: Source::TemplateHistory
            }
        );
        // Running jobs raise the high bound, not the estimate.
        assert_eq!(e.estimate(0, 400 * MIB, 0).bytes, 300 * MIB);
        assert_eq!(e.high(400 * MIB), 400 * MIB);
        // Once a job of this sweep finished, the sweep's own observations win over the template.
        e.learn_peak(100 * MIB);
        assert_eq!(
            e.estimate(0, 0, 0),
            Estimate {
                bytes: 100 * MIB,
                source: Source::Sweep
            }
        );
        assert_eq!(e.high(0), 100 * MIB);
        // A raise (growth, requeue) is a floor.
        assert_eq!(e.estimate(0, 0, 700 * MIB).bytes, 700 * MIB);
    }

    #[test]
    fn given_overrides_everything() {
        let mut e = Estimator::new(Some(2 << 30), vec![MIB], &[MIB]);
        e.learn_peak(MIB);
        assert_eq!(
            e.estimate(0, 0, 0),
            Estimate {
                bytes: 2 << 30,
                source: Source::Given
            }
        );
    }

    #[test]
    fn nothing_known_is_unknown_then_running_lower_bound() {
        let mut e = Estimator::new(None, vec![], &[]);
        assert_eq!(e.estimate(3, 0, 0).source, Source::Unknown);
        assert_eq!(e.estimate(3, 0, 0).bytes, 0);
        let r = e.estimate(3, 300 * MIB, 0);
        assert_eq!((r.source, r.bytes), (Source::Running, 300 * MIB));
        assert!(r.source.is_provisional());
    }

    #[test]
    fn tiny_jobs_get_a_floor() {
        let mut e = Estimator::new(None, vec![], &[]);
        e.learn_peak(300 * 1024);
        assert_eq!(e.estimate(0, 0, 0).bytes, MIN_ESTIMATE);
    }

    #[test]
    fn typical_is_p75_once_four_are_known() {
        let mut e = Estimator::new(None, vec![], &[]);
        for mb in [700, 100, 450] {
            e.learn_peak(mb * MIB);
        }
        // Three known: the max.
        assert_eq!(e.estimate(0, 0, 0).bytes, 700 * MIB);
        // Eight known (100, 250, 250, 450, 450, 450, 700, 700): p75 is the 6th, 450; high stays 700.
        for mb in [250, 250, 450, 450, 700] {
            e.learn_peak(mb * MIB);
        }
        assert_eq!(e.estimate(0, 0, 0).bytes, 450 * MIB);
        assert_eq!(e.high(0), 700 * MIB);
        // p25 is the 2nd: 250.
        assert_eq!(e.low(), Some(250 * MIB));
    }

    #[test]
    fn high_quantile_is_max_for_few_and_p95_for_many() {
        assert_eq!(high_quantile(&mut []), None);
        assert_eq!(high_quantile(&mut [3, 9, 1]), Some(9));
        // 100 values 1..=100: p95 by nearest rank is 95; one outlier of 10 000 does not count.
        let mut v: Vec<u64> = (1..=99).collect();
        v.push(10_000);
        assert_eq!(high_quantile(&mut v), Some(95));
    }

    #[test]
    fn the_sweeps_quantiles_follow_every_peak_while_few_then_every_eighth_more() {
        // Few peaks: every new one counts at once (the high quantile is their max below 20).
        let mut e = Estimator::new(None, vec![], &[]);
        for _ in 0..10 {
            e.learn_peak(100 * MIB);
        }
        assert_eq!(e.high(0), 100 * MIB);
        e.learn_peak(1 << 30);
        assert_eq!(e.high(0), 1 << 30);
        // 300 peaks: recomputed once 37 more (an eighth) have come. 36 large ones would move
        // the p95 to 1 GiB but are not seen yet; the 37th is.
        let mut e = Estimator::new(None, vec![], &[]);
        for _ in 0..300 {
            e.learn_peak(100 * MIB);
        }
        assert_eq!(e.high(0), 100 * MIB);
        for _ in 0..36 {
            e.learn_peak(1 << 30);
        }
        assert_eq!(e.high(0), 100 * MIB);
        e.learn_peak(1 << 30);
        assert_eq!(e.high(0), 1 << 30);
    }

    #[test]
    fn own_margin_follows_how_closely_this_sweeps_jobs_repeat_their_records() {
        let mut e = Estimator::new(None, vec![700 * MIB; 6], &[]);
        let est = |e: &mut Estimator| e.estimate(5, 0, 0).bytes / MIB;
        // Nothing shown yet: 3% on the record.
        assert_eq!(est(&mut e), 721);
        // Two repeats within their records are not yet evidence enough.
        e.learn(0, 700 * MIB, None, 1.0, true);
        e.learn(1, 699 * MIB, None, 1.0, true);
        assert_eq!(est(&mut e), 721);
        // The third: the margin is what they showed plus 1% — 707 MiB, so a 700, a 450 and a
        // 100 MiB job fit 1280 MiB as their records do.
        e.learn(2, 700 * MIB, None, 1.0, true);
        assert_eq!(est(&mut e), 707);
        // One that went 6% past its record (4% beyond the 2% counted as noise) raises the
        // margin for the rest to 5%.
        e.learn(3, 742 * MIB, None, 1.0, true);
        assert_eq!(est(&mut e), 735);
        // Jobs without a record of their own are not evidence.
        let mut f = Estimator::new(None, vec![0, 0, 0, 0, 100 * MIB], &[]);
        for j in 0..4 {
            f.learn(j, 50 * MIB, None, 1.0, true);
        }
        assert_eq!(f.estimate(4, 0, 0).bytes / MIB, 103);
    }

    #[test]
    fn only_succeeded_runs_beyond_sampling_noise_calibrate_the_own_margin() {
        let mut e = Estimator::new(None, vec![700 * MIB; 6], &[]);
        let est = |e: &mut Estimator| e.estimate(5, 0, 0).bytes / MIB;
        // Three jobs that failed at start-up (3 MiB, or never sampled) prove nothing about how
        // closely the others repeat their records: the prior 3% stays.
        e.learn(0, 3 * MIB, None, 0.1, false);
        e.learn(1, 0, None, 0.1, false);
        e.learn(2, 3 * MIB, None, 0.1, false);
        assert_eq!(est(&mut e), 721);
        // A small job a few MiB over its record (allocator noise) does not set the margin of
        // the 700 MiB ones: 8 → 11 MiB is within the 4 MiB counted as noise.
        let mut own = vec![700 * MIB; 6];
        own[0] = 8 * MIB;
        let mut f = Estimator::new(None, own, &[]);
        f.learn(0, 11 * MIB, None, 1.0, true);
        assert!(est(&mut f) <= 721, "{}", est(&mut f));
    }
}
