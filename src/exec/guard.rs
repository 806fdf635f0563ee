//! The orphan guard: a tiny process forked at `Executor::new` that outlives a SIGKILLed runner
//! just long enough to kill every job. It holds one end of a socket pair whose other end only the
//! runner holds; the runner registers each job's process group (and, in Proc mode, any new
//! process group found among a job's descendants). When the socket reports EOF — the runner is
//! gone, however it died — the guard SIGKILLs every registered group, every pid in every cgroup
//! under the runner's `memsweep-<pid>` base (found by listing it, so there is no cap on their
//! number; this also catches descendants that left the group with setsid), and every process
//! whose environment carries the runner's marker (daemons that double-forked away from every
//! group, see `attribution`); then it removes the job cgroups and the base, and exits. PR_SET_PDEATHSIG would only reach direct
//! children, and only while the forking thread lives; this reaches grandchildren.
//!
//! The guard is forked from a possibly multi-threaded process, so after fork it may only make
//! async-signal-safe calls: raw read/kill/open/rmdir/nanosleep on memory allocated before fork.
//! No allocation, no locks, no panics.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

const OP_ADD_PGID: i32 = 1;
const OP_DEL_PGID: i32 = 2;
/// Exit without killing: the runner shut down in order and already killed everything.
const OP_QUIT: i32 = 5;

/// Registered process groups: each job's own, plus (Proc mode) those its descendants create.
/// Past this many the runner notes that the rest rely on the marker scan.
pub const MAX_PGIDS: usize = 65_536;
const MAX_BASE: usize = 3900;
/// `\0MEMSWEEP_RUNNER=<tag>\0`: the needle searched for in /proc/PID/environ.
const MAX_NEEDLE: usize = 128;

/// Everything the guard child needs, allocated before fork (the child never allocates).
struct State {
    pgids: [i32; MAX_PGIDS],
    n_pgids: usize,
    /// `<base>/` of the job cgroups; every directory below it is a job cgroup (or v2's `runner`).
    base: [u8; MAX_BASE],
    base_len: usize,
    needle: [u8; MAX_NEEDLE],
    needle_len: usize,
    /// Scratch for paths and cgroup.procs contents.
    path: [u8; 4096],
    buf: [u8; 16384],
}

/// The runner's handle on its guard.
pub struct Guard {
    sock: Option<OwnedFd>,
    pid: i32,
    /// Registrations dropped because the guard is gone (write failed); reported once.
    pub dead: bool,
}

