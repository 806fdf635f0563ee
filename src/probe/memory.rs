//! Reading one cgroup's memory figures and combining the levels into a [`MemStatus`].
//!
//! The walk goes from the leaf up to the mount point (inclusive). The effective limit is the
//! minimum over every level that has one (v1 adds `hierarchical_memory_limit`); headroom is the
//! minimum over those levels of (limit − that level's working set), because any ancestor can be
//! the one that runs out (sysinfo 0.39, lxcfs `get_min_memlimit`); working set = usage − inactive
//! file, which is what the kernel cannot reclaim without swapping and what kubelet evicts on.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::host::Host;
use super::layout::Resolved;
use super::values::{self, Garbage};
use super::{CgroupVersion, Fs, MemStatus, Pressure, v1, v2};

/// The file names one cgroup version uses for the figures both versions have.
#[derive(Debug, Clone, Copy)]
pub struct Files {
    pub limit: &'static str,
    pub usage: &'static str,
    /// memory.stat keys for reclaimable page cache, in order of preference.
    pub inactive_keys: &'static [&'static str],
    pub peak: &'static str,
    /// The file with the `oom_kill` counter.
    pub events: &'static str,
    pub pressure: &'static str,
    /// How this version writes "no limit" (v1: a huge sentinel; v2: the word `max`).
    pub parse_limit: fn(&str) -> Result<Option<u64>, Garbage>,
}

/// One limit that applies to this process, and the working set it is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitLevel {
    pub limit: u64,
    pub working_set: u64,
    /// The directory (machine path) that set it, or "hierarchical_memory_limit of <dir>".
    pub from: String,
    /// Levels above the leaf (0 = the leaf); None for a limit on an ancestor the container cannot see.
    pub level: Option<u32>,
}

/// The effective limit (the smallest; on a tie the one nearest the leaf, visible levels before
/// hierarchical_memory_limit) and the headroom: min over levels of (limit − working set),
/// floored at 0 and never above the host's MemAvailable; MemAvailable when nothing is limited.
pub fn combine(levels: &[LimitLevel], host_available: u64) -> (Option<&LimitLevel>, u64) {
    let effective = levels
        .iter()
        .fold(None::<&LimitLevel>, |best, l| match best {
            Some(b) if b.limit <= l.limit => Some(b),
            _ => Some(l),
        });
    let available = levels
        .iter()
        .map(|l| l.limit.saturating_sub(l.working_set))
        .min()
        .map_or(host_available, |a| a.min(host_available));
    (effective, available)
}

