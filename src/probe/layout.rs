//! Where a controller's cgroup directory is: version detection and the mount-root problem.
//!
//! For each controller, /proc/self/cgroup gives a path in the hierarchy and mountinfo gives the
//! mounts of that hierarchy with their roots. The directory is mount point + (path − root), with the
//! root matched as a whole-component prefix (`/docker/abc` is not a prefix of `/docker/abc-x`).
//! When that directory does not exist (a process moved after start, a namespace the path escapes),
//! shorter suffixes of the path are tried under the mount point, then the mount point itself —
//! the JDK's answer (JDK-8343191). Memory on a v1 hierarchy wins (legacy and hybrid), then v2.

use std::path::{Component, Path, PathBuf};

use super::cgroup_file::{self, CgroupLine};
use super::mountinfo::Mount;
use super::{CgroupVersion, Fs};

/// A controller's cgroup, resolved to a directory (machine paths, not joined with the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub version: CgroupVersion,
    /// The path as /proc/self/cgroup gives it.
    pub cgroup_path: String,
    pub mount_point: PathBuf,
    /// The leaf directory; always `mount_point` or below it.
    pub dir: PathBuf,
}

impl Resolved {
    /// The leaf and its ancestors up to the mount point (inclusive), leaf first.
    pub fn levels(&self) -> Vec<PathBuf> {
        let mut out = vec![self.dir.clone()];
        let mut cur = self.dir.as_path();
        while cur != self.mount_point {
            match cur.parent() {
                Some(p) if p.starts_with(&self.mount_point) => {
                    out.push(p.to_path_buf());
                    cur = p;
                }
                _ => break,
            }
        }
        out
    }
}

const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

/// The memory controller's cgroup: v1 when the memory controller is on a v1 hierarchy (legacy or
/// hybrid), else v2 when the unified hierarchy carries memory, else None (host figures only).
/// `mounts` is None when mountinfo could not be read; the usual mount points are assumed then.
pub fn memory(fs: &Fs, lines: &[CgroupLine], mounts: Option<&[Mount]>) -> Option<Resolved> {
    v1(fs, lines, mounts, "memory").or_else(|| v2(fs, lines, mounts, "memory"))
}

/// A v1 controller's cgroup (`cpu`, `cpuset`, `memory`), found through its own mount.
pub fn v1(
    fs: &Fs,
    lines: &[CgroupLine],
    mounts: Option<&[Mount]>,
    controller: &str,
) -> Option<Resolved> {
    let line = cgroup_file::v1_line(lines, controller)?;
    let candidates: Vec<(PathBuf, String)> = match mounts {
        Some(m) => dedup(m.iter().filter(|m| m.is_v1_with(controller))),
        // Without mountinfo: the conventional places (libuv, sysinfo, Rust std do the same).
        None => {
            let mut names = vec![controller.to_string()];
            if controller == "cpu" {
                names.push("cpu,cpuacct".to_string());
            }
            names
                .into_iter()
                .map(|n| (Path::new(SYS_FS_CGROUP).join(n), "/".to_string()))
                .filter(|(mp, _)| fs.path(mp).is_dir())
                .collect()
        }
    };
    pick(fs, &candidates, &line.path).map(|(mount_point, dir)| Resolved {
        version: CgroupVersion::V1,
        cgroup_path: line.path.clone(),
        mount_point,
        dir,
    })
}

/// The unified hierarchy's cgroup, if that hierarchy offers `controller` (its `cgroup.controllers`
/// at the mount point lists it, or cannot be read — sparse fixtures and old kernels).
pub fn v2(
    fs: &Fs,
    lines: &[CgroupLine],
    mounts: Option<&[Mount]>,
    controller: &str,
) -> Option<Resolved> {
    let line = cgroup_file::v2_line(lines)?;
    let candidates: Vec<(PathBuf, String)> = match mounts {
        Some(m) => dedup(m.iter().filter(|m| m.is_v2())),
        None => {
            let mp = PathBuf::from(SYS_FS_CGROUP);
            if fs.path(mp.join("cgroup.controllers")).is_file() {
                vec![(mp, "/".to_string())]
            } else {
                vec![]
            }
        }
    };
    let candidates: Vec<_> = candidates
        .into_iter()
        .filter(|(mp, _)| {
            fs.read_lossy(mp.join("cgroup.controllers"))
                .map(|c| c.split_whitespace().any(|x| x == controller))
                .unwrap_or(true)
        })
        .collect();
    let r = pick(fs, &candidates, &line.path).map(|(mount_point, dir)| Resolved {
        version: CgroupVersion::V2,
        cgroup_path: line.path.clone(),
        mount_point,
        dir,
    })?;
    // Without a cgroup.controllers to say so: on a pure v2 machine the unified hierarchy is the
    // only place the controller can be, so it is taken; on a hybrid one (v1 lines in
    // /proc/self/cgroup) the cgroup2 mount is often empty, so only its files are evidence.
    let listed = fs.path(r.mount_point.join("cgroup.controllers")).is_file();
    let hybrid = lines.iter().any(|l| !l.is_v2());
    (listed || !hybrid || r.levels().iter().any(|d| has_files_of(fs, d, controller))).then_some(r)
}

