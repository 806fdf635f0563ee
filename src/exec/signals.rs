//! The runner's signal self-pipes: SIGCHLD, SIGINT, SIGTERM and SIGHUP each write a byte to
//! their own socket (signal-hook's async-signal-safe pipe action), so the executor's `wait` can
//! block in one poll() on "a child exited, the user interrupted, a memory event, or the timeout
//! passed" without races.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use signal_hook::SigId;

pub struct Signals {
    chld: UnixStream,
    int: UnixStream,
    term: UnixStream,
    /// A closed terminal or dropped SSH session: handled like SIGTERM, so the sweep ends in
    /// order (jobs stopped, journal closed) instead of dying with exit 129.
    hup: UnixStream,
    ids: Vec<SigId>,
}

/// What woke a wait.
#[derive(Debug, Default)]
pub struct Woken {
    pub child: bool,
    /// One entry per delivered SIGINT/SIGTERM/SIGHUP (a second Ctrl-C is a second entry).
    pub interrupts: Vec<i32>,
}

impl Signals {
    pub fn install() -> io::Result<Signals> {
        let mut ids = Vec::new();
        let mut pair = |sig: i32| -> io::Result<UnixStream> {
            let (read, write) = UnixStream::pair()?;
            read.set_nonblocking(true)?;
            // A full pipe must drop the byte, never block inside a signal handler.
            write.set_nonblocking(true)?;
            ids.push(signal_hook::low_level::pipe::register(sig, write)?);
            Ok(read)
        };
        let chld = pair(libc::SIGCHLD)?;
        let int = pair(libc::SIGINT)?;
        let term = pair(libc::SIGTERM)?;
        let hup = pair(libc::SIGHUP)?;
        Ok(Signals {
            chld,
            int,
            term,
            hup,
            ids,
        })
    }

    /// The fds to poll for readability (SIGCHLD, SIGINT, SIGTERM, SIGHUP), for [`Self::take`].
    pub fn fds(&self) -> [BorrowedFd<'_>; 4] {
        [
            self.chld.as_fd(),
            self.int.as_fd(),
            self.term.as_fd(),
            self.hup.as_fd(),
        ]
    }

    /// Drain what arrived on the fds poll found ready (in the order of [`Self::fds`]).
    pub fn take(&mut self, ready: [bool; 4]) -> Woken {
        let mut woken = Woken::default();
        if ready[0] {
            woken.child = drain(&mut self.chld) > 0;
        }
        if ready[1] {
            woken
                .interrupts
                .extend(std::iter::repeat_n(libc::SIGINT, drain(&mut self.int)));
        }
        if ready[2] {
            woken
                .interrupts
                .extend(std::iter::repeat_n(libc::SIGTERM, drain(&mut self.term)));
        }
        if ready[3] {
            woken
                .interrupts
                .extend(std::iter::repeat_n(libc::SIGHUP, drain(&mut self.hup)));
        }
        woken
    }
}

fn drain(s: &mut UnixStream) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 64];
    while let Ok(k) = s.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
