//! Starting one job: its own process group, stdin from /dev/null, stdout/stderr appended to its
//! files (never a pipe nobody reads), oom_score_adj 1000 and its memory cgroup set in the child
//! before exec — so the job is accounted and killable-first from its very first allocation.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::SpawnSpec;
use crate::sweep::JobCommand;

const OOM_ADJ_PATH: &CStr = c"/proc/self/oom_score_adj";

fn open_append(p: &std::path::Path, what: &str) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open {what} file {}: {e}", p.display()),
            )
        })
}

/// Write `bytes` to `path` with raw open/write/close: async-signal-safe, for use between fork
/// and exec. Errors are returned as the raw errno.
///
/// # Safety
/// Only raw syscalls on the given NUL-terminated path and byte slice.
unsafe fn write_file_raw(path: &CStr, bytes: &[u8], create: bool) -> io::Result<()> {
    let flags = libc::O_WRONLY | libc::O_CLOEXEC | if create { libc::O_CREAT } else { 0 };
    // SAFETY: `path` is NUL-terminated and `bytes` valid for its length; no allocation.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o644);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(err);
        }
    }
    Ok(())
}

/// Spawn the job; returns its pid (= its process group id).
///
/// `cgroup_procs` is the job cgroup's `cgroup.procs`; the child writes "0" (itself) there
/// before exec.
pub fn spawn(spec: &SpawnSpec, cgroup_procs: Option<&CStr>) -> io::Result<i32> {
    let mut cmd = match &spec.command {
        JobCommand::Argv(argv) => {
            let Some((prog, args)) = argv.split_first() else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
            };
            let mut c = Command::new(prog);
            c.args(args);
            c
        }
        JobCommand::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
    };
    let out = open_append(&spec.stdout, "stdout")?;
    let err = if spec.stderr == spec.stdout {
        out.try_clone()?
    } else {
        open_append(&spec.stderr, "stderr")?
    };
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .process_group(0);
    // Owned copy moved into the closure: allocated here, only read in the child.
    let procs = cgroup_procs.map(CStr::to_owned);
    // SAFETY: the closure runs in the forked child before exec and only makes raw
    // open/write/close syscalls on memory allocated before the fork (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            // The job is the kernel's first choice if it must kill (raising needs no privilege).
            // Done here, not from the parent after spawn, so no allocation of the job ever
            // happens at the runner's protected score. Ignored where /proc is read-only.
            let _ = write_file_raw(OOM_ADJ_PATH, b"1000", false);
            if let Some(p) = &procs {
                // "0" means the writing process itself, in v1 and v2 alike.
                write_file_raw(p, b"0", true)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        let what = match &spec.command {
            JobCommand::Argv(argv) => argv[0].as_str(),
            JobCommand::Shell(_) => "sh",
        };
        let msg = if e.kind() == io::ErrorKind::NotFound {
            format!("cannot run {what:?}: program not found (check the command and PATH)")
        } else {
            format!("cannot start {what:?}: {}", super::sys::err_text(&e))
        };
        io::Error::new(e.kind(), msg)
    })?;
    // We reap with wait4 ourselves; dropping std's handle neither waits nor kills.
    Ok(child.id() as i32)
}
