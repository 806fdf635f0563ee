//! Starting one job: its own process group, stdin from /dev/null, stdout/stderr appended to its
//! files (never a pipe nobody reads), oom_score_adj 1000 and its memory cgroup joined in the
//! child before exec — so the job is accounted and killable-first from its very first allocation.
//!
//! A hand-written `clone(CLONE_VM | CLONE_VFORK)` + exec (posix_spawn's way) rather than `fork`
//! or `std::process::Command`: the child borrows the runner's memory until it execs, so no page
//! tables are copied and no copy-on-write faults follow. The calling thread is held until the
//! child execs or exits, so it is [`super::spawner`]'s thread that calls [`spawn`], never the
//! runner's loop. A vfork child is also exempt from the kernel's copying of an `oom_score_adj`
//! write to every process sharing its memory (`task->vfork_done`), which a plain `CLONE_VM`
//! child is not: the job raises its own score without raising the runner's. The program is
//! resolved on PATH before cloning; a failure in the child (joining the cgroup, exec) is written
//! into the caller's memory, which the child shares, and read when `clone` returns.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::{SpawnSpec, sys};
use crate::sweep::JobCommand;

const OOM_ADJ_PATH: &CStr = c"/proc/self/oom_score_adj";

/// What the child failed at, written into [`Failure`] with the errno.
const STAGE_CGROUP: i32 = 1;
const STAGE_EXEC: i32 = 2;
const STAGE_FDS: i32 = 3;
const STAGE_STDOUT: i32 = 4;
const STAGE_STDERR: i32 = 5;
const STAGE_JOBDIR: i32 = 6;
const STAGE_GATE: i32 = 7;

/// A started job: its pid (= process group id), and why it never became the job if the child
/// failed before exec (it then exits 127 and is reaped like any job).
pub struct Started {
    pub pid: i32,
    pub error: Option<String>,
}

/// Where the child reports a failure before exec: in the caller's memory, which a `CLONE_VM`
/// child shares; `stage` 0 means none.
#[repr(C)]
struct Failure {
    stage: i32,
    errno: i32,
}

fn cstring(s: &[u8], what: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Find `prog` like execvp would, in the job's PATH (its env override, else ours).
fn resolve(prog: &str, path_var: Option<&OsStr>) -> io::Result<PathBuf> {
    let not_found = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot run {prog:?}: program not found (check the command and PATH)"),
        )
    };
    if prog.is_empty() {
        return Err(not_found());
    }
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.contains('/') {
        return if executable(Path::new(prog)) {
            Ok(PathBuf::from(prog))
        } else if Path::new(prog).exists() {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("cannot run {prog:?}: not an executable file"),
            ))
        } else {
            Err(not_found())
        };
    }
    let default = OsString::from("/usr/local/bin:/usr/bin:/bin");
    let path_var = path_var.unwrap_or(&default);
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let cand = dir.join(prog);
        if executable(&cand) {
            return Ok(cand);
        }
    }
    Err(not_found())
}

/// The last program found on PATH, with the PATH it was found in: a sweep runs one program
/// (often `sh`) thousands of times, and each lookup costs a `stat` per PATH entry.
static LAST_RESOLVED: Mutex<Option<(String, OsString, PathBuf)>> = Mutex::new(None);

/// [`resolve`], remembering the last answer. A program removed during the sweep then fails at
/// exec instead, with the same "not found" reason.
fn resolve_cached(prog: &str, path_var: Option<&OsStr>) -> io::Result<PathBuf> {
    let path_key = path_var.unwrap_or_default().to_os_string();
    let mut last = LAST_RESOLVED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, k, exe)) = last.as_ref()
        && p == prog
        && *k == path_key
    {
        return Ok(exe.clone());
    }
    let exe = resolve(prog, path_var)?;
    *last = Some((prog.to_string(), path_key, exe.clone()));
    Ok(exe)
}

/// memsweep's own environment as `KEY=value` C strings, built once (it does not change during a
/// sweep). Variables whose name or value holds a NUL cannot be passed on and are left out.
fn base_env() -> &'static [(OsString, CString)] {
    static BASE: OnceLock<Vec<(OsString, CString)>> = OnceLock::new();
    BASE.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                Some((k, CString::new(kv).ok()?))
            })
            .collect()
    })
}

/// /dev/null, opened once (close-on-exec; each child dups it onto its stdin).
fn dev_null() -> io::Result<&'static File> {
    static NULL: OnceLock<File> = OnceLock::new();
    if let Some(f) = NULL.get() {
        return Ok(f);
    }
    let f = File::open("/dev/null")?;
    Ok(NULL.get_or_init(|| f))
}

