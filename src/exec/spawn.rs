//! Starting one job: its own process group, stdin from /dev/null, stdout/stderr appended to its
//! files (never a pipe nobody reads), oom_score_adj 1000 and its memory cgroup joined in the
//! child before exec — so the job is accounted and killable-first from its very first allocation.
//!
//! A hand-written fork/exec rather than `std::process::Command`: std's spawn blocks until the
//! child has exec'd, which would serialize each child's cgroup migration (the slowest step, about
//! half a millisecond) into the runner's loop. Here the runner returns right after fork; the
//! program is resolved on PATH before forking (a missing program is reported at once), and a
//! failure in the child (joining the cgroup, exec) travels back through a close-on-exec pipe
//! that is read when the child is reaped.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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

/// A forked job: its pid (= process group id) and the read end of its error pipe.
pub struct Started {
    pub pid: i32,
    pub errors: OwnedFd,
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

/// A pipe that holds forked jobs just before exec until the runner opens it (see
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

/// Fork the job (held at `gate` before exec, when given). Errors found before the fork
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
    // C strings once: rebuilt per job, its dozens of small allocations were freed right after
    // the fork, each free faulting in a copy-on-write page of the runner.
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
            text.as_bytes(),
        )),
        None => None,
    };
    let out_path = cstring(spec.stdout.as_os_str().as_bytes(), "the stdout path")?;
    let err_path = (spec.stderr != spec.stdout)
        .then(|| cstring(spec.stderr.as_os_str().as_bytes(), "the stderr path"))
        .transpose()?;

    let (rd, wr) = sys::pipe()?;

    let child = ChildArgs {
        exe: &exe,
        argv: p_argv.as_ptr(),
        envp: p_env.as_ptr(),
        job_dir: job_dir
            .as_ref()
            .map(|(d, c, t)| (d.as_c_str(), c.as_c_str(), *t)),
        stdin: stdin.as_raw_fd(),
        stdout: &out_path,
        stderr: err_path.as_deref(),
        errors: wr.as_raw_fd(),
        cgroup_procs,
        gate: gate
            .as_ref()
            .map(|g| (g.read.as_raw_fd(), g.write.as_raw_fd())),
    };
    // SAFETY: the child branch only makes async-signal-safe calls on memory prepared above and
    // ends in exec or _exit.
    let pid = unsafe { sys::fork_signals_blocked() }?;
    if pid == 0 {
        // SAFETY: freshly forked child; every pointer in `child` stays valid (the parent's
        // memory, copied at fork) until exec or _exit.
        unsafe { child_exec(&child) }
    }
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
    Ok(Started { pid, errors: rd })
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
    errors: i32,
    cgroup_procs: Option<&'a CStr>,
    /// The gate's read and write ends: wait for a byte on the first before exec.
    gate: Option<(i32, i32)>,
}

/// The child between fork and exec. Only async-signal-safe calls.
///
/// # Safety
/// Must be called only in a freshly forked child with valid `a`.
unsafe fn child_exec(a: &ChildArgs) -> ! {
    // SAFETY: (whole body) raw syscalls on descriptors and NUL-terminated strings prepared
    // before the fork; nothing allocates or locks. Async-signal safety, audited: every call here
    // (setpgid, close, sigaction, sigprocmask, open, write, mkdir, fcntl, dup2, read, execve,
    // _exit) is on signal-safety(7)'s list; errno is read through __errno_location (a
    // thread-local, no lock); the closures and the fd array live on this stack. Raw libc is
    // kept here on purpose, so the whole child path reads as one audited list of syscalls.
    unsafe {
        let fail = |stage: i32| -> ! {
            let errno = *libc::__errno_location();
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&stage.to_ne_bytes());
            msg[4..].copy_from_slice(&errno.to_ne_bytes());
            libc::write(a.errors, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        };
        libc::setpgid(0, 0);
        // Only the runner may hold the gate's write end, so its death reads as end of file.
        if let Some((_, w)) = a.gate {
            libc::close(w);
        }
        // Signals were blocked across the fork: drop the runner's handlers (a SIGTERM meant for
        // this job must not run them and pose as the runner's interrupt) before unblocking.
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
            // "0" means the writing process itself, in v1 and v2 alike. O_CREAT only matters
            // for fixture trees; cgroupfs files always exist.
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
        if let Some((r, _)) = a.gate {
            // Everything above overlapped the runner's fsync of this job's start; the job runs
            // once that start is durable, never before.
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
        }
        libc::execve(a.exe.as_ptr(), a.argv, a.envp);
        fail(STAGE_EXEC)
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
