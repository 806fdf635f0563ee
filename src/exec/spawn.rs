//! Starting one job: its own process group, stdin from /dev/null, stdout/stderr appended to its
//! files (never a pipe nobody reads), oom_score_adj 1000 and its memory cgroup joined in the
//! child before exec — so the job is accounted and killable-first from its very first allocation.
//!
//! A hand-written clone/exec rather than `std::process::Command`: std's spawn blocks until the
//! child has exec'd, which would serialize each child's set-up (folder, files, cgroup migration)
//! into the runner's loop, and it cannot hold a job at the gate. Here the runner returns right
//! after `clone(CLONE_VM)` (the child borrows the runner's memory until exec instead of copying
//! its page tables, see [`child_main`]); the program is resolved on PATH beforehand (a missing
//! program is reported at once), and a failure in the child (joining the cgroup, exec) travels
//! back through a close-on-exec pipe that is read when the child is reaped.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::{SpawnSpec, sys};
use crate::sweep::JobCommand;

const OOM_ADJ_PATH: &CStr = c"/proc/self/oom_score_adj";

/// What the child failed at, sent through the error pipe with the errno.
const STAGE_CGROUP: i32 = 1;
const STAGE_EXEC: i32 = 2;
const STAGE_FDS: i32 = 3;
const STAGE_STDOUT: i32 = 4;
const STAGE_STDERR: i32 = 5;
const STAGE_JOBDIR: i32 = 6;
const STAGE_GATE: i32 = 7;

/// A started job: its pid (= process group id), the read end of its error pipe, and the memory
/// its child reads until exec (keep it until the child is reaped).
pub struct Started {
    pub pid: i32,
    pub errors: OwnedFd,
    pub memory: ChildMemory,
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
    read: OwnedFd,
    write: OwnedFd,
    held: usize,
}

impl Gate {
    pub fn new() -> io::Result<Gate> {
        let (read, write) = sys::pipe()?;
        Ok(Gate {
            read,
            write,
            held: 0,
        })
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

/// Start the job (held at `gate` before exec, when given). Errors found before the clone
/// (missing program, unopenable output file) are returned here; errors in the child come back
/// through [`child_error`].
pub fn spawn(
    spec: &SpawnSpec,
    cgroup_procs: Option<&CStr>,
    gate: Option<&mut Gate>,
) -> io::Result<Started> {
    let argv: Vec<String> = match &spec.command {
        JobCommand::Argv(argv) => argv.clone(),
        JobCommand::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
    };
    let Some(prog) = argv.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    // The job's environment: ours, with the spec's variables set over it. Ours is turned into
    // C strings once: it does not change during a sweep.
    let base = base_env();
    let overridden = |k: &OsStr| spec.env.iter().any(|(sk, _)| OsStr::new(sk) == k);
    let path_var = match spec.env.iter().find(|(k, _)| k == "PATH") {
        Some((_, v)) => Some(OsStr::new(v)),
        None => base
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, kv)| OsStr::from_bytes(&kv.as_bytes()[5..])),
    };
    let exe = cstring(
        resolve_cached(prog, path_var)?.as_os_str().as_bytes(),
        "program path",
    )?;
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
            text.as_bytes().to_vec(),
        )),
        None => None,
    };
    let stdout = cstring(spec.stdout.as_os_str().as_bytes(), "the stdout path")?;
    let stderr = (spec.stderr != spec.stdout)
        .then(|| cstring(spec.stderr.as_os_str().as_bytes(), "the stderr path"))
        .transpose()?;

    let (rd, wr) = sys::pipe()?;
    let args = Box::new(ChildArgs {
        exe,
        argv: p_argv,
        envp: p_env,
        _strings: (c_argv, c_env),
        job_dir,
        stdin: stdin.as_raw_fd(),
        stdout,
        stderr,
        errors: wr.as_raw_fd(),
        cgroup_procs: cgroup_procs.map(CStr::to_owned),
        gate: gate
            .as_ref()
            .map(|g| (g.read.as_raw_fd(), g.write.as_raw_fd())),
    });
    let stack = Stack::new()?;
    // SAFETY: `child_main` makes only raw syscalls on `args` and its own stack, which stay
    // allocated until the child is reaped (both move into `Started::memory`), and ends in exec
    // or _exit. See `child_main` for why it shares our memory.
    let pid = unsafe { sys::clone_vm_signals_blocked(child_main, stack.top(), &*args) }?;
    // Also set the group from the parent, so a signal sent right after spawn cannot find the
    // group missing (the classic shell race). EACCES means the child already exec'd — having
    // set it itself.
    let _ = sys::setpgid(pid, pid);
    drop(wr);
    // O_NONBLOCK so reading an empty pipe never blocks.
    let _ = sys::set_nonblocking(rd.as_fd());
    if let Some(g) = gate {
        g.held += 1;
    }
    Ok(Started {
        pid,
        errors: rd,
        memory: ChildMemory {
            _args: args,
            _stack: stack,
        },
    })
}