/// A pipe that holds started jobs just before exec until the runner opens it (see
/// [`super::Executor::spawn_gated`]): each child reads one byte, then execs; end of file (the
/// runner dropped the gate, or died) means the job must not run.
pub struct Gate {
    read: Arc<OwnedFd>,
    write: OwnedFd,
    held: usize,
}

/// A job's hold on a [`Gate`]: the read end, kept open until the job is started. The child
/// closes every other descriptor before it waits (the gate's write end among them), so only
/// the runner holds the write end and its death reads as end of file.
pub struct GateHold {
    read: Arc<OwnedFd>,
}

impl Gate {
    pub fn new() -> io::Result<Gate> {
        let (read, write) = sys::pipe()?;
        Ok(Gate {
            read: Arc::new(read),
            write,
            held: 0,
        })
    }

    /// One more job to hold; it needs one byte when the gate opens.
    pub fn hold(&mut self) -> GateHold {
        self.held += 1;
        GateHold {
            read: Arc::clone(&self.read),
        }
    }

    /// Let every held child exec: one byte each (a pipe holds 64 KiB, far more than one turn
    /// starts). Dropping the gate afterwards is safe: each child has its byte.
    pub fn open(self) -> io::Result<()> {
        let bytes = vec![b'g'; self.held];
        let mut done = 0;
        while done < bytes.len() {
            match sys::write(self.write.as_fd(), &bytes[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The job's program as execve wants it: found on the job's PATH (its env override, else
/// ours). Done by the runner when it queues the job, so a missing program is reported at once.
pub fn program(spec: &SpawnSpec) -> io::Result<CString> {
    let prog = match &spec.command {
        JobCommand::Argv(argv) => argv.first().map(String::as_str),
        JobCommand::Shell(_) => Some("sh"),
    };
    let Some(prog) = prog else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let path_var = match spec.env.iter().find(|(k, _)| k == "PATH") {
        Some((_, v)) => Some(OsStr::new(v)),
        None => base_env()
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, kv)| OsStr::from_bytes(&kv.as_bytes()[5..])),
    };
    cstring(
        resolve_cached(prog, path_var)?.as_os_str().as_bytes(),
        "program path",
    )
}

/// Start the job, running `exe` (from [`program`]), held at `gate` before exec when given, on
/// `stack`; returns once it has exec'd or failed. The kernel stores the child's pid in
/// `starting` as soon as it exists (`CLONE_PARENT_SETTID`), for the runner to recognise it
/// before this returns. Errors found before the clone (bad argument,
/// no process left) are returned as errors; a failure in the child comes back as
/// [`Started::error`].
pub fn spawn(
    spec: &SpawnSpec,
    exe: &CStr,
    cgroup_procs: Option<&CStr>,
    gate: Option<&GateHold>,
    stack: &ChildStack,
    starting: &std::sync::atomic::AtomicI32,
) -> io::Result<Started> {
    let argv: Vec<String> = match &spec.command {
        JobCommand::Argv(argv) => argv.clone(),
        JobCommand::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
    };
    // The job's environment: ours, with the spec's variables set over it. Ours is turned into
    // C strings once (it does not change during a sweep).
    let base = base_env();
    let overridden = |k: &OsStr| spec.env.iter().any(|(sk, _)| OsStr::new(sk) == k);
    let c_argv: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a.as_bytes(), "an argument"))
        .collect::<io::Result<_>>()?;
    let c_env: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes(), "an environment variable"))
        .collect::<io::Result<_>>()?;
    let mut p_argv: Vec<*const libc::c_char> = c_argv.iter().map(|c| c.as_ptr()).collect();
    p_argv.push(std::ptr::null());
    let mut p_env: Vec<*const libc::c_char> = base
        .iter()
        .filter(|(k, _)| !overridden(k))
        .map(|(_, kv)| kv.as_ptr())
        .chain(c_env.iter().map(|c| c.as_ptr()))
        .collect();
    p_env.push(std::ptr::null());

    // The output files are created by the child, not here: creating an inode costs the runner
    // 25 µs on a quiet ext4 and over 0.5 ms on one with many recent deletions, and the child
    // does it in parallel with the runner's loop. A failure comes back through the error pipe.
    let stdin = dev_null()?;
    let job_dir = match &spec.job_dir {
        Some((dir, text)) => Some((
            cstring(dir.as_os_str().as_bytes(), "the job folder path")?,
            cstring(
                dir.join("command").as_os_str().as_bytes(),
                "the job folder path",
            )?,
            text.as_bytes(),
        )),
        None => None,
    };
    let out_path = cstring(spec.stdout.as_os_str().as_bytes(), "the stdout path")?;
    let err_path = (spec.stderr != spec.stdout)
        .then(|| cstring(spec.stderr.as_os_str().as_bytes(), "the stderr path"))
        .transpose()?;

