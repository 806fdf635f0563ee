//! `memsweep guard`'s effects on a command it did not write: start it (in its own memory cgroup
//! where the v1 hierarchy is writable), find every process of its tree, and stop, continue or
//! kill single processes.
//!
//! The tree is the guard's descendants found through /proc/*/stat parent links (the guard is
//! the subreaper, so orphans stay attributed), plus, in cgroup mode, every process in the
//! command's cgroup (a daemonized child that left the tree is still there). This /proc walk is
//! kept here, apart from `sample.rs` (which only needs RSS per job root), because the guard also
//! needs each process's state, start time and CPU time; the two can share one reader.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::event::PollFlags;

use super::{cgroup, sys};

/// One process as the guard sees it at one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// The state letter of /proc/PID/stat (R, S, D, T, Z...).
    pub state: u8,
    /// Start time in clock ticks after boot: with the pid, a process's identity.
    pub start: u64,
    /// user + system CPU time in clock ticks.
    pub cpu: u64,
    pub rss_bytes: u64,
}

/// Parse /proc/PID/stat (the command name may hold spaces and parentheses).
pub fn parse_stat(line: &str, page: u64) -> Option<Proc> {
    let pid = line.split(' ').next()?.parse().ok()?;
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Proc {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        state: *f.first()?.as_bytes().first()?,
        start: num(22)?,
        cpu: num(14)? + num(15)?,
        rss_bytes: num(24)? * page,
    })
}

/// Every process now (those vanishing mid-walk are skipped).
pub fn scan(page: u64) -> Vec<Proc> {
    let mut out = Vec::with_capacity(256);
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut buf = String::with_capacity(512);
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        buf.clear();
        let ok = std::fs::File::open(format!("/proc/{name}/stat"))
            .and_then(|mut f| f.read_to_string(&mut buf))
            .is_ok();
        if let Some(p) = ok.then(|| parse_stat(&buf, page)).flatten() {
            out.push(p);
        }
    }
    out
}

/// The processes below `root` (not `root` itself) plus those in `members`, each once, with
/// whether each has a child among them. Zombies are left out: they hold no memory.
pub fn tree(procs: &[Proc], root: i32, members: &[i32]) -> Vec<(Proc, bool)> {
    let mut children: HashMap<i32, Vec<usize>> = HashMap::new();
    let mut by_pid: HashMap<i32, usize> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        children.entry(p.ppid).or_default().push(i);
        by_pid.insert(p.pid, i);
    }
    let mut seen = vec![false; procs.len()];
    let mut stack: Vec<usize> = children.get(&root).cloned().unwrap_or_default();
    stack.extend(members.iter().filter_map(|m| by_pid.get(m).copied()));
    let mut out = Vec::new();
    while let Some(i) = stack.pop() {
        if seen[i] || procs[i].pid == root {
            continue;
        }
        seen[i] = true;
        if procs[i].state != b'Z' {
            out.push(i);
        }
        if let Some(c) = children.get(&procs[i].pid) {
            stack.extend(c.iter().copied());
        }
    }
    out.iter()
        .map(|&i| {
            let p = procs[i];
            let parent = children
                .get(&p.pid)
                .is_some_and(|c| c.iter().any(|&j| procs[j].state != b'Z'));
            (p, parent)
        })
        .collect()
}

/// The command line of a process, arguments joined by spaces (None once it is gone).
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if parts.is_empty() {
        // A kernel thread or a process between fork and exec with no arguments yet.
        return std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|c| format!("[{}]", c.trim()));
    }
    Some(crate::sweep::JobCommand::Argv(parts).display())
}

/// Send `sig` to one process; a process already gone is not an error.
pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    match sys::kill(pid, sig) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r,
    }
}

/// The guarded command's own v1 memory cgroup, `<guard's cgroup>/memsweep-<pid>-guard`: exact
/// usage and the kernel's OOM-kill count for the whole tree, and every member even when it
/// left the tree. Removed (after killing stragglers) on drop.
pub struct TreeCgroup {
    pub dir: PathBuf,
}

impl TreeCgroup {
    /// Create it under `parent` (the guard's own v1 memory cgroup); Err(why) where not writable.
    pub fn create(parent: &Path) -> Result<TreeCgroup, String> {
        if !parent.join("memory.limit_in_bytes").exists() {
            return Err(format!(
                "{} is not a v1 memory cgroup (the guard's own cgroup needs v1 here)",
                parent.display()
            ));
        }
        cgroup::remove_stale(parent);
        let dir = parent.join(format!("memsweep-{}-guard", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cgroup dir {} not writable ({})",
                parent.display(),
                sys::err_text(&e)
            )
        })?;
        // Children of the command's processes must stay in it: v1 keeps a forked child in its
        // parent's cgroup, so nothing more is needed.
        Ok(TreeCgroup { dir })
    }

    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Every process in the cgroup.
    pub fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.procs_file())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// (usage, peak) in bytes.
    pub fn usage(&self) -> (Option<u64>, Option<u64>) {
        let read = |f: &str| -> Option<u64> {
            std::fs::read_to_string(self.dir.join(f))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        (
            read("memory.usage_in_bytes"),
            read("memory.max_usage_in_bytes"),
        )
    }

    /// OOM kills the kernel made in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("memory.oom_control"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for TreeCgroup {
    /// Processes the command left running (a daemon, jobs it started in the background) are
    /// moved back to the guard's own cgroup, not killed, and the cgroup is removed.
    fn drop(&mut self) {
        if let Some(parent) = self.dir.parent() {
            let procs = parent.join("cgroup.procs");
            for _ in 0..3 {
                let members = self.members();
                if members.is_empty() {
                    break;
                }
                for pid in members {
                    let _ = std::fs::write(&procs, pid.to_string());
                }
            }
        }
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => return,
            }
        }
    }
}

