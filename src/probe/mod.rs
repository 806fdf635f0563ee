//! The truth about memory and CPUs where this process runs: cgroup v1/v2/hybrid detection,
//! limits walked up the hierarchy, usage, working set, pressure, host fallback.
//!
//! Every read goes through [`Fs`], so a fixture tree can stand in for a machine. Knows nothing of jobs.
//! [`Probe::new`] parses /proc/self/cgroup (`cgroup_file`) and mountinfo (`mountinfo`) once and
//! resolves directories (`layout`); [`Probe::status`] only reads the figure files (`memory` with
//! the per-version names in `v1`/`v2`, `host`, `cpus`), so it is cheap enough to call every 200 ms.

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
        read_small_string(self.path(abs))
    }

    /// Like [`Self::read_to_string`], but invalid UTF-8 becomes U+FFFD instead of an error, so
    /// a file of garbage reads as garbage (and is reported as such) rather than as a missing file.
    pub fn read_lossy(&self, abs: impl AsRef<Path>) -> io::Result<String> {
        let bytes = read_small(self.path(abs))?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// The whole of a small kernel file (/proc, cgroupfs, sysfs) in one `read` of up to 4 KiB (then
/// more as needed) plus the `read` that finds its end: `std::fs::read` asks `statx` for a size
/// these files do not report and then probes from 32 bytes up, ~10 syscalls for a 300-byte
/// `memory.stat`. The runner reads a few such files per job and a dozen per sample.
pub fn read_small(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// [`read_small`] as text (invalid UTF-8 is an error, as `std::fs::read_to_string`'s).
pub fn read_small_string(path: impl AsRef<Path>) -> io::Result<String> {
    String::from_utf8(read_small(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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
    /// "cgroup" (the group's own memory.pressure) or "host" (/proc/pressure/memory).
    pub pressure_from: Option<&'static str>,
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
    /// The last CPU figure and when it was read: CPU quotas and sets change rarely, and their
    /// five files were a third of a sample's reads.
    cpus_read: std::cell::Cell<Option<(std::time::Instant, Option<f64>)>>,
    /// Warnings found while resolving, repeated in every status.
    notes: Vec<String>,
}

/// [`Probe::status`] rereads the CPU files at most this often.
const CPUS_REREAD: std::time::Duration = std::time::Duration::from_secs(1);

impl Probe {
    /// Resolve the layout. Errors (exit 2) when the root has no usable /proc/meminfo. A missing
    /// /proc/self/cgroup means a kernel without cgroups: host figures (with a warning under a
    /// custom root, where it may also be a tree that is not laid out like a machine).
    pub fn new(fs: Fs) -> anyhow::Result<Probe> {
        Probe::new_from(fs, "/proc/self/cgroup")
    }

    /// The probe of another process's memory cgroup (`memsweep monitor --pid`): its
    /// `/proc/PID/cgroup`, read against this process's mounts.
    pub fn for_pid(fs: Fs, pid: u32) -> anyhow::Result<Probe> {
        let file = format!("/proc/{pid}/cgroup");
        if fs.read_lossy(&file).is_err() {
            return Err(crate::exit::usage(format!(
                "--pid {pid}: no such process (cannot read {file})"
            )));
        }
        Probe::new_from(fs, &file)
    }

    /// The probe of a memory cgroup directory given as a machine path (`memsweep monitor
    /// --cgroup PATH`): it must lie in the memory hierarchy this process sees.
    pub fn for_dir(fs: Fs, dir: &Path) -> anyhow::Result<Probe> {
        let mut p = Probe::new(fs)?;
        let Some((own, _)) = &p.mem else {
            return Err(crate::exit::usage(format!(
                "--cgroup {}: no memory cgroup hierarchy is mounted here",
                dir.display()
            )));
        };
        let dir = dir.to_path_buf();
        if !dir.starts_with(&own.mount_point) || !p.fs.path(&dir).is_dir() {
            return Err(crate::exit::usage(format!(
                "--cgroup {}: not a directory of the memory cgroup hierarchy at {}",
                dir.display(),
                own.mount_point.display()
            )));
        }
        let rel = dir.strip_prefix(&own.mount_point).unwrap_or(Path::new(""));
        let r = layout::Resolved {
            version: own.version,
            cgroup_path: format!("/{}", rel.display()),
            mount_point: own.mount_point.clone(),
            dir,
        };
        p.layout = Layout {
            version: Some(r.version),
            cgroup_path: Some(r.cgroup_path.clone()),
            dir: Some(r.dir.clone()),
            mount_point: Some(r.mount_point.clone()),
        };
        let levels = r.levels();
        p.mem = Some((r, levels));
        Ok(p)
    }

    fn new_from(fs: Fs, cgroup_file: &str) -> anyhow::Result<Probe> {
        let custom_root = fs.root() != Path::new("/");
        // Under a custom root, also say what the root must look like.
        let fail = |what: String| {
            let hint = if custom_root {
                ". --root / MEMSWEEP_ROOT must name a directory laid out like a machine's / \
                 (proc/meminfo, proc/self/cgroup, proc/self/mountinfo, sys/fs/cgroup/...)"
            } else {
                ""
            };
            crate::exit::usage(format!("{what}{hint}"))
        };
        let shown = |abs: &str| fs.path(abs).display().to_string();
        let meminfo = fs
            .read_lossy("/proc/meminfo")
            .map_err(|e| fail(format!("cannot read {} ({e})", shown("/proc/meminfo"))))?;
        parse_meminfo(&meminfo).map_err(|e| fail(format!("{}: {e}", shown("/proc/meminfo"))))?;
        let mut notes = vec![];
        // No /proc/self/cgroup is a kernel without cgroups: host figures, as on a real machine.
        let lines = match fs.read_lossy(cgroup_file) {
            Ok(t) => cgroup_file::parse(&t),
            Err(e) if custom_root => {
                notes.push(format!(
                    "cannot read {} ({e}); no cgroup is assumed (host figures)",
                    shown(cgroup_file)
                ));
                vec![]
            }
            Err(_) => vec![],
        };
        let mounts = match fs.read_lossy("/proc/self/mountinfo") {
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
            cpus_read: std::cell::Cell::new(None),
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
            .read_lossy("/proc/meminfo")
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
        status.cpus = match self.cpus_read.get() {
            Some((at, cpus)) if at.elapsed() < CPUS_REREAD => cpus,
            _ => {
                let cpus = self.cpus.read(&self.fs);
                self.cpus_read.set(Some((std::time::Instant::now(), cpus)));
                cpus
            }
        };
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
        pressure_from: memory::host_pressure(fs).map(|_| "host"),
        cpus: None,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Fs {
        Fs::new(Some(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        ))
    }

    #[test]
    fn layout_gives_exec_the_leaf_directory_and_mount_point() {
        let p = Probe::new(fixture("v1-nested-ancestor-limit")).unwrap();
        let l = p.layout();
        assert_eq!(l.version, Some(CgroupVersion::V1));
        assert_eq!(
            l.cgroup_path.as_deref(),
            Some("/user.slice/user-1000.slice/session-1.scope")
        );
        let dir = l.dir.as_ref().unwrap();
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/memory/user.slice/user-1000.slice/session-1.scope")
        );
        assert_eq!(
            l.mount_point.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert!(p.fs().path(dir).join("memory.limit_in_bytes").is_file());

        let host = Probe::new(fixture("no-cgroup")).unwrap();
        assert_eq!(host.layout().version, None);
        assert_eq!(host.layout().dir, None);
    }

    #[test]
    fn status_rereads_the_files_every_time() {
        let t = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("proc/self/cgroup", "0::/job\n");
        w(
            "proc/self/mountinfo",
            "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        w(
            "proc/meminfo",
            "MemTotal: 1048576 kB\nMemAvailable: 524288 kB\n",
        );
        w("sys/fs/cgroup/job/memory.max", "104857600\n");
        w("sys/fs/cgroup/job/memory.current", "10485760\n");
        let p = Probe::new(Fs::new(Some(t.path()))).unwrap();
        let a = p.status().unwrap();
        assert_eq!(a.available_bytes, 90 << 20);
        w("sys/fs/cgroup/job/memory.current", "94371840\n");
        w("sys/fs/cgroup/job/memory.max", "209715200\n");
        let b = p.status().unwrap();
        assert_eq!(b.usage_bytes, 90 << 20);
        assert_eq!(b.cgroup_limit_bytes, Some(200 << 20));
        assert_eq!(b.available_bytes, 110 << 20);
        w("sys/fs/cgroup/job/memory.max", "max\n");
        let c = p.status().unwrap();
        assert_eq!(c.cgroup_limit_bytes, None);
        assert_eq!(c.available_bytes, 512 << 20);
    }
}