    let mut failure = Failure { stage: 0, errno: 0 };
    let child = ChildArgs {
        exe,
        argv: p_argv.as_ptr(),
        envp: p_env.as_ptr(),
        job_dir: job_dir
            .as_ref()
            .map(|(d, c, t)| (d.as_c_str(), c.as_c_str(), *t)),
        stdin: stdin.as_raw_fd(),
        stdout: &out_path,
        stderr: err_path.as_deref(),
        failure: &mut failure,
        cgroup_procs,
        gate: gate.map(|g| g.read.as_raw_fd()),
    };
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT_SETTID | libc::SIGCHLD;
    // SAFETY: `child_main` only makes async-signal-safe calls on memory prepared above (alive
    // until clone returns: this thread is held until the child execs or exits) and ends in
    // exec or _exit; it runs on `stack`, which nothing else uses meanwhile. The child shares
    // this thread's TLS (errno), harmless while this thread is held. The kernel writes the pid
    // into `starting`, an aligned i32 that outlives the call.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            flags,
            (&child as *const ChildArgs).cast_mut().cast(),
            starting.as_ptr(),
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the child has exec'd or exited (CLONE_VFORK); nothing else writes `failure`.
    let (stage, errno) = unsafe {
        (
            std::ptr::read_volatile(&failure.stage),
            std::ptr::read_volatile(&failure.errno),
        )
    };
    let error = (stage != 0).then(|| child_error(stage, errno, &spec.command));
    Ok(Started { pid, error })
}

