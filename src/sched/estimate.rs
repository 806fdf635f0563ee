//! What a job will need: `--mem-per-job`, else its own history, else this sweep's finished jobs,
//! else the template's history, else a lower bound from the running jobs, else unknown.

use serde::Serialize;

const MIB: u64 = 1 << 20;

/// No estimate goes below this: even `true` costs a process, and a zero estimate with `-j 0`
/// would admit without bound.
pub const MIN_ESTIMATE: u64 = 8 * MIB;

/// Margin on a job's own recorded peak: runs of the same command vary a little.
const OWN_HISTORY_MARGIN: f64 = 1.05;

/// Where an estimate came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `--mem-per-job`.
    Given,
    /// This exact job's peak in an earlier sweep.
    JobHistory,
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
            Source::Sweep => "this sweep",
            Source::TemplateHistory => "template history",
            Source::Running => "running jobs (lower bound)",
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
    template: Option<u64>,
    finished: Vec<u64>,
    finished_hi: u64,
    dirty: bool,
}

/// A high quantile of peaks: the max while few are known, then p95 (nearest rank) so that one
/// outlier in hundreds does not serialise the rest — pressure handling covers the outliers.
pub fn high_quantile(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    if values.len() < 20 {
        return values.iter().copied().max();
    }
    let rank = ((values.len() as f64) * 0.95).ceil() as usize - 1;
    let (_, v, _) = values.select_nth_unstable(rank.min(values.len() - 1));
    Some(*v)
}

impl Estimator {
    /// `own[i]`: job i's recorded peak (0 = none); `template`: peaks of the template's
    /// earlier jobs.
    pub fn new(given: Option<u64>, own: Vec<u64>, template: &[u64]) -> Estimator {
        let mut t = template.to_vec();
        Estimator {
            given,
            own,
            template: high_quantile(&mut t),
            finished: Vec::new(),
            finished_hi: 0,
            dirty: false,
        }
    }

    /// A job of this sweep finished with this peak.
    pub fn learn(&mut self, peak: u64) {
        self.finished.push(peak);
        self.dirty = true;
    }

    fn sweep_hi(&mut self) -> Option<u64> {
        if self.dirty {
            let mut v = self.finished.clone();
            self.finished_hi = high_quantile(&mut v).unwrap_or(0);
            self.dirty = false;
        }
        (!self.finished.is_empty()).then_some(self.finished_hi)
    }

    pub fn has_own(&self, job: usize) -> bool {
        self.own.get(job).is_some_and(|&p| p > 0)
    }

    pub fn own_peak(&self, job: usize) -> Option<u64> {
        self.own.get(job).copied().filter(|&p| p > 0)
    }

    /// The estimate for `job`, given the largest peak among the running jobs (a lower bound for
    /// any job learned from others) and a floor raised by the job's own growth or requeue.
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
                bytes: floor((p as f64 * OWN_HISTORY_MARGIN) as u64),
                source: Source::JobHistory,
            };
        }
        if let Some(hi) = self.sweep_hi() {
            return Estimate {
                bytes: floor(hi.max(running_max)),
                source: Source::Sweep,
            };
        }
        if let Some(t) = self.template {
            return Estimate {
                bytes: floor(t.max(running_max)),
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

    #[test]
    fn sources_in_order_of_preference() {
        let mut e = Estimator::new(None, vec![0, 500 * MIB], &[300 * MIB, 200 * MIB]);
        // Own history wins, with a 5% margin.
        let own = e.estimate(1, 0, 0);
        assert_eq!(own.source, Source::JobHistory);
        assert_eq!(own.bytes, 525 * MIB);
        // No own history, nothing finished: the template's max, or the running max if larger.
        assert_eq!(
            e.estimate(0, 0, 0),
            Estimate {
                bytes: 300 * MIB,
                source: Source::TemplateHistory
            }
        );
        assert_eq!(e.estimate(0, 400 * MIB, 0).bytes, 400 * MIB);
        // Once a job of this sweep finished, the sweep's own observations win over the template.
        e.learn(100 * MIB);
        assert_eq!(
            e.estimate(0, 0, 0),
            Estimate {
                bytes: 100 * MIB,
                source: Source::Sweep
            }
        );
        // Running jobs' usage is a lower bound.
        assert_eq!(e.estimate(0, 150 * MIB, 0).bytes, 150 * MIB);
        // A raise (growth, requeue) is a floor.
        assert_eq!(e.estimate(0, 0, 700 * MIB).bytes, 700 * MIB);
    }

    #[test]
    fn given_overrides_everything() {
        let mut e = Estimator::new(Some(2 << 30), vec![MIB], &[MIB]);
        e.learn(MIB);
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
        e.learn(300 * 1024);
        assert_eq!(e.estimate(0, 0, 0).bytes, MIN_ESTIMATE);
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
}
