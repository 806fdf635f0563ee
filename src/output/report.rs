//! After a sweep: the per-job table (status, attempts, wall time, peak, command) and advice for the
//! next sweep (peak per job, the safe parallelism for this container, the predicted makespan, and
//! the flags to pass). The numbers come from [`advice`], a pure function of the summary.

use std::io::{IsTerminal, Write};

use crate::journal::{JobStatus, JobSummary, Summary, SummaryRows};
use crate::size;

/// Sweeps with more jobs than this show only the jobs that did not succeed.
pub const FULL_TABLE_MAX_JOBS: usize = 40;

/// Whether to colour the status words (see [`super::color`] for `--color` and the environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn for_stdout() -> Style {
        Style {
            color: super::color::enabled(std::io::stdout().is_terminal()),
        }
    }

    pub fn for_stderr() -> Style {
        Style {
            color: super::color::enabled(std::io::stderr().is_terminal()),
        }
    }

    /// `text` in the colour of `status` (green done, red failed, yellow not run to an end).
    pub fn status(self, status: JobStatus, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match status {
            JobStatus::Succeeded => "32",
            s if s.is_failure() => "31",
            _ => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// The width of the terminal on stdout, if it is one.
pub fn stdout_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0 as usize)
}

/// Write the table and the advice (what `memsweep run` prints at the end): to stdout normally,
/// to stderr under `--json` (stdout then carries only event lines). Call
/// [`super::progress::Progress::finish`] first so the live status line is gone.
pub fn write_report(
    w: &mut dyn Write,
    summary: &Summary,
    budget_bytes: u64,
    width: Option<usize>,
    style: Style,
) -> std::io::Result<()> {
    write_report_rows(w, summary, &summary.jobs, budget_bytes, width, style)
}

/// [`write_report`] for a summary whose rows come from `rows` (its own `jobs` are not read):
/// the runner's, made from the journal's fold as they are written, never all held.
pub fn write_report_rows(
    w: &mut dyn Write,
    summary: &Summary,
    rows: &dyn SummaryRows,
    budget_bytes: u64,
    width: Option<usize>,
    style: Style,
) -> std::io::Result<()> {
    write_table(w, summary, rows, width, style)?;
    if summary.accounting == crate::slurm::ACCOUNTING {
        // Slurm sizes each job itself from the history: no -j or --mem-per-job to advise.
        return w.flush();
    }
    writeln!(w)?;
    w.write_all(render_advice(&advice_rows(summary, rows, budget_bytes)).as_bytes())?;
    w.flush()
}

/// The per-job table and a totals line. `width` truncates the command column (None: never).
pub fn table(summary: &Summary, width: Option<usize>, style: Style) -> String {
    let mut out = Vec::new();
    write_table(&mut out, summary, &summary.jobs, width, style)
        .expect("writing to memory does not fail");
    String::from_utf8(out).expect("the table is UTF-8")
}