/// Start CMD with the guard's stdin, stdout and stderr and in the guard's process group (Ctrl-C
/// at a terminal reaches it as it would without the guard), oom_score_adj reset to 0 (the guard
/// lowered its own), and, when `procs` is given, inside that cgroup from before exec.
pub fn spawn(argv: &[String], procs: Option<&Path>) -> io::Result<i32> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let procs = procs
        .map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()))
        .transpose()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a cgroup path"))?;
    // SAFETY: the closure runs in the forked child before exec and only calls open/write/close
    // on C strings prepared before the fork (async-signal-safe); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let write = |path: &std::ffi::CStr, text: &[u8]| -> io::Result<()> {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let n = libc::write(fd, text.as_ptr().cast(), text.len());
                libc::close(fd);
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            };
            let _ = write(c"/proc/self/oom_score_adj", b"0");
            if let Some(p) = &procs {
                write(p, b"0")?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id() as i32)
}

/// The guard's own process: lowered oom_score_adj, subreaper of the tree's orphans, and one
/// wait that wakes on a child's exit, SIGINT/SIGTERM, or a timeout.
pub struct Waiter {
    signals: super::signals::Signals,
    /// Setup problems worth one warning each.
    pub notes: Vec<String>,
}

/// How a child of the guard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

impl Waiter {
    pub fn install() -> anyhow::Result<Waiter> {
        let mut notes = Vec::new();
        if let Err(why) = super::protect_self() {
            notes.push(why);
        }
        if let Err(e) = sys::set_child_subreaper() {
            notes.push(format!(
                "could not become the subreaper of the command's orphans ({}); processes whose \
                 parent exits leave the guard's view",
                sys::err_text(&e)
            ));
        }
        let signals = super::signals::Signals::install()
            .map_err(|e| anyhow::anyhow!("cannot install signal handlers: {e}"))?;
        Ok(Waiter { signals, notes })
    }

    /// Block until a child exits, a signal arrives or `timeout` passes; the SIGINT/SIGTERM
    /// numbers that arrived.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Vec<i32> {
        let fds: Vec<_> = self
            .signals
            .fds()
            .into_iter()
            .map(|fd| (fd, PollFlags::IN))
            .collect();
        let revents = sys::poll(&fds, timeout);
        let mut ready = [false; 4];
        for (r, ev) in ready.iter_mut().zip(&revents) {
            *r = !ev.is_empty();
        }
        self.signals.take(ready).interrupts
    }

    /// Reap every exited child (the command, and orphans adopted as subreaper).
    pub fn reap(&mut self) -> Vec<(i32, Ended)> {
        let mut out = Vec::new();
        while let Some(r) = sys::try_wait(-1) {
            let e = match sys::decode(r.status) {
                sys::Ended::Code(c) => Ended::Code(c),
                sys::Ended::Signal(s) => Ended::Signal(s),
            };
            out.push((r.pid, e));
        }
        out
    }
}

/// The size of a memory page.
pub fn page_size() -> u64 {
    sys::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, state: u8) -> Proc {
        Proc {
            pid,
            ppid,
            state,
            start: 0,
            cpu: 0,
            rss_bytes: 0,
        }
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (a) b (c)) S 7 4242 4242 0 -1 4194560 100 0 0 0 12 3 0 0 20 0 1 0 \
                    98765 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let got = parse_stat(line, 4096).unwrap();
        assert_eq!(got.pid, 4242);
        assert_eq!(got.ppid, 7);
        assert_eq!(got.state, b'S');
        assert_eq!(got.cpu, 15);
        assert_eq!(got.start, 98765);
        assert_eq!(got.rss_bytes, 250 * 4096);
    }

    #[test]
    fn tree_is_the_descendants_plus_cgroup_members_without_zombies_or_the_root() {
        // 1 guard → 10 xargs → 11 sh → 12 job; 13 a zombie of 10; 20 daemonized (ppid 1, in
        // the cgroup); 30 unrelated.
        let procs = [
            p(1, 0, b'S'),
            p(10, 1, b'S'),
            p(11, 10, b'S'),
            p(12, 11, b'R'),
            p(13, 10, b'Z'),
            p(20, 1, b'S'),
            p(30, 0, b'S'),
        ];
        let mut got: Vec<(i32, bool)> = tree(&procs[1..], 1, &[20, 10])
            .into_iter()
            .map(|(p, parent)| (p.pid, parent))
            .collect();
        got.sort();
        assert_eq!(got, vec![(10, true), (11, true), (12, false), (20, false)]);
    }
}