impl Guard {
    /// Fork the guard. `cgroup_base` is the runner's `memsweep-<pid>` directory, whose
    /// subdirectories are job cgroups.
    /// `tag` is the runner's marker (`attribution::RUNNER_VAR`'s value in every job).
    pub fn start(cgroup_base: Option<&Path>, tag: &str) -> io::Result<Guard> {
        let mut state: Box<State> = Box::new(State {
            pgids: [0; MAX_PGIDS],
            n_pgids: 0,
            base: [0; MAX_BASE],
            base_len: 0,
            needle: [0; MAX_NEEDLE],
            needle_len: 0,
            path: [0; 4096],
            buf: [0; 16384],
        });
        if let Some(base) = cgroup_base {
            let bytes = base.as_os_str().as_encoded_bytes();
            if bytes.len() + 1 >= MAX_BASE {
                return Err(io::Error::other(format!(
                    "cgroup path {} is too long for the orphan guard",
                    base.display()
                )));
            }
            state.base[..bytes.len()].copy_from_slice(bytes);
            state.base[bytes.len()] = b'/';
            state.base_len = bytes.len() + 1;
        }
        let needle = format!("\0{}={tag}\0", super::attribution::RUNNER_VAR);
        if needle.len() <= MAX_NEEDLE {
            state.needle[..needle.len()].copy_from_slice(needle.as_bytes());
            state.needle_len = needle.len();
        }
        let devnull = CString::new("/dev/null").expect("no NUL in literal");

        // CLOEXEC keeps both ends out of jobs.
        let (ours, theirs) = super::sys::socketpair()?;

        // SAFETY: the child branch below only makes async-signal-safe calls on memory allocated
        // before the fork and ends in _exit.
        let pid = unsafe { super::sys::fork_signals_blocked() }?;
        if pid == 0 {
            // SAFETY: we are the freshly forked child; `state` and `devnull` were allocated before
            // the fork and are only read/written here; guard_main never returns.
            unsafe { guard_main(theirs.as_raw_fd(), &mut state, devnull.as_ptr()) }
        }
        drop(theirs);
        Ok(Guard {
            sock: Some(ours),
            pid,
            dead: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn send(&mut self, op: i32, value: i32) {
        let Some(sock) = &self.sock else { return };
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&op.to_ne_bytes());
        msg[4..].copy_from_slice(&value.to_ne_bytes());
        // MSG_NOSIGNAL turns a dead guard into EPIPE instead of a SIGPIPE. 8 bytes on a stream
        // socket are written whole or not at all here.
        if super::sys::send_nosignal(sock.as_fd(), &msg).ok() != Some(msg.len()) {
            self.dead = true;
        }
    }

    pub fn add_pgid(&mut self, pgid: i32) {
        self.send(OP_ADD_PGID, pgid);
    }
    pub fn del_pgid(&mut self, pgid: i32) {
        self.send(OP_DEL_PGID, pgid);
    }

    /// The guard died and was reaped already: stop talking to it, never wait for it.
    pub fn mark_reaped(&mut self) {
        self.sock = None;
        self.dead = true;
    }

    /// Orderly shutdown: tell the guard to exit without killing, and reap it.
    pub fn quit(&mut self) {
        if self.sock.is_none() {
            return;
        }
        self.send(OP_QUIT, 0);
        self.sock = None;
        super::sys::wait_blocking(self.pid);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.quit();
    }
}

/// The guard's whole life. Only async-signal-safe calls; never returns.
///
/// # Safety
/// Must only be called in a freshly forked child; `st` and `devnull` must be valid.
unsafe fn guard_main(sock: i32, st: &mut State, devnull: *const libc::c_char) -> ! {
    // SAFETY: (whole body) raw syscalls on fds we own, buffers inside `st`, and NUL-terminated
    // paths built in `st.path`; nothing allocates or takes a lock. Async-signal safety, audited
    // (the guard is a fork of a multi-threaded runner that never execs, so this holds for its
    // whole life, including the helpers below): setpgid, sigaction, sigprocmask, fcntl, open,
    // dup2, close, read, kill, nanosleep, access, rmdir, getpid and _exit are on
    // signal-safety(7)'s list; close_range and getdents64 go through syscall(2), a lock-free
    // register shuffle in glibc and musl; errno is a thread-local read.
    unsafe {
        // Out of the runner's process group so a Ctrl-C or a group-wide signal meant for the
        // runner does not take the guard down before it has done its job.
        libc::setpgid(0, 0);
        // Signals were blocked across the fork: drop the runner's handlers (they would write
        // into the runner's self-pipe) and ignore what could end us early, then unblock.
        super::sys::child_reset_signals(&[
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
            libc::SIGTSTP,
        ]);

        // Keep only the socket: holding the runner's other descriptors (its stdout pipe, another
        // executor's guard socket) would keep them open after the runner dies.
        let s = libc::fcntl(sock, libc::F_DUPFD, 64);
        let null = libc::open(devnull, libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
        }
        let sock = if s >= 0 { s } else { sock };
        libc::dup2(sock, 3);
        let sock = 3;
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..4096 {
                libc::close(fd);
            }
        }

        let mut msg = [0u8; 8];
        let mut have = 0usize;
        loop {
            let n = libc::read(sock, msg.as_mut_ptr().add(have).cast(), 8 - have);
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break; // treat errors like EOF: we can no longer hear the runner
            }
            if n == 0 {
                break;
            }
            have += n as usize;
            if have < 8 {
                continue;
            }
            have = 0;
            let op = i32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
            let v = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
            match op {
                OP_ADD_PGID if st.n_pgids < MAX_PGIDS => {
                    st.pgids[st.n_pgids] = v;
                    st.n_pgids += 1;
                }
                OP_DEL_PGID => remove(&mut st.pgids, &mut st.n_pgids, v),
                OP_QUIT => libc::_exit(0),
                _ => {}
            }
        }

        // The runner is gone: kill everything it registered.
        for i in 0..st.n_pgids {
            libc::kill(-st.pgids[i], libc::SIGKILL);
        }
        // Marked processes: a daemon may have left every registered group before the runner
        // sampled it. They may fork while we kill: repeat until a pass finds none.
        for _round in 0..50 {
            if !kill_marked(st) {
                break;
            }
        }
        if st.base_len > 0 {
            // Processes may still fork while we kill; repeat until the cgroups are empty.
            for _round in 0..200 {
                if !sweep_cgroups(st, false) {
                    break;
                }
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 10_000_000,
                };
                libc::nanosleep(&ts, std::ptr::null_mut());
            }
            // A cgroup just emptied or removed is still going offline for a moment, and its
            // parent's rmdir fails with EBUSY until it is: retry for up to 3 s. v2's base
            // holds `runner`, where this guard itself lives: the next runner's stale-cgroup
            // sweep removes that one.
            let in_base = build_path(st, b"runner", b"")
                && libc::access(st.path.as_ptr().cast(), libc::F_OK) == 0;
            for _round in 0..300 {
                sweep_cgroups(st, true);
                st.path[..st.base_len].copy_from_slice(&st.base[..st.base_len]);
                st.path[st.base_len - 1] = 0;
                if libc::rmdir(st.path.as_ptr().cast()) == 0
                    || *libc::__errno_location() != libc::EBUSY
                    || in_base
                {
                    break;
                }
                sweep_cgroups(st, false);
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 10_000_000,
                };
                libc::nanosleep(&ts, std::ptr::null_mut());
            }
        }
        libc::_exit(0)
    }
}