/// Read every figure of a memory cgroup. Errors only when a limit file holds garbage: guessing
/// "unlimited" there is exactly the mistake memsweep exists to prevent.
pub fn read(
    fs: &Fs,
    cg: &Resolved,
    levels: &[PathBuf],
    host: &Host,
    warnings: &mut Vec<String>,
) -> anyhow::Result<MemStatus> {
    let files = match cg.version {
        CgroupVersion::V1 => v1::FILES,
        CgroupVersion::V2 => v2::FILES,
    };
    let leaf = &levels[0];
    let mut reader = Reader {
        fs,
        files,
        warnings,
    };

    // The leaf's usage; a leaf without a usage file (the v2 root, a subtree without the memory
    // controller) borrows the nearest ancestor's, else the host's.
    let leaf_stat = reader.text(leaf, "memory.stat");
    let mut leaf_usage = reader.usage(leaf, leaf_stat.as_deref());
    for dir in &levels[1..] {
        if leaf_usage.is_some() {
            break;
        }
        let stat = reader.text(dir, "memory.stat");
        leaf_usage = reader.usage(dir, stat.as_deref());
    }
    let (usage, inactive) = match leaf_usage {
        Some((u, i)) => (u, i),
        None => (host.used(), None),
    };
    let working_set = usage.saturating_sub(inactive.unwrap_or(0));

    let mut limits = vec![];
    for (depth, dir) in levels.iter().enumerate() {
        let Some(limit) = reader.limit(dir, files.limit)? else {
            continue;
        };
        let ws = if depth == 0 {
            working_set
        } else {
            let stat = reader.text(dir, "memory.stat");
            reader
                .usage(dir, stat.as_deref())
                .map_or(working_set, |(u, i)| u.saturating_sub(i.unwrap_or(0)))
        };
        limits.push(LimitLevel {
            limit,
            working_set: ws,
            from: dir.display().to_string(),
            level: Some(depth as u32),
        });
    }
    let (swap_limit, memory_high) = match cg.version {
        CgroupVersion::V1 => {
            let stat = leaf_stat.as_deref().unwrap_or("");
            let hml = reader.stat_limit(leaf, stat, v1::HIERARCHICAL_LIMIT_KEY)?;
            if let Some(hml) = hml {
                limits.push(LimitLevel {
                    limit: hml,
                    working_set,
                    from: format!("hierarchical_memory_limit of {}", leaf.display()),
                    level: None,
                });
            }
            // memsw is memory + swap: the swap allowance is the difference, per level.
            let mut swaps = vec![];
            for dir in levels {
                let memsw = reader.optional_limit(dir, v1::MEMSW_LIMIT);
                let mem = reader.optional_limit(dir, files.limit);
                if let (Some(sw), Some(m)) = (memsw, mem) {
                    swaps.push(sw.saturating_sub(m));
                }
            }
            let hsw = values::keyed(stat, v1::HIERARCHICAL_MEMSW_KEY)
                .filter(|v| *v < values::UNLIMITED_AT);
            if let (Some(sw), Some(m)) = (hsw, hml) {
                swaps.push(sw.saturating_sub(m));
            }
            (swaps.into_iter().min(), None)
        }
        CgroupVersion::V2 => {
            let swap = levels
                .iter()
                .filter_map(|d| reader.optional_limit(d, v2::SWAP_MAX))
                .min();
            let high = levels
                .iter()
                .filter_map(|d| reader.optional_limit(d, v2::HIGH))
                .min();
            (swap, high)
        }
    };

    let (effective, available) = combine(&limits, host.available);
    let cgroup_limit = effective.map(|l| l.limit);
    let peak = reader
        .text(leaf, files.peak)
        .and_then(|t| values::counter(&t));
    let oom_kills = reader
        .text(leaf, files.events)
        .and_then(|t| values::keyed(&t, "oom_kill"));
    let (pressure, pressure_from) = match reader
        .text(leaf, files.pressure)
        .and_then(|t| values::pressure(&t))
    {
        Some(p) => (Some(p), Some("cgroup")),
        None => {
            let p = host_pressure(fs);
            (p, p.map(|_| "host"))
        }
    };

    Ok(MemStatus {
        source: match cg.version {
            CgroupVersion::V1 => "cgroup1",
            CgroupVersion::V2 => "cgroup2",
        },
        cgroup_path: Some(cg.cgroup_path.clone()),
        cgroup_limit_bytes: cgroup_limit,
        limit_from: effective.map(|l| l.from.clone()),
        limit_level: effective.and_then(|l| l.level),
        limit_bytes: cgroup_limit.map_or(host.total, |l| l.min(host.total)),
        usage_bytes: usage,
        working_set_bytes: working_set,
        inactive_file_bytes: inactive,
        available_bytes: available,
        host_total_bytes: host.total,
        host_available_bytes: host.available,
        host_swap_total_bytes: host.swap_total,
        swap_limit_bytes: swap_limit,
        memory_high_bytes: memory_high,
        peak_bytes: peak,
        oom_kills,
        pressure,
        pressure_from,
        cpus: None,
        warnings: vec![],
    })
}

/// The whole machine's memory pressure (PSI), when the cgroup has none of its own.
pub fn host_pressure(fs: &Fs) -> Option<Pressure> {
    fs.read_lossy("/proc/pressure/memory")
        .ok()
        .and_then(|t| values::pressure(&t))
}

