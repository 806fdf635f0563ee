//! Thin safe wrappers over the few raw syscalls the executor needs (kill, wait4, prctl, poll),
//! so the `unsafe` surface stays in one place with its justification next to it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Send `sig` to a process (`pid > 0`) or a process group (`pid < 0`).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The process group memsweep itself is in.
pub fn own_pgid() -> i32 {
    // SAFETY: getpgrp has no arguments and cannot fail.
    unsafe { libc::getpgrp() }
}

/// Whether a process with this pid exists (zombies count as existing).
pub fn pid_exists(pid: i32) -> bool {
    pid > 0 && !matches!(kill(pid, 0), Err(e) if e.raw_os_error() == Some(libc::ESRCH))
}

/// A reaped child: its pid, raw wait status, and from its rusage the max RSS (bytes) and the
/// CPU time (user + system, its own and that of descendants it waited for).
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub pid: i32,
    pub status: i32,
    pub maxrss_bytes: u64,
    pub cpu: Duration,
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// `wait4(pid, WNOHANG)`: `Ok(None)` when nothing (more) is ready or there are no children.
pub fn try_wait(pid: i32) -> Option<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero bytes is a valid `rusage` (plain integers and timevals).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live for the call.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if rc > 0 {
            return Some(Reaped {
                pid: rc,
                status,
                // Linux reports ru_maxrss in KiB.
                maxrss_bytes: (usage.ru_maxrss.max(0) as u64) * 1024,
                cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            });
        }
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

/// Blocking `waitpid(pid, 0)`, for shutdown after SIGKILL.
pub fn wait_blocking(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid writable int for the duration of the call.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return;
    }
}

/// How a process ended, decoded from a wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

pub fn decode(status: i32) -> Ended {
    if libc::WIFSIGNALED(status) {
        Ended::Signal(libc::WTERMSIG(status))
    } else {
        Ended::Code(libc::WEXITSTATUS(status))
    }
}

/// Make this process the reaper of its orphaned descendants (so a job's grandchildren whose
/// parent died are still ours to reap and account, instead of init's).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag; no pointers involved.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// poll(2) on `fds`, each with the events it waits for (POLLIN, POLLPRI); returns each fd's
/// revents. EINTR counts as "nothing".
pub fn poll(fds: &[(i32, i16)], timeout: Duration) -> Vec<i16> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // Round up so a 0.4 ms timeout does not become a busy 0 ms poll.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structs, alive for the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc <= 0 {
        return vec![0; fds.len()];
    }
    pfds.iter().map(|p| p.revents).collect()
}

/// A non-blocking, close-on-exec eventfd (for cgroup v1 memory thresholds).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes plain integers; on success it returns a new fd we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking, close-on-exec inotify instance.
pub fn inotify() -> io::Result<OwnedFd> {
    // SAFETY: inotify_init1 takes flags; on success it returns a new fd we own.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watch `path` for modification; returns the watch descriptor.
pub fn inotify_watch(fd: &OwnedFd, path: &std::path::Path) -> io::Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path alive for the call; `fd` is an inotify fd.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

/// Read a non-blocking fd until it would block (eventfd counters, inotify records); returns
/// whether anything was read.
pub fn drain(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 1024];
    let mut any = false;
    loop {
        // SAFETY: `buf` is valid and writable for its length during the call.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return any;
        }
        any = true;
    }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// The text of an io::Error without the "(os error N)" suffix users don't need.
pub fn err_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Block every signal in the calling thread (around fork, so no handler of the runner can run
/// in a child before the child has reset it); returns the mask to restore.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask write only to the given sets.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

pub fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is a mask obtained from block_all_signals.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// fork(2) with every signal blocked across it, so no signal can reach a child still running
/// memsweep's handlers: the parent's mask is restored, the child keeps everything blocked until
/// it resets its handlers. Returns the child's pid in the parent and 0 in the child.
///
/// # Safety
/// The caller's child branch must make only async-signal-safe calls, on memory allocated before
/// the fork, and end in exec or `_exit`.
pub unsafe fn fork_signals_blocked() -> std::io::Result<libc::pid_t> {
    let mask = block_all_signals();
    // SAFETY: fork(2) itself is safe to call; the caller vouches for the child branch.
    let pid = unsafe { libc::fork() };
    let fork_err = std::io::Error::last_os_error();
    if pid != 0 {
        restore_signals(&mask);
    }
    if pid < 0 {
        return Err(fork_err);
    }
    Ok(pid)
}

/// In a forked child with all signals blocked: set `ignore` to SIG_IGN, put every other caught
/// signal (and SIGPIPE, which Rust ignores) back to its default action, then unblock
/// everything. Async-signal-safe.
///
/// # Safety
/// Only for a freshly forked child; uses sigaction/sigprocmask only.
pub unsafe fn child_reset_signals(ignore: &[i32]) {
    // SAFETY: sigaction and sigprocmask with valid structs; no allocation.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let caught = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            let mut new: libc::sigaction = std::mem::zeroed();
            if ignore.contains(&sig) {
                new.sa_sigaction = libc::SIG_IGN;
            } else if caught || sig == libc::SIGPIPE {
                new.sa_sigaction = libc::SIG_DFL;
            } else {
                continue;
            }
            libc::sigaction(sig, &new, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}
