//! `memsweep mem`: the memory table (or JSON), optionally refreshed with `--watch`.
//!
//! `--watch` clears the screen and redraws on a terminal, and prints one block per reading
//! otherwise (one JSON object per line with `--json`). Ctrl-C, SIGTERM or SIGHUP ends it with exit 0:
//! stopping is the only way a watch ends, so it is not a failure.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::MemArgs;
use crate::exit::{self, Exit};
use crate::output;
use crate::probe::{Fs, MemStatus, Probe};

pub fn run(fs: &Fs, args: &MemArgs) -> anyhow::Result<Exit> {
    let interval = match args.watch {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(exit::usage(format!(
                "--watch {s}: the interval must be a positive number of seconds, e.g. --watch 1 or --watch 0.5"
            )));
        }
        Some(s) => Some(Duration::from_secs_f64(s.clamp(0.05, 86_400.0))),
        None => None,
    };
    let probe = Probe::new(fs.clone())?;
    let Some(interval) = interval else {
        let st = probe.status()?;
        warn(&st);
        emit(&render(&st, args.json, false));
        return Ok(Exit::Ok);
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let tty = std::io::stdout().is_terminal() && !args.json;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let st = probe.status()?;
        if first {
            warn(&st);
        }
        let mut text = String::new();
        if tty {
            text.push_str("\x1b[H\x1b[2J");
        } else if !first && !args.json {
            text.push('\n');
        }
        if !args.json {
            text.push_str(&format!(
                "{}  (every {}s; Ctrl-C to stop)\n",
                jiff::ZonedDateTime::now().strftime("%Y-%m-%d %H:%M:%S"),
                interval.as_secs_f64()
            ));
        }
        text.push_str(&render(&st, args.json, true));
        emit(&text);
        if !output::stdio::stdout().is_open() {
            // Nobody is reading any more (`| head`), or stdout failed: `commands::main` says.
            return Ok(Exit::Ok);
        }
        first = false;
        let until = Instant::now() + interval;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
    }
    Ok(Exit::Ok)
}

fn render(st: &MemStatus, json: bool, one_line: bool) -> String {
    if !json {
        return output::mem::table(st);
    }
    // The documented keys of `MemStatus`, after the format's version.
    #[derive(serde::Serialize)]
    struct Versioned<'a> {
        schema_version: u32,
        #[serde(flatten)]
        status: &'a MemStatus,
    }
    let v = Versioned {
        schema_version: crate::journal::SCHEMA_VERSION,
        status: st,
    };
    let text = if one_line {
        serde_json::to_string(&v)
    } else {
        serde_json::to_string_pretty(&v)
    };
    text.expect("MemStatus always serializes") + "\n"
}

fn warn(st: &MemStatus) {
    for w in &st.warnings {
        crate::errln!("memsweep: warning: {w}");
    }
}

/// Write to stdout under the output policy (`output::stdio`).
fn emit(text: &str) {
    let _ = output::stdio::stdout().write_all(text.as_bytes());
}
