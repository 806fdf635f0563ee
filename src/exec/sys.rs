//! The executor's parent-side syscalls. Most go through rustix (kill, poll, pipe2, socketpair,
//! prctl, eventfd, inotify), which is safe and already in the tree; raw libc remains only
//! for what rustix does not cover (wait4 with its rusage, signal masks around fork, and the
//! post-fork child helpers at the end), each `unsafe` block with its justification next to it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal};

/// Send `sig` to a process (`pid > 0`) or a process group (`pid < 0`); `sig == 0` only checks
/// that it exists. `pid == 0` (our own group) is refused with ESRCH: no caller means it.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    let esrch = || io::Error::from_raw_os_error(libc::ESRCH);
    let target = Pid::from_raw(pid.checked_abs().ok_or_else(esrch)?).ok_or_else(esrch)?;
    let group = pid < 0;
    let sent = if sig == 0 {
        if group {
            rustix::process::test_kill_process_group(target)
        } else {
            rustix::process::test_kill_process(target)
        }
    } else {
        let sig = Signal::from_named_raw(sig)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        if group {
            rustix::process::kill_process_group(target, sig)
        } else {
            rustix::process::kill_process(target, sig)
        }
    };
    Ok(sent?)
}

/// The process group memsweep itself is in.
pub fn own_pgid() -> i32 {
    rustix::process::getpgrp().as_raw_pid()
}

/// Whether a process with this pid exists (zombies count as existing).
pub fn pid_exists(pid: i32) -> bool {
    pid > 0 && !matches!(kill(pid, 0), Err(e) if e.raw_os_error() == Some(libc::ESRCH))
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// A close-on-exec pair of connected Unix stream sockets.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// send(2) with MSG_NOSIGNAL (a closed peer is EPIPE, never SIGPIPE); returns the bytes sent.
pub fn send_nosignal(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(
        fd,
        buf,
        rustix::net::SendFlags::NOSIGNAL,
    )?)
}

/// read(2) once; EINTR and other errors are returned as they are.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd, buf)?)
}

/// write(2) once; EINTR and other errors are returned as they are.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::io::write(fd, buf)?)
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
    // rustix passes the Pid's value as prctl's flag argument: any non-zero value sets it.
    Ok(rustix::process::set_child_subreaper(Pid::from_raw(1))?)
}

/// poll(2) on `fds`, each with the events it waits for (IN, PRI); returns each fd's revents.
/// EINTR counts as "nothing".
pub fn poll(fds: &[(BorrowedFd<'_>, PollFlags)], timeout: Duration) -> Vec<PollFlags> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|&(fd, events)| PollFd::from_borrowed_fd(fd, events))
        .collect();
    // Round up to whole milliseconds, as poll(2) counts them, so a 0.4 ms timeout does not
    // become a busy 0 ms poll.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i64;
    let ts = rustix::event::Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    match rustix::event::poll(&mut pfds, Some(&ts)) {
        Ok(n) if n > 0 => pfds.iter().map(PollFd::revents).collect(),
        _ => vec![PollFlags::empty(); fds.len()],
    }
}

/// A non-blocking, close-on-exec eventfd (for cgroup v1 memory thresholds).
pub fn eventfd() -> io::Result<OwnedFd> {
    use rustix::event::EventfdFlags;
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?)
}

/// A non-blocking, close-on-exec inotify instance.
pub fn inotify() -> io::Result<OwnedFd> {
    use rustix::fs::inotify::CreateFlags;
    Ok(rustix::fs::inotify::init(
        CreateFlags::NONBLOCK | CreateFlags::CLOEXEC,
    )?)
}

/// Watch `path` for modification; returns the watch descriptor.
pub fn inotify_watch(fd: &OwnedFd, path: &std::path::Path) -> io::Result<i32> {
    use rustix::fs::inotify::WatchFlags;
    Ok(rustix::fs::inotify::add_watch(
        fd,
        path,
        WatchFlags::MODIFY,
    )?)
}

/// Read a non-blocking fd until it would block (eventfd counters, inotify records); returns
/// whether anything was read.
pub fn drain(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 1024];
    let mut any = false;
    loop {
        match read(fd.as_fd(), &mut buf) {
            Ok(n) if n > 0 => {}
            _ => return any,
        }
        any = true;
    }
}

pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// The text of an io::Error without the "(os error N)" suffix users don't need.
pub fn err_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A thread of the runner's with every signal blocked: signals go to the main thread, and
/// what the thread starts begins with every signal blocked (the job's child path expects it).
pub fn thread_signals_blocked(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    let mask = block_all_signals();
    let t = std::thread::Builder::new().name(name.into()).spawn(f);
    restore_signals(&mask);
    t
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
    // SAFETY: sigaction and sigprocmask with valid structs; no allocation. Async-signal-safe:
    // both are on signal-safety(7)'s list, and SIGRTMAX() only reads a value libc set at start.
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
