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
///
/// Feed it every event as it is recorded ([`Self::event`]), call [`Self::tick`] when the state
/// changed without an event, and [`Self::finish`] before printing anything else.
pub struct Progress<W: Write = Box<dyn Write + Send>> {
    mode: Mode,
    out: W,
    style: Style,
    /// Terminal width, to keep the status line on one row (a wrapped line cannot be redrawn).
    width: Option<usize>,
    /// A status line is on screen (Tty).
    drawn: bool,
    last_draw: Option<Instant>,
    redraw_every: Duration,
}

impl Progress {
    /// The display for this run: [`Mode::choose`], writing to stdout (Json) or stderr.
    pub fn new(json: bool) -> Progress {
        let mode = Mode::choose(json);
        let out: Box<dyn Write + Send> = match mode {
            Mode::Json => Box::new(super::stdio::stdout()),
            Mode::Tty | Mode::Plain => Box::new(super::stdio::stderr()),
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
            redraw_every: REDRAW_EVERY,
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
                Some(mut line) => {
                    // One write per line (stderr is unbuffered: `writeln!` would make two).
                    line.push('\n');
                    self.out.write_all(line.as_bytes())?;
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
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= self.redraw_every);
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
        } if accounting == crate::slurm::ACCOUNTING => format!(
            "memsweep: {}{jobs} job{} → {out} · Slurm (largest --mem {}) · {}",
            if *resumed { "resuming: " } else { "" },
            if *jobs == 1 { "" } else { "s" },
            size::human(*budget_bytes),
            match parallel_cap {
                Some(n) => format!("arrays throttled to %{n}"),
                None => "no array throttle".to_string(),
            },
        ),
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
            slurm_id: Some(id),
            ..
        } => {
            let mut l = format!("submit    #{job} {command} · slurm job {id}");
            if *attempt > 1 {
                l.push_str(&format!(" (attempt {attempt})"));
            }
            if let Some(e) = estimate_bytes {
                l.push_str(&format!(" · --mem {}", size::human(*e)));
            }
            l
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::fixtures::{end, sample, start, sweep_start};

    fn state() -> State {
        State {
            total: 24,
            done: 12,
            running: 3,
            paused: 1,
            queued: 8,
            mem_used_bytes: 1181116006, // 1.1 GiB
            budget_bytes: 1503238554,   // 1.4 GiB
        }
    }

    fn output(p: Progress<Vec<u8>>) -> String {
        String::from_utf8(p.into_inner()).unwrap()
    }

    #[test]
    fn the_status_line_says_where_the_sweep_stands() {
        assert_eq!(
            status_line(&state()),
            "[12/24 done] running 3 · paused 1 · queued 8 · mem 1.10 GiB / 1.40 GiB"
        );
    }

    #[test]
    fn json_mode_prints_every_event_as_one_line() {
        let mut p = Progress::with_writer(Mode::Json, Vec::new(), None, Style::default());
        let events = [
            sweep_start(1.0, false),
            start(1.0, 0, 1),
            sample(2.0, 300 << 20),
            end(3.0, 0, 1, JobStatus::Succeeded, 300 << 20),
        ];
        for e in &events {
            p.event(e, &state());
        }
        let out = output(p);
        let back: Vec<Event> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, events, "samples included, nothing else printed");
        assert!(
            out.starts_with(r#"{"event":"sweep_start","t":1.0,"#),
            "{out}"
        );
    }

    #[test]
    fn plain_mode_prints_job_lines_and_no_samples() {
        let mut p = Progress::with_writer(Mode::Plain, Vec::new(), None, Style::default());
        p.event(&start(1.0, 4, 2), &state());
        p.event(&sample(2.0, 1), &state());
        p.event(&end(3.0, 4, 2, JobStatus::Failed, 300 << 20), &state());
        p.tick(&state());
        assert_eq!(
            output(p),
            "start     #4 python3 train.py lr=4 (attempt 2)\n\
             failed    #4 in 2.0s · peak 300 MiB · exit 1\n"
        );
    }

    #[test]
    fn tty_mode_scrolls_events_above_a_status_line_redrawn_in_place() {
        let mut p = Progress::with_writer(Mode::Tty, Vec::new(), Some(40), Style::default());
        // A long interval keeps the test independent of how fast this machine runs it.
        p.redraw_every = Duration::from_secs(3600);
        p.event(&start(1.0, 0, 1), &state());
        // Samples right after a draw do not redraw (at most ~10 per second).
        p.event(&sample(1.1, 1), &state());
        p.tick(&state());
        let out = output(p);
        assert_eq!(
            out,
            "start     #0 python3 train.py lr=0\n\
             \r\x1b[2K[12/24 done] running 3 · paused 1 · que"
        );

        let mut p = Progress::with_writer(Mode::Tty, Vec::new(), None, Style::default());
        p.tick(&state());
        p.event(&end(2.0, 0, 1, JobStatus::Succeeded, 1 << 20), &state());
        p.finish();
        let out = output(p);
        // The status line is wiped before the event line, redrawn after it, wiped at the end.
        assert!(
            out.contains(
                "mem 1.10 GiB / 1.40 GiB\r\x1b[2Ksucceeded #0 in 2.0s · peak 1.00 MiB\n\r\x1b[2K["
            ),
            "{out:?}"
        );
        assert!(out.ends_with("1.40 GiB\r\x1b[2K"), "{out:?}");
    }

    #[test]
    fn sweep_lines_summarize_the_plan_and_the_end() {
        let s = Style::default();
        assert_eq!(
            event_line(&sweep_start(1.0, true), s).unwrap(),
            "memsweep: resuming: 3 jobs → sweeps/x · budget 1.00 GiB (limit 2.00 GiB − reserve 1.00 GiB) · at most 4 at once · accounting: cgroup-v1"
        );
        let end = Event::SweepEnd {
            t: 9.0,
            makespan_s: 75.0,
            succeeded: 22,
            failed: 2,
            exit_code: 1,
            interrupted: false,
            fail_fast_job: None,
        };
        assert_eq!(
            event_line(&end, s).unwrap(),
            "memsweep: done after 1m15s: 22 succeeded, 2 failed"
        );
    }
}