/// [`table`], written line by line from `rows`: an interrupted 100 000-job sweep lists tens of
/// thousands of rows, and neither they nor the table are ever held whole.
fn write_table(
    w: &mut dyn Write,
    summary: &Summary,
    rows: &dyn SummaryRows,
    width: Option<usize>,
    style: Style,
) -> std::io::Result<()> {
    let total = rows.len();
    let listed = |s: JobStatus| total <= FULL_TABLE_MAX_JOBS || s != JobStatus::Succeeded;
    let never = |_: JobStatus| false;
    // Cells are formatted twice (widths, then lines) rather than kept: holding five strings per
    // row would set the runner's peak footprint.
    let cells = |j: &JobSummary, pauses: bool| -> Vec<String> {
        let mut c = vec![
            j.id.to_string(),
            j.status.as_str().to_string(),
            exit_cell(j),
            j.attempts.to_string(),
        ];
        if pauses {
            c.push(j.pauses.to_string());
        }
        c.push(j.wall_s.map_or("-".into(), fmt_secs));
        c.push(j.peak_bytes.map_or("-".into(), size::human));
        c
    };
    let mut header = vec!["id", "status", "exit", "tries", "pauses", "wall", "peak"];
    // Widths with the pauses column; it is dropped below unless something was paused
    // (`memsweep guard`, pause mode).
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    let (mut shown, mut pauses) = (0usize, false);
    rows.each(&never, &mut |j| {
        if !listed(j.status) {
            return;
        }
        shown += 1;
        pauses |= j.pauses > 0;
        for (w, cell) in widths.iter_mut().zip(&cells(j, true)) {
            *w = (*w).max(cell.chars().count());
        }
    });
    if !pauses {
        header.remove(4);
        widths.remove(4);
    }
    // id right, status left, exit and numbers right; two spaces between columns.
    let line = |c: &[String]| {
        let mut l = String::new();
        for (i, (cell, &w)) in c.iter().zip(&widths).enumerate() {
            if i == 1 {
                l.push_str(&format!("{cell:<w$}  "));
            } else {
                l.push_str(&format!("{cell:>w$}  "));
            }
        }
        l
    };
    if shown > 0 {
        let head = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        w.write_all(head.as_bytes())?;
        w.write_all(b"command\n")?;
        let mut res = Ok(());
        rows.each(&listed, &mut |j| {
            if res.is_err() || !listed(j.status) {
                return;
            }
            let mut l = line(&cells(j, pauses));
            let room = width.map(|w| w.saturating_sub(l.chars().count()).max(12));
            l.push_str(&truncate(&j.command, room));
            if style.color {
                // Colour the padded status cell so the columns stay aligned.
                let start = widths[0] + 2;
                let end = start + widths[1];
                l = format!(
                    "{}{}{}",
                    &l[..start],
                    style.status(j.status, &l[start..end]),
                    &l[end..]
                );
            }
            res = w
                .write_all(l.trim_end().as_bytes())
                .and_then(|()| w.write_all(b"\n"));
        });
        res?;
    }
    if shown < total {
        let hidden = total - shown;
        writeln!(
            w,
            "({hidden} succeeded job{} not shown; every job is in {})",
            plural(hidden),
            std::path::Path::new(&summary.out)
                .join("summary.json")
                .display()
        )?;
    }
    w.write_all(totals(summary, total).as_bytes())
}

/// How the job's process ended: its exit code, or the signal that ended it (`SIGTERM`).
fn exit_cell(j: &JobSummary) -> String {
    match (j.exit_code, j.signal) {
        (_, Some(sig)) => signal_name(sig),
        (Some(code), None) => code.to_string(),
        (None, None) => "-".into(),
    }
}

/// `SIGTERM` for 15; `signal 42` for signals without a common name.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.into()
}

/// The totals line of a summary of `jobs` jobs.
fn totals(s: &Summary, jobs: usize) -> String {
    let mut parts = vec![format!("{} succeeded", s.succeeded)];
    if s.failed > 0 {
        parts.push(format!("{} failed", s.failed));
    }
    if s.skipped > 0 {
        parts.push(format!("{} not run", s.skipped));
    }
    if s.accounting == crate::slurm::ACCOUNTING {
        return format!(
            "{} job{}: {} · makespan {} · on Slurm · {} OUT_OF_MEMORY end{} · {} resubmission{}\n",
            jobs,
            plural(jobs),
            parts.join(", "),
            fmt_secs(s.makespan_s),
            s.oom_kills,
            plural(s.oom_kills as usize),
            s.requeues,
            plural(s.requeues as usize),
        );
    }
    // A false pause: the job never grew past what it held when paused (the projection was
    // wrong, and the job waited for nothing).
    let false_pauses = if s.false_pauses > 0 {
        format!(" ({} false)", s.false_pauses)
    } else {
        String::new()
    };
    // Past the limit it can only be an explicit `--limit` below the container's: say so, or
    // "peaked at 1.52 GiB ... within a budget of 768 MiB" reads like a broken promise.
    let over = if s.peak_working_set_bytes > s.limit_bytes {
        format!(
            ", more than the {} --limit, which bounds memsweep's jobs together",
            size::human(s.limit_bytes)
        )
    } else {
        String::new()
    };
    format!(
        "{} job{}: {} · makespan {} · {} OOM kill{} · {} requeue{} · {} pause{}{false_pauses}\n\
         memory: the container's working set (all its processes) peaked at {}{over}; jobs were \
         admitted within a budget of {}\n",
        jobs,
        plural(jobs),
        parts.join(", "),
        fmt_secs(s.makespan_s),
        s.oom_kills,
        plural(s.oom_kills as usize),
        s.requeues,
        plural(s.requeues as usize),
        s.pauses,
        plural(s.pauses as usize),
        size::human(s.peak_working_set_bytes),
        size::human(s.budget_bytes),
    )
}

