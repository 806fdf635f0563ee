//! `memsweep show DIR`: what happened in a sweep directory — finished, still running, or left by
//! a runner that died — as the end-of-sweep table and advice, the summary as JSON, or an SVG
//! timeline. Read-only: the summary is refolded from the journal (so it works after a crash),
//! and the lock is only probed, never held, so a running sweep is not disturbed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::cli::ShowArgs;
use crate::exit::{Exit, usage};
use crate::journal::{
    self, Event, JOURNAL_FILE, JobStatus, LOCK_FILE, PLAN_FILE, SUMMARY_FILE, Summary,
    SummaryContext,
};
use crate::output::plot::{self, PlotInfo};
use crate::output::report::{self, Style, fmt_secs};
use crate::size::human;
use crate::sweep::SweepPlan;

/// The start of `sweep.json`'s template in a `memsweep guard` directory.
pub const GUARD_TEMPLATE: &str = "memsweep guard -- ";

/// How the sweep stands, from the journal and the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// A runner holds the lock (pid from the lock file, when readable).
    Running { pid: Option<u32> },
    /// The latest run ended normally.
    Complete,
    /// The latest run was stopped by Ctrl-C or SIGTERM and ended its journal.
    Interrupted,
    /// The journal stops without `sweep_end` and no runner holds the lock: the runner was killed
    /// or crashed.
    RunnerDied,
    /// No run has started in this directory yet.
    NotStarted,
}

impl State {
    /// One phrase for the header and the plot's title.
    pub fn describe(&self) -> String {
        match self {
            State::Running { pid: Some(p) } => format!("still running (runner pid {p})"),
            State::Running { pid: None } => "still running".into(),
            State::Complete => "complete".into(),
            State::Interrupted => "interrupted (Ctrl-C or SIGTERM)".into(),
            State::RunnerDied => {
                "interrupted: the runner stopped without ending the sweep (killed or crashed)"
                    .into()
            }
            State::NotStarted => "not started".into(),
        }
    }
}

/// A sweep directory read back.
#[derive(Debug, Clone)]
pub struct Shown {
    pub plan: SweepPlan,
    /// The journal's events, plus — when the runner died — the ends it would have written
    /// (see [`close_dead_run`]).
    pub events: Vec<Event>,
    pub state: State,
    pub summary: Summary,
    /// The journal's last line was torn (a runner killed mid-write) and was ignored.
    pub torn: bool,
}

pub fn run(args: &ShowArgs) -> anyhow::Result<Exit> {
    if args.dir.is_file() {
        return show_monitor_log(args);
    }
    let shown = load(&args.dir)?;
    if let Some(path) = &args.svg {
        let svg = plot::timeline_svg(&shown.events, &plot_info(&args.dir, &shown));
        fs::write(path, svg).map_err(|e| {
            usage(format!(
                "--svg {}: cannot write the plot: {e}; give a path in a writable directory",
                path.display()
            ))
        })?;
    }
    // Write errors are handled by the output policy (`output::stdio`), never here.
    let mut out = io::BufWriter::new(crate::output::stdio::stdout());
    let _ = if args.json {
        serde_json::to_writer_pretty(&mut out, &shown.summary)
            .map_err(io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        write_human(&mut out, &args.dir, &shown)
    };
    let _ = out.flush();
    if let (Some(path), false) = (&args.svg, args.json) {
        crate::errln!("memsweep: timeline written to {}", path.display());
    }
    Ok(Exit::Ok)
}

/// A `memsweep monitor --log` file: `--svg` draws its timeline; otherwise a few lines of what it
/// holds.
fn show_monitor_log(args: &ShowArgs) -> anyhow::Result<Exit> {
    let path = args.dir.display().to_string();
    let text = fs::read_to_string(&args.dir).map_err(|e| {
        usage(format!(
            "{path}: {e}; give a sweep directory or a monitor log"
        ))
    })?;
    let samples = crate::output::monitor::parse_log(&text, &path).map_err(|e| {
        usage(format!(
            "{e}; give a sweep directory (memsweep run --out) or a `memsweep monitor --log` file"
        ))
    })?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&samples)?);
    }
    if let Some(svg_path) = &args.svg {
        let svg =
            crate::output::monitor::timeline_svg(&samples, &format!("memsweep monitor · {path}"));
        fs::write(svg_path, svg).map_err(|e| {
            usage(format!(
                "--svg {}: cannot write the plot: {e}; give a path in a writable directory",
                svg_path.display()
            ))
        })?;
        crate::errln!("memsweep: timeline written to {}", svg_path.display());
    }
    if !args.json {
        let peak = samples
            .iter()
            .map(|s| s.working_set_bytes)
            .max()
            .unwrap_or(0);
        let span = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => b.t - a.t,
            _ => 0.0,
        };
        crate::outln!(
            "monitor log {path}: {} samples over {}; peak working set {}; {} warning{}",
            samples.len(),
            fmt_secs(span),
            human(peak),
            samples.iter().filter(|s| s.warned).count(),
            if samples.iter().filter(|s| s.warned).count() == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    Ok(Exit::Ok)
}

