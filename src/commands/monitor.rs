//! `memsweep monitor`: a foreground watcher for tmux, nohup or a systemd unit. Each sample is
//! the probe's reading of a memory cgroup (this process's, `--cgroup PATH`'s or `--pid`'s) plus
//! the processes using the most memory; it goes to `--log` as a JSON line, or to a live view.
//! Past `--warn` percent of the limit it warns on stderr and runs `--on-warn` once; it re-arms
//! only after the working set falls [`REARM_PCT`] points below the line (hysteresis). SIGINT
//! and SIGTERM end it with exit 0: stopping is how a watcher ends.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::MonitorArgs;
use crate::exec::tree;
use crate::exit::{Exit, usage};
use crate::output::monitor::{self, Sample, TopProc};
use crate::probe::{Fs, Probe};
use crate::size::human;

/// Points below `--warn` the working set must fall before another warning.
pub const REARM_PCT: f64 = 5.0;
/// Processes per sample in the log.
const TOP_LOGGED: usize = 5;

/// Whose processes make the top list.
enum Scope {
    /// Every process this machine (container) shows.
    All,
    /// The processes of a cgroup directory and below it.
    Cgroup(PathBuf),
    /// A process and its descendants.
    Tree(i32),
}

pub fn run(fs: &Fs, args: &MonitorArgs) -> anyhow::Result<Exit> {
    let interval = args.interval.unwrap_or(2.0);
    if !(interval.is_finite() && (0.05..=86_400.0).contains(&interval)) {
        return Err(usage(format!(
            "--interval {interval}: give a number of seconds between 0.05 and 86400"
        )));
    }
    let warn_pct = args.warn.unwrap_or(80.0);
    if !(warn_pct.is_finite() && warn_pct > 0.0 && warn_pct <= 100.0) {
        return Err(usage(format!(
            "--warn {warn_pct}: give a percentage of the limit above 0 and at most 100, e.g. --warn 80"
        )));
    }
    let (probe, scope, name) = match (&args.cgroup, args.pid) {
        (Some(dir), _) => (
            Probe::for_dir(fs.clone(), dir)?,
            Scope::Cgroup(fs.path(dir)),
            dir.display().to_string(),
        ),
        (None, Some(pid)) => (
            Probe::for_pid(fs.clone(), pid)?,
            Scope::Tree(pid as i32),
            format!("pid {pid}'s cgroup"),
        ),
        (None, None) => (
            Probe::new(fs.clone())?,
            Scope::All,
            "this container".to_string(),
        ),
    };
    let mut log = match &args.log {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    usage(format!(
                        "--log {}: cannot open it for appending: {e}",
                        path.display()
                    ))
                })?,
        ),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let tty = std::io::stdout().is_terminal();
    let page = tree::page_size();
    let mut armed = true;
    let mut hooks: Vec<Child> = Vec::new();
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let st = probe.status()?;
        if first {
            for w in &st.warnings {
                crate::errln!("memsweep monitor: warning: {w}");
            }
        }
        let warn_bytes = (st.limit_bytes as f64 * warn_pct / 100.0) as u64;
        let rearm = (st.limit_bytes as f64 * (warn_pct - REARM_PCT).max(0.0) / 100.0) as u64;
        let mut warned = false;
        if armed && st.working_set_bytes >= warn_bytes {
            armed = false;
            warned = true;
            crate::errln!(
                "memsweep monitor: warning: working set {} is {:.0}% of the {} limit (--warn {warn_pct})",
                human(st.working_set_bytes),
                100.0 * st.working_set_bytes as f64 / st.limit_bytes.max(1) as f64,
                human(st.limit_bytes)
            );
            if let Some(cmd) = &args.on_warn {
                match Command::new("sh").arg("-c").arg(cmd).spawn() {
                    Ok(c) => hooks.push(c),
                    Err(e) => {
                        crate::errln!("memsweep monitor: warning: --on-warn could not run: {e}")
                    }
                }
            }
        } else if !armed && st.working_set_bytes < rearm {
            armed = true;
        }
        hooks.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        let sample = Sample {
            t: crate::journal::epoch_now(),
            working_set_bytes: st.working_set_bytes,
            usage_bytes: st.usage_bytes,
            limit_bytes: st.limit_bytes,
            available_bytes: st.available_bytes,
            psi_some_avg10: st.pressure.map(|p| p.some_avg10),
            psi_full_avg10: st.pressure.map(|p| p.full_avg10),
            oom_kills: st.oom_kills,
            warn_bytes,
            warned,
            top: top(&scope, page, if log.is_some() { TOP_LOGGED } else { 15 }),
        };
        match &mut log {
            Some(f) => {
                let mut line = serde_json::to_vec(&sample)?;
                line.push(b'\n');
                f.write_all(&line)?;
                f.flush()?;
            }
            None => {
                let mut text = String::new();
                if tty {
                    text.push_str("\x1b[H\x1b[2J");
                } else if !first {
                    text.push('\n');
                }
                text.push_str(&monitor::view(&sample, &name, interval, 15));
                let mut out = crate::output::stdio::stdout();
                let _ = out.write_all(text.as_bytes());
                if !out.is_open() {
                    // Nobody reads any more (`| head`), or stdout failed: `commands::main` says.
                    return Ok(Exit::Ok);
                }
            }
        }
        first = false;
        let until = Instant::now() + Duration::from_secs_f64(interval);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(Exit::Ok)
}

/// The processes of `scope` using the most memory (RSS), largest first.
fn top(scope: &Scope, page: u64, n: usize) -> Vec<TopProc> {
    let all = tree::scan(page);
    let mut procs: Vec<tree::Proc> = match scope {
        Scope::All => all,
        Scope::Cgroup(dir) => {
            let mut pids = Vec::new();
            collect_pids(dir, &mut pids);
            all.into_iter().filter(|p| pids.contains(&p.pid)).collect()
        }
        Scope::Tree(pid) => {
            let mut t: Vec<tree::Proc> = tree::tree(&all, *pid, &[])
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            t.extend(all.iter().find(|p| p.pid == *pid).copied());
            t
        }
    };
    procs.sort_by_key(|p| std::cmp::Reverse(p.rss_bytes));
    procs
        .into_iter()
        .filter(|p| p.rss_bytes > 0)
        .take(n)
        .map(|p| TopProc {
            pid: p.pid,
            rss_bytes: p.rss_bytes,
            command: tree::cmdline(p.pid).unwrap_or_default(),
        })
        .collect()
}

fn collect_pids(dir: &std::path::Path, out: &mut Vec<i32>) {
    if let Ok(t) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}
