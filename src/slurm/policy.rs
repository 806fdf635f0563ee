//! The Slurm backend's policy as pure functions: each job's `--mem` (from the same estimates the
//! local scheduler uses), the first allocation for jobs nothing is known about, what a finished
//! job's Slurm state means, and how jobs with equal requests share an array.
//!
//! First allocation (Tovar et al., "A job sizing strategy for high-throughput scientific
//! workflows", 2018: measure a few, then size the rest from what they used): when no estimate
//! exists for some jobs, √n of them (at least [`MIN_PROBES`]), spread evenly over the sweep
//! (first and last included, so a grid whose memory grows with a parameter shows its ends), run
//! first with a generous `--mem` (`--job-mem-max`, else a quarter of the largest node). The others
//! wait until every probe has ended, then ask for the largest probe peak × [`SIBLING_MARGIN`] +
//! [`SLACK`]. A job that still runs out is resubmitted with [`OOM_RAISE`] × what it reached.
//! With √n probes and a 1.5 margin, a log-normal sweep (σ 0.6–0.9) sees about 0.2–0.7 such
//! failures per 10 jobs in simulation (fewer probes or a 1.25 margin: 1–1.5).

use crate::sched::{Estimate, Source};

const MIB: u64 = 1 << 20;

/// Margin on a job's own estimate (its recorded peak): runs of one command vary by under 1%
/// on the benchmark's jobs; 10% covers inputs that vary a little.
pub const OWN_MARGIN: f64 = 1.10;
/// Margin on the peaks of other jobs (a job not measured yet may be bigger than all of them).
pub const SIBLING_MARGIN: f64 = 1.5;
/// Added to every learned request: the wrapper, the shell and page cache of small jobs.
pub const SLACK: u64 = 16 * MIB;
/// Smallest request: Slurm's cgroup also holds the wrapper (a few MiB).
pub const MIN_REQUEST: u64 = 32 * MIB;
/// After OUT_OF_MEMORY, the next request is at least this × the recorded peak.
pub const OOM_RAISE: f64 = 1.5;
/// Fewest jobs run first, generously, when nothing is known (√n for a larger sweep).
pub const MIN_PROBES: usize = 3;
/// Resubmissions after TIMEOUT, PREEMPTED, NODE_FAIL or BOOT_FAIL (not the job's doing).
pub const INFRA_RETRIES: u32 = 3;

/// Where a request comes from (shown by `--dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `--mem-per-job`, as given.
    Given,
    /// The job's own history × [`OWN_MARGIN`] + [`SLACK`].
    Own,
    /// Other jobs' peaks (this sweep, earlier probes, the template's history).
    Siblings,
    /// Nothing known: a probe with the generous allocation.
    Probe,
    /// Raised after running out of memory.
    Raised,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Given => "--mem-per-job",
            Basis::Own => "its own peak + margin",
            Basis::Siblings => "other jobs' peaks + margin",
            Basis::Probe => "probe (nothing known yet)",
            Basis::Raised => "raised after OUT_OF_MEMORY",
        }
    }
}

/// The bounds every request respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request: the largest node's memory, and `--job-mem-max`.
    pub cap: u64,
    /// A probe's request.
    pub probe: u64,
}

impl Limits {
    pub fn new(node_mem: u64, job_mem_max: Option<u64>) -> Limits {
        let cap = job_mem_max
            .map_or(node_mem, |m| m.min(node_mem))
            .max(MIN_REQUEST);
        Limits {
            cap,
            probe: job_mem_max.unwrap_or(node_mem / 4).clamp(MIN_REQUEST, cap),
        }
    }

    /// Whole MiB (sbatch's unit), within [MIN_REQUEST, cap].
    pub fn fit(&self, bytes: u64) -> u64 {
        bytes
            .div_ceil(MIB)
            .saturating_mul(MIB)
            .clamp(MIN_REQUEST, self.cap)
    }
}

/// A learned request rounded up to a step of 1/16 of the power of two below it (at least
/// 16 MiB): at most 6.25% (or 16 MiB) more, so jobs of similar size share an array instead of
/// each costing its own sbatch call.
pub fn bucket(bytes: u64) -> u64 {
    let step = if bytes == 0 {
        SLACK
    } else {
        (1u64 << (63 - bytes.leading_zeros()))
            .checked_shr(4)
            .unwrap_or(0)
            .max(SLACK)
    };
    bytes.div_ceil(step) * step
}