/// What the peaks say about the next run.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakAdvice {
    /// Succeeded jobs with a measured peak (the only ones learned from: a job that failed to
    /// start, was interrupted or was killed by a cap says nothing about what a job needs).
    pub measured: usize,
    pub max_bytes: u64,
    /// Nearest-rank 95th percentile.
    pub p95_bytes: u64,
    /// What memory allows: budget / p95, floored, at least 1, at most the number of jobs.
    pub memory_parallelism: usize,
    /// What the CPUs can keep busy: cores / the CPU one job keeps busy (its CPU time / wall
    /// time, over the succeeded jobs), rounded up; None when CPU times or cores are unknown.
    pub cpu_parallelism: Option<usize>,
    /// CPU seconds per wall second of a job, over the succeeded jobs.
    pub cpu_per_job: Option<f64>,
    pub cpus: Option<f64>,
    /// The `-j` to use: the smaller of the two.
    pub parallelism: usize,
    /// The sweep's makespan at that parallelism: the wall times scheduled in job order onto
    /// `parallelism` slots (jobs without a wall time count as the mean), and never less than
    /// the jobs' total CPU time over the cores.
    pub predicted_makespan_s: f64,
    /// `-j N --mem-per-job SIZE`.
    pub flags: String,
}

/// Advice for the next sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// None when no succeeded job's peak was measured.
    pub peaks: Option<PeakAdvice>,
    /// Jobs that did not succeed.
    pub not_succeeded: usize,
    /// `memsweep run --resume DIR`, when some job did not succeed.
    pub resume: Option<String>,
    pub oom_kills: u64,
}

/// Compute the advice (pure). Only succeeded jobs are learned from.
pub fn advice(summary: &Summary, budget_bytes: u64) -> Advice {
    advice_rows(summary, &summary.jobs, budget_bytes)
}

/// [`advice`] over rows read one at a time (only their numbers).
pub fn advice_rows(summary: &Summary, rows: &dyn SummaryRows, budget_bytes: u64) -> Advice {
    let mut peaks: Vec<u64> = Vec::new();
    // CPU seconds per wall second of a job, over the succeeded jobs that report both.
    let (mut cpu_sum, mut wall_sum) = (0.0, 0.0);
    let mut timed = 0usize;
    // Failed jobs' times say little about a job's length: they count as the mean.
    let mut walls: Vec<Option<f64>> = Vec::with_capacity(rows.len());
    let mut not_succeeded = 0;
    rows.each(&|_| false, &mut |j| {
        let ok = j.status == JobStatus::Succeeded;
        walls.push(j.wall_s.filter(|_| ok));
        if !ok {
            not_succeeded += 1;
            return;
        }
        peaks.extend(j.peak_bytes);
        if let (Some(c), Some(w)) = (j.cpu_s, j.wall_s) {
            cpu_sum += c;
            wall_sum += w;
        }
        timed += usize::from(j.wall_s.is_some());
    });
    peaks.sort_unstable();
    let n_jobs = rows.len().max(1);
    let cpu_per_job = (wall_sum > 0.0).then(|| cpu_sum / wall_sum);
    let cpus = summary.cpus.filter(|c| *c > 0.0);
    let peaks = (!peaks.is_empty()).then(|| {
        let max = *peaks.last().unwrap_or(&0);
        let rank = ((peaks.len() as f64) * 0.95).ceil() as usize;
        let p95 = peaks[rank.clamp(1, peaks.len()) - 1];
        let memory_parallelism = (budget_bytes / p95.max(1)).clamp(1, n_jobs as u64) as usize;
        let cpu_parallelism = match (cpus, cpu_per_job) {
            (Some(c), Some(u)) if u > 0.0 => {
                // Less a hair, so 2 / 0.05 is 40 and not 41 through rounding.
                Some((((c / u) - 1e-9).ceil() as usize).clamp(1, n_jobs))
            }
            _ => None,
        };
        let parallelism = memory_parallelism.min(cpu_parallelism.unwrap_or(usize::MAX));
        let mut predicted = predict_makespan(&walls, parallelism);
        if let (Some(c), Some(u)) = (cpus, cpu_per_job) {
            // Every job's CPU time must fit on the cores, however many run at once.
            let mean_wall = wall_sum / timed.max(1) as f64;
            predicted = predicted.max(rows.len() as f64 * mean_wall * u / c);
        }
        PeakAdvice {
            measured: peaks.len(),
            max_bytes: max,
            p95_bytes: p95,
            memory_parallelism,
            cpu_parallelism,
            cpu_per_job,
            cpus,
            parallelism,
            predicted_makespan_s: predicted,
            flags: format!("-j {parallelism} --mem-per-job {}", size::flag(p95)),
        }
    });
    Advice {
        peaks,
        not_succeeded,
        resume: (not_succeeded > 0)
            .then(|| format!("memsweep run --resume {}", shell_quote(&summary.out))),
        oom_kills: summary.oom_kills,
    }
}

