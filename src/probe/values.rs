//! Parsers for the values inside cgroup and /proc files: limits (`max`, the v1 "unlimited"
//! sentinels), plain counters, `key value` files (memory.stat, memory.events), PSI lines and
//! CPU lists. Each returns None or an error for garbage; none panics.

use super::Pressure;

/// Any limit at or above 2^62 means "no limit". v1 reports unlimited as LONG_MAX rounded down to
/// the page size: 9223372036854771712 with 4 KiB pages, 9223372036854710272 with 64 KiB pages;
/// a fixed threshold catches both (and any page size) without asking for the page size.
pub const UNLIMITED_AT: u64 = 1 << 62;

/// The content of a limit file was not a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garbage(pub String);

/// A v1 memory limit: a number of bytes; `-1` or a value >= 2^62 = no limit (None).
pub fn limit(text: &str) -> Result<Option<u64>, Garbage> {
    match limit_v2(text)? {
        Some(v) if v >= UNLIMITED_AT => Ok(None),
        v => Ok(v),
    }
}

/// A v2 limit (memory.max, memory.high, memory.swap.max): a number of bytes, or `max` = no limit.
/// The kernel prints "max" for no limit, so any number, however large (2^62 included), is a limit
/// that someone set; only v1 needs the >= 2^62 sentinel rule. `-1` is accepted as "max" too.
pub fn limit_v2(text: &str) -> Result<Option<u64>, Garbage> {
    let t = text.trim();
    if t == "max" || t == "-1" {
        return Ok(None);
    }
    t.parse::<u64>().map(Some).map_err(|_| Garbage(shorten(t)))
}

/// A plain counter such as memory.current; None when it is not a number.
pub fn counter(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line: memory.stat, memory.events,
/// memory.oom_control). None when the key is absent or its value is not a number.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        if it.next()? != key {
            return None;
        }
        it.next()?.parse().ok()
    })
}

/// PSI (`some avg10=0.12 avg60=... total=...` and `full ...`): the avg10 of both lines.
pub fn pressure(text: &str) -> Option<Pressure> {
    let avg10 = |kind: &str| -> Option<f64> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(kind))?;
        let v: f64 = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("avg10="))?
            .parse()
            .ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    Some(Pressure {
        some_avg10: avg10("some")?,
        full_avg10: avg10("full")?,
    })
}

/// Count the CPUs in a kernel CPU list (`0-3,8,10-11` = 7). None for an empty or malformed list
/// (an empty cpuset.cpus in v2 means "inherit", i.e. unknown here).
pub fn cpu_list_count(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for part in t.split(',') {
        let part = part.trim();
        let count = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                (b - a).checked_add(1)?
            }
            None => {
                part.parse::<u32>().ok()?;
                1
            }
        };
        n = n.checked_add(count)?;
    }
    Some(n)
}

/// A v2 `cpu.max` line (`max 100000` or `150000 100000`) as CPUs, None for no quota or garbage.
pub fn cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    if quota == "max" {
        return None;
    }
    quota_cpus(quota.parse().ok()?, period)
}

/// A v1 quota/period pair as CPUs; a negative quota (-1) means no quota.
pub fn quota_cpus(quota: f64, period: f64) -> Option<f64> {
    (quota.is_finite() && period.is_finite() && quota > 0.0 && period > 0.0)
        .then_some(quota / period)
}

/// Keep error messages short when a file holds something huge.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_unlimited_sentinels() {
        assert_eq!(limit("314572800\n"), Ok(Some(314572800)));
        assert_eq!(limit("0"), Ok(Some(0)));
        assert_eq!(limit("max\n"), Ok(None));
        assert_eq!(limit("-1"), Ok(None));
        assert_eq!(
            limit("9223372036854771712"),
            Ok(None),
            "4 KiB-page sentinel"
        );
        assert_eq!(
            limit("9223372036854710272"),
            Ok(None),
            "64 KiB-page sentinel"
        );
        assert_eq!(limit("18446744073709551615"), Ok(None));
        assert_eq!(
            limit(&((1u64 << 62) - 1).to_string()),
            Ok(Some((1 << 62) - 1))
        );
        assert_eq!(limit("4611686018427387904"), Ok(None));
    }

    #[test]
    fn v2_limits_have_no_numeric_sentinel() {
        assert_eq!(limit_v2("max\n"), Ok(None));
        assert_eq!(limit_v2("4611686018427387904"), Ok(Some(1 << 62)));
        assert_eq!(
            limit_v2("9223372036854771712"),
            Ok(Some(9223372036854771712))
        );
        assert_eq!(limit_v2("0\n"), Ok(Some(0)));
        assert!(limit_v2("maximum").is_err());
        assert!(limit_v2("").is_err());
    }

    #[test]
    fn garbage_limits_are_errors() {
        for bad in ["", "lots", "1.5G", "-5", "99999999999999999999999", "12 34"] {
            assert!(limit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(limit(&"x".repeat(100)).unwrap_err().0.len(), 43);
    }

    #[test]
    fn counters_and_keyed_files() {
        assert_eq!(counter("123\n"), Some(123));
        assert_eq!(counter("12a"), None);
        let stat = "cache 10\ninactive_file 4096\ntotal_inactive_file 8192\nweird\nhierarchical_memory_limit x\n";
        assert_eq!(keyed(stat, "inactive_file"), Some(4096));
        assert_eq!(keyed(stat, "total_inactive_file"), Some(8192));
        assert_eq!(keyed(stat, "file"), None, "whole keys only");
        assert_eq!(keyed(stat, "hierarchical_memory_limit"), None);
        assert_eq!(keyed(stat, "missing"), None);
        let events = "low 0\nhigh 3\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "oom"), Some(2));
    }

    #[test]
    fn psi_lines() {
        let p = pressure(
            "some avg10=1.50 avg60=0.20 avg300=0.00 total=123\nfull avg10=0.75 avg60=0.00 avg300=0.00 total=5\n",
        )
        .unwrap();
        assert_eq!(p.some_avg10, 1.5);
        assert_eq!(p.full_avg10, 0.75);
        assert!(pressure("some avg10=1.0 avg60=0 avg300=0 total=0\n").is_none());
        assert!(pressure("some avg10=x\nfull avg10=1\n").is_none());
        assert!(pressure("some avg10=NaN\nfull avg10=1\n").is_none());
        assert!(pressure("").is_none());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list_count("0-3,8,10-11\n"), Some(7));
        assert_eq!(cpu_list_count("0"), Some(1));
        assert_eq!(cpu_list_count("0-1"), Some(2));
        assert_eq!(cpu_list_count("\n"), None);
        assert_eq!(cpu_list_count("3-1"), None);
        assert_eq!(cpu_list_count("a-b"), None);
        assert_eq!(cpu_list_count("0-4294967295,1"), None);
    }

    #[test]
    fn cpu_quotas() {
        assert_eq!(cpu_max("max 100000\n"), None);
        assert_eq!(cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(cpu_max("50000"), Some(0.5));
        assert_eq!(cpu_max("garbage 100000"), None);
        assert_eq!(cpu_max("100 0"), None);
        assert_eq!(cpu_max(""), None);
        assert_eq!(quota_cpus(-1.0, 100000.0), None);
        assert_eq!(quota_cpus(200000.0, 100000.0), Some(2.0));
    }
}