struct Reader<'a> {
    fs: &'a Fs,
    files: Files,
    warnings: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    fn text(&self, dir: &Path, file: &str) -> Option<String> {
        self.fs.read_lossy(dir.join(file)).ok()
    }

    /// (usage, inactive file) of one level; None without a usable usage file.
    fn usage(&mut self, dir: &Path, stat: Option<&str>) -> Option<(u64, Option<u64>)> {
        let text = self.text(dir, self.files.usage)?;
        let Some(usage) = values::counter(&text) else {
            self.warn(format!(
                "{} holds '{}', not a number of bytes; the nearest parent's usage (or else the \
                 host's) stands in for it",
                self.fs.path(dir.join(self.files.usage)).display(),
                values::shorten(text.trim())
            ));
            return None;
        };
        let inactive = stat.and_then(|s| {
            self.files
                .inactive_keys
                .iter()
                .find_map(|k| values::keyed(s, k))
        });
        Some((usage, inactive))
    }

    /// A limit file: None when missing or unlimited, an error when it holds garbage.
    fn limit(&mut self, dir: &Path, file: &str) -> anyhow::Result<Option<u64>> {
        let path = dir.join(file);
        let text = match self.fs.read_lossy(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                self.warn(format!(
                    "cannot read {} ({e}); this level's limit is unknown and ignored",
                    self.fs.path(&path).display()
                ));
                return Ok(None);
            }
        };
        (self.files.parse_limit)(&text).map_err(|Garbage(g)| {
            anyhow!(
                "{} holds '{g}', not a memory limit (a number of bytes{}); memsweep will not \
                 guess how much memory this cgroup may use. Check that file (or the tree given \
                 to --root / MEMSWEEP_ROOT)",
                self.fs.path(&path).display(),
                if file == v2::FILES.limit {
                    " or 'max'"
                } else {
                    ""
                }
            )
        })
    }

    /// A secondary limit (swap, memory.high): garbage only earns a warning.
    fn optional_limit(&mut self, dir: &Path, file: &str) -> Option<u64> {
        let text = self.text(dir, file)?;
        match (self.files.parse_limit)(&text) {
            Ok(v) => v,
            Err(Garbage(g)) => {
                self.warn(format!(
                    "{} holds '{g}', not a size; ignored",
                    self.fs.path(dir.join(file)).display()
                ));
                None
            }
        }
    }

    /// A limit stored as a memory.stat key (v1 hierarchical_memory_limit).
    fn stat_limit(&self, dir: &Path, stat: &str, key: &str) -> anyhow::Result<Option<u64>> {
        let Some(raw) = stat.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(key)).then(|| it.next().unwrap_or(""))
        }) else {
            return Ok(None);
        };
        values::limit(raw).map_err(|Garbage(g)| {
            anyhow!(
                "{} has '{key} {g}', not a memory limit; memsweep will not guess how much memory \
                 this cgroup may use. Check that file (or the tree given to --root / MEMSWEEP_ROOT)",
                self.fs.path(dir.join("memory.stat")).display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvl(limit: u64, ws: u64, from: &str, level: Option<u32>) -> LimitLevel {
        LimitLevel {
            limit,
            working_set: ws,
            from: from.into(),
            level,
        }
    }

    #[test]
    fn no_limit_means_host_available() {
        assert_eq!(combine(&[], 5000), (None, 5000));
    }

    #[test]
    fn headroom_is_the_tightest_level_not_the_smallest_limit() {
        // The leaf has the smaller limit, but its parent is nearly full because of siblings.
        let levels = [
            lvl(1000, 100, "leaf", Some(0)),
            lvl(2000, 1900, "parent", Some(1)),
        ];
        let (eff, avail) = combine(&levels, 1 << 40);
        assert_eq!(eff.unwrap().from, "leaf");
        assert_eq!(avail, 100);
    }

    #[test]
    fn headroom_is_floored_at_zero_and_capped_by_host() {
        let over = [lvl(1000, 1500, "leaf", Some(0))];
        assert_eq!(combine(&over, 1 << 40).1, 0);
        let roomy = [lvl(1 << 40, 0, "leaf", Some(0))];
        assert_eq!(combine(&roomy, 4096).1, 4096);
    }

    #[test]
    fn ties_go_to_the_level_nearest_the_leaf_then_visible_levels() {
        let levels = [
            lvl(1000, 0, "leaf", Some(0)),
            lvl(1000, 0, "parent", Some(1)),
            lvl(1000, 0, "hierarchical_memory_limit of leaf", None),
        ];
        assert_eq!(combine(&levels, 1 << 40).0.unwrap().from, "leaf");
        let hidden = [
            lvl(2000, 0, "leaf", Some(0)),
            lvl(1000, 0, "hierarchical_memory_limit of leaf", None),
        ];
        assert_eq!(combine(&hidden, 1 << 40).0.unwrap().level, None);
    }
}
