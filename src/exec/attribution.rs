//! Which processes belong to which job when there is no cgroup to ask: the /proc attribution
//! that Proc mode uses to measure jobs and to end everything a job started, including daemons.
//!
//! A process belongs to job J when either holds:
//! - it descends from J's root process through /proc parent links (the classic process tree);
//! - its environment (`/proc/PID/environ`, fixed at exec) carries this runner's tag in
//!   [`RUNNER_VAR`] and J in [`JOB_ID_VAR`] — every job inherits both, so a daemon that
//!   double-forks (fork, setsid, fork, parent exits) and is re-parented to the runner, which is
//!   the jobs' child subreaper, still carries them. Only a process that execs with a scrubbed
//!   environment sheds the marker; as the subreaper's child it is still ended with the sweep.
//!
//! [`Attribution`] is reusable by anything that watches process trees it did not start: give
//! the root process the variables of [`Marker::env`], and on each turn
//! `attribution.trees(&scan(), &[(id, root_pid)], page_size())` gives each root's processes,
//! their RSS and their process groups. Environments are read once per process (cached by pid
//! and start time), so a scan costs one `stat` read per process plus one `environ` read per new
//! process.

use std::collections::HashMap;
use std::io::Read;

use super::sample;
pub use super::sample::{ProcEntry, Tree, own_children, scan};
pub use super::sys::page_size;

/// The job number a job's processes inherit (also documented for jobs: `MEMSWEEP_JOB_ID`).
pub const JOB_ID_VAR: &str = "MEMSWEEP_JOB_ID";
/// The tag of the runner whose job a process belongs to: `<pid>.<start time in ticks>`, unique
/// on the machine while the runner lives, so two sweeps (or a sweep inside a job) never mix.
pub const RUNNER_VAR: &str = "MEMSWEEP_RUNNER";

/// At most this much of an environment is read: the marker of a job's process sits among
/// its inherited variables, and a bounded read keeps a huge environment from costing memory.
const MAX_ENVIRON: usize = 1 << 20;

/// The marker a runner gives its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    tag: String,
}

impl Marker {
    /// The marker of this process (pid plus its start time, so a reused pid gets a new tag).
    pub fn for_this_process() -> Marker {
        let me = std::process::id() as i32;
        let start = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| sample::parse_stat(&s))
            .map_or(0, |p| p.start_ticks);
        Marker::with_tag(format!("{me}.{start}"))
    }

    /// A marker with a chosen tag (tests; tools that name their own runs).
    pub fn with_tag(tag: String) -> Marker {
        Marker { tag }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The variables that mark a process (and, by inheritance, its descendants) as `job`'s.
    pub fn env(&self, job: usize) -> [(String, String); 2] {
        [
            (RUNNER_VAR.to_string(), self.tag.clone()),
            (JOB_ID_VAR.to_string(), job.to_string()),
        ]
    }

    /// The job an environment block (`KEY=value` entries separated by NULs) is marked with.
    pub fn job_in(&self, environ: &[u8]) -> Option<usize> {
        let mut ours = false;
        let mut job = None;
        for var in environ.split(|&b| b == 0) {
            if let Some(v) = var.strip_prefix(RUNNER_VAR.as_bytes())
                && let Some(v) = v.strip_prefix(b"=")
            {
                ours = v == self.tag.as_bytes();
            } else if let Some(v) = var.strip_prefix(JOB_ID_VAR.as_bytes())
                && let Some(v) = v.strip_prefix(b"=")
            {
                job = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            }
        }
        job.filter(|_| ours)
    }
}

/// Attributes the processes of one /proc scan to jobs; keeps the per-process marker cache.
#[derive(Debug)]
pub struct Attribution {
    marker: Marker,
    /// (pid, start time) → the job its environment names, if any.
    seen: HashMap<(i32, u64), Option<usize>>,
}

impl Attribution {
    pub fn new(marker: Marker) -> Attribution {
        Attribution {
            marker,
            seen: HashMap::new(),
        }
    }

    pub fn marker(&self) -> &Marker {
        &self.marker
    }

