//! Kernel memory events that wake the engine between samples, so a job that allocates hundreds
//! of MiB in a few milliseconds is seen when it happens, not at the next sample:
//! - v1: usage thresholds (an eventfd registered in `cgroup.event_control` against
//!   `memory.usage_in_bytes`) on the container's cgroup and on each job's, re-armed after every
//!   sample at the usage then plus [`step`] (half the room left in the budget);
//! - v2: `memory.high` on each job at its usage plus the room left (past it the kernel throttles
//!   the job, holding it until the engine decides), and an inotify watch on each `memory.events`
//!   (the kernel marks the file modified on every high, max or OOM event);
//! - PSI: a trigger on the container's `memory.pressure` (v2) or `/proc/pressure/memory`.
//!
//! Everything here is best effort: where the kernel refuses, the samples remain. The events only
//! wake the engine, which samples at once; the decisions stay in `sched`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::event::PollFlags;

use super::sys;

const MIB: u64 = 1 << 20;
/// The smallest and largest rise in usage that wakes the engine.
const MIN_STEP: u64 = 8 * MIB;
const MAX_STEP: u64 = 256 * MIB;
/// Wake when tasks stall on memory for 100 ms within a second (the kernel's minimum window is
/// 500 ms; unprivileged users need a multiple of 2 s, and then get no trigger here).
const PSI_TRIGGER: &[u8] = b"some 100000 1000000\0";

/// How far usage may rise before the engine is woken: half the room left in the budget, at
/// least 8 MiB (near the budget every few MiB matters, but not every page) and at most 256 MiB.
pub fn step(room: u64) -> u64 {
    (room / 2).clamp(MIN_STEP, MAX_STEP)
}

/// Whether a threshold or limit armed at `armed` should move to `want`: it moved by more than
/// a quarter step (re-arming costs a few syscalls; a small drift changes nothing).
pub fn should_move(armed: Option<u64>, want: u64, step: u64) -> bool {
    armed.is_none_or(|a| a.abs_diff(want) > step / 4)
}

/// A v1 usage threshold: the kernel signals the eventfd when `memory.usage_in_bytes` of the
/// cgroup crosses `at`, either way. Dropping it (closing the eventfd) unregisters it.
#[derive(Debug)]
pub struct Threshold {
    fd: OwnedFd,
    pub at: u64,
    /// It fired since it was armed (the usage crossed it): re-arm at the next sample.
    pub fired: bool,
}