/// The stack the child runs on until exec: its own mapping, with a guard page below, reused
/// for every job a thread starts (one at a time: the thread is held until its child execs).
pub struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    /// 256 KiB, touched only as deep as the child goes (a few KiB).
    pub fn new() -> io::Result<ChildStack> {
        let len = 256 << 10;
        let page = sys::page_size() as usize;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the lowest page of the mapping made above: an overflow faults instead of
        // writing into whatever lies below.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    fn top(&self) -> *mut libc::c_void {
        // The stack grows down from the end of the mapping (page-aligned, so 16-byte aligned).
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no child runs on it any more.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` that `spawn` passed to clone, alive and unchanged until
    // this child execs or exits; this is a fresh CLONE_VM|CLONE_VFORK child on its own stack.
    unsafe { child_exec(&*arg.cast::<ChildArgs>()) }
}

struct ChildArgs<'a> {
    exe: &'a CStr,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// The job folder, its `command` file and that file's text.
    job_dir: Option<(&'a CStr, &'a CStr, &'a [u8])>,
    stdin: i32,
    stdout: &'a CStr,
    /// None: stderr goes to the stdout file.
    stderr: Option<&'a CStr>,
    /// In the caller's memory, shared: the child's report of a failure before exec.
    failure: *mut Failure,
    cgroup_procs: Option<&'a CStr>,
    /// The gate's read end: wait for a byte on it before exec.
    gate: Option<i32>,
}

/// The child between clone and exec. Only async-signal-safe calls, and no writes to memory
/// other than its own stack and `a.failure`: it shares the runner's memory.
///
/// # Safety
/// Must be called only in a fresh `CLONE_VM | CLONE_VFORK` child with valid `a`.
unsafe fn child_exec(a: &ChildArgs) -> ! {
    // SAFETY: (whole body) raw syscalls on descriptors and NUL-terminated strings prepared
    // before the clone; nothing allocates or locks. Async-signal safety, audited: every call here
    // (setpgid, close, sigaction, sigprocmask, open, write, mkdir, fcntl, dup2, read, execve,
    // _exit) is on signal-safety(7)'s list, and `close_from`'s close_range is a bare syscall
    // (libc's `syscall`, a register shuffle); errno is read through __errno_location (the held
    // calling thread's thread-local, no lock); the closures and the fd array live on this
    // stack; the one shared write is `a.failure`, read by the caller only after the child has
    // exited. Raw libc is kept here on purpose, so the whole child path reads as one audited
    // list of syscalls.
    unsafe {
        let fail = |stage: i32| -> ! {
            let errno = *libc::__errno_location();
            std::ptr::write_volatile(&raw mut (*a.failure).errno, errno);
            std::ptr::write_volatile(&raw mut (*a.failure).stage, stage);
            libc::_exit(127)
        };
        libc::setpgid(0, 0);
        // The spawner thread blocks every signal, so this child starts with them blocked: drop
        // the runner's handlers (a SIGTERM meant for this job must not run them and pose as the
        // runner's interrupt; the child has its own copy of the table) before unblocking.
        super::sys::child_reset_signals(&[]);
        // The job is the kernel's first choice if it must kill (raising needs no privilege).
        // Done here, not from the parent after spawn, so the job never allocates at the
        // runner's protected score. Ignored where /proc is read-only.
        let fd = libc::open(OOM_ADJ_PATH.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, b"1000".as_ptr().cast(), 4);
            libc::close(fd);
        }
        // Before joining the cgroup: the inodes created here stay cached after the job, and
        // charged to a pooled job cgroup they would pile up until every reset had to reclaim.
        let append = |path: &CStr, stage: i32| -> i32 {
            let fd = libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
                0o666,
            );
            if fd < 0 {
                fail(stage);
            }
            fd
        };
        if let Some((dir, cmd, text)) = a.job_dir {
            if libc::mkdir(dir.as_ptr(), 0o777) != 0 && *libc::__errno_location() != libc::EEXIST {
                fail(STAGE_JOBDIR);
            }
            let fd = libc::open(
                cmd.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o666,
            );
            if fd < 0 || libc::write(fd, text.as_ptr().cast(), text.len()) != text.len() as isize {
                fail(STAGE_JOBDIR);
            }
            libc::close(fd);
        }
        let out = append(a.stdout, STAGE_STDOUT);
        let err = a.stderr.map_or(out, |p| append(p, STAGE_STDERR));
        if let Some(p) = a.cgroup_procs {
            // "0" means the writer itself: this thread through v1's `tasks` (the only thread
            // until exec, so the whole job), this process through v2's `cgroup.procs`. O_CREAT
            // only matters for fixture trees; cgroupfs files always exist.
            let fd = libc::open(
                p.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                0o644,
            );
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                fail(STAGE_CGROUP);
            }
            libc::close(fd);
        }
        for (target, fd) in [a.stdin, out, err].into_iter().enumerate() {
            let target = target as i32;
            // dup2 onto itself keeps close-on-exec set; clear it instead.
            let ok = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, target) >= 0
            };
            if !ok {
                fail(STAGE_FDS);
            }
        }
        // Keep no descriptor but stdin/stdout/stderr and the gate's read end (moved to 3): only
        // the runner may hold the gate's write end, so its death reads as end of file. A child
        // cloned by a spawner thread copies every descriptor the runner has open at that
        // moment, other gates' write ends among them: two held children, each holding the
        // other's gate open, never saw end of file when a failed sync dropped both gates, and
        // the runner hung with its spawner threads waiting on them.
        let keep = match a.gate {
            Some(3) => 4,
            Some(r) => {
                if libc::dup2(r, 3) < 0 {
                    fail(STAGE_FDS);
                }
                4
            }
            None => 3,
        };
        close_from(keep);
        if a.gate.is_some() {
            // Everything above overlapped the runner's fsync of this job's start; the job runs
            // once that start is durable, never before.
            let r = 3;
            let mut b = 0u8;
            loop {
                let n = libc::read(r, (&mut b as *mut u8).cast(), 1);
                if n == 1 {
                    break;
                }
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                *libc::__errno_location() = libc::ECANCELED;
                fail(STAGE_GATE);
            }
            libc::close(r);
        }
        libc::execve(a.exe.as_ptr(), a.argv, a.envp);
        fail(STAGE_EXEC)
    }
}

/// Close every descriptor from `first` up, in the child before exec: `close_range(2)`, else
/// (kernels before 5.9) one `close` per number below 4096.
///
/// # Safety
/// Only in the child between clone and exec (async-signal-safe raw syscalls).
unsafe fn close_from(first: i32) {
    // SAFETY: raw syscalls on the child's own descriptor table.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        ) != 0
        {
            for fd in first..4096 {
                libc::close(fd);
            }
        }
    }
}

/// Why the child never became the job, from what it reported.
fn child_error(stage: i32, errno: i32, command: &JobCommand) -> String {
    let e = sys::err_text(&io::Error::from_raw_os_error(errno));
    let what = match command {
        JobCommand::Argv(argv) => argv.first().map(String::as_str).unwrap_or(""),
        JobCommand::Shell(_) => "sh",
    };
    match stage {
        STAGE_CGROUP => format!("cannot move the job into its memory cgroup: {e}"),
        STAGE_FDS => format!("cannot set up the job's stdin/stdout/stderr: {e}"),
        STAGE_STDOUT => format!("cannot open the job's stdout file: {e}"),
        STAGE_JOBDIR => format!("cannot create the job's folder and command file: {e}"),
        STAGE_STDERR => format!("cannot open the job's stderr file: {e}"),
        STAGE_GATE => "the runner stopped before the job's start was recorded".to_string(),
        _ => format!("cannot run {what:?}: {e}"),
    }
}