/// Whether `dir` holds an interface file of `controller` (`memory.max`, `cpu.max`, ...).
fn has_files_of(fs: &Fs, dir: &Path, controller: &str) -> bool {
    let prefix = format!("{controller}.");
    std::fs::read_dir(fs.path(dir)).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // PSI files and cpu.stat exist in every v2 cgroup, controller or not.
            name.starts_with(&prefix) && !name.ends_with(".pressure") && name != "cpu.stat"
        })
    })
}

/// Mounts as (mount point, root); of several mounts on one mount point only the last is visible.
fn dedup<'a>(mounts: impl Iterator<Item = &'a Mount>) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = vec![];
    for m in mounts {
        let mp = PathBuf::from(&m.mount_point);
        out.retain(|(p, _)| *p != mp);
        out.push((mp, m.root.clone()));
    }
    out
}

/// Choose among mounts of one hierarchy: a mount whose root is a prefix of the path and whose
/// directory exists first, then one under /sys/fs/cgroup (the JDK's preference over `/cgroup-in`
/// style duplicates), then one where some candidate exists; later mounts win ties.
fn pick(fs: &Fs, mounts: &[(PathBuf, String)], path: &str) -> Option<(PathBuf, PathBuf)> {
    mounts
        .iter()
        .filter_map(|(mp, root)| {
            let exact = exact_dir(mp, root, path);
            let exact_exists = exact.as_ref().is_some_and(|d| fs.path(d).is_dir());
            let under_sys = mp.starts_with(SYS_FS_CGROUP);
            let dir = resolve_dir(fs, mp, root, path)?;
            Some(((exact_exists, under_sys), mp.clone(), dir))
        })
        .enumerate()
        .max_by_key(|(i, (score, _, _))| (*score, *i))
        .map(|(_, (_, mp, dir))| (mp, dir))
}

/// mount point + (path − root) when root is a whole-component prefix of path, else None.
pub fn exact_dir(mount_point: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if has_parent_dir(p) {
        return None;
    }
    let rel = p.strip_prefix(Path::new(root)).ok()?;
    Some(join(mount_point, rel))
}

/// The directory for `path` under a mount: the exact directory if it exists, else the longest
/// existing suffix of the path (shorter than path − root when root is a prefix) under the mount
/// point, else the mount point (if it exists at all).
/// A path with `..` (a process outside its cgroup namespace's root) maps to the mount point.
pub fn resolve_dir(fs: &Fs, mount_point: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let mut tries: Vec<PathBuf> = vec![];
    let p = Path::new(path);
    if !has_parent_dir(p) {
        let comps: Vec<_> = p
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        // Under the root, the exact directory is itself a suffix (path − root); only shorter
        // ones follow it. Outside the root (a moved process) every suffix is a candidate,
        // the whole path first.
        let first = match p.strip_prefix(Path::new(root)) {
            Ok(rel) => {
                tries.push(join(mount_point, rel));
                comps.len() + 1 - rel.components().count().min(comps.len())
            }
            Err(_) => 0,
        };
        for i in first..comps.len() {
            let suffix: PathBuf = comps[i..].iter().collect();
            tries.push(mount_point.join(suffix));
        }
    }
    tries.push(mount_point.to_path_buf());
    tries.into_iter().find(|d| fs.path(d).is_dir())
}

fn has_parent_dir(p: &Path) -> bool {
    p.components().any(|c| c == Component::ParentDir)
}