/// What a child started by [`spawn`] reads before exec: kept by the caller until the child is
/// reaped (it shares the runner's memory until it execs; see [`child_main`]).
pub struct ChildMemory {
    _args: Box<ChildArgs>,
    _stack: Stack,
}

/// The child's own stack: a private anonymous mapping with a guard page below it.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

/// Stack for the child between clone and exec; it needs a few KiB (no allocation, no
/// formatting), the rest is margin. Only the pages it touches count.
const STACK_LEN: usize = 64 << 10;

impl Stack {
    fn new() -> io::Result<Stack> {
        let page = sys::page_size() as usize;
        let len = STACK_LEN + page;
        // SAFETY: a fresh anonymous mapping; nothing else refers to it. The lowest page is made
        // inaccessible so an overflow faults instead of writing below the stack.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = Stack { base, len };
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// The highest address, 16-byte aligned (stacks grow down).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; the child that used it has been reaped.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

/// Everything the child needs, prepared before the clone and owned here so that it outlives the
/// child's use of it.
pub struct ChildArgs {
    exe: CString,
    /// NULL-terminated pointer arrays into `_strings` (argv) and into `base_env()` plus
    /// `_strings` (envp).
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _strings: (Vec<CString>, Vec<CString>),
    /// The job folder, its `command` file and that file's text.
    job_dir: Option<(CString, CString, Vec<u8>)>,
    stdin: RawFd,
    stdout: CString,
    /// None: stderr goes to the stdout file.
    stderr: Option<CString>,
    errors: RawFd,
    cgroup_procs: Option<CString>,
    /// The gate's read and write ends: wait for a byte on the first before exec.
    gate: Option<(RawFd, RawFd)>,
}

/// The child between clone and exec.
///
/// It is started with `CLONE_VM`: it runs in the runner's memory, on its own stack, until exec
/// gives it its own. `fork` copied the runner's page tables for each job (and the runner then
/// paid a copy-on-write fault for each page it touched while the job waited at the gate, and the
/// job's exec tore the copy down): with 100 000 jobs queued, a third of all the CPU time. The
/// price is discipline: the child may only read `ChildArgs` and write its own stack, and must not
/// touch errno (a thread-local it shares with the runner's main thread), so every call here is
/// a raw syscall (rustix's, which report errors by value, or [`sys::raw_execve`]); nothing
/// allocates, locks or unwinds. Signals are blocked from before the clone until the handlers
/// are reset; the signal dispositions and the file table are the child's own copies (no
/// `CLONE_SIGHAND`, no `CLONE_FILES`).
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` that `spawn` boxed and keeps alive until this child is
    // reaped; this function never returns (exec or _exit).
    unsafe { child_exec(&*(arg as *const ChildArgs)) }
}

/// # Safety
/// Only in a child started by [`sys::clone_vm_signals_blocked`] with valid `a`.
unsafe fn child_exec(a: &ChildArgs) -> ! {
    use rustix::fd::BorrowedFd;
    use rustix::fs::{Mode, OFlags};
    // SAFETY: (whole body) raw syscalls on descriptors and NUL-terminated strings prepared
    // before the clone; nothing allocates, locks or touches errno. Async-signal safety and
    // CLONE_VM discipline, audited: rustix's linux_raw calls (setpgid, open, write, close,
    // mkdir, fcntl, dup2, read) are bare syscalls; `sys::child_reset_signals_raw` and
    // `sys::raw_execve` too; _exit is exit_group. The closures and buffers live on this stack.
    unsafe {
        let fd = |raw: RawFd| BorrowedFd::borrow_raw(raw);
        let fail = |stage: i32, errno: i32| -> ! {
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&stage.to_ne_bytes());
            msg[4..].copy_from_slice(&errno.to_ne_bytes());
            let _ = rustix::io::write(fd(a.errors), &msg);
            libc::_exit(127)
        };
        let close = |raw: RawFd| rustix::io::close(raw);
        let _ = rustix::process::setpgid(None, None);
        // Only the runner may hold the gate's write end, so its death reads as end of file.
        if let Some((_, w)) = a.gate {
            close(w);
        }
        // Signals were blocked across the clone: drop the runner's handlers (a SIGTERM meant
        // for this job must not run them and pose as the runner's interrupt) before unblocking.
        sys::child_reset_signals_raw();
        // The job is the kernel's first choice if it must kill (raising needs no privilege).
        // Done here, not from the parent after spawn, so the job never allocates at the
        // runner's protected score. Ignored where /proc is read-only.
        if let Ok(f) = rustix::fs::open(
            OOM_ADJ_PATH,
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            let _ = rustix::io::write(&f, b"1000");
            close(f.into_raw_fd());
        }
        // Before joining the cgroup: the inodes created here stay cached after the job, and
        // charged to a pooled job cgroup they would pile up until every reset had to reclaim.
        let append = |path: &CStr, stage: i32| -> RawFd {
            match rustix::fs::open(
                path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            ) {
                Ok(f) => f.into_raw_fd(),
                Err(e) => fail(stage, e.raw_os_error()),
            }
        };
        if let Some((dir, cmd, text)) = &a.job_dir {
            match rustix::fs::mkdir(dir.as_c_str(), Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => fail(STAGE_JOBDIR, e.raw_os_error()),
            }
            let f = match rustix::fs::open(
                cmd.as_c_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            ) {
                Ok(f) => f,
                Err(e) => fail(STAGE_JOBDIR, e.raw_os_error()),
            };
            match rustix::io::write(&f, text) {
                Ok(n) if n == text.len() => {}
                Ok(_) => fail(STAGE_JOBDIR, libc::EIO),
                Err(e) => fail(STAGE_JOBDIR, e.raw_os_error()),
            }
            close(f.into_raw_fd());
        }
        let out = append(&a.stdout, STAGE_STDOUT);
        let err = a.stderr.as_deref().map_or(out, |p| append(p, STAGE_STDERR));
        if let Some(p) = &a.cgroup_procs {
            // "0" means the writing process itself, in v1 and v2 alike. O_CREAT only matters
            // for fixture trees; cgroupfs files always exist.
            let f = match rustix::fs::open(
                p.as_c_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(f) => f,
                Err(e) => fail(STAGE_CGROUP, e.raw_os_error()),
            };
            match rustix::io::write(&f, b"0") {
                Ok(1) => {}
                Ok(_) => fail(STAGE_CGROUP, libc::EIO),
                Err(e) => fail(STAGE_CGROUP, e.raw_os_error()),
            }
            close(f.into_raw_fd());
        }
        for (target, src) in [a.stdin, out, err].into_iter().enumerate() {
            let target = target as RawFd;
            // dup2 onto itself keeps close-on-exec set; clear it instead.
            let res = if src == target {
                rustix::io::fcntl_setfd(fd(src), rustix::io::FdFlags::empty())
            } else {
                let mut to = std::mem::ManuallyDrop::new(rustix::fd::OwnedFd::from_raw_fd(target));
                rustix::io::dup2(fd(src), &mut to)
            };
            if let Err(e) = res {
                fail(STAGE_FDS, e.raw_os_error());
            }
        }
        if let Some((r, _)) = a.gate {
            // Everything above overlapped the runner's fsync of this job's start; the job runs
            // once that start is durable, never before.
            let mut b = [0u8; 1];
            loop {
                match rustix::io::read(fd(r), &mut b) {
                    Ok(1) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    _ => fail(STAGE_GATE, libc::ECANCELED),
                }
            }
        }
        let errno = sys::raw_execve(&a.exe, a.argv.as_ptr(), a.envp.as_ptr());
        fail(STAGE_EXEC, errno)
    }
}

/// Why the child never became the job, if it said so through its error pipe.
pub fn child_error(errors: &OwnedFd, command: &JobCommand) -> Option<String> {
    let mut msg = [0u8; 8];
    // The fd is non-blocking: an empty pipe (the child exec'd) is an error here, i.e. None.
    let n = sys::read(errors.as_fd(), &mut msg).ok()?;
    if n != 8 {
        return None;
    }
    let stage = i32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let errno = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let e = sys::err_text(&io::Error::from_raw_os_error(errno));
    let what = match command {
        JobCommand::Argv(argv) => argv.first().map(String::as_str).unwrap_or(""),
        JobCommand::Shell(_) => "sh",
    };
    Some(match stage {
        STAGE_CGROUP => format!("cannot move the job into its memory cgroup: {e}"),
        STAGE_FDS => format!("cannot set up the job's stdin/stdout/stderr: {e}"),
        STAGE_STDOUT => format!("cannot open the job's stdout file: {e}"),
        STAGE_JOBDIR => format!("cannot create the job's folder and command file: {e}"),
        STAGE_STDERR => format!("cannot open the job's stderr file: {e}"),
        STAGE_GATE => "the runner stopped before the job's start was recorded".to_string(),
        _ => format!("cannot run {what:?}: {e}"),
    })
}
