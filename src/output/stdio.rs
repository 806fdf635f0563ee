//! Every byte memsweep writes to stdout or stderr goes through here, under one policy (ripgrep's):
//!
//! - A broken pipe (`memsweep … | head -1`) is not an error: the stream is marked closed and
//!   later writes to it are dropped. It never stops a sweep or costs a journal line, and a
//!   read-only command (`mem`, `show`) that lost its reader ends with a quiet exit 0.
//! - Any other write error (`> /dev/full`, a vanished terminal's EIO) is remembered, later
//!   writes to that stream are dropped, and the command ends with exit 2 and a message naming
//!   the stream ([`finish`]). A sweep still runs to its end first: its results are on disk.
//!
//! Writes never fail and never panic (std's `println!` panics on a closed stdout), so callers
//! write through [`Stream`] or the [`outln!`](crate::outln)/[`errln!`](crate::errln) macros
//! and ignore nothing by accident.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::Exit;

/// Which standard stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Stdout,
    Stderr,
}

struct State {
    /// A reader went away (EPIPE).
    closed: AtomicBool,
    /// The first other write error.
    failed: Mutex<Option<io::Error>>,
}

static STDOUT: State = State {
    closed: AtomicBool::new(false),
    failed: Mutex::new(None),
};
static STDERR: State = State {
    closed: AtomicBool::new(false),
    failed: Mutex::new(None),
};

fn state(w: Which) -> &'static State {
    match w {
        Which::Stdout => &STDOUT,
        Which::Stderr => &STDERR,
    }
}

/// A handle on stdout or stderr that applies the policy; `write` always reports success.
#[derive(Debug, Clone, Copy)]
pub struct Stream(Which);

pub fn stdout() -> Stream {
    Stream(Which::Stdout)
}

pub fn stderr() -> Stream {
    Stream(Which::Stderr)
}

impl Stream {
    /// False once the stream's reader went away or a write failed: nothing more will show.
    pub fn is_open(&self) -> bool {
        let st = state(self.0);
        !st.closed.load(Ordering::Relaxed) && lock(&st.failed).is_none()
    }

    /// One line (`args` plus a newline), written whole.
    pub fn line(&self, args: std::fmt::Arguments) {
        let mut s = std::fmt::format(args);
        s.push('\n');
        self.put(s.as_bytes());
    }

    fn put(&self, buf: &[u8]) {
        if !self.is_open() {
            return;
        }
        let res = match self.0 {
            Which::Stdout => {
                let mut o = io::stdout().lock();
                o.write_all(buf).and_then(|()| o.flush())
            }
            Which::Stderr => io::stderr().lock().write_all(buf),
        };
        if let Err(e) = res {
            record(self.0, e);
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.put(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock(m: &Mutex<Option<io::Error>>) -> std::sync::MutexGuard<'_, Option<io::Error>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Note a write error on a stream (for writers that bypass [`Stream`], e.g. a buffered one).
pub fn record(w: Which, e: io::Error) {
    let st = state(w);
    if e.kind() == io::ErrorKind::BrokenPipe {
        st.closed.store(true, Ordering::Relaxed);
    } else {
        lock(&st.failed).get_or_insert(e);
    }
}

/// The exit code once a command is done: exit 2 with a message after a write error other than
/// a broken pipe; exit 0 for a read-only command whose stdout reader went away; else `code`.
pub fn finish(code: Exit, read_only: bool) -> Exit {
    for w in [Which::Stdout, Which::Stderr] {
        if let Some(e) = lock(&state(w).failed).take() {
            let name = match w {
                Which::Stdout => "stdout",
                Which::Stderr => "stderr",
            };
            let msg = format!(
                "memsweep: error: cannot write to {name}: {}; redirect it to a file or device with room\n",
                crate::exec::err_text(&e)
            );
            // If stderr itself failed, this is best effort; the exit code still says it.
            let _ = io::stderr().lock().write_all(msg.as_bytes());
            return Exit::Usage;
        }
    }
    if read_only && STDOUT.closed.load(Ordering::Relaxed) {
        return Exit::Ok;
    }
    code
}

/// `println!` under the policy: never panics, never fails.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdio::stdout().line(format_args!($($arg)*))
    };
}

/// `eprintln!` under the policy: never panics, never fails.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stdio::stderr().line(format_args!($($arg)*))
    };
}