/// Schedule the wall times in order onto `slots` (each job starts when the earliest slot frees),
/// as the runner does; missing wall times count as the mean of the known ones.
pub fn predict_makespan(walls: &[Option<f64>], slots: usize) -> f64 {
    // Summed in place: a copy of the known times was 8 bytes a job at the end of a big sweep.
    let (sum, known) = walls
        .iter()
        .flatten()
        .fold((0.0, 0usize), |(s, n), w| (s + w, n + 1));
    if known == 0 {
        return 0.0;
    }
    let mean = sum / known as f64;
    let mut free_at = vec![0.0f64; slots.max(1)];
    for w in walls {
        let slot = free_at
            .iter_mut()
            .min_by(|a, b| a.total_cmp(b))
            .expect("at least one slot");
        *slot += w.unwrap_or(mean);
    }
    free_at.into_iter().fold(0.0, f64::max)
}

/// The advice as aligned plain text.
pub fn render_advice(a: &Advice) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    match &a.peaks {
        Some(p) => {
            rows.push((
                "peak per job",
                format!(
                    "max {}, p95 {} (over {} job{})",
                    size::human(p.max_bytes),
                    size::human(p.p95_bytes),
                    p.measured,
                    plural(p.measured)
                ),
            ));
            let why = match (p.cpu_parallelism, p.cpus, p.cpu_per_job) {
                (Some(c), Some(cores), Some(u)) if c < p.memory_parallelism => format!(
                    "{cores} CPU{} at {u:.2} CPU per job; memory would allow {}",
                    if cores == 1.0 { "" } else { "s" },
                    p.memory_parallelism
                ),
                _ => "budget / p95 peak".to_string(),
            };
            rows.push((
                "safe parallelism",
                format!("{} at once ({why})", p.parallelism),
            ));
            let cores = p
                .cpus
                .map(|c| format!(" on {c} CPU{}", if c == 1.0 { "" } else { "s" }))
                .unwrap_or_default();
            rows.push((
                "predicted makespan",
                format!(
                    "{} at -j {}{cores}",
                    fmt_secs(p.predicted_makespan_s),
                    p.parallelism
                ),
            ));
            rows.push(("next time", format!("memsweep run {} ...", p.flags)));
        }
        None => rows.push((
            "peak per job",
            "not measured (no job succeeded); no advice".to_string(),
        )),
    }
    if a.oom_kills > 0 {
        rows.push((
            "OOM kills",
            format!(
                "{} by the kernel during the sweep (it chose a victim or a job hit its cap)",
                a.oom_kills
            ),
        ));
    }
    if let Some(cmd) = &a.resume {
        rows.push((
            "to finish",
            format!(
                "{} job{} did not succeed; rerun only those with: {cmd}",
                a.not_succeeded,
                plural(a.not_succeeded)
            ),
        ));
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

/// `12.3s`, `4m05s`, `1h02m`.
pub fn fmt_secs(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let total = s.round() as u64;
    if total < 3600 {
        format!("{}m{:02}s", total / 60, total % 60)
    } else {
        format!("{}h{:02}m", total / 3600, (total % 3600) / 60)
    }
}

fn truncate(s: &str, room: Option<usize>) -> String {
    match room {
        Some(room) if s.chars().count() > room => {
            let mut t: String = s.chars().take(room.saturating_sub(1)).collect();
            t.push('…');
            t
        }
        _ => s.to_string(),
    }
}

/// Quote a path for a shell command line when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-+:@%=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JobSummary;

    const MIB: u64 = 1 << 20;

    fn job(id: usize, status: JobStatus, wall: f64, peak_mib: u64) -> JobSummary {
        JobSummary {
            id,
            command: format!("python3 train.py --seed {id} --data /datasets/imagenet/train"),
            params: vec![("seed".into(), id.to_string())],
            status,
            exit_code: Some(if status == JobStatus::Succeeded { 0 } else { 1 }),
            signal: None,
            attempts: 1,
            wall_s: Some(wall),
            peak_bytes: Some(peak_mib * MIB),
            peak_source: Some("cgroup-v1".into()),
            pauses: 0,
            cpu_s: None,
        }
    }

    fn summary(out: &str, jobs: Vec<JobSummary>) -> Summary {
        Summary {
            schema_version: crate::journal::SCHEMA_VERSION,
            fail_fast_job: None,
            out: out.into(),
            makespan_s: 95.0,
            limit_bytes: 5 << 30,
            budget_bytes: 4 << 30,
            accounting: "cgroup-v1".into(),
            peak_working_set_bytes: 3 << 30,
            oom_kills: 0,
            requeues: 2,
            pauses: 1,
            false_pauses: 0,
            succeeded: jobs
                .iter()
                .filter(|j| j.status == JobStatus::Succeeded)
                .count(),
            failed: jobs.iter().filter(|j| j.status.is_failure()).count(),
            skipped: 0,
            cpus: None,
            jobs,
        }
    }

    /// 20 jobs peaking at 100, 200, ..., 2000 MiB; job 0 takes 30 s, the others 3 s.
    fn twenty() -> Summary {
        summary(
            "sweeps/2026-11-30/15-00-00",
            (0..20)
                .map(|i| {
                    let wall = if i == 0 { 30.0 } else { 3.0 };
                    job(i, JobStatus::Succeeded, wall, (i as u64 + 1) * 100)
                })
                .collect(),
        )
    }

    #[test]
    fn the_report_from_the_folds_rows_is_the_report_of_the_whole_summary() {
        // The runner writes its report from rows made one at a time out of the journal's fold;
        // it must read exactly as the report of the summary with every row held.
        use crate::journal::fixtures::{ctx, end, jobs, start, sweep_end, sweep_start};
        use crate::journal::{Event, SummaryFold};
        for n in [3, 45] {
            let jobs = jobs(n);
            let mut fold = SummaryFold::default();
            fold.add(&sweep_start(100.0, false));
            for i in 0..n.min(30) {
                let t = 100.0 + i as f64;
                fold.add(&start(t, i, 1));
                let status = if i % 7 == 3 {
                    JobStatus::Failed
                } else {
                    JobStatus::Succeeded
                };
                fold.add(&end(t + 1.5, i, 1, status, (i as u64 + 1) * 10 * MIB));
            }
            fold.add(&Event::JobPause {
                t: 130.0,
                job: 1,
                reason: String::new(),
                usage_bytes: None,
            });
            fold.add(&sweep_end(140.0, 40.0));
            let c = ctx("sweeps/x");
            let whole = fold.summary(&jobs, &c);
            for (width, style) in [(None, Style::default()), (Some(60), Style { color: true })] {
                let mut want = Vec::new();
                write_report(&mut want, &whole, 1 << 30, width, style).unwrap();
                let mut got = Vec::new();
                let header = fold.header(&jobs, &c);
                write_report_rows(&mut got, &header, &fold.rows(&jobs), 1 << 30, width, style)
                    .unwrap();
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(want).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_working_set_past_an_explicit_limit_is_explained() {
        let mut s = twenty();
        (s.limit_bytes, s.budget_bytes) = (1024 * MIB, 768 * MIB);
        s.peak_working_set_bytes = 1557 * MIB;
        assert!(
            totals(&s, s.jobs.len()).contains(
                "peaked at 1.52 GiB, more than the 1.00 GiB --limit, which bounds memsweep's \
                 jobs together; jobs were admitted within a budget of 768 MiB"
            ),
            "{}",
            totals(&s, s.jobs.len())
        );
        s.peak_working_set_bytes = 700 * MIB;
        assert!(
            !totals(&s, s.jobs.len()).contains("--limit"),
            "{}",
            totals(&s, s.jobs.len())
        );
    }

    #[test]
    fn the_totals_say_how_many_pauses_were_false() {
        let mut s = twenty();
        assert!(
            totals(&s, s.jobs.len()).contains("· 1 pause\n"),
            "{}",
            totals(&s, s.jobs.len())
        );
        (s.pauses, s.false_pauses) = (3, 2);
        assert!(
            totals(&s, s.jobs.len()).contains("· 3 pauses (2 false)\n"),
            "{}",
            totals(&s, s.jobs.len())
        );
    }

    #[test]
    fn advice_numbers_for_a_known_sweep() {
        let a = advice(&twenty(), 4096 * MIB);
        let p = a.peaks.expect("peaks were measured");
        assert_eq!(p.measured, 20);
        assert_eq!(p.max_bytes, 2000 * MIB);
        assert_eq!(p.p95_bytes, 1900 * MIB, "nearest rank: the 19th of 20");
        assert_eq!(p.parallelism, 2, "4096 MiB / 1900 MiB, floored");
        // Slot A runs job 0 (0-30 s); slot B runs jobs 1-10 (0-30 s); the 9 left alternate: 45 s.
        assert_eq!(p.predicted_makespan_s, 45.0);
        assert_eq!(p.flags, "-j 2 --mem-per-job 1.9G");
        assert_eq!(a.resume, None);
        let text = render_advice(&advice(&twenty(), 4096 * MIB));
        assert!(
            text.contains("max 1.95 GiB, p95 1.86 GiB (over 20 jobs)"),
            "{text}"
        );
        assert!(
            text.contains("next time           memsweep run -j 2 --mem-per-job 1.9G"),
            "{text}"
        );
        assert!(text.contains("predicted makespan  45.0s at -j 2"), "{text}");
    }

    #[test]
    fn advice_learns_only_from_succeeded_jobs() {
        // Twelve jobs that failed "file not found" at 8 MiB: nothing to learn, no advice.
        let failed = summary(
            "out",
            (0..12)
                .map(|i| job(i, JobStatus::Failed, 0.01, 8))
                .collect(),
        );
        let a = advice(&failed, 4096 * MIB);
        assert_eq!(a.peaks, None);
        assert!(render_advice(&a).contains("no job succeeded"));
        // Three succeeded at 500 MiB; killed by a 200 MiB cap, by Ctrl-C at 72 MiB, or failed
        // at once: only the 500 MiB jobs drive --mem-per-job.
        let mut jobs: Vec<JobSummary> = (0..3)
            .map(|i| job(i, JobStatus::Succeeded, 10.0, 500))
            .collect();
        jobs.extend((3..8).map(|i| job(i, JobStatus::Oom, 2.0, 200)));
        jobs.extend((8..12).map(|i| job(i, JobStatus::Killed, 1.0, 72)));
        jobs.push(job(12, JobStatus::Failed, 0.01, 8));
        let p = advice(&summary("out", jobs), 4096 * MIB).peaks.unwrap();
        assert_eq!(p.measured, 3);
        assert_eq!((p.max_bytes, p.p95_bytes), (500 * MIB, 500 * MIB));
        assert_eq!(p.flags, "-j 8 --mem-per-job 500M");
        // 13 jobs at the succeeded jobs' 10 s, 8 at a time: two rounds.
        assert_eq!(p.predicted_makespan_s, 20.0);
    }

    #[test]
    fn advice_counts_the_cpus() {
        // 100 CPU-bound jobs of 0.5 s, 2 cores, memory for all 100 at once: -j 2, and 25 s,
        // not "0.5s at -j 100".
        let mut s = summary(
            "out",
            (0..100)
                .map(|i| {
                    let mut j = job(i, JobStatus::Succeeded, 0.5, 10);
                    j.cpu_s = Some(0.5);
                    j
                })
                .collect(),
        );
        s.cpus = Some(2.0);
        let a = advice(&s, 4096 * MIB);
        let p = a.peaks.clone().unwrap();
        assert_eq!(p.memory_parallelism, 100);
        assert_eq!(p.cpu_parallelism, Some(2));
        assert_eq!(p.parallelism, 2);
        assert_eq!(p.predicted_makespan_s, 25.0);
        let text = render_advice(&a);
        assert!(
            text.contains("2 at once (2 CPUs at 1.00 CPU per job; memory would allow 100)"),
            "{text}"
        );
        assert!(text.contains("25.0s at -j 2 on 2 CPUs"), "{text}");
        // Jobs that mostly sleep (0.05 CPU each): memory is what bounds -j, and the makespan
        // at -j 100 is one job's wall time.
        for j in &mut s.jobs {
            j.cpu_s = Some(0.025);
        }
        let p = advice(&s, 4096 * MIB).peaks.unwrap();
        assert_eq!((p.cpu_parallelism, p.parallelism), (Some(40), 40));
        assert_eq!(
            p.predicted_makespan_s, 1.5,
            "100 jobs of 0.5 s, 40 at a time"
        );
        // Half a core each on 2 cores: 4 at once, and the CPU time bounds the makespan.
        for j in &mut s.jobs {
            j.cpu_s = Some(0.25);
        }
        let p = advice(&s, 4096 * MIB).peaks.unwrap();
        assert_eq!(p.parallelism, 4);
        assert_eq!(p.predicted_makespan_s, 12.5);
    }

    #[test]
    fn parallelism_is_at_least_one_and_at_most_the_job_count() {
        let a = advice(&twenty(), 10 * MIB);
        assert_eq!(
            a.peaks.unwrap().parallelism,
            1,
            "an oversized job still runs"
        );
        let a = advice(&twenty(), 1 << 40);
        let p = a.peaks.unwrap();
        assert_eq!(p.parallelism, 20);
        assert_eq!(p.predicted_makespan_s, 30.0, "the longest job");
        assert_eq!(
            predict_makespan(&[Some(4.0), None, Some(2.0)], 1),
            9.0,
            "None counts as the mean"
        );
    }

    #[test]
    fn failures_get_the_resume_command_and_no_peaks_no_numbers() {
        let mut s = twenty();
        s.out = "sweeps/my run".into();
        s.jobs[3].status = JobStatus::Oom;
        s.jobs[4].status = JobStatus::Skipped;
        s.jobs[4].peak_bytes = None;
        let text = render_advice(&advice(&s, 4096 * MIB));
        assert!(
            text.contains("2 jobs did not succeed; rerun only those with: memsweep run --resume 'sweeps/my run'"),
            "{text}"
        );
        for j in &mut s.jobs {
            j.peak_bytes = None;
        }
        let a = advice(&s, 4096 * MIB);
        assert_eq!(a.peaks, None);
        assert!(render_advice(&a).contains("not measured"));
    }

    #[test]
    fn the_table_is_aligned_and_fits_the_terminal() {
        let mut s = twenty();
        s.jobs.truncate(3);
        s.jobs[1].status = JobStatus::Failed;
        s.jobs[1].exit_code = Some(2);
        s.jobs[2].wall_s = Some(125.0);
        (s.succeeded, s.failed) = (2, 1);
        let t = table(&s, Some(60), Style::default());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "id  status     exit  tries   wall     peak  command"
        );
        assert_eq!(
            lines[2],
            " 1  failed        2      1   3.0s  200 MiB  python3 train.p…"
        );
        assert!(
            lines[3].starts_with(" 2  succeeded     0      1  2m05s  300 MiB  "),
            "{t}"
        );
        for l in &lines[..4] {
            assert!(l.chars().count() <= 60, "{l:?} is wider than 60");
        }
        assert!(!t.contains('\x1b'), "no colour unless asked");
        assert!(
            lines[4].starts_with("3 jobs: 2 succeeded, 1 failed · makespan 1m35s"),
            "{t}"
        );
        let wide = table(&s, None, Style::default());
        assert!(
            wide.contains("--data /datasets/imagenet/train"),
            "no width: no truncation"
        );
        let coloured = table(&s, None, Style { color: true });
        assert!(coloured.contains("\x1b[31mfailed   \x1b[0m"), "{coloured}");
    }

    #[test]
    fn big_sweeps_list_only_what_did_not_succeed() {
        let mut s = summary(
            "out",
            (0..100)
                .map(|i| job(i, JobStatus::Succeeded, 1.0, 10))
                .collect(),
        );
        s.jobs[42].status = JobStatus::Oom;
        s.succeeded = 99;
        s.failed = 1;
        let t = table(&s, None, Style::default());
        assert_eq!(t.lines().count(), 5, "{t}");
        assert!(t.contains("42  oom"), "{t}");
        assert!(
            t.contains("(99 succeeded jobs not shown; every job is in out/summary.json)"),
            "{t}"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_secs(0.04), "0.0s");
        assert_eq!(fmt_secs(59.94), "59.9s");
        assert_eq!(fmt_secs(61.0), "1m01s");
        assert_eq!(fmt_secs(3725.0), "1h02m");
        assert_eq!(fmt_secs(f64::NAN), "-");
    }
}
