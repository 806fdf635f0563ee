//! The memory budget (limit − reserve) and the parallel cap (`-j`): the two numbers every
//! admission decision is checked against.

use serde::Serialize;

use crate::size::{self, SizeSpec};

const MIB: u64 = 1 << 20;

/// The reserve memsweep keeps free when `--reserve` is not given:
/// max(5% of the limit, 10% of it clamped to 128..=256 MiB).
/// A shell, an SSH session and memsweep itself hold under 30 MiB; the rest of the reserve is
/// headroom for growth between two samples (25 ms) before a pause or requeue takes effect, which
/// scales with the jobs a limit can hold. A flat 256 MiB took 17% of a 1.5 GiB container (25% of
/// 1 GiB) for that; 10% with a 128 MiB floor (4× what the shell needs, so a shell started during
/// a sweep and a late sample still fit) gives 154 MiB at 1.5 GiB, 256 MiB from 2.5 GiB up, and
/// 5% from 5 GiB up, as before.
pub fn default_reserve(limit: u64) -> u64 {
    (limit / 20).max((limit / 10).clamp(128 * MIB, 256 * MIB))
}

/// What memsweep plans with: jobs together may hold `budget` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub limit: u64,
    pub reserve: u64,
    pub budget: u64,
}

impl Budget {
    /// Budget = limit − reserve. A reserve that leaves nothing is a usage error (exit 2)
    /// naming `--reserve` or `--limit`.
    pub fn new(limit: u64, reserve: Option<SizeSpec>) -> anyhow::Result<Budget> {
        let given = reserve.is_some();
        let reserve = reserve.map_or_else(|| default_reserve(limit), |r| r.resolve(limit));
        if reserve >= limit {
            let fix = if given {
                "lower --reserve"
            } else {
                "give a larger --limit, or a smaller --reserve"
            };
            return Err(crate::exit::usage(format!(
                "the reserve ({}) leaves nothing of the memory limit ({}) for jobs; {fix}",
                size::human(reserve),
                size::human(limit)
            )));
        }
        Ok(Budget {
            limit,
            reserve,
            budget: limit - reserve,
        })
    }

    /// The working set at which memsweep stops a job itself rather than let the kernel's OOM
    /// killer choose one: half-way into the reserve.
    pub fn critical(&self) -> u64 {
        self.limit - self.reserve / 2
    }
}

/// The cap on parallel jobs: `-j N` as given, `-j 0` = none (memory only), default = effective
/// CPUs rounded down (at least 1; 1 when the CPU count is unknown).
pub fn parallel_cap(jobs: Option<usize>, cpus: Option<f64>) -> Option<usize> {
    match jobs {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(
            cpus.filter(|c| c.is_finite() && *c >= 1.0)
                .map_or(1, |c| c.floor() as usize),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const GIB: u64 = 1 << 30;

    #[test]
    fn default_reserve_is_10_percent_clamped_to_128_256_mib_or_5_percent() {
        // Small containers: 10% (a 1.5 GiB one keeps 154 MiB, its budget 1382 MiB, not 1280).
        assert_eq!(default_reserve(1536 * MIB), 1536 * MIB / 10);
        assert_eq!(default_reserve(2 * GIB), 2 * GIB / 10);
        // Never below 128 MiB: the shell and SSH need it whatever the limit.
        assert_eq!(default_reserve(GIB), 128 * MIB);
        assert_eq!(default_reserve(256 * MIB), 128 * MIB);
        // 256 MiB from 2.5 GiB on, as before, and 5% on big machines.
        assert_eq!(default_reserve(4 * GIB), 256 * MIB);
        assert_eq!(default_reserve(128 * GIB), 128 * GIB / 20);
        // The crossover: 5% of 5 GiB is exactly 256 MiB.
        assert_eq!(default_reserve(5 * GIB), 256 * MIB);
    }

    #[test]
    fn budget_is_limit_minus_reserve() {
        let b = Budget::new(4 * GIB, None).unwrap();
        assert_eq!(b.budget, 4 * GIB - 256 * MIB);
        assert_eq!(b.critical(), 4 * GIB - 128 * MIB);
        let b = Budget::new(2 * GIB, Some(SizeSpec::Percent(25.0))).unwrap();
        assert_eq!(b.reserve, 512 * MIB);
        assert_eq!(b.budget, 1536 * MIB);
        let b = Budget::new(GIB, Some(SizeSpec::Bytes(0))).unwrap();
        assert_eq!(b.budget, GIB);
    }

    #[test]
    fn a_reserve_that_leaves_nothing_is_a_usage_error() {
        let e = Budget::new(100 * MIB, None).unwrap_err();
        assert!(e.downcast_ref::<crate::exit::UsageError>().is_some());
        assert!(e.to_string().contains("--limit"), "{e}");
        let e = Budget::new(GIB, Some(SizeSpec::Bytes(GIB))).unwrap_err();
        assert!(e.to_string().contains("--reserve"), "{e}");
    }

    #[test]
    fn parallel_cap_defaults_to_whole_cpus() {
        assert_eq!(parallel_cap(None, Some(2.0)), Some(2));
        assert_eq!(parallel_cap(None, Some(3.7)), Some(3));
        assert_eq!(parallel_cap(None, Some(0.5)), Some(1));
        assert_eq!(parallel_cap(None, None), Some(1));
        assert_eq!(parallel_cap(Some(0), Some(8.0)), None);
        assert_eq!(parallel_cap(Some(12), Some(2.0)), Some(12));
    }
}
