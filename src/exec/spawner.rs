//! The threads that start jobs, so that the runner's loop never waits for one.
//!
//! [`super::spawn`] holds its calling thread until the child execs (`CLONE_VFORK`), and the
//! child first sets itself up (folder, output files, memory cgroup: about a millisecond) and may
//! wait at the turn's gate. These threads take those waits: the runner sends each job to one of
//! them in turn and carries on (sampling, reaping), and they report each job's pid, or why it
//! could not start. Every signal is blocked on them, so their children start with all signals
//! blocked, as [`super::spawn`]'s child path expects.
//!
//! The runner reaps with `waitpid(-1)`, so a job may be reaped before its report arrives; the
//! executor keeps such exits until the report names their pid. A thread wakes the runner's
//! poll (an eventfd) when a report is the only news to come: a job that could not start (no
//! child, so no SIGCHLD), or one the runner already reaped and is waiting to name.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;

use super::spawn::{self, ChildStack, GateHold, Started};
use super::{SpawnSpec, sys};

/// One job to start.
pub struct Request {
    pub spec: SpawnSpec,
    /// The program, from [`spawn::program`].
    pub exe: CString,
    /// The job cgroup's `cgroup.procs` (or `tasks`), which the child joins.
    pub cgroup_procs: Option<CString>,
    pub gate: Option<GateHold>,
}

/// What became of a [`Request`]: its job, and the started child or why there is none.
pub struct Report {
    pub job: usize,
    pub result: io::Result<Started>,
}

/// Tests only: how long the thread waits before each report, so that a job ends before the
/// runner learns its pid.
#[cfg(test)]
pub static REPORT_DELAY_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Threads that start jobs. Each is held while its child sets itself up (cgroup join, files)
/// and waits at the gate; two let one job's set-up overlap another's.
const THREADS: usize = 2;

/// The runner's side of the threads.
pub struct Spawner {
    /// Each thread's request channel, taken in turn.
    requests: Vec<mpsc::Sender<Request>>,
    next: usize,
    reports: mpsc::Receiver<Report>,
    wake: Arc<OwnedFd>,
    /// Set while the runner holds an exit it cannot name yet: every report must wake it.
    waiting: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Per thread: the pid of the child it is starting and has not reported yet, else 0.
    starting: Vec<Arc<AtomicI32>>,
    in_flight: usize,
}

impl Spawner {
    pub fn start() -> io::Result<Spawner> {
        let (rep_tx, rep_rx) = mpsc::channel::<Report>();
        let wake = Arc::new(sys::eventfd()?);
        let waiting = Arc::new(AtomicBool::new(false));
        let mut s = Spawner {
            requests: Vec::new(),
            next: 0,
            reports: rep_rx,
            wake,
            waiting,
            threads: Vec::new(),
            starting: Vec::new(),
            in_flight: 0,
        };
        for _ in 0..THREADS {
            let (req_tx, req_rx) = mpsc::channel::<Request>();
            let rep_tx = rep_tx.clone();
            let (t_wake, t_waiting) = (Arc::clone(&s.wake), Arc::clone(&s.waiting));
            let starting = Arc::new(AtomicI32::new(0));
            let t_starting = Arc::clone(&starting);
            s.threads.push(sys::thread_signals_blocked(
                "memsweep-spawner",
                move || serve(req_rx, rep_tx, &t_wake, &t_waiting, &t_starting),
            )?);
            s.requests.push(req_tx);
            s.starting.push(starting);
        }
        Ok(s)
    }

    /// Queue a job; its [`Report`] comes from [`Self::take`] or [`Self::wait_all`]. If the
    /// thread is gone, the job cannot start: its folder is made here and the error returned.
    pub fn send(&mut self, req: Request) -> io::Result<()> {
        self.next = (self.next + 1) % self.requests.len().max(1);
        let sent = match self.requests.get(self.next) {
            Some(tx) => tx.send(req).map_err(|e| e.0),
            None => Err(req),
        };
        if let Err(req) = sent {
            make_job_dir(&req.spec);
            return Err(io::Error::other("the thread that starts jobs has stopped"));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Children being started whose report has not been sent yet: a child of the runner that
    /// is no known job may be one of these.
    pub fn starting(&self) -> impl Iterator<Item = i32> + '_ {
        self.starting
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .filter(|&p| p != 0)
    }

    /// Jobs sent and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Reports that have arrived, without waiting.
    pub fn take(&mut self) -> Vec<Report> {
        self.collect(false)
    }

    /// Every outstanding report, waiting for them, and how many the threads never sent (they
    /// died: only when they could not be created). The caller must not hold a closed gate that
    /// one of them waits at.
    pub fn wait_all(&mut self) -> (Vec<Report>, usize) {
        let out = self.collect(true);
        (out, std::mem::take(&mut self.in_flight))
    }

    fn collect(&mut self, wait: bool) -> Vec<Report> {
        let mut out = Vec::new();
        while self.in_flight > 0 {
            let next = if wait {
                self.reports.recv().ok()
            } else {
                self.reports.try_recv().ok()
            };
            let Some(r) = next else { break };
            self.in_flight -= 1;
            out.push(r);
        }
        out
    }

    /// Whether the runner must be woken by every report (it holds an exit it cannot name yet).
    pub fn set_waiting(&self, on: bool) {
        self.waiting.store(on, Ordering::SeqCst);
        // Pairs with the thread's fence: either it sees `on`, or the caller's next `take`
        // sees its report.
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Readable when a report the runner waits for has arrived; drained by [`Self::drain_wake`].
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    pub fn drain_wake(&self) {
        sys::drain(&self.wake);
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing the request channels ends the threads once they have served what was queued.
        self.requests.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(
    requests: mpsc::Receiver<Request>,
    reports: mpsc::Sender<Report>,
    wake: &OwnedFd,
    waiting: &AtomicBool,
    starting: &AtomicI32,
) {
    let stack = ChildStack::new();
    for req in requests {
        let job = req.spec.job;
        let result = match &stack {
            // A panic here (a bug) fails this job rather than the thread: the runner waits for
            // every report.
            Ok(stack) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                spawn::spawn(
                    &req.spec,
                    &req.exe,
                    req.cgroup_procs.as_deref(),
                    req.gate.as_ref(),
                    stack,
                    starting,
                )
            }))
            .unwrap_or_else(|_| Err(io::Error::other("starting the job failed (a bug)"))),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot map a stack for starting jobs: {}", sys::err_text(e)),
            )),
        };
        if result.is_err() {
            make_job_dir(&req.spec);
        }
        #[cfg(test)]
        std::thread::sleep(std::time::Duration::from_millis(
            REPORT_DELAY_MS.load(Ordering::SeqCst),
        ));
        // A job that never started sends no SIGCHLD: only this report tells the runner.
        let must_wake = result.is_err();
        if reports.send(Report { job, result }).is_err() {
            return;
        }
        // Only once the report is on its way: until then the runner tells the child by this.
        starting.store(0, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if must_wake || waiting.load(Ordering::SeqCst) {
            let _ = sys::write(wake.as_fd(), &1u64.to_ne_bytes());
        }
    }
}

/// No child ran to create the job folder: make it here, so a job that never started still has
/// its folder and command file like every other (best effort).
pub fn make_job_dir(spec: &SpawnSpec) {
    if let Some((dir, text)) = &spec.job_dir
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = std::fs::write(dir.join("command"), text);
    }
}