/// A job's request: `None` while it must wait for the probes. `siblings_max`: the largest peak
/// of this sweep's ended jobs; `probing`: probes are still running (jobs known only through
/// other jobs of this sweep wait for all of them).
pub fn request(
    est: Estimate,
    siblings_max: u64,
    probing: bool,
    limits: Limits,
) -> Option<(u64, Basis)> {
    let learned =
        |peak: u64, margin: f64| limits.fit(bucket((peak as f64 * margin) as u64 + SLACK));
    match est.source {
        Source::Sweep | Source::Running | Source::Unknown if probing => None,
        Source::Given => Some((limits.fit(est.bytes), Basis::Given)),
        Source::JobHistory => Some((learned(est.bytes, OWN_MARGIN), Basis::Own)),
        // Finished jobs sharing the parameter values that explain peaks: specific to this job,
        // so not raised to the largest sibling.
        Source::Similar => Some((learned(est.bytes, SIBLING_MARGIN), Basis::Siblings)),
        Source::Sweep | Source::TemplateHistory => Some((
            learned(est.bytes.max(siblings_max), SIBLING_MARGIN),
            Basis::Siblings,
        )),
        Source::Running | Source::Unknown if siblings_max > 0 => {
            Some((learned(siblings_max, SIBLING_MARGIN), Basis::Siblings))
        }
        Source::Running | Source::Unknown => None,
    }
}

/// Which of `waiting` (in sweep order) probe: √n (at least [`MIN_PROBES`]) spread evenly,
/// first and last included.
pub fn probes(waiting: &[usize]) -> Vec<usize> {
    let n = waiting.len();
    let k = (n as f64).sqrt().ceil() as usize;
    let k = k.max(MIN_PROBES);
    if n <= k {
        return waiting.to_vec();
    }
    let mut out: Vec<usize> = (0..k)
        .map(|i| waiting[(i * (n - 1) + (k - 1) / 2) / (k - 1)])
        .collect();
    out.dedup();
    out
}

/// The request after an OUT_OF_MEMORY: at least [`OOM_RAISE`] × the recorded peak (and × the
/// request it ran out of), within the cap; `None` when the cap allows nothing larger.
pub fn after_oom(request: u64, peak: u64, limits: Limits) -> Option<u64> {
    let next = limits.fit(bucket((peak.max(request) as f64 * OOM_RAISE) as u64));
    (next > request).then_some(next)
}

/// What a job's end means, from Slurm's state and the wrapper's record (absent when the wrapper
/// did not finish: the job was killed from outside, or never started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    Failed {
        code: Option<i32>,
    },
    Signaled {
        signal: i32,
    },
    /// OUT_OF_MEMORY, or the kernel killed a process in the job's cgroup.
    Oom,
    /// TIMEOUT, PREEMPTED, NODE_FAIL, BOOT_FAIL: not the job's doing; run it again.
    Lost,
    /// Cancelled from outside memsweep.
    Cancelled,
}

/// Slurm states after which a job will not change any more.
pub fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "OUT_OF_MEMORY"
            | "TIMEOUT"
            | "PREEMPTED"
            | "NODE_FAIL"
            | "BOOT_FAIL"
            | "CANCELLED"
            | "DEADLINE"
            | "SPECIAL_EXIT"
            | "REVOKED"
    )
}

/// `state`: the Slurm state; `result`: (exit code, signal, oom) recorded by the wrapper.
pub fn verdict(state: &str, result: Option<(Option<i32>, Option<i32>, bool)>) -> Verdict {
    if state == "OUT_OF_MEMORY" || result.is_some_and(|r| r.2) {
        return Verdict::Oom;
    }
    match state {
        "TIMEOUT" | "PREEMPTED" | "NODE_FAIL" | "BOOT_FAIL" => return Verdict::Lost,
        "CANCELLED" => return Verdict::Cancelled,
        _ => {}
    }
    match result {
        Some((Some(0), _, _)) => Verdict::Succeeded,
        Some((_, Some(signal), _)) => Verdict::Signaled { signal },
        Some((code, None, _)) => Verdict::Failed { code },
        None => Verdict::Failed { code: None },
    }
}