fn remove(arr: &mut [i32], n: &mut usize, v: i32) {
    let mut i = 0;
    while i < *n {
        if arr[i] == v {
            arr[i] = arr[*n - 1];
            *n -= 1;
            return;
        }
        i += 1;
    }
}

/// `st.path` = `<base><name><suffix>\0`; false when it does not fit.
fn build_path(st: &mut State, name: &[u8], suffix: &[u8]) -> bool {
    let total = st.base_len + name.len() + suffix.len() + 1;
    if total > st.path.len() {
        return false;
    }
    st.path[..st.base_len].copy_from_slice(&st.base[..st.base_len]);
    let mut at = st.base_len;
    st.path[at..at + name.len()].copy_from_slice(name);
    at += name.len();
    st.path[at..at + suffix.len()].copy_from_slice(suffix);
    at += suffix.len();
    st.path[at] = 0;
    true
}

/// For every directory under the base: SIGKILL the pids in its `cgroup.procs` (`remove`:
/// rmdir it instead). True if any process was found.
///
/// # Safety
/// Only raw open/getdents64/read/close/kill/rmdir on buffers inside `st` or on our stack.
unsafe fn sweep_cgroups(st: &mut State, remove: bool) -> bool {
    let mut base = [0u8; MAX_BASE + 1];
    base[..st.base_len].copy_from_slice(&st.base[..st.base_len]);
    let mut found = false;
    // SAFETY: `base` is NUL-terminated (zero-filled past base_len); the callee's contract.
    unsafe {
        each_entry(base.as_ptr().cast(), st, |st, kind, name| {
            if kind != libc::DT_DIR || name == b"." || name == b".." {
                return;
            }
            if remove {
                if build_path(st, name, b"") {
                    libc::rmdir(st.path.as_ptr().cast());
                }
            } else if build_path(st, name, b"/cgroup.procs") && kill_listed(st) {
                found = true;
            }
        });
    }
    found
}

