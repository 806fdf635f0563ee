//! The memory budget (limit − reserve) and the parallel cap (`-j`): the two numbers every
//! admission decision is checked against.

use serde::Serialize;

use crate::size::{self, SizeSpec};

const MIB: u64 = 1 << 20;

/// The reserve memsweep keeps free when `--reserve` is not given: max(5% of the limit, 256 MiB),
/// as documented (issue 3, README). A shell, an SSH session and memsweep itself hold under
/// 30 MiB; the rest is headroom for growth between two samples before a pause or requeue takes
/// effect. In small containers this is a large share (17% of 1.5 GiB); `--reserve` lowers it.
pub fn default_reserve(limit: u64) -> u64 {
    (limit / 20).max(256 * MIB)
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
    fn default_reserve_is_5_percent_or_256_mib_whichever_is_more() {
        assert_eq!(default_reserve(1536 * MIB), 256 * MIB);
        assert_eq!(default_reserve(GIB), 256 * MIB);
        assert_eq!(default_reserve(4 * GIB), 256 * MIB);
        // The crossover: 5% of 5 GiB is exactly 256 MiB.
        assert_eq!(default_reserve(5 * GIB), 256 * MIB);
        assert_eq!(default_reserve(128 * GIB), 128 * GIB / 20);
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
