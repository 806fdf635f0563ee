//! The truth about memory and CPUs where this process runs: cgroup v1/v2/hybrid detection,
//! limits walked up the hierarchy, usage, working set, pressure, host fallback.
//!
//! Every read goes through [`Fs`], so a fixture tree can stand in for a machine. Knows nothing of jobs.

mod cgroup_file;
mod cpus;
mod host;
mod layout;
mod memory;
mod mountinfo;
mod v1;
mod v2;
mod values;

pub use cgroup_file::CgroupLine;
pub use host::{Host, parse_meminfo};
pub use mountinfo::Mount;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Reads /proc and /sys under a root directory (`/` on a real machine, a fixture tree in tests).
#[derive(Debug, Clone)]
pub struct Fs {
    root: PathBuf,
}

impl Fs {
    pub fn new(root: Option<&Path>) -> Fs {
        Fs {
            root: root
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of an absolute machine path (`/proc/meminfo` → `<root>/proc/meminfo`).
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.root.join(abs.strip_prefix("/").unwrap_or(abs))
    }

    pub fn read_to_string(&self, abs: impl AsRef<Path>) -> io::Result<String> {
        std::fs::read_to_string(self.path(abs))
    }
}

/// Which hierarchy the memory controller was found on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Where this process's memory cgroup is, resolved once (mountinfo and /proc/self/cgroup).
#[derive(Debug, Clone)]
pub struct Layout {
    /// None: no memory cgroup (host figures only).
    pub version: Option<CgroupVersion>,
    /// The path in the hierarchy, as /proc/self/cgroup says (`/docker/abc`).
    pub cgroup_path: Option<String>,
    /// The leaf's directory as a machine path (`/sys/fs/cgroup/memory/docker/abc`), not joined with the root.
    pub dir: Option<PathBuf>,
    /// The mount point the walk stops at (inclusive), as a machine path.
    pub mount_point: Option<PathBuf>,
}

/// PSI memory pressure (percent of time stalled over the last 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Pressure {
    pub some_avg10: f64,
    pub full_avg10: f64,
}

/// One reading of memory where this process runs. Serialized as `memsweep mem --json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MemStatus {
    /// "cgroup2", "cgroup1" or "host".
    pub source: &'static str,
    pub cgroup_path: Option<String>,
    /// Minimum limit over the leaf and its ancestors up to the mount point (v1 includes
    /// hierarchical_memory_limit); None when unlimited.
    pub cgroup_limit_bytes: Option<u64>,
    /// Which cgroup directory (machine path) the effective cgroup limit comes from, and how many
    /// levels above the leaf; "hierarchical_memory_limit of <leaf dir>" with level null when only
    /// v1's hierarchical_memory_limit shows it (an ancestor the container cannot see).
    pub limit_from: Option<String>,
    pub limit_level: Option<u32>,
    /// min(cgroup_limit_bytes, host MemTotal).
    pub limit_bytes: u64,
    pub usage_bytes: u64,
    pub working_set_bytes: u64,
    /// Reclaimable page cache (inactive file) at the leaf.
    pub inactive_file_bytes: Option<u64>,
    /// min over limited levels of (limit − that level's working set), floored at 0, at most
    /// host MemAvailable; MemAvailable when nothing is limited.
    pub available_bytes: u64,
    pub host_total_bytes: u64,
    pub host_available_bytes: u64,
    /// Host SwapTotal (what `free` shows as swap).
    pub host_swap_total_bytes: u64,
    /// Swap the cgroup may use (v2 memory.swap.max, v1 memsw − memory limit), min over levels;
    /// None when the cgroup sets no swap limit (or has no swap accounting).
    pub swap_limit_bytes: Option<u64>,
    /// v2 memory.high (the throttle), min over levels; None on v1 or when unset.
    pub memory_high_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    pub pressure: Option<Pressure>,
    /// Effective CPUs: min of the CPU quota, the cpuset and the online CPUs.
    pub cpus: Option<f64>,
    /// Things the user should know (an unreadable usage file, no mountinfo); the commands print
    /// them on stderr.
    pub warnings: Vec<String>,
}

/// A resolved probe: parse the layout once, then read figures as often as needed (cheaply).
#[derive(Debug, Clone)]
pub struct Probe {
    fs: Fs,
    layout: Layout,
    /// The memory cgroup and its levels (leaf first, up to the mount point).
    mem: Option<(layout::Resolved, Vec<PathBuf>)>,
    cpus: cpus::CpuLayout,
    /// Warnings found while resolving, repeated in every status.
    notes: Vec<String>,
}