impl Threshold {
    /// Arm a threshold. The eventfd is ours at once (the engine polls it from now on); the
    /// registration itself is written by a background thread, because the kernel waits for an
    /// RCU grace period inside that write: 67–108 ms per sample turn measured here with a few
    /// jobs, long enough for a ramping job to grow hundreds of MiB while the runner was blind
    /// (an OOM kill in 2 of 3 smoke runs). Registered a little later, a threshold still fires.
    pub fn arm(dir: &Path, at: u64) -> io::Result<Threshold> {
        let fd = sys::eventfd()?;
        // The kernel takes its own references to the usage file and the eventfd; the worker's
        // copies close after the write, and ours keeps the eventfd (and so the registration)
        // alive until this threshold is dropped.
        let usage = File::open(dir.join("memory.usage_in_bytes"))?;
        let control = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.event_control"))?;
        register(Registration {
            eventfd: fd.try_clone()?,
            usage,
            control,
            at,
        });
        Ok(Threshold {
            fd,
            at,
            fired: false,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Take in a wake-up: clear the eventfd and mark it fired.
    pub fn take(&mut self) {
        sys::drain(&self.fd);
        self.fired = true;
    }
}

/// A threshold registration for the worker thread.
struct Registration {
    eventfd: OwnedFd,
    usage: File,
    control: File,
    at: u64,
}

/// Hand a registration to the worker thread (started on first use). If no thread can be
/// started, register here and pay the wait.
fn register(r: Registration) {
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock};
    static WORKER: OnceLock<Option<Mutex<Sender<Registration>>>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = channel::<Registration>();
        std::thread::Builder::new()
            .name("memsweep-thresholds".into())
            .spawn(move || {
                for r in rx {
                    write_registration(r);
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    match worker {
        Some(tx) => {
            let tx = tx.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(std::sync::mpsc::SendError(r)) = tx.send(r) {
                write_registration(r);
            }
        }
        None => write_registration(r),
    }
}

/// Best effort: a threshold the kernel refused never fires, and the samples remain.
fn write_registration(mut r: Registration) {
    let line = format!("{} {} {}", r.eventfd.as_raw_fd(), r.usage.as_raw_fd(), r.at);
    let _ = r.control.write_all(line.as_bytes());
}

/// A PSI trigger: poll() reports POLLPRI when the stall passes the trigger's threshold in its
/// window (at most once a window; polling resets it).
pub fn psi_trigger(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    f.write_all(PSI_TRIGGER)?;
    Ok(f)
}

/// The container-wide sources: the v1 container threshold, the inotify instance (v2 watches),
/// the PSI trigger.
#[derive(Debug, Default)]
pub struct Events {
    /// v1: the container's cgroup, where its usage threshold is armed.
    pub container_dir: Option<PathBuf>,
    pub container: Option<Threshold>,
    /// v2: watches on `memory.events` files (the container's and each job's).
    pub inotify: Option<OwnedFd>,
    pub psi: Option<File>,
    /// Which sources are active, for the accounting note.
    pub active: Vec<&'static str>,
}

impl Events {
    /// Arm what the container offers: `dir` is the container's cgroup (a machine path joined
    /// with the probe's root), `v2` its version, `psi` the pressure file to trigger on.
    pub fn new(dir: Option<&Path>, v2: bool, psi: Option<&Path>) -> Events {
        let mut ev = Events::default();
        if let Some(dir) = dir {
            if v2 {
                if let Ok(fd) = sys::inotify() {
                    if sys::inotify_watch(&fd, &dir.join("memory.events")).is_ok() {
                        ev.active.push("memory.events watches");
                    }
                    ev.inotify = Some(fd);
                }
            } else if dir.join("cgroup.event_control").exists() {
                ev.container_dir = Some(dir.to_path_buf());
                ev.active.push("usage thresholds");
            }
        }
        if let Some(p) = psi
            && let Ok(f) = psi_trigger(p)
        {
            ev.psi = Some(f);
            ev.active.push("a PSI trigger");
        }
        ev
    }

    /// Watch a v2 job cgroup's `memory.events` (best effort).
    pub fn watch(&self, dir: &Path) -> bool {
        self.inotify
            .as_ref()
            .is_some_and(|fd| sys::inotify_watch(fd, &dir.join("memory.events")).is_ok())
    }

    /// The fds to poll and what for, container-wide ones (job thresholds are the executor's).
    pub fn fds<'a>(&'a self, out: &mut Vec<(BorrowedFd<'a>, PollFlags)>) {
        if let Some(t) = &self.container {
            out.push((t.fd(), PollFlags::IN));
        }
        if let Some(fd) = &self.inotify {
            out.push((fd.as_fd(), PollFlags::IN));
        }
        if let Some(f) = &self.psi {
            out.push((f.as_fd(), PollFlags::PRI));
        }
    }

    /// Take in what poll found ready among [`Self::fds`] (in the same order); true if any fired.
    pub fn take(&mut self, revents: &[PollFlags]) -> bool {
        let mut i = 0;
        let mut any = false;
        let mut next = || {
            let r = revents.get(i).copied().unwrap_or(PollFlags::empty());
            i += 1;
            !r.is_empty()
        };
        if let Some(t) = &mut self.container
            && next()
        {
            t.take();
            any = true;
        }
        if let Some(fd) = &self.inotify
            && next()
        {
            sys::drain(fd);
            any = true;
        }
        if self.psi.is_some() && next() {
            any = true;
        }
        any
    }

    /// Re-arm the container's threshold at `usage + step` if it fired or drifted.
    pub fn rearm_container(&mut self, usage: u64, step: u64) {
        let Some(dir) = &self.container_dir else {
            return;
        };
        let want = usage.saturating_add(step);
        let stale = match &self.container {
            Some(t) => t.fired || should_move(Some(t.at), want, step),
            None => true,
        };
        if stale {
            match Threshold::arm(dir, want) {
                Ok(t) => self.container = Some(t),
                Err(_) => {
                    // Refused (no permission, an old kernel): samples only, from now on.
                    self.container = None;
                    self.container_dir = None;
                    self.active.retain(|a| *a != "usage thresholds");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_is_half_the_room_within_bounds() {
        assert_eq!(step(0), 8 * MIB, "at or over the budget: every 8 MiB");
        assert_eq!(step(100 * MIB), 50 * MIB);
        assert_eq!(
            step(10 << 30),
            256 * MIB,
            "lots of room: a burst still wakes"
        );
        // A threshold moves only when it drifted by more than a quarter step.
        assert!(should_move(None, 100, 40));
        assert!(!should_move(Some(100), 110, 40));
        assert!(should_move(Some(100), 111, 40));
    }
}