/// Read DIR without taking its lock: the plan, the journal (a torn last line dropped), the
/// lock's state, and the summary folded from the journal.
pub fn load(dir: &Path) -> anyhow::Result<Shown> {
    let shown = dir.display();
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(usage(format!(
                "{shown} is not a directory; give the --out directory of a sweep"
            )));
        }
        Err(e) => {
            return Err(usage(format!(
                "{shown}: {e}; give the --out directory of a sweep (memsweep run --out DIR)"
            )));
        }
    }
    let plan_path = dir.join(PLAN_FILE);
    let plan_text = fs::read(&plan_path).map_err(|e| {
        usage(format!(
            "{shown} is not a memsweep sweep directory: cannot read {PLAN_FILE} ({e}); give the --out directory of a sweep"
        ))
    })?;
    let plan: SweepPlan = serde_json::from_slice(&plan_text).map_err(|e| {
        usage(format!(
            "{}: {e}; not a memsweep sweep plan (edited, or written by another memsweep version)",
            plan_path.display()
        ))
    })?;
    // Probe the lock before reading the journal: a runner that ends in between has written its
    // sweep_end by the time the journal is read, and that wins.
    let lock = probe_lock(dir)?;
    let journal_path = dir.join(JOURNAL_FILE);
    let bytes = fs::read(&journal_path).map_err(|e| {
        usage(format!(
            "{shown} is not a complete sweep directory: cannot read {JOURNAL_FILE} ({e})"
        ))
    })?;
    let (mut events, good_len) = journal::parse_journal(&bytes, &journal_path)?;
    let torn = (good_len as usize) < bytes.len()
        && !bytes[good_len as usize..]
            .iter()
            .all(u8::is_ascii_whitespace);

    // How the latest run ended: Some(Some(interrupted)) with a sweep_end, Some(None) without.
    let latest_run = events.iter().rev().find_map(|e| match e {
        Event::SweepEnd { interrupted, .. } => Some(Some(*interrupted)),
        Event::SweepStart { .. } => Some(None),
        _ => None,
    });
    let state = match (latest_run, lock) {
        (Some(Some(true)), _) => State::Interrupted,
        (Some(Some(false)), _) => State::Complete,
        (_, Some(pid)) => State::Running { pid },
        (None, None) => State::NotStarted,
        (Some(None), None) => {
            close_dead_run(&mut events);
            State::RunnerDied
        }
    };

    let mut plan = plan;
    add_unplanned_jobs(&mut plan, &events);
    let ctx = context(dir, &events);
    let mut summary = journal::summarize(&plan.jobs, &events, &ctx);
    // The journal's samples are at most one a second; the runner's summary.json also saw the
    // samples in between, and the OOM counter and CPUs the journal does not hold.
    if let Some(previous) = fs::read(dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Summary>(&b).ok())
    {
        summary.peak_working_set_bytes = summary
            .peak_working_set_bytes
            .max(previous.peak_working_set_bytes);
        summary.oom_kills = previous.oom_kills;
        summary.cpus = previous.cpus;
    }
    Ok(Shown {
        plan,
        events,
        state,
        summary,
        torn,
    })
}

