//! Per-job memory cgroups under the runner's own cgroup: `<dir>/memsweep-<pid>/<n>`.
//!
//! v1 (memory controller on its own hierarchy): job cgroups are a pool of reusable slots —
//! mkdir/rmdir per job costs more than a trivial job — made reusable by emptying them and writing
//! 0 to `memory.max_usage_in_bytes`. Emptying (`memory.force_empty`) reclaims what a job left
//! charged (page cache) and then waits in the kernel's reclaim throttle for what it cannot
//! reclaim (kernel objects): 104–107 ms here after jobs of 100–700 MiB that left 0.5–1.7 MiB.
//! That wait runs on a thread of its own ([`Resetter`]), never on the runner's loop, where it
//! delayed each such job's end, and every admission after it, by 100 ms. v2 (needs delegation): the no-internal-processes rule means
//! the runner first moves itself into `<dir>/memsweep-<pid>/runner`, then enables `+memory` in
//! `subtree_control`; each job gets a fresh cgroup because `memory.peak` cannot be reset for
//! everyone (its reset is per open file). Stale `memsweep-<pid>` trees of dead runners are
//! removed at setup. Paths here are real paths (already joined with the probe's root).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::sys;
use crate::probe::read_small_string;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One job cgroup.
#[derive(Debug)]
pub struct Slot {
    pub dir: PathBuf,
    /// The file the child writes "0" into to join, NUL-terminated for its pre-exec write:
    /// v1 `tasks`, v2 `cgroup.procs`. The child is one thread until it execs, and moving the
    /// writing thread alone through v1's `tasks` skips the lock that keeps a whole thread group
    /// still, whose write side waits for an RCU grace period: `cgroup.procs` took 6–16 ms per
    /// join here (every job's start delayed by that much), `tasks` 0.3 ms.
    pub procs: CString,
    /// The oom_kill counter when the current job started (v1 slots are reused).
    pub oom_base: u64,
    /// Peak and oom_kill counter as [`JobCgroups::finish`] read them, so the reset after a
    /// short job need not read them again (two fewer opens per job).
    last: std::cell::Cell<Option<(Option<u64>, Option<u64>)>>,
}

/// What a finished job's cgroup says, read before the cgroup is reset or removed.
#[derive(Debug, Clone, Copy)]
pub struct Final {
    pub peak: Option<u64>,
    /// OOM kills in this job's cgroup during the job; None when the kernel has no counter.
    pub oom_kills: Option<u64>,
}

pub struct JobCgroups {
    pub version: Version,
    /// The runner's cgroup (where `memsweep-<pid>` lives).
    pub parent: PathBuf,
    /// `<parent>/memsweep-<pid>`.
    pub base: PathBuf,
    limit: Option<u64>,
    free: Vec<Slot>,
    draining: Vec<Slot>,
    /// v1 slots being emptied off the loop; started at the first slot that needs it.
    resetter: Option<Resetter>,
    next: u32,
    /// v2: we wrote `+memory` into the parent's subtree_control, and moved the runner.
    enabled_parent_memory: bool,
    moved_runner: bool,
    /// Names of stale trees removed at setup (for the note).
    pub removed_stale: Vec<String>,
}

fn read_u64(p: &Path) -> Option<u64> {
    read_small_string(p).ok()?.trim().parse().ok()
}