/// Join without leaving a trailing slash for an empty relative part.
fn join(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dirs: &[&str]) -> (tempfile::TempDir, Fs) {
        let t = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(t.path().join(d.trim_start_matches('/'))).unwrap();
        }
        let fs = Fs::new(Some(t.path()));
        (t, fs)
    }

    #[test]
    fn component_prefix_not_string_prefix() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            exact_dir(mp, "/docker/abc", "/docker/abc/sub"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/sub"))
        );
        assert_eq!(
            exact_dir(mp, "/docker/abc", "/docker/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            exact_dir(mp, "/docker/abc", "/docker/abc-let-me-hack-this-path"),
            None
        );
        assert_eq!(
            exact_dir(mp, "/", "/user.slice/x"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/user.slice/x"))
        );
        assert_eq!(exact_dir(mp, "/", "/"), Some(mp.to_path_buf()));
        assert_eq!(
            exact_dir(mp, "/docker/abc/", "/docker/abc"),
            Some(mp.to_path_buf())
        );
    }

    #[test]
    fn prefix_trap_falls_back_to_the_mount_point() {
        // A string-prefix implementation would pick ".../memory/-x"; it must not.
        let (_t, fs) = tree(&["/sys/fs/cgroup/memory/-x"]);
        let mp = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            resolve_dir(&fs, mp, "/docker/abc", "/docker/abc-x"),
            Some(mp.to_path_buf())
        );
    }

    #[test]
    fn moved_process_uses_the_longest_existing_suffix() {
        let (_t, fs) = tree(&["/sys/fs/cgroup/memory/b/c", "/sys/fs/cgroup/memory/c"]);
        let mp = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            resolve_dir(&fs, mp, "/docker/abc", "/a/b/c"),
            Some(mp.join("b/c"))
        );
        assert_eq!(
            resolve_dir(&fs, mp, "/docker/abc", "/q/r"),
            Some(mp.to_path_buf())
        );
        // Under the root but the directory is gone: suffixes, then the mount point.
        assert_eq!(
            resolve_dir(&fs, mp, "/docker/abc", "/docker/abc/zz/c"),
            Some(mp.join("c"))
        );
        // Under the root, only suffixes shorter than path − root (zz/c) are tried: the whole
        // path below the mount point is not one of them.
        let (_t, fs) = tree(&["/m/docker/abc/zz/c", "/m/c"]);
        let mp = Path::new("/m");
        assert_eq!(
            resolve_dir(&fs, mp, "/docker", "/docker/abc/zz/c"),
            Some(mp.join("c"))
        );
        assert_eq!(
            resolve_dir(&fs, mp, "/", "/docker/abc/zz/c"),
            Some(mp.join("docker/abc/zz/c"))
        );
    }

    #[test]
    fn parent_dir_escapes_use_the_mount_point() {
        let (_t, fs) = tree(&["/sys/fs/cgroup/user.slice"]);
        let mp = Path::new("/sys/fs/cgroup");
        assert_eq!(
            resolve_dir(&fs, mp, "/", "/../../user.slice"),
            Some(mp.to_path_buf())
        );
    }

    #[test]
    fn missing_mount_point_resolves_nothing() {
        let (_t, fs) = tree(&[]);
        assert_eq!(
            resolve_dir(&fs, Path::new("/sys/fs/cgroup"), "/", "/a"),
            None
        );
    }

    #[test]
    fn levels_walk_up_to_the_mount_point_inclusive() {
        let r = Resolved {
            version: CgroupVersion::V2,
            cgroup_path: "/a/b".into(),
            mount_point: "/sys/fs/cgroup".into(),
            dir: "/sys/fs/cgroup/a/b".into(),
        };
        assert_eq!(
            r.levels(),
            vec![
                PathBuf::from("/sys/fs/cgroup/a/b"),
                PathBuf::from("/sys/fs/cgroup/a"),
                PathBuf::from("/sys/fs/cgroup")
            ]
        );
        let root = Resolved {
            dir: "/sys/fs/cgroup".into(),
            ..r
        };
        assert_eq!(root.levels(), vec![PathBuf::from("/sys/fs/cgroup")]);
    }

    #[test]
    fn hybrid_prefers_v1_memory_and_duplicates_prefer_sys_fs_cgroup() {
        let (_t, fs) = tree(&[
            "/sys/fs/cgroup/memory/x",
            "/sys/fs/cgroup/unified/x",
            "/cgroup-in/memory/x",
        ]);
        let lines = cgroup_file::parse("4:memory:/x\n0::/x\n");
        let mounts = super::super::mountinfo::parse(
            "1 0 0:1 / /cgroup-in/memory rw - cgroup cgroup rw,memory\n\
             2 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             3 0 0:2 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        let r = memory(&fs, &lines, Some(&mounts)).unwrap();
        assert_eq!(r.version, CgroupVersion::V1);
        assert_eq!(r.dir, PathBuf::from("/sys/fs/cgroup/memory/x"));
        // The same mounts without a v1 memory line: the unified hierarchy of this hybrid, with
        // no cgroup.controllers, is a memory cgroup only once memory files show up in it (a
        // PSI file does not count: every v2 cgroup has one).
        let lines = cgroup_file::parse("1:name=systemd:/x\n0::/x\n");
        let unified = fs.path("/sys/fs/cgroup/unified/x");
        std::fs::write(unified.join("memory.pressure"), "").unwrap();
        assert_eq!(memory(&fs, &lines, Some(&mounts)), None);
        std::fs::write(unified.join("memory.max"), "max\n").unwrap();
        let r = memory(&fs, &lines, Some(&mounts)).unwrap();
        assert_eq!(r.version, CgroupVersion::V2);
        assert_eq!(r.dir, PathBuf::from("/sys/fs/cgroup/unified/x"));
        // On a pure v2 machine (no v1 lines) the unified hierarchy is taken without evidence.
        std::fs::remove_file(unified.join("memory.max")).unwrap();
        let pure = cgroup_file::parse("0::/x\n");
        assert_eq!(
            memory(&fs, &pure, Some(&mounts)).map(|r| r.version),
            Some(CgroupVersion::V2)
        );
        assert_eq!(memory(&fs, &lines, Some(&mounts)), None);
        // A cgroup.controllers without memory rules it out whatever files there are.
        std::fs::write(unified.join("memory.max"), "max\n").unwrap();
        std::fs::write(
            fs.path("/sys/fs/cgroup/unified/cgroup.controllers"),
            "cpu io\n",
        )
        .unwrap();
        assert_eq!(memory(&fs, &lines, Some(&mounts)), None);
    }
}
