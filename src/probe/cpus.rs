//! Effective CPUs: the smallest of the CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` /
//! `cpu.cfs_period_us`, walked up to the mount point), the cpuset, and the online CPUs.
//!
//! The cpu and cpuset controllers are found on their own hierarchies (on v1 they are often
//! mounted apart from memory, or joined as `cpu,cpuacct`), so they resolve independently of memory.

use std::path::PathBuf;

use super::cgroup_file::CgroupLine;
use super::layout::{self, Resolved};
use super::mountinfo::Mount;
use super::{CgroupVersion, Fs, values};

/// Where the cpu and cpuset controllers are, resolved once.
#[derive(Debug, Clone, Default)]
pub struct CpuLayout {
    quota: Option<(Resolved, Vec<PathBuf>)>,
    cpuset: Option<(Resolved, Vec<PathBuf>)>,
}

impl CpuLayout {
    pub fn resolve(fs: &Fs, lines: &[CgroupLine], mounts: Option<&[Mount]>) -> CpuLayout {
        let find = |ctrl: &str| {
            layout::v1(fs, lines, mounts, ctrl)
                .or_else(|| layout::v2(fs, lines, mounts, ctrl))
                .map(|r| {
                    let levels = r.levels();
                    (r, levels)
                })
        };
        CpuLayout {
            quota: find("cpu"),
            cpuset: find("cpuset"),
        }
    }

    /// Effective CPUs now, or None when nothing is known (no cgroup figures, no online list).
    pub fn read(&self, fs: &Fs) -> Option<f64> {
        let quota = self.quota.as_ref().and_then(|(r, levels)| {
            levels
                .iter()
                .filter_map(|d| match r.version {
                    CgroupVersion::V2 => fs
                        .read_lossy(d.join("cpu.max"))
                        .ok()
                        .and_then(|t| values::cpu_max(&t)),
                    CgroupVersion::V1 => {
                        let num = |f: &str| -> Option<f64> {
                            fs.read_lossy(d.join(f)).ok()?.trim().parse().ok()
                        };
                        values::quota_cpus(num("cpu.cfs_quota_us")?, num("cpu.cfs_period_us")?)
                    }
                })
                .min_by(f64::total_cmp)
        });
        // The nearest level that states its CPUs (an empty v2 cpuset.cpus means "inherit").
        let cpuset = self.cpuset.as_ref().and_then(|(_, levels)| {
            levels.iter().find_map(|d| {
                [
                    "cpuset.cpus.effective",
                    "cpuset.effective_cpus",
                    "cpuset.cpus",
                ]
                .iter()
                .find_map(|f| {
                    let t = fs.read_lossy(d.join(f)).ok()?;
                    values::cpu_list_count(&t)
                })
            })
        });
        let online = fs
            .read_lossy("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|t| values::cpu_list_count(&t));
        [quota, cpuset.map(f64::from), online.map(f64::from)]
            .into_iter()
            .flatten()
            .min_by(f64::total_cmp)
    }
}