fn keyed(p: &Path, key: &str) -> Option<u64> {
    read_small_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn write(p: &Path, v: &str) -> io::Result<()> {
    std::fs::write(p, v)
}

/// Pids in a cgroup (not below). Never 0 or memsweep itself: a kill of those would hit the
/// runner (kill(0) is our own process group), e.g. in a fixture tree or the v2 runner leaf.
fn pids_in(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    read_small_string(dir.join("cgroup.procs"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .filter(|&p| p > 0 && p != me)
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILL everything in `dir` (not below), repeating while processes keep appearing
/// (a fork bomb races a single pass). Returns whether it ended up empty.
pub fn kill_all(dir: &Path) -> bool {
    for round in 0..100 {
        let pids = pids_in(dir);
        if pids.is_empty() {
            return true;
        }
        for p in pids {
            let _ = sys::kill(p, libc::SIGKILL);
        }
        if round > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    pids_in(dir).is_empty()
}

/// Kill and remove a whole cgroup tree, children first. Best effort.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let _ = remove_tree(&e.path());
            }
        }
    }
    kill_all(dir);
    remove_dir_retrying(dir)
}

/// rmdir, retried for up to 0.5 s while it fails with EBUSY: a killed process leaves its
/// cgroup a moment after it dies, and a removed child cgroup goes offline a moment after its
/// rmdir (until then its parent cannot be removed).
fn remove_dir_retrying(dir: &Path) -> io::Result<()> {
    let mut last = Ok(());
    for _ in 0..50 {
        last = std::fs::remove_dir(dir);
        match &last {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    last
}

/// The runner pid encoded in a `memsweep-<pid>[-<k>]` name.
pub fn runner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("memsweep-")?;
    let digits = rest.split('-').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Remove `memsweep-<pid>` trees under `parent` whose runner is dead (a SIGKILLed runner
/// cannot clean up; its guard kills the jobs but may not get to remove every directory).
pub fn remove_stale(parent: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(parent) else {
        return removed;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = runner_pid(&name) else {
            continue;
        };
        if pid == std::process::id() as i32 || sys::pid_exists(pid) {
            continue;
        }
        if remove_tree(&e.path()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

fn not_writable(dir: &Path, e: &io::Error) -> String {
    format!(
        "cgroup dir {} not writable ({})",
        dir.display(),
        sys::err_text(e)
    )
}

impl JobCgroups {
    /// Set up `<parent>/memsweep-<pid>`; Err(reason) means "use Proc mode, because ...".
    pub fn setup(
        version: Version,
        parent: &Path,
        limit: Option<u64>,
    ) -> Result<JobCgroups, String> {
        match version {
            Version::V1 => {
                if !parent.join("memory.usage_in_bytes").exists() {
                    return Err(format!(
                        "{} is not a v1 memory cgroup (no memory.usage_in_bytes)",
                        parent.display()
                    ));
                }
                // Without hierarchy (old kernels) child cgroups are not bound by this one's
                // limit: job cgroups would let the jobs escape the container's limit.
                if read_u64(&parent.join("memory.use_hierarchy")) == Some(0) {
                    return Err(format!(
                        "{}/memory.use_hierarchy is 0, so job cgroups would escape its limit",
                        parent.display()
                    ));
                }
            }
            Version::V2 => {
                let ctrls =
                    std::fs::read_to_string(parent.join("cgroup.controllers")).map_err(|e| {
                        format!(
                            "cannot read {}/cgroup.controllers ({})",
                            parent.display(),
                            sys::err_text(&e)
                        )
                    })?;
                if !ctrls.split_whitespace().any(|c| c == "memory") {
                    return Err(format!(
                        "the memory controller is not delegated to {} (cgroup.controllers: {:?})",
                        parent.display(),
                        ctrls.trim()
                    ));
                }
            }
        }
        let removed_stale = remove_stale(parent);
        let pid = std::process::id();
        let mut base = parent.join(format!("memsweep-{pid}"));
        let mut k = 1;
        loop {
            match std::fs::create_dir(&base) {
                Ok(()) => break,
                // A second executor in one process (tests) gets its own tree.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && k < 1000 => {
                    base = parent.join(format!("memsweep-{pid}-{k}"));
                    k += 1;
                }
                Err(e) => return Err(not_writable(parent, &e)),
            }
        }
        let mut cg = JobCgroups {
            version,
            parent: parent.to_path_buf(),
            base,
            limit,
            free: Vec::new(),
            draining: Vec::new(),
            resetter: None,
            next: 0,
            enabled_parent_memory: false,
            moved_runner: false,
            removed_stale,
        };
        if version == Version::V2
            && let Err(why) = cg.setup_v2()
        {
            cg.teardown();
            return Err(why);
        }
        Ok(cg)
    }

    fn setup_v2(&mut self) -> Result<(), String> {
        let runner = self.base.join("runner");
        std::fs::create_dir(&runner).map_err(|e| not_writable(&self.base, &e))?;
        write(
            &runner.join("cgroup.procs"),
            &std::process::id().to_string(),
        )
        .map_err(|e| {
            format!(
                "cannot move memsweep into {}/cgroup.procs ({})",
                runner.display(),
                sys::err_text(&e)
            )
        })?;
        self.moved_runner = true;
        let sub = self.parent.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&sub).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "memory") {
            write(&sub, "+memory").map_err(|e| {
                format!(
                    "cannot enable the memory controller in {} ({}): other processes live in \
                     that cgroup; run memsweep in a cgroup of its own (e.g. `systemd-run --user \
                     --scope -p Delegate=yes memsweep ...`)",
                    sub.display(),
                    sys::err_text(&e)
                )
            })?;
            self.enabled_parent_memory = true;
        }
        let sub = self.base.join("cgroup.subtree_control");
        write(&sub, "+memory").map_err(|e| {
            format!(
                "cannot enable the memory controller in {} ({})",
                sub.display(),
                sys::err_text(&e)
            )
        })?;
        Ok(())
    }

    fn oom_count(&self, dir: &Path) -> Option<u64> {
        oom_count(self.version, dir)
    }

    /// A cgroup for the next job: a reset v1 slot from the pool, or a new one.
    pub fn acquire(&mut self) -> io::Result<Slot> {
        self.reap_draining();
        self.take_reset();
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        let n = self.next;
        self.next += 1;
        let dir = self.base.join(n.to_string());
        std::fs::create_dir(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create job cgroup {}: {}",
                    dir.display(),
                    sys::err_text(&e)
                ),
            )
        })?;
        if let Some(limit) = self.limit {
            let v = limit.to_string();
            let res = match self.version {
                Version::V1 => write(&dir.join("memory.limit_in_bytes"), &v).map(|()| {
                    // Cap memory+swap too where swap accounting exists, so the cap is real.
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        let _ = write(&memsw, &v);
                    }
                }),
                Version::V2 => write(&dir.join("memory.max"), &v).map(|()| {
                    let _ = write(&dir.join("memory.swap.max"), "0");
                }),
            };
            if let Err(e) = res {
                let _ = std::fs::remove_dir(&dir);
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot set --job-mem-max on {}: {}",
                        dir.display(),
                        sys::err_text(&e)
                    ),
                ));
            }
        }
        let join = match self.version {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        };
        let procs = CString::new(dir.join(join).as_os_str().as_bytes())
            .map_err(|_| io::Error::other("cgroup path contains a NUL byte"))?;
        let oom_base = self.oom_count(&dir).unwrap_or(0);
        Ok(Slot {
            dir,
            procs,
            oom_base,
            last: std::cell::Cell::new(None),
        })
    }

    /// Current and peak bytes of a running job's cgroup.
    pub fn usage(&self, s: &Slot) -> (Option<u64>, Option<u64>) {
        match self.version {
            Version::V1 => (
                read_u64(&s.dir.join("memory.usage_in_bytes")),
                read_u64(&s.dir.join("memory.max_usage_in_bytes")),
            ),
            Version::V2 => (
                read_u64(&s.dir.join("memory.current")),
                read_u64(&s.dir.join("memory.peak")),
            ),
        }
    }

    /// Read the finished job's peak and OOM kills (before any reset).
    pub fn finish(&self, s: &Slot) -> Final {
        let peak = read_u64(&s.dir.join(match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        }));
        let count = self.oom_count(&s.dir);
        s.last.set(Some((peak, count)));
        let oom_kills = count.map(|c| c.saturating_sub(s.oom_base));
        Final { peak, oom_kills }
    }

    /// Kill what the job left behind, then make the slot reusable (v1) or remove it (v2).
    pub fn release(&mut self, s: Slot) {
        let left = pids_in(&s.dir);
        for &p in &left {
            let _ = sys::kill(p, libc::SIGKILL);
        }
        self.reap_draining();
        if left.is_empty() {
            self.recycle(s);
        } else {
            // Killed processes leave the cgroup a moment later; recycle it on a later turn,
            // rereading what they may have changed meanwhile.
            s.last.set(None);
            self.draining.push(s);
        }
    }

    /// Slots whose processes are all gone: reset (v1) or remove (v2).
    fn reap_draining(&mut self) {
        let mut i = 0;
        while i < self.draining.len() {
            if pids_in(&self.draining[i].dir).is_empty() {
                let s = self.draining.swap_remove(i);
                self.recycle(s);
            } else {
                i += 1;
            }
        }
    }

    /// An empty job cgroup: reset into the pool (v1) or remove (v2).
    fn recycle(&mut self, mut s: Slot) {
        if self.version == Version::V1 {
            // Page cache the job left is still charged here; reclaim it so the next job's
            // peak starts from (almost) zero. Below 1 MiB (what a trivial job leaves: kernel
            // objects) it is not worth force_empty's cost, which would double a short job's
            // overhead; that much may then show in the next job's peak.
            // Usage never exceeds the peak since the last reset, so a small peak spares the read.
            let peak = s.last.get().and_then(|(p, _)| p);
            let usage = match peak {
                Some(p) if p <= 1 << 20 => p,
                _ => read_u64(&s.dir.join("memory.usage_in_bytes")).unwrap_or(0),
            };
            if usage <= 1 << 20 {
                if let Some(s) = reset_v1(s, false) {
                    self.free.push(s);
                }
                return;
            }
            // Never on the loop: emptying waits ~100 ms in the kernel (see the module doc).
            // With no thread to take it (none could start, or too many slots are out being
            // emptied), the slot is removed below instead and a fresh one made when needed.
            if let Some(r) = self.resetter() {
                match r.send(s) {
                    Ok(()) => return,
                    Err(back) => s = back,
                }
            }
        }
        let _ = std::fs::remove_dir(&s.dir);
    }

    /// The threads that empty slots, started on first use; None if none can start.
    fn resetter(&mut self) -> Option<&mut Resetter> {
        if self.resetter.is_none() {
            self.resetter = Resetter::start().ok();
        }
        self.resetter.as_mut()
    }

    /// Slots the resetter has emptied go back into the pool.
    fn take_reset(&mut self) {
        if let Some(r) = self.resetter.as_mut() {
            self.free.extend(r.take());
        }
    }

    /// Slots being emptied off the loop right now (tests).
    #[cfg(test)]
    pub fn resetting(&self) -> usize {
        self.resetter.as_ref().map_or(0, |r| r.in_flight)
    }

    /// Slots ready for the next job (tests).
    #[cfg(test)]
    pub fn pooled(&mut self) -> Vec<PathBuf> {
        self.take_reset();
        self.free.iter().map(|s| s.dir.clone()).collect()
    }

    /// Kill everything left in any job cgroup and remove the whole tree (and undo the v2 moves).
    pub fn teardown(&mut self) {
        // Wait for the slots being emptied (each at most the kernel's ~100 ms throttle), so
        // nothing writes into a cgroup after it is removed.
        if let Some(r) = self.resetter.take() {
            self.free.extend(r.finish());
        }
        for s in self.free.drain(..).chain(self.draining.drain(..)) {
            let _ = remove_tree(&s.dir);
        }
        if let Ok(rd) = std::fs::read_dir(&self.base) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && e.file_name() != "runner" {
                    let _ = remove_tree(&e.path());
                }
            }
        }
        if self.moved_runner {
            // Back to where we came from, which needs the parent's memory controller off again
            // (no internal processes). Best effort: if it fails we stay in the runner leaf and
            // the next run's stale sweep removes it.
            if self.enabled_parent_memory {
                let _ = write(&self.parent.join("cgroup.subtree_control"), "-memory");
            }
            if write(
                &self.parent.join("cgroup.procs"),
                &std::process::id().to_string(),
            )
            .is_ok()
            {
                let _ = std::fs::remove_dir(self.base.join("runner"));
            }
            self.moved_runner = false;
        }
        let _ = remove_dir_retrying(&self.base);
    }
}

