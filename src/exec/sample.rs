//! Proc mode: a job's memory is the summed RSS of its process tree (the job and every
//! descendant, found through /proc/*/stat parent links — a job may start new process groups or
//! sessions, so the process group alone would miss some). One /proc walk serves all jobs.
//!
//! Summed RSS counts pages shared between a job's processes more than once, so it can
//! overstate; peaks between samples are missed, so it can understate. Cgroup modes are exact.

use std::collections::HashMap;
use std::io::Read;

/// One process as seen in /proc/<pid>/stat.
#[derive(Debug, Clone, Copy)]
pub struct ProcEntry {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub rss_pages: u64,
    /// Start time in clock ticks after boot: with the pid, it names one process for good.
    pub start_ticks: u64,
}

#[cfg(test)]
impl ProcEntry {
    /// A process for tests of the tree logic (started at tick 0).
    pub fn fake(pid: i32, ppid: i32, pgid: i32, rss_pages: u64) -> ProcEntry {
        ProcEntry {
            pid,
            ppid,
            pgid,
            rss_pages,
            start_ticks: 0,
        }
    }
}

/// Parse the fields we need from a /proc/<pid>/stat line.
pub fn parse_stat(line: &str) -> Option<ProcEntry> {
    let pid = line.split(' ').next()?.parse().ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &line[line.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let _state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    // starttime is field 22 and rss field 24; after ')' we are at field 3, and have consumed 3..=5.
    let start_ticks = f.nth(22 - 6)?.parse().ok()?;
    let rss_pages = f.nth(24 - 23)?.parse().ok()?;
    Some(ProcEntry {
        pid,
        ppid,
        pgid,
        rss_pages,
        start_ticks,
    })
}

/// Every process on the machine (those that vanish mid-walk are skipped).
pub fn scan() -> Vec<ProcEntry> {
    let mut out = Vec::with_capacity(512);
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut buf = String::with_capacity(512);
    let mut path = String::with_capacity(32);
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        path.clear();
        path.push_str("/proc/");
        path.push_str(name);
        path.push_str("/stat");
        buf.clear();
        let ok = std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_string(&mut buf))
            .is_ok();
        if let Some(p) = ok.then(|| parse_stat(&buf)).flatten() {
            out.push(p);
        }
    }
    out
}

/// The direct children of this process (every thread's `/proc/self/task/*/children`): the
/// jobs, the guard, and the orphans adopted as subreaper. None where the kernel lacks the file.
pub fn own_children() -> Option<Vec<i32>> {
    let mut out = Vec::new();
    let mut any = false;
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            any = true;
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    any.then_some(out)
}

/// A job's tree at one instant.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    pub rss_bytes: u64,
    /// Process groups of the tree (the job's own and any its descendants created).
    pub pgids: Vec<i32>,
    pub pids: Vec<i32>,
}

/// For each set of root pids, the processes below any of them (roots included). A process is
/// in at most one tree: the first set that reaches it.
pub fn forest(procs: &[ProcEntry], roots: &[Vec<i32>], page: u64) -> Vec<Tree> {
    let mut children: HashMap<i32, Vec<usize>> = HashMap::with_capacity(procs.len());
    let mut by_pid: HashMap<i32, usize> = HashMap::with_capacity(procs.len());
    for (i, p) in procs.iter().enumerate() {
        children.entry(p.ppid).or_default().push(i);
        by_pid.insert(p.pid, i);
    }
    let mut taken = vec![false; procs.len()];
    roots
        .iter()
        .map(|set| {
            let mut t = Tree::default();
            let mut stack: Vec<usize> = set.iter().filter_map(|r| by_pid.get(r).copied()).collect();
            while let Some(i) = stack.pop() {
                if std::mem::replace(&mut taken[i], true) {
                    continue;
                }
                let p = procs[i];
                t.rss_bytes += p.rss_pages * page;
                t.pids.push(p.pid);
                if !t.pgids.contains(&p.pgid) {
                    t.pgids.push(p.pgid);
                }
                if let Some(c) = children.get(&p.pid) {
                    stack.extend(c.iter().copied());
                }
            }
            t
        })
        .collect()
}
