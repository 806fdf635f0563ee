//! Progress while a sweep runs, fed every [`Event`] by the engine with a small [`State`]:
//! `--json` prints each event as one JSON line on stdout (what the Hydra launcher reads); on a
//! terminal, a live status line is redrawn in place on stderr with job lines scrolling above it;
//! otherwise plain event lines on stderr (no samples), fit for logs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::report::{Style, fmt_secs};
use crate::journal::{Event, JobStatus};
use crate::size;

/// The status line is redrawn at most this often (events are always shown at once).
pub const REDRAW_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every event as one JSON line on stdout, flushed (`--json`).
    Json,
    /// A live status line on stderr, redrawn in place.
    Tty,
    /// One line per start, end, pause, resume and requeue on stderr.
    Plain,
}

impl Mode {
    /// `--json` wins; else a live display when stderr is a terminal.
    pub fn choose(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }
}

/// What the status line shows, as the engine knows it now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub paused: usize,
    pub queued: usize,
    /// The container's working set.
    pub mem_used_bytes: u64,
    pub budget_bytes: u64,
}

/// The progress display. `W` is stdout or stderr in the binary, a buffer in tests.
pub struct Progress<W: Write = Box<dyn Write + Send>> {
    mode: Mode,
    out: W,
    style: Style,
    /// Terminal width, to keep the status line on one row (a wrapped line cannot be redrawn).
    width: Option<usize>,
    /// A status line is on screen (Tty).
    drawn: bool,
    last_draw: Option<Instant>,
}

impl Progress {
    /// The display for this run: [`Mode::choose`], writing to stdout (Json) or stderr.
    pub fn new(json: bool) -> Progress {
        let mode = Mode::choose(json);
        let out: Box<dyn Write + Send> = match mode {
            Mode::Json => Box::new(std::io::stdout()),
            Mode::Tty | Mode::Plain => Box::new(std::io::stderr()),
        };
        let width = terminal_size::terminal_size_of(std::io::stderr()).map(|(w, _)| w.0 as usize);
        Progress::with_writer(mode, out, width, Style::for_stderr())
    }
}

impl<W: Write> Progress<W> {
    pub fn with_writer(mode: Mode, out: W, width: Option<usize>, style: Style) -> Progress<W> {
        Progress {
            mode,
            out,
            style,
            width,
            drawn: false,
            last_draw: None,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Show one event. Output errors are ignored: a closed pipe or terminal must not stop a sweep.
    pub fn event(&mut self, event: &Event, state: &State) {
        let _ = self.try_event(event, state);
    }

    fn try_event(&mut self, event: &Event, state: &State) -> std::io::Result<()> {
        match self.mode {
            Mode::Json => {
                let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
                line.push(b'\n');
                self.out.write_all(&line)?;
                self.out.flush()
            }
            Mode::Plain => match event_line(event, self.style) {
                Some(line) => {
                    writeln!(self.out, "{line}")?;
                    self.out.flush()
                }
                None => Ok(()),
            },
            Mode::Tty => match event_line(event, self.style) {
                Some(line) => {
                    self.clear()?;
                    writeln!(self.out, "{line}")?;
                    self.draw(state)
                }
                None => self.tick_inner(state),
            },
        }
    }

    /// Redraw the status line if it is due (Tty only); call it when the state changed without
    /// an event.
    pub fn tick(&mut self, state: &State) {
        let _ = self.tick_inner(state);
    }

    fn tick_inner(&mut self, state: &State) -> std::io::Result<()> {
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW_EVERY);
        if self.mode == Mode::Tty && due {
            self.draw(state)?;
        }
        Ok(())
    }

    /// Remove the status line (before the final report).
    pub fn finish(&mut self) {
        let _ = self.clear().and_then(|()| self.out.flush());
    }

    fn clear(&mut self) -> std::io::Result<()> {
        if self.drawn {
            self.out.write_all(b"\r\x1b[2K")?;
            self.drawn = false;
        }
        Ok(())
    }

    fn draw(&mut self, state: &State) -> std::io::Result<()> {
        let mut line = status_line(state);
        if let Some(w) = self.width {
            // One column spare: writing the last column makes some terminals wrap early.
            line = line.chars().take(w.saturating_sub(1)).collect();
        }
        self.out.write_all(b"\r\x1b[2K")?;
        self.out.write_all(line.as_bytes())?;
        self.out.flush()?;
        self.drawn = true;
        self.last_draw = Some(Instant::now());
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `[12/24 done] running 3 · paused 1 · queued 8 · mem 1.10 GiB / 1.40 GiB`
pub fn status_line(s: &State) -> String {
    format!(
        "[{}/{} done] running {} · paused {} · queued {} · mem {} / {}",
        s.done,
        s.total,
        s.running,
        s.paused,
        s.queued,
        size::human(s.mem_used_bytes),
        size::human(s.budget_bytes)
    )
}

/// The human line for an event (None for samples, which only move the status line).
pub fn event_line(event: &Event, style: Style) -> Option<String> {
    Some(match event {
        Event::SweepStart {
            out,
            jobs,
            limit_bytes,
            budget_bytes,
            reserve_bytes,
            parallel_cap,
            accounting,
            resumed,
            ..
        } => format!(
            "memsweep: {}{jobs} job{} → {out} · budget {} (limit {} − reserve {}) · {} · accounting: {accounting}",
            if *resumed { "resuming: " } else { "" },
            if *jobs == 1 { "" } else { "s" },
            size::human(*budget_bytes),
            size::human(*limit_bytes),
            size::human(*reserve_bytes),
            match parallel_cap {
                Some(n) => format!("at most {n} at once"),
                None => "as many at once as memory allows".to_string(),
            },
        ),
        Event::JobStart {
            job,
            attempt,
            command,
            estimate_bytes,
            ..
        } => {
            let mut l = format!("start     #{job} {command}");
            if *attempt > 1 {
                l.push_str(&format!(" (attempt {attempt})"));
            }
            if let Some(e) = estimate_bytes {
                l.push_str(&format!(" · expect {}", size::human(*e)));
            }
            l
        }
        Event::JobEnd {
            job,
            status,
            exit_code,
            signal,
            wall_s,
            peak_bytes,
            ..
        } => {
            let word = format!("{:<9}", status.as_str());
            let mut l = format!(
                "{} #{job} in {}",
                style.status(*status, &word),
                fmt_secs(*wall_s)
            );
            if let Some(p) = peak_bytes {
                l.push_str(&format!(" · peak {}", size::human(*p)));
            }
            if *status != JobStatus::Succeeded {
                if let Some(c) = exit_code {
                    l.push_str(&format!(" · exit {c}"));
                }
                if let Some(s) = signal {
                    l.push_str(&format!(" · signal {s}"));
                }
            }
            l
        }
        Event::JobPause { job, reason, .. } => format!("pause     #{job}: {reason}"),
        Event::JobResume { job, .. } => format!("resume    #{job}"),
        Event::JobRequeue {
            job,
            attempt,
            reason,
            usage_bytes,
            ..
        } => format!(
            "requeue   #{job}: attempt {attempt} stopped at {}: {reason}",
            size::human(*usage_bytes)
        ),
        Event::Sample { .. } => return None,
        Event::SweepEnd {
            makespan_s,
            succeeded,
            failed,
            interrupted,
            ..
        } => format!(
            "memsweep: {} after {}: {succeeded} succeeded, {failed} failed",
            if *interrupted { "interrupted" } else { "done" },
            fmt_secs(*makespan_s)
        ),
    })
}