/// The kernel's count of OOM kills in the cgroup at `dir`.
fn oom_count(version: Version, dir: &Path) -> Option<u64> {
    match version {
        Version::V1 => keyed(&dir.join("memory.oom_control"), "oom_kill"),
        Version::V2 => keyed(&dir.join("memory.events"), "oom_kill"),
    }
}

/// Reset an empty v1 slot for the next job (emptying it first when `empty`): its peak counter
/// back to what it holds and its OOM baseline to the kernel's count. None when the cgroup
/// refused the reset; then it is removed.
fn reset_v1(mut s: Slot, empty: bool) -> Option<Slot> {
    if empty {
        let _ = write(&s.dir.join("memory.force_empty"), "0");
    }
    let count = s.last.take().and_then(|(_, c)| c);
    if write(&s.dir.join("memory.max_usage_in_bytes"), "0").is_ok() {
        // Nothing ran here since finish() read the counter (the cgroup is empty).
        s.oom_base = count
            .or_else(|| oom_count(Version::V1, &s.dir))
            .unwrap_or(0);
        return Some(s);
    }
    let _ = std::fs::remove_dir(&s.dir);
    None
}

/// Threads emptying slots at once: each write mostly sleeps in the kernel's throttle, so four
/// empty ~40 slots a second, enough for 40 jobs ending per second.
const RESET_THREADS: usize = 4;
/// Slots out being emptied at most. Past it (jobs end faster than the threads empty their
/// slots) a slot is removed instead, so neither the backlog nor the number of cgroups grows
/// without bound, and the loop never waits: what the job left stays charged to the removed
/// cgroup until the kernel reclaims it.
const MAX_RESETTING: usize = 64;

