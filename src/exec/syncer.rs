//! Opening a turn's gate once the journal's record of its starts is durable, on a thread of
//! its own, so the runner's loop never waits for the disk.
//!
//! The runner writes a turn's events, then hands the journal file and the turn's gate here;
//! this thread runs `fdatasync` and opens the gate after it. Requests queued while a sync runs
//! share the next one (a sync covers every write made before it began), so a busy sweep syncs
//! less often than it has turns. A failed sync drops the gates it covered (their jobs end as
//! `FailedToSpawn` without running) and is kept for the runner to report.

use std::fs::File;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::spawn::Gate;
use super::sys;

struct Request {
    file: Option<Arc<File>>,
    gate: Option<Gate>,
    /// Told once this request is served.
    done: Option<mpsc::Sender<()>>,
}

/// The runner's side of the thread.
pub struct Syncer {
    requests: Option<mpsc::Sender<Request>>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    pub fn start() -> io::Result<Syncer> {
        let (tx, rx) = mpsc::channel::<Request>();
        let error = Arc::new(Mutex::new(None));
        let t_error = Arc::clone(&error);
        let thread = sys::thread_signals_blocked("memsweep-syncer", move || serve(rx, &t_error))?;
        Ok(Syncer {
            requests: Some(tx),
            error,
            thread: Some(thread),
        })
    }

    /// Make `file`'s written data durable, then open `gate`.
    pub fn send(&self, file: Arc<File>, gate: Option<Gate>) -> io::Result<()> {
        self.request(Request {
            file: Some(file),
            gate,
            done: None,
        })
    }

    fn request(&self, r: Request) -> io::Result<()> {
        let gone = || io::Error::other("the thread that syncs the journal has stopped");
        let tx = self.requests.as_ref().ok_or_else(gone)?;
        tx.send(r).map_err(|_| gone())
    }

    /// Wait until every request sent so far is served.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        let barrier = Request {
            file: None,
            gate: None,
            done: Some(tx),
        };
        if self.request(barrier).is_ok() {
            let _ = rx.recv();
        }
    }

    /// The first sync that failed, if any.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Wait until every request is served.
    pub fn finish(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn serve(requests: mpsc::Receiver<Request>, error: &Mutex<Option<String>>) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        // Not held during the sync: the runner's loop looks at it every turn.
        let failed = |e: Option<String>| {
            let mut error = error.lock().unwrap_or_else(|e| e.into_inner());
            if error.is_none() {
                *error = e;
            }
            error.is_some()
        };
        // After a failed sync nothing is known durable, then or later: the gates are dropped
        // unopened and the jobs held at them never run.
        let mut ok = !failed(None);
        let mut synced: Vec<&Arc<File>> = Vec::new();
        for r in &batch {
            let Some(file) = &r.file else { continue };
            if ok && !synced.iter().any(|f| Arc::ptr_eq(f, file)) {
                match file.sync_data() {
                    Ok(()) => synced.push(file),
                    Err(e) => ok = !failed(Some(sys::err_text(&e))),
                }
            }
        }
        for r in batch {
            if let Some(g) = r.gate.filter(|_| ok) {
                // A gate that cannot be written to ends its jobs at end of file, unrun.
                let _ = g.open();
            }
            if let Some(done) = r.done {
                let _ = done.send(());
            }
        }
    }
}