    /// For each `(job, root pid)`, the job's processes in `procs`: the root's tree plus every
    /// process marked with the job and the trees below those. A process is counted once, for
    /// the first job that claims it (its marker wins over a tree it was re-parented into).
    pub fn trees(&mut self, procs: &[ProcEntry], roots: &[(usize, i32)], page: u64) -> Vec<Tree> {
        let marked = self.marked(procs);
        let mut extra: HashMap<usize, Vec<i32>> = HashMap::new();
        for (pid, job) in marked {
            extra.entry(job).or_default().push(pid);
        }
        let multi: Vec<Vec<i32>> = roots
            .iter()
            .map(|&(job, root)| {
                let mut r = vec![root];
                if let Some(more) = extra.get(&job) {
                    r.extend(more.iter().copied().filter(|&p| p != root));
                }
                r
            })
            .collect();
        sample::forest(procs, &multi, page)
    }

    /// Every process in `procs` whose environment carries this runner's marker, with its job.
    /// Environments are read once per process; entries of processes gone are dropped.
    pub fn marked(&mut self, procs: &[ProcEntry]) -> Vec<(i32, usize)> {
        let mut next = HashMap::with_capacity(self.seen.len().max(64));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for p in procs {
            let key = (p.pid, p.start_ticks);
            let job = match self.seen.get(&key) {
                Some(&j) => j,
                None => read_environ(p.pid, &mut buf).and_then(|_| self.marker.job_in(&buf)),
            };
            next.insert(key, job);
            if let Some(j) = job {
                out.push((p.pid, j));
            }
        }
        self.seen = next;
        out
    }
}

/// Read `/proc/PID/environ` (at most [`MAX_ENVIRON`] bytes) into `buf`; None if unreadable
/// (gone, another user's, a kernel thread's empty one counts as read).
fn read_environ(pid: i32, buf: &mut Vec<u8>) -> Option<()> {
    buf.clear();
    let f = std::fs::File::open(format!("/proc/{pid}/environ")).ok()?;
    f.take(MAX_ENVIRON as u64).read_to_end(buf).ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_needs_both_the_runner_tag_and_a_job_number() {
        let m = Marker::with_tag("42.7".into());
        assert_eq!(
            m.job_in(b"A=1\0MEMSWEEP_RUNNER=42.7\0MEMSWEEP_JOB_ID=3\0"),
            Some(3)
        );
        assert_eq!(
            m.job_in(b"MEMSWEEP_JOB_ID=3\0MEMSWEEP_RUNNER=42.7"),
            Some(3)
        );
        // Another runner's job, a job without a runner tag, a prefix of the tag: not ours.
        assert_eq!(
            m.job_in(b"MEMSWEEP_RUNNER=42.77\0MEMSWEEP_JOB_ID=3\0"),
            None
        );
        assert_eq!(m.job_in(b"MEMSWEEP_JOB_ID=3\0"), None);
        assert_eq!(m.job_in(b"MEMSWEEP_RUNNER=42.7\0MEMSWEEP_JOB_ID=x\0"), None);
        assert_eq!(
            m.job_in(b"XMEMSWEEP_RUNNER=42.7\0MEMSWEEP_JOB_ID=3\0"),
            None
        );
        assert_eq!(m.job_in(b""), None);
    }

    #[test]
    fn marked_processes_join_their_job_even_when_re_parented() {
        let e = ProcEntry::fake;
        // The runner (100) is the subreaper: job 0's daemon 13 and its child 14 hang under it.
        let procs = [
            e(100, 1, 100, 1),
            e(10, 100, 10, 1),
            e(13, 100, 13, 50),
            e(14, 13, 13, 2),
            e(20, 100, 20, 7),
        ];
        let mut a = Attribution::new(Marker::with_tag("t".into()));
        a.seen.insert((13, 0), Some(0));
        for pid in [100, 10, 14, 20] {
            a.seen.insert((pid, 0), None);
        }
        let t = a.trees(&procs, &[(0, 10), (1, 20)], 1);
        assert_eq!(t[0].rss_bytes, 53);
        let mut pgids = t[0].pgids.clone();
        pgids.sort();
        assert_eq!(pgids, vec![10, 13]);
        let mut pids = t[0].pids.clone();
        pids.sort();
        assert_eq!(pids, vec![10, 13, 14]);
        assert_eq!(t[1].rss_bytes, 7);
    }
}