/// `memsweep guard` learns its jobs (the command's processes) as they appear and writes them
/// into `sweep.json` when it ends; while it runs, or after it died, the journal's starts name
/// the rest.
fn add_unplanned_jobs(plan: &mut SweepPlan, events: &[Event]) {
    let known: std::collections::HashSet<usize> = plan.jobs.iter().map(|j| j.id()).collect();
    let mut added = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for e in events {
        if let Event::JobStart { job, command, .. } = e
            && !known.contains(job)
            && added.insert(*job)
        {
            jobs.push(crate::sweep::Job::new(
                *job,
                crate::sweep::JobCommand::Shell(command.clone()),
                Vec::new(),
                None,
            ));
        }
    }
    if !jobs.is_empty() {
        jobs.extend(plan.jobs.to_vec());
        jobs.sort_by_key(|j| j.id);
        plan.jobs = jobs.into();
    }
}

/// Whether a runner holds DIR's lock, and its pid if so. A shared lock is tried on a read-only
/// handle and let go at once: it fails while a runner holds its exclusive lock, and neither
/// changes the lock file nor keeps a runner out (except one starting in that same instant).
fn probe_lock(dir: &Path) -> anyhow::Result<Option<Option<u32>>> {
    let path = dir.join(LOCK_FILE);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(usage(format!("cannot open {}: {e}", path.display()))),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Ok(Some(text.trim().parse().ok()))
        }
        Err(fs::TryLockError::Error(e)) => Err(usage(format!(
            "cannot check the lock {}: {e}",
            path.display()
        ))),
    }
}

/// A journal cut off by a runner's death: add the ends that runner would have written when
/// stopping, at its last event, so the one summary fold reads it as it reads an interrupted
/// sweep — started jobs killed (the guard kills them when the runner dies), requeued ones left
/// waiting skipped, unstarted ones not run.
fn close_dead_run(events: &mut Vec<Event>) {
    let t = events.last().map_or(0.0, Event::t);
    let mut replay = journal::Replay::default();
    for e in events.iter() {
        replay.step(e, |_| {});
    }
    let waiting: Vec<(usize, u32)> = replay.waiting().collect();
    for (job, attempt) in waiting {
        events.push(Event::skipped(t, job, attempt));
    }
    // The fold reads only the time and the flag of a sweep_end.
    events.push(Event::SweepEnd {
        t,
        makespan_s: 0.0,
        succeeded: 0,
        failed: 0,
        exit_code: Exit::Interrupted as i32,
        interrupted: true,
        fail_fast_job: None,
    });
}

/// What the summary needs that only the latest `sweep_start` knows. `out` is DIR as given here,
/// so the advice's `--resume DIR` works from where `show` was run.
fn context(dir: &Path, events: &[Event]) -> SummaryContext {
    let start = latest_start(events);
    let start = start.as_ref();
    SummaryContext {
        out: dir.display().to_string(),
        limit_bytes: start.map_or(0, |s| s.limit),
        budget_bytes: start.map_or(0, |s| s.budget),
        accounting: start.map_or_else(String::new, |s| s.accounting.clone()),
        oom_kills: 0,
        cpus: None,
    }
}

struct StartInfo {
    limit: u64,
    budget: u64,
    reserve: u64,
    cap: Option<usize>,
    accounting: String,
}