/// Threads that empty v1 slots ([`reset_v1`]) and hand them back; removed ones come back as
/// None.
struct Resetter {
    to: Option<mpsc::Sender<Slot>>,
    back: mpsc::Receiver<Option<Slot>>,
    in_flight: usize,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Resetter {
    fn start() -> io::Result<Resetter> {
        let (to, rx) = mpsc::channel::<Slot>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let (tx, back) = mpsc::channel();
        let mut threads = Vec::with_capacity(RESET_THREADS);
        for _ in 0..RESET_THREADS {
            let (rx, tx) = (std::sync::Arc::clone(&rx), tx.clone());
            let t = sys::thread_signals_blocked("memsweep-cgreset", move || {
                loop {
                    // The lock is held only to take the next slot, not while emptying it.
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(s) = next else { return };
                    if tx.send(reset_v1(s, true)).is_err() {
                        return;
                    }
                }
            });
            match t {
                Ok(t) => threads.push(t),
                Err(e) if threads.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(Resetter {
            to: Some(to),
            back,
            in_flight: 0,
            threads,
        })
    }

    /// Hand `s` to the threads; Err(s) if they have stopped or have [`MAX_RESETTING`] already.
    fn send(&mut self, s: Slot) -> Result<(), Slot> {
        let Some(to) = self.to.as_ref() else {
            return Err(s);
        };
        if self.in_flight >= MAX_RESETTING {
            return Err(s);
        }
        to.send(s).map_err(|e| e.0)?;
        self.in_flight += 1;
        Ok(())
    }

    /// The slots emptied so far, without waiting.
    fn take(&mut self) -> Vec<Slot> {
        let mut out = Vec::new();
        while let Ok(r) = self.back.try_recv() {
            self.in_flight -= 1;
            out.extend(r);
        }
        out
    }

    /// Stop the threads once they have emptied every slot sent; those slots.
    fn finish(mut self) -> Vec<Slot> {
        self.to = None;
        let out: Vec<Slot> = self.back.iter().flatten().collect();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A slot on a plain directory: the reset writes its files like cgroupfs would take them.
    fn fixture_slot(dir: &Path) -> Slot {
        std::fs::create_dir_all(dir).unwrap();
        Slot {
            dir: dir.to_path_buf(),
            procs: CString::new(dir.join("tasks").as_os_str().as_bytes()).unwrap(),
            oom_base: 7,
            last: std::cell::Cell::new(None),
        }
    }

    #[test]
    fn at_most_max_resetting_slots_are_out_being_emptied() {
        let tmp = tempfile::tempdir().unwrap();
        let mut r = Resetter::start().unwrap();
        for i in 0..MAX_RESETTING {
            assert!(
                r.send(fixture_slot(&tmp.path().join(i.to_string())))
                    .is_ok()
            );
        }
        // One more is refused (the caller removes it instead) until emptied ones are taken back.
        assert!(r.send(fixture_slot(&tmp.path().join("over"))).is_err());
        let mut back = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while back.len() < MAX_RESETTING && Instant::now() < end {
            back.extend(r.take());
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(back.len(), MAX_RESETTING);
        assert_eq!(r.in_flight, 0);
        for s in &back {
            assert_eq!(
                std::fs::read_to_string(s.dir.join("memory.force_empty")).unwrap(),
                "0"
            );
            assert_eq!(
                std::fs::read_to_string(s.dir.join("memory.max_usage_in_bytes")).unwrap(),
                "0"
            );
            // The OOM baseline is the kernel's count now (none in a fixture).
            assert_eq!(s.oom_base, 0);
        }
        assert!(r.send(fixture_slot(&tmp.path().join("later"))).is_ok());
        let rest = r.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].dir, tmp.path().join("later"));
    }
}