/// Call `f(st, d_type, name)` for each entry of the directory at `path` (NUL-terminated).
///
/// # Safety
/// `path` must be NUL-terminated; only raw open/getdents64/close here, on a stack buffer, and
/// `f` must itself be async-signal-safe.
unsafe fn each_entry(
    path: *const libc::c_char,
    st: &mut State,
    mut f: impl FnMut(&mut State, u8, &[u8]),
) {
    // SAFETY: raw syscalls on a descriptor we own and a buffer on our stack.
    unsafe {
        let dir = libc::open(path, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
        if dir < 0 {
            return;
        }
        let mut dents = [0u8; 8192];
        loop {
            let n = libc::syscall(libc::SYS_getdents64, dir, dents.as_mut_ptr(), dents.len());
            if n <= 0 {
                break;
            }
            let mut off = 0usize;
            while off < n as usize {
                let (reclen, kind, name) = dirent(&dents, off);
                off += reclen;
                f(st, kind, name);
            }
        }
        libc::close(dir);
    }
}

/// One `linux_dirent64` at `off`: (record length, d_type, name without its NUL).
fn dirent(buf: &[u8], off: usize) -> (usize, u8, &[u8]) {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
    let kind = buf[off + 18];
    let raw = &buf[off + 19..off + reclen];
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    (reclen, kind, &raw[..len])
}

/// SIGKILL every pid listed in the file at `st.path` (a `cgroup.procs`); true if any was found.
///
/// # Safety
/// Only raw open/read/close/kill on buffers inside `st` (async-signal-safe).
unsafe fn kill_listed(st: &mut State) -> bool {
    // SAFETY: `st.path` is NUL-terminated by build_path; `st.buf` is a valid buffer.
    unsafe {
        let fd = libc::open(st.path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let mut found = false;
        let mut pid: i32 = 0;
        let mut in_num = false;
        loop {
            let r = libc::read(fd, st.buf.as_mut_ptr().cast(), st.buf.len());
            if r <= 0 {
                break;
            }
            for &b in &st.buf[..r as usize] {
                if b.is_ascii_digit() {
                    pid = pid.saturating_mul(10).saturating_add((b - b'0') as i32);
                    in_num = true;
                } else {
                    if in_num && pid > 0 {
                        libc::kill(pid, libc::SIGKILL);
                        found = true;
                    }
                    pid = 0;
                    in_num = false;
                }
            }
        }
        if in_num && pid > 0 {
            libc::kill(pid, libc::SIGKILL);
            found = true;
        }
        libc::close(fd);
        found
    }
}

/// SIGKILL every process whose /proc/PID/environ contains `st.needle`; true if any was found.
///
/// # Safety
/// Only raw open/getdents64/read/close/kill on buffers inside `st` (async-signal-safe).
unsafe fn kill_marked(st: &mut State) -> bool {
    if st.needle_len == 0 {
        return false;
    }
    let mut found = false;
    // SAFETY: a NUL-terminated literal; the closure makes raw syscalls on buffers in `st`.
    unsafe {
        let me = libc::getpid();
        each_entry(c"/proc".as_ptr(), st, |st, _, name| {
            let mut pid: i32 = 0;
            for &b in name {
                if !b.is_ascii_digit() {
                    return;
                }
                pid = pid.saturating_mul(10).saturating_add((b - b'0') as i32);
            }
            if pid > 1 && pid != me && environ_has_needle(st, pid) {
                libc::kill(pid, libc::SIGKILL);
                found = true;
            }
        });
    }
    found
}

/// Whether `/proc/<pid>/environ` contains the needle (a NUL is assumed before the first byte).
///
/// # Safety
/// Only raw open/read/close on buffers inside `st`.
unsafe fn environ_has_needle(st: &mut State, pid: i32) -> bool {
    // "/proc/" + digits + "/environ\0"
    let mut at = 0;
    for &b in b"/proc/" {
        st.path[at] = b;
        at += 1;
    }
    let mut digits = [0u8; 12];
    let mut k = 0;
    let mut v = pid as u32;
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while k > 0 {
        k -= 1;
        st.path[at] = digits[k];
        at += 1;
    }
    for &b in b"/environ\0" {
        st.path[at] = b;
        at += 1;
    }
    // SAFETY: `st.path` is NUL-terminated above; `st.buf` is a valid buffer.
    unsafe {
        let fd = libc::open(st.path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        // The needle's only NULs are its first and last byte, so after a mismatch the match
        // restarts at 1 when the byte is a NUL, else at 0 (no other prefix can be a suffix).
        let mut matched = 1usize;
        let mut hit = false;
        'read: loop {
            let r = libc::read(fd, st.buf.as_mut_ptr().cast(), st.buf.len());
            if r <= 0 {
                break;
            }
            for &b in &st.buf[..r as usize] {
                if b == st.needle[matched] {
                    matched += 1;
                    if matched == st.needle_len {
                        hit = true;
                        break 'read;
                    }
                } else {
                    matched = usize::from(b == 0);
                }
            }
        }
        libc::close(fd);
        hit
    }
}
