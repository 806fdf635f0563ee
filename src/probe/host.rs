//! Host figures from /proc/meminfo: what `free` shows, and the ceiling for every cgroup figure.

/// The host's memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl Host {
    /// What the host has in use (`free`'s "used" column, near enough): MemTotal − MemAvailable.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }
}

/// Why /proc/meminfo could not give the host's figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeminfoError {
    #[error("no readable MemTotal line")]
    NoTotal,
}

/// Parse /proc/meminfo. MemTotal is required. MemAvailable appeared in Linux 3.14; older kernels
/// get the classic estimate MemFree + Buffers + Cached. Missing swap lines mean no swap.
pub fn parse_meminfo(text: &str) -> Result<Host, MeminfoError> {
    let get = |key: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, rest) = l.split_once(':')?;
            if k.trim() != key {
                return None;
            }
            let mut it = rest.split_whitespace();
            let v: u64 = it.next()?.parse().ok()?;
            match it.next() {
                None => Some(v),
                Some(u) if u.eq_ignore_ascii_case("kb") => v.checked_mul(1024),
                Some(_) => None,
            }
        })
    };
    let total = get("MemTotal").ok_or(MeminfoError::NoTotal)?;
    let available = get("MemAvailable").unwrap_or_else(|| {
        ["MemFree", "Buffers", "Cached"]
            .iter()
            .filter_map(|k| get(k))
            .fold(0u64, u64::saturating_add)
    });
    Ok(Host {
        total,
        available: available.min(total),
        swap_total: get("SwapTotal").unwrap_or(0),
        swap_free: get("SwapFree").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_meminfo() {
        let h = parse_meminfo(
            "MemTotal:       24684084 kB\nMemFree:        23723052 kB\nMemAvailable:   24378156 kB\nBuffers: 4292 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\n",
        )
        .unwrap();
        assert_eq!(h.total, 24684084 * 1024);
        assert_eq!(h.available, 24378156 * 1024);
        assert_eq!(h.used(), (24684084 - 24378156) * 1024);
        assert_eq!(h.swap_total, 0);
    }

    #[test]
    fn old_kernel_without_memavailable() {
        let h = parse_meminfo(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\nSwapTotal: 50 kB\nSwapFree: 40 kB\n",
        )
        .unwrap();
        assert_eq!(h.available, 310 * 1024);
        assert_eq!(h.swap_total, 50 * 1024);
        assert_eq!(h.swap_free, 40 * 1024);
    }

    #[test]
    fn garbage_meminfo() {
        assert_eq!(parse_meminfo(""), Err(MeminfoError::NoTotal));
        assert_eq!(
            parse_meminfo("MemTotal: lots kB"),
            Err(MeminfoError::NoTotal)
        );
        assert_eq!(parse_meminfo("MemTotal: 5 MB"), Err(MeminfoError::NoTotal));
        assert_eq!(
            parse_meminfo("MemTotal: 99999999999999999999 kB"),
            Err(MeminfoError::NoTotal)
        );
        // MemAvailable above MemTotal (a broken overlay) is capped.
        let h = parse_meminfo("MemTotal: 10 kB\nMemAvailable: 20 kB\n").unwrap();
        assert_eq!(h.available, 10 * 1024);
    }
}