fn latest_start(events: &[Event]) -> Option<StartInfo> {
    events.iter().rev().find_map(|e| match e {
        Event::SweepStart {
            limit_bytes,
            budget_bytes,
            reserve_bytes,
            parallel_cap,
            accounting,
            ..
        } => Some(StartInfo {
            limit: *limit_bytes,
            budget: *budget_bytes,
            reserve: *reserve_bytes,
            cap: *parallel_cap,
            accounting: accounting.clone(),
        }),
        _ => None,
    })
}

/// Local date and time of an epoch timestamp, to the second.
fn when(t: f64) -> String {
    jiff::Timestamp::from_millisecond((t * 1000.0) as i64)
        .map(|ts| {
            ts.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| format!("{t:.0} (epoch seconds)"))
}

/// The header lines: (label, text).
fn header(dir: &Path, s: &Shown) -> Vec<(&'static str, String)> {
    let mut rows = vec![("sweep", dir.display().to_string())];
    let runs = s
        .events
        .iter()
        .filter(|e| matches!(e, Event::SweepStart { .. }))
        .count();
    if let (Some(first), Some(last)) = (s.events.first(), s.events.last()) {
        let (from, to) = (when(first.t()), when(last.t()));
        // The end's date only when it differs from the start's.
        let to = match (from.split_once(' '), to.split_once(' ')) {
            (Some((d0, _)), Some((d1, rest))) if d0 == d1 => rest.to_string(),
            _ => to,
        };
        let mut ran = format!("{from} to {to}");
        match runs {
            0 | 1 => {}
            2 => ran.push_str(" (resumed once)"),
            n => ran.push_str(&format!(" (resumed {} times)", n - 1)),
        }
        rows.push(("ran", ran));
    }
    let sum = &s.summary;
    let n = sum.jobs.len();
    let mut state = s.state.describe();
    match &s.state {
        State::Running { .. } => {
            let done = sum
                .jobs
                .iter()
                .filter(|j| !matches!(j.status, JobStatus::Running | JobStatus::Pending))
                .count();
            let running = sum
                .jobs
                .iter()
                .filter(|j| j.status == JobStatus::Running)
                .count();
            state.push_str(&format!(
                ": {done} of {n} done, {running} running; this view is a snapshot"
            ));
        }
        State::NotStarted => {}
        _ => state.push_str(&format!(": {} of {n} succeeded", sum.succeeded)),
    }
    rows.push(("state", state));
    if let Some(st) = latest_start(&s.events) {
        rows.push((
            "memory",
            format!(
                "limit {}, reserve {}, budget {}; -j {}",
                human(st.limit),
                human(st.reserve),
                human(st.budget),
                st.cap
                    .map_or("none (memory only)".into(), |c| c.to_string())
            ),
        ));
        rows.push((
            "accounting",
            match st.accounting.as_str() {
                _ if s.plan.template.starts_with(GUARD_TEMPLATE) => {
                    "memsweep guard: one job per process of the command, peaks sampled from /proc"
                        .into()
                }
                "proc" => "proc (per-job peaks sampled from /proc)".into(),
                a => format!("{a} (a memory cgroup per job: exact peaks)"),
            },
        ));
    }
    let c = &s.plan.config;
    let mut controls = Vec::new();
    if let Some(t) = c.timeout_s {
        controls.push(format!("--timeout {}", fmt_secs(t)));
    }
    if c.fail_fast {
        controls.push(match sum.fail_fast_job {
            Some(j) => format!("--fail-fast: stopped starting jobs after job {j} failed"),
            None => "--fail-fast".to_string(),
        });
    }
    for l in &c.links {
        controls.push(format!("--link {}", l.join(",")));
    }
    if c.output == crate::cli::OutputMode::Live {
        controls.push("--output live".into());
    }
    if !controls.is_empty() {
        rows.push(("controls", controls.join("; ")));
    }
    rows.push(("makespan", fmt_secs(sum.makespan_s)));
    if s.torn {
        rows.push((
            "journal",
            "its last line was cut short (a runner killed mid-write) and is ignored".into(),
        ));
    }
    rows
}

fn write_human(w: &mut dyn Write, dir: &Path, s: &Shown) -> io::Result<()> {
    let rows = header(dir, s);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &rows {
        writeln!(w, "{k:<width$}  {v}")?;
    }
    writeln!(w)?;
    if s.state == State::NotStarted {
        return writeln!(w, "no job has started yet");
    }
    let style = Style::for_stdout();
    w.write_all(report::table(&s.summary, report::stdout_width(), style).as_bytes())?;
    writeln!(w)?;
    if s.plan.template.starts_with(GUARD_TEMPLATE) {
        // The guard did not launch these processes: run's advice (-j, --resume) does not apply.
        return w.flush();
    }
    let mut advice = report::advice(&s.summary, s.summary.budget_bytes);
    if matches!(s.state, State::Running { .. }) {
        // The runner still holds the directory: `--resume` would be refused.
        advice.resume = None;
    }
    w.write_all(report::render_advice(&advice).as_bytes())?;
    w.flush()
}

fn plot_info(dir: &Path, s: &Shown) -> PlotInfo {
    let sum = &s.summary;
    let outcome = match &s.state {
        State::Complete if sum.failed == 0 && sum.skipped == 0 => {
            format!("complete, all {} succeeded", sum.succeeded)
        }
        State::Complete => format!(
            "complete, {} of {} succeeded",
            sum.succeeded,
            sum.jobs.len()
        ),
        State::Running { .. } => "still running (snapshot)".to_string(),
        State::Interrupted | State::RunnerDied => format!(
            "interrupted, {} of {} succeeded",
            sum.succeeded,
            sum.jobs.len()
        ),
        State::NotStarted => "not started".to_string(),
    };
    let started = s.events.first().map(|e| when(e.t())).unwrap_or_default();
    let subtitle = format!(
        "{started} · makespan {} · peak working set {} · accounting {} · {} requeue{} · {} pause{}",
        fmt_secs(sum.makespan_s),
        human(sum.peak_working_set_bytes),
        if sum.accounting.is_empty() {
            "-"
        } else {
            &sum.accounting
        },
        sum.requeues,
        if sum.requeues == 1 { "" } else { "s" },
        sum.pauses,
        if sum.pauses == 1 { "" } else { "s" },
    );
    let labels = s
        .plan
        .jobs
        .iter()
        .map(|j| {
            let params: Vec<String> = j.params().map(|(k, v)| format!("{k}={v}")).collect();
            if params.is_empty() {
                j.id().to_string()
            } else {
                format!("{} {}", j.id(), params.join(" "))
            }
        })
        .collect();
    PlotInfo {
        title: format!("memsweep · {} · {outcome}", dir.display()),
        subtitle,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::fixtures::*;

    #[test]
    fn a_dead_runner_leaves_started_jobs_killed_and_requeued_ones_skipped() {
        let jobs = jobs(4);
        let mut events = vec![
            sweep_start(0.0, false),
            start(0.0, 0, 1),
            start(0.0, 1, 1),
            start(0.0, 2, 1),
            end(1.0, 0, 1, JobStatus::Succeeded, 1),
            Event::JobRequeue {
                t: 1.5,
                job: 2,
                attempt: 1,
                reason: "r".into(),
                usage_bytes: 5,
            },
            sample(2.0, 10),
        ];
        close_dead_run(&mut events);
        let s = journal::summarize(&jobs, &events, &ctx("o"));
        let st: Vec<_> = s.jobs.iter().map(|j| j.status).collect();
        assert_eq!(
            st,
            [
                JobStatus::Succeeded,
                JobStatus::Interrupted,
                JobStatus::Skipped,
                JobStatus::Skipped
            ]
        );
        assert_eq!(s.makespan_s, 2.0, "nothing added after the last event");
    }
}