impl Probe {
    /// Resolve the layout. Errors (exit 2) when the root has no /proc/meminfo or no
    /// /proc/self/cgroup (on `/` a missing /proc/self/cgroup means a kernel without cgroups:
    /// host figures).
    pub fn new(fs: Fs) -> anyhow::Result<Probe> {
        let custom_root = fs.root() != Path::new("/");
        let where_ = || {
            if custom_root {
                format!(
                    " under {} (the root given by --root or MEMSWEEP_ROOT; it must hold proc/ and \
                     sys/ laid out like a machine's /)",
                    fs.root().display()
                )
            } else {
                String::new()
            }
        };
        let meminfo = fs.read_to_string("/proc/meminfo").map_err(|e| {
            crate::exit::usage(format!("cannot read /proc/meminfo{} ({e})", where_()))
        })?;
        parse_meminfo(&meminfo).map_err(|e| {
            crate::exit::usage(format!("/proc/meminfo{} is not usable: {e}", where_()))
        })?;
        let mut notes = vec![];
        let lines = match fs.read_to_string("/proc/self/cgroup") {
            Ok(t) => cgroup_file::parse(&t),
            Err(e) if custom_root => {
                return Err(crate::exit::usage(format!(
                    "cannot read /proc/self/cgroup{} ({e})",
                    where_()
                )));
            }
            Err(_) => vec![],
        };
        let mounts = match fs.read_to_string("/proc/self/mountinfo") {
            Ok(t) => Some(mountinfo::parse(&t)),
            Err(_) if lines.is_empty() => None,
            Err(e) => {
                notes.push(format!(
                    "cannot read /proc/self/mountinfo ({e}); assuming cgroups are mounted at \
                     /sys/fs/cgroup"
                ));
                None
            }
        };
        let mem = layout::memory(&fs, &lines, mounts.as_deref()).map(|r| {
            let levels = r.levels();
            (r, levels)
        });
        let cpus = cpus::CpuLayout::resolve(&fs, &lines, mounts.as_deref());
        let layout = match &mem {
            Some((r, _)) => Layout {
                version: Some(r.version),
                cgroup_path: Some(r.cgroup_path.clone()),
                dir: Some(r.dir.clone()),
                mount_point: Some(r.mount_point.clone()),
            },
            None => Layout {
                version: None,
                cgroup_path: None,
                dir: None,
                mount_point: None,
            },
        };
        Ok(Probe {
            fs,
            layout,
            mem,
            cpus,
            notes,
        })
    }

    pub fn fs(&self) -> &Fs {
        &self.fs
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Read every figure now: /proc/meminfo, the memory files of each level, the CPU files.
    /// Errors when /proc/meminfo has no MemTotal or a limit file holds garbage.
    pub fn status(&self) -> anyhow::Result<MemStatus> {
        let meminfo = self
            .fs
            .read_to_string("/proc/meminfo")
            .map_err(|e| anyhow::anyhow!("cannot read /proc/meminfo ({e})"))?;
        let host = parse_meminfo(&meminfo).map_err(|e| {
            anyhow::anyhow!(
                "{} is not usable: {e}",
                self.fs.path("/proc/meminfo").display()
            )
        })?;
        let mut warnings = self.notes.clone();
        let mut status = match &self.mem {
            Some((r, levels)) => memory::read(&self.fs, r, levels, &host, &mut warnings)?,
            None => host_status(&self.fs, &host),
        };
        status.cpus = self.cpus.read(&self.fs);
        status.warnings = warnings;
        Ok(status)
    }
}

/// No memory cgroup: the host's figures, as `free` would give them.
fn host_status(fs: &Fs, host: &Host) -> MemStatus {
    MemStatus {
        source: "host",
        cgroup_path: None,
        cgroup_limit_bytes: None,
        limit_from: None,
        limit_level: None,
        limit_bytes: host.total,
        usage_bytes: host.used(),
        working_set_bytes: host.used(),
        inactive_file_bytes: None,
        available_bytes: host.available,
        host_total_bytes: host.total,
        host_available_bytes: host.available,
        host_swap_total_bytes: host.swap_total,
        swap_limit_bytes: None,
        memory_high_bytes: None,
        peak_bytes: None,
        oom_kills: None,
        pressure: memory::host_pressure(fs),
        cpus: None,
        warnings: vec![],
    }
}