/// Group (job, attempt, request) by request, in order of first appearance: one array each.
pub fn arrays(reqs: &[(usize, u32, u64)]) -> Vec<(u64, Vec<(usize, u32)>)> {
    let mut out: Vec<(u64, Vec<(usize, u32)>)> = Vec::new();
    for &(job, attempt, mem) in reqs {
        match out.iter_mut().find(|(m, _)| *m == mem) {
            Some((_, v)) => v.push((job, attempt)),
            None => out.push((mem, vec![(job, attempt)])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(bytes: u64, source: Source) -> Estimate {
        Estimate { bytes, source }
    }

    #[test]
    fn requests_by_source() {
        let l = Limits::new(20 << 30, None);
        assert_eq!(l.probe, 5 << 30);
        // Own history: 1.10 × + 16 MiB (456 MiB), bucketed to 16 MiB steps.
        assert_eq!(
            request(est(400 * MIB, Source::JobHistory), 0, false, l),
            Some((464 * MIB, Basis::Own))
        );
        // Others: the larger of the estimate and what this sweep saw, × 1.5 + 16 MiB (916 MiB),
        // bucketed to 32 MiB steps.
        assert_eq!(
            request(est(400 * MIB, Source::Sweep), 600 * MIB, false, l),
            Some((928 * MIB, Basis::Siblings))
        );
        assert_eq!(request(est(0, Source::Unknown), 0, false, l), None);
        // While probes run, jobs known only from this sweep wait for all of them.
        assert_eq!(
            request(est(400 * MIB, Source::Sweep), 600 * MIB, true, l),
            None
        );
        assert!(request(est(400 * MIB, Source::JobHistory), 0, true, l).is_some());
        assert_eq!(
            request(est(0, Source::Unknown), 100 * MIB, false, l),
            Some((176 * MIB, Basis::Siblings))
        );
        // Given: as given; tiny requests get the floor; the cap binds.
        assert_eq!(
            request(est(MIB, Source::Given), 0, false, l),
            Some((MIN_REQUEST, Basis::Given))
        );
        let small = Limits::new(20 << 30, Some(500 * MIB));
        assert_eq!((small.cap, small.probe), (500 * MIB, 500 * MIB));
        assert_eq!(
            request(est(800 * MIB, Source::JobHistory), 0, false, small),
            Some((500 * MIB, Basis::Own))
        );
    }

    #[test]
    fn second_run_asks_between_peak_and_1_3_peak_plus_32m() {
        let l = Limits::new(20 << 30, None);
        for peak in [MIB, 150 * MIB, 600 * MIB, 10 << 30] {
            // The estimator adds its own 3% to a job's recorded peak.
            let e = est((peak as f64 * 1.03) as u64, Source::JobHistory);
            let (r, _) = request(e, 0, false, l).unwrap();
            assert!(
                r >= peak && r as f64 <= 1.3 * peak as f64 + 32.0 * MIB as f64,
                "{peak} {r}"
            );
        }
    }

    #[test]
    fn buckets_round_up_by_at_most_a_sixteenth_or_16m() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 16 * MIB);
        assert_eq!(bucket(100 * MIB), 112 * MIB);
        assert_eq!(bucket(1000 * MIB), 1024 * MIB);
        assert_eq!(bucket(1025 * MIB), 1088 * MIB);
        for x in (1..5000).map(|i| i * 3 * MIB + 12345) {
            let b = bucket(x);
            assert!(
                b >= x && (b - x) as f64 <= (x as f64 / 16.0).max(16.0 * MIB as f64),
                "{x} {b}"
            );
        }
    }

    #[test]
    fn probes_spread_over_the_sweep() {
        assert_eq!(probes(&[4, 5]), [4, 5]);
        assert_eq!(probes(&(0..8).collect::<Vec<_>>()), [0, 4, 7]);
        assert_eq!(probes(&(10..13).collect::<Vec<_>>()), [10, 11, 12]);
        // √100 = 10 probes, evenly spread.
        assert_eq!(
            probes(&(0..100).collect::<Vec<_>>()),
            [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
        );
    }

    #[test]
    fn oom_raises_by_half_within_the_cap() {
        let l = Limits::new(1 << 30, None);
        assert_eq!(after_oom(200 * MIB, 200 * MIB, l), Some(304 * MIB));
        assert_eq!(after_oom(200 * MIB, 100 * MIB, l), Some(304 * MIB));
        assert_eq!(after_oom(800 * MIB, 800 * MIB, l), Some(1 << 30));
        assert_eq!(after_oom(1 << 30, 1 << 30, l), None);
    }

    #[test]
    fn verdicts() {
        let ok = Some((Some(0), None, false));
        assert_eq!(verdict("COMPLETED", ok), Verdict::Succeeded);
        assert_eq!(verdict("OUT_OF_MEMORY", ok), Verdict::Oom);
        assert_eq!(
            verdict("COMPLETED", Some((Some(0), None, true))),
            Verdict::Oom
        );
        assert_eq!(
            verdict("FAILED", Some((Some(3), None, false))),
            Verdict::Failed { code: Some(3) }
        );
        assert_eq!(
            verdict("FAILED", Some((None, Some(11), false))),
            Verdict::Signaled { signal: 11 }
        );
        assert_eq!(verdict("FAILED", None), Verdict::Failed { code: None });
        for s in ["TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL"] {
            assert_eq!(verdict(s, None), Verdict::Lost);
            assert!(is_terminal(s));
        }
        assert_eq!(verdict("CANCELLED", None), Verdict::Cancelled);
        assert!(!is_terminal("RUNNING") && !is_terminal("PENDING") && !is_terminal("COMPLETING"));
    }

    #[test]
    fn equal_requests_share_an_array() {
        let g = arrays(&[(0, 1, 5), (1, 1, 7), (2, 2, 5)]);
        assert_eq!(g, vec![(5, vec![(0, 1), (2, 2)]), (7, vec![(1, 1)])]);
    }
}
