//! The timeline plot of a sweep (`memsweep show --svg`): a self-contained SVG written by hand
//! from the journal's events — memory over time (each running job's usage stacked, the
//! container's working set, budget and limit) above a Gantt chart of the jobs' attempts.
//!
//! x is the runner's own time: seconds since the sweep started, with the gaps between a crash
//! and `--resume` cut out (a dashed line marks each resume), as `makespan_s` counts them.
//! Up to [`LANE_PER_JOB_MAX`] jobs get a lane each; bigger sweeps pack attempts into as many
//! lanes as ran at once (a lane takes the next job when its job ends), so 500 jobs stay readable
//! and the lane count shows the parallelism reached.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::journal::{Event, JobStatus};
use crate::size;

/// Sweeps with more jobs than this pack their attempts into shared lanes.
pub const LANE_PER_JOB_MAX: usize = 80;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 30.0;
const MEM_HEIGHT: f64 = 300.0;
/// Height the Gantt lanes aim for in total; lanes stay between [`LANE_MIN`] and [`LANE_MAX`].
const GANTT_TARGET: f64 = 480.0;
const LANE_MIN: f64 = 2.0;
const LANE_MAX: f64 = 20.0;

/// Colours of the job bands in the memory chart (ColorBrewer Set3, chosen apart from the
/// status colours of the lanes so the two are not confused).
const BANDS: [&str; 12] = [
    "#8dd3c7", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd",
    "#ccebc5", "#ffed6f", "#9ecae1", "#d9d9d9",
];
const REQUEUED: &str = "#f5b041";
const WS_LINE: &str = "#222222";
const BUDGET_LINE: &str = "#e67e22";
const LIMIT_LINE: &str = "#c0392b";

/// What the plot says around the data.
#[derive(Debug, Clone)]
pub struct PlotInfo {
    /// e.g. `memsweep · sweeps/… · complete: 4 of 4 succeeded`.
    pub title: String,
    /// A second line: when, accounting, limit, budget, makespan.
    pub subtitle: String,
    /// Short label per job, indexed by job id (id and parameters).
    pub labels: Vec<String>,
}

/// The colour of a status in the lanes (and of end marks).
pub fn status_color(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Succeeded => "#3a9a5b",
        JobStatus::Failed => "#d64541",
        JobStatus::Killed => "#8e44ad",
        JobStatus::Oom => "#6e0d0f",
        JobStatus::Timeout => "#b8860b",
        JobStatus::Interrupted => "#7f8c8d",
        JobStatus::RequeuedOut => "#e67e22",
        JobStatus::Skipped => "#b0b0b0",
        JobStatus::Running => "#2f7ed8",
        JobStatus::Pending => "#d0d0d0",
    }
}

/// How an attempt ended, as the lanes show it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AttemptEnd {
    Status(JobStatus),
    /// memsweep stopped it to run it again later.
    Requeued,
    /// Still running when the journal ends.
    Open,
}

#[derive(Debug, Clone)]
struct Attempt {
    job: usize,
    x0: f64,
    x1: f64,
    end: AttemptEnd,
    /// Paused spans (SIGSTOP to SIGCONT), in plot seconds.
    pauses: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
struct Run {
    x0: f64,
    x1: f64,
    limit: u64,
    budget: u64,
}

#[derive(Debug, Clone)]
struct Sample {
    x: f64,
    ws: u64,
    /// (job, bytes), sorted by job id: the stacking order.
    running: Vec<(usize, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Start,
    End(JobStatus),
    Pause,
    Requeue,
}

/// The journal turned into plot coordinates (seconds of runner time).
#[derive(Debug, Default)]
struct Timeline {
    runs: Vec<Run>,
    attempts: Vec<Attempt>,
    samples: Vec<Sample>,
    marks: Vec<(f64, Mark)>,
    x_end: f64,
    n_jobs: usize,
}

impl Timeline {
    fn build(events: &[Event]) -> Timeline {
        let mut tl = Timeline::default();
        // Plot seconds at which the current run began, and its epoch time.
        let mut run_x0 = 0.0;
        let mut run_t0 = events.first().map_or(0.0, Event::t);
        let mut open: HashMap<usize, usize> = HashMap::new();
        let mut paused: HashMap<usize, f64> = HashMap::new();
        for e in events {
            if let Event::SweepStart {
                t,
                jobs,
                limit_bytes,
                budget_bytes,
                ..
            } = e
            {
                // Jobs still open died with the previous runner (as the summary fold counts them).
                let x = tl.x_end;
                tl.close_all(&mut open, &mut paused, x, JobStatus::Interrupted);
                if let Some(r) = tl.runs.last_mut() {
                    r.x1 = x;
                }
                run_x0 = x;
                run_t0 = *t;
                tl.n_jobs = tl.n_jobs.max(*jobs);
                tl.runs.push(Run {
                    x0: x,
                    x1: x,
                    limit: *limit_bytes,
                    budget: *budget_bytes,
                });
                continue;
            }
            let x = run_x0 + (e.t() - run_t0).max(0.0);
            tl.x_end = tl.x_end.max(x);
            match e {
                Event::SweepStart { .. } => {}
                Event::JobStart { job, .. } => {
                    // A start while open (a journal edited by hand) closes the earlier attempt.
                    tl.close(&mut open, &mut paused, *job, x, AttemptEnd::Open);
                    open.insert(*job, tl.attempts.len());
                    tl.attempts.push(Attempt {
                        job: *job,
                        x0: x,
                        x1: x,
                        end: AttemptEnd::Open,
                        pauses: Vec::new(),
                    });
                    tl.n_jobs = tl.n_jobs.max(job + 1);
                    tl.marks.push((x, Mark::Start));
                }
                Event::JobPause { job, .. } => {
                    paused.entry(*job).or_insert(x);
                    tl.marks.push((x, Mark::Pause));
                }
                Event::JobResume { job, .. } => {
                    if let (Some(p), Some(&i)) = (paused.remove(job), open.get(job)) {
                        tl.attempts[i].pauses.push((p, x));
                    }
                }
                Event::JobRequeue { job, .. } => {
                    tl.close(&mut open, &mut paused, *job, x, AttemptEnd::Requeued);
                    tl.marks.push((x, Mark::Requeue));
                }
                Event::JobEnd { job, status, .. } => {
                    // An end without an open attempt (a requeued job skipped at the end) has
                    // no bar to close.
                    if tl.close(&mut open, &mut paused, *job, x, AttemptEnd::Status(*status)) {
                        tl.marks.push((x, Mark::End(*status)));
                    }
                }
                Event::Sample {
                    working_set_bytes,
                    running,
                    ..
                } => {
                    let mut running = running.clone();
                    running.sort_unstable();
                    tl.samples.push(Sample {
                        x,
                        ws: *working_set_bytes,
                        running,
                    });
                }
                Event::SweepEnd { .. } => {
                    tl.close_all(&mut open, &mut paused, x, JobStatus::Interrupted);
                }
            }
            if let Some(r) = tl.runs.last_mut() {
                r.x1 = x;
            }
        }
        // Still open: the sweep is running; the bars reach the latest event.
        let x = tl.x_end;
        for &i in open.values() {
            tl.attempts[i].x1 = x;
            if let Some(&p) = paused.get(&tl.attempts[i].job) {
                tl.attempts[i].pauses.push((p, x));
            }
        }
        tl
    }

    /// Close job's open attempt at x; false if it had none.
    fn close(
        &mut self,
        open: &mut HashMap<usize, usize>,
        paused: &mut HashMap<usize, f64>,
        job: usize,
        x: f64,
        end: AttemptEnd,
    ) -> bool {
        let Some(i) = open.remove(&job) else {
            return false;
        };
        let a = &mut self.attempts[i];
        a.x1 = x;
        a.end = end;
        if let Some(p) = paused.remove(&job) {
            a.pauses.push((p, x));
        }
        true
    }

    fn close_all(
        &mut self,
        open: &mut HashMap<usize, usize>,
        paused: &mut HashMap<usize, f64>,
        x: f64,
        status: JobStatus,
    ) {
        let mut jobs: Vec<usize> = open.keys().copied().collect();
        jobs.sort_unstable();
        for job in jobs {
            self.close(open, paused, job, x, AttemptEnd::Status(status));
            self.marks.push((x, Mark::End(status)));
        }
    }

    /// The largest byte value the memory chart must show.
    fn mem_max(&self) -> u64 {
        let data = self
            .samples
            .iter()
            .map(|s| s.ws.max(s.running.iter().map(|r| r.1).sum()))
            .max()
            .unwrap_or(0);
        let lines = self
            .runs
            .iter()
            .map(|r| r.limit.max(r.budget))
            .max()
            .unwrap_or(0);
        data.max(lines).max(1 << 20)
    }

    /// Lane of each attempt and the number of lanes: one per job for small sweeps, else
    /// attempts packed greedily (the first lane free when the attempt starts).
    fn lanes(&self) -> (Vec<usize>, usize, bool) {
        if self.n_jobs <= LANE_PER_JOB_MAX {
            let lanes = self.attempts.iter().map(|a| a.job).collect();
            return (lanes, self.n_jobs.max(1), true);
        }
        let mut order: Vec<usize> = (0..self.attempts.len()).collect();
        order.sort_by(|&a, &b| self.attempts[a].x0.total_cmp(&self.attempts[b].x0));
        let mut free_at: Vec<f64> = Vec::new();
        let mut lane_of = vec![0; self.attempts.len()];
        for i in order {
            let a = &self.attempts[i];
            let lane = match free_at.iter().position(|&f| f <= a.x0) {
                Some(l) => l,
                None => {
                    free_at.push(0.0);
                    free_at.len() - 1
                }
            };
            free_at[lane] = a.x1;
            lane_of[i] = lane;
        }
        (lane_of, free_at.len().max(1), false)
    }
}

/// Escape text for SVG content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A size for an axis: `256 MiB`, `1.5 GiB` (binary units, trailing zeros dropped).
fn axis_bytes(b: u64) -> String {
    if b == 0 {
        return "0".into();
    }
    let h = size::human(b);
    match h.split_once(' ') {
        Some((num, unit)) if num.contains('.') => {
            format!("{} {unit}", num.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => h,
    }
}

/// A time for an axis: `0`, `0.5s`, `30s`, `2m`, `1m30s`, `1h`, `1h30m`.
fn axis_secs(s: f64) -> String {
    if s == 0.0 {
        return "0".into();
    }
    if s < 1.0 {
        return format!("{s:.1}s");
    }
    let t = s.round() as u64;
    match (t / 3600, (t % 3600) / 60, t % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// A tick step for a time axis of `span` seconds: about 5 to 10 ticks at round values.
fn time_step(span: f64) -> f64 {
    const STEPS: [f64; 20] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0, 14400.0, 21600.0, 43200.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|&s| span / s <= 10.0)
        .unwrap_or(86400.0)
}

/// A power-of-two tick step for a byte axis up to `max`: 3 to 8 ticks.
fn bytes_step(max: u64) -> u64 {
    let mut step = 1u64;
    while max / step > 6 {
        step *= 2;
    }
    step
}

struct Scale {
    x_span: f64,
    plot_w: f64,
}

impl Scale {
    fn x(&self, secs: f64) -> f64 {
        LEFT + secs / self.x_span * self.plot_w
    }
}

/// Render the timeline of `events` as a complete SVG document.
pub fn timeline_svg(events: &[Event], info: &PlotInfo) -> String {
    let tl = Timeline::build(events);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x_span = tl.x_end.max(1.0) * 1.02;
    let sc = Scale { x_span, plot_w };
    let (lane_of, n_lanes, per_job) = tl.lanes();
    let lane_h = (GANTT_TARGET / n_lanes as f64).clamp(LANE_MIN, LANE_MAX);

    let mem_top = 100.0;
    let mem_bottom = mem_top + MEM_HEIGHT;
    let gantt_top = mem_bottom + 56.0;
    let gantt_bottom = gantt_top + lane_h * n_lanes as f64;
    let height = gantt_bottom + 100.0;

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<defs>
<pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#333333" stroke-width="2" stroke-opacity="0.6"/></pattern>
</defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="26" font-size="17" font-weight="bold">{}</text>
<text x="20" y="46" fill="#555555">{}</text>
"##,
        esc(&info.title),
        esc(&info.subtitle),
    );

    memory_chart(&mut s, &tl, &sc, mem_top, mem_bottom, per_job);
    gantt(
        &mut s,
        &tl,
        &sc,
        info,
        (&lane_of, n_lanes, per_job),
        gantt_top,
        lane_h,
    );
    time_axis(&mut s, &sc, gantt_bottom, Some(tl.runs.len() > 1));

    // Resumes: a dashed line through both charts where a new run of the runner began.
    for r in tl.runs.iter().skip(1) {
        let x = sc.x(r.x0);
        let _ = writeln!(
            s,
            r##"<g class="resume"><line x1="{x:.1}" y1="{mem_top}" x2="{x:.1}" y2="{gantt_bottom:.1}" stroke="#555555" stroke-dasharray="2,3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555555">resumed</text></g>"##,
            x + 3.0,
            mem_top + 10.0
        );
    }

    legend(&mut s, &tl, per_job, gantt_bottom + 52.0);
    s.push_str("</svg>\n");
    s
}

fn memory_chart(s: &mut String, tl: &Timeline, sc: &Scale, top: f64, bottom: f64, per_job: bool) {
    let y_max = tl.mem_max() as f64 * 1.06;
    let y = |b: u64| bottom - (b as f64 / y_max) * (bottom - top);
    let right = LEFT + sc.plot_w;

    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold">Memory</text>"##,
        LEFT,
        top - 10.0
    );
    // Grid and the byte axis.
    let step = bytes_step(y_max as u64);
    let mut b = 0u64;
    while (b as f64) <= y_max {
        let yy = y(b);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{right:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444444">{}</text>"##,
            LEFT - 6.0,
            yy + 4.0,
            axis_bytes(b)
        );
        b += step;
    }
    time_axis_grid(s, sc, top, bottom);

    // Each job's memory, stacked. Empty samples at the start and end of the time axis let the
    // first and last jobs ramp up and down too.
    let mut samples: Vec<(f64, &[(usize, u64)])> = Vec::with_capacity(tl.samples.len() + 2);
    if tl.samples.first().is_some_and(|p| p.x > 0.0) {
        samples.push((0.0, &[]));
    }
    samples.extend(tl.samples.iter().map(|p| (p.x, p.running.as_slice())));
    if tl.samples.last().is_some_and(|p| p.x < tl.x_end) {
        samples.push((tl.x_end, &[]));
    }
    let _ = writeln!(s, r#"<g class="jobs-memory">"#);
    let base_of = |i: usize, job: usize| -> u64 {
        samples[i]
            .1
            .iter()
            .take_while(|r| r.0 < job)
            .map(|r| r.1)
            .sum()
    };
    let value_of = |i: usize, job: usize| -> Option<u64> {
        let running = samples[i].1;
        running
            .binary_search_by_key(&job, |r| r.0)
            .ok()
            .map(|k| running[k].1)
    };
    if per_job {
        stacked_bands(s, &samples, sc, &y, base_of, value_of);
    } else {
        // Hundreds of one-second jobs make bands thinner than a pixel and spikier than the
        // samples can support: show their sum, one area.
        let mut pts: Vec<String> = samples
            .iter()
            .map(|(x, running)| {
                let sum: u64 = running.iter().map(|r| r.1).sum();
                format!("{:.1},{:.1}", sc.x(*x), y(sum))
            })
            .collect();
        if let (Some((x0, _)), Some((x1, _))) = (samples.first(), samples.last()) {
            pts.push(format!("{:.1},{:.1}", sc.x(*x1), y(0)));
            pts.push(format!("{:.1},{:.1}", sc.x(*x0), y(0)));
        }
        let _ = writeln!(
            s,
            r#"<polygon class="jobs-sum" points="{}" fill="{}"/>"#,
            pts.join(" "),
            BANDS[10]
        );
    }
    let _ = writeln!(s, "</g>");

    // Budget and limit of each run, labelled at the right end of the last run (labels drawn
    // last, over the marks).
    let mut labels = String::new();
    for (i, r) in tl.runs.iter().enumerate() {
        let (x0, x1) = (sc.x(r.x0), sc.x(r.x1).max(sc.x(r.x0) + 1.0));
        let last = i + 1 == tl.runs.len();
        let x1 = if last { right } else { x1 };
        let (yb, yl) = (y(r.budget), y(r.limit));
        let _ = writeln!(
            s,
            r##"<line class="budget" x1="{x0:.1}" y1="{yb:.1}" x2="{x1:.1}" y2="{yb:.1}" stroke="{BUDGET_LINE}" stroke-width="1.5" stroke-dasharray="7,4"/>"##
        );
        let _ = writeln!(
            s,
            r##"<line class="limit" x1="{x0:.1}" y1="{yl:.1}" x2="{x1:.1}" y2="{yl:.1}" stroke="{LIMIT_LINE}" stroke-width="1.5"/>"##
        );
        if last {
            // Under their lines (the top edge carries the pause marks), kept apart when the
            // budget is close to the limit, with a white halo over the data.
            let yl_text = yl + 13.0;
            let yb_text = (yb + 13.0).max(yl_text + 13.0);
            let halo = r##"paint-order="stroke" stroke="#ffffff" stroke-width="3""##;
            labels = format!(
                r##"<text x="{:.1}" y="{yl_text:.1}" text-anchor="end" fill="{LIMIT_LINE}" font-size="11" {halo}>limit {}</text><text x="{:.1}" y="{yb_text:.1}" text-anchor="end" fill="{BUDGET_LINE}" font-size="11" {halo}>budget {}</text>"##,
                right - 4.0,
                axis_bytes(r.limit),
                right - 4.0,
                axis_bytes(r.budget)
            );
        }
    }

    // The container's working set.
    if !tl.samples.is_empty() {
        let pts: Vec<String> = tl
            .samples
            .iter()
            .map(|p| format!("{:.1},{:.1}", sc.x(p.x), y(p.ws)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline class="working-set" points="{}" fill="none" stroke="{WS_LINE}" stroke-width="1.6" stroke-linejoin="round"/>"#,
            pts.join(" ")
        );
    } else {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888888">no memory samples in the journal</text>"##,
            LEFT + sc.plot_w / 2.0,
            (top + bottom) / 2.0
        );
    }

    // Marks: starts and ends as ticks along the bottom edge; pauses and requeues as triangles
    // along the top edge with a faint line down through the chart.
    let _ = writeln!(s, r#"<g class="marks">"#);
    for &(x, m) in &tl.marks {
        let xx = sc.x(x);
        match m {
            Mark::Start => {
                let _ = writeln!(
                    s,
                    r##"<line x1="{xx:.1}" y1="{bottom:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#2f7ed8" stroke-width="1.2"/>"##,
                    bottom - 7.0
                );
            }
            Mark::End(st) => {
                let _ = writeln!(
                    s,
                    r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="{}" stroke-width="1.2"/>"##,
                    bottom - 7.0,
                    bottom - 14.0,
                    status_color(st)
                );
            }
            Mark::Pause | Mark::Requeue => {
                let (c, name) = if m == Mark::Pause {
                    (BUDGET_LINE, "pause")
                } else {
                    (LIMIT_LINE, "requeue")
                };
                let _ = writeln!(
                    s,
                    r##"<g class="{name}"><line x1="{xx:.1}" y1="{top:.1}" x2="{xx:.1}" y2="{bottom:.1}" stroke="{c}" stroke-opacity="0.3"/><path d="M{:.1},{:.1} h8 l-4,7 z" fill="{c}"/></g>"##,
                    xx - 4.0,
                    top
                );
            }
        }
    }
    let _ = writeln!(s, "</g>");
    s.push_str(&labels);
    s.push('\n');
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{:.1}" fill="none" stroke="#999999"/>"##,
        sc.plot_w,
        bottom - top
    );
    time_axis(s, sc, bottom, None);
}

/// One polygon per job per stretch of consecutive samples in which it ran, stacked by job id,
/// padded with a zero-height point on each side so bands ramp up and down.
fn stacked_bands(
    s: &mut String,
    samples: &[(f64, &[(usize, u64)])],
    sc: &Scale,
    y: &dyn Fn(u64) -> f64,
    base_of: impl Fn(usize, usize) -> u64,
    value_of: impl Fn(usize, usize) -> Option<u64>,
) {
    let n = samples.len();
    let mut present: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, smp) in samples.iter().enumerate() {
        for r in smp.1 {
            present.entry(r.0).or_default().push(i);
        }
    }
    let mut jobs: Vec<_> = present.into_iter().collect();
    jobs.sort_unstable_by_key(|(j, _)| *j);
    for (job, idx) in jobs {
        let mut k = 0;
        while k < idx.len() {
            let mut e = k;
            while e + 1 < idx.len() && idx[e + 1] == idx[e] + 1 {
                e += 1;
            }
            let first = idx[k].saturating_sub(1);
            let last = (idx[e] + 1).min(n - 1);
            let mut top_pts = String::new();
            let mut bot_pts = Vec::new();
            for (i, smp) in samples.iter().enumerate().take(last + 1).skip(first) {
                let base = base_of(i, job);
                let v = value_of(i, job).unwrap_or(0);
                let x = sc.x(smp.0);
                let _ = write!(top_pts, "{x:.1},{:.1} ", y(base + v));
                bot_pts.push(format!("{x:.1},{:.1}", y(base)));
            }
            bot_pts.reverse();
            let _ = writeln!(
                s,
                r##"<polygon data-job="{job}" points="{}{}" fill="{}" stroke="#ffffff" stroke-width="0.6"/>"##,
                top_pts,
                bot_pts.join(" "),
                BANDS[job % BANDS.len()]
            );
            k = e + 1;
        }
    }
}

/// Vertical grid lines at the time ticks.
fn time_axis_grid(s: &mut String, sc: &Scale, top: f64, bottom: f64) {
    let step = time_step(sc.x_span);
    let mut t = 0.0;
    while t <= sc.x_span + 1e-9 {
        let x = sc.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#f0f0f0"/>"##
        );
        t += step;
    }
}

/// Tick labels under a chart; `title` adds the axis title (`Some(resumed)`).
fn time_axis(s: &mut String, sc: &Scale, bottom: f64, title: Option<bool>) {
    let step = time_step(sc.x_span);
    let mut t = 0.0;
    while t <= sc.x_span + 1e-9 {
        let x = sc.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{}</text>"##,
            bottom + 4.0,
            bottom + 17.0,
            axis_secs(t)
        );
        t += step;
    }
    if let Some(resumed) = title {
        let text = if resumed {
            "time since the sweep started (runner time: the gaps before each resume are cut out)"
        } else {
            "time since the sweep started"
        };
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{text}</text>"##,
            LEFT + sc.plot_w / 2.0,
            bottom + 34.0
        );
    }
}

fn gantt(
    s: &mut String,
    tl: &Timeline,
    sc: &Scale,
    info: &PlotInfo,
    (lane_of, n_lanes, per_job): (&[usize], usize, bool),
    top: f64,
    lane_h: f64,
) {
    let bottom = top + lane_h * n_lanes as f64;
    let right = LEFT + sc.plot_w;
    let heading = if per_job {
        "Jobs (one lane each)".to_string()
    } else {
        format!(
            "Jobs: {} in {n_lanes} lanes (a lane takes the next job when its job ends; lanes = most at once)",
            tl.n_jobs
        )
    };
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"##,
        top - 10.0,
        esc(&heading)
    );
    time_axis_grid(s, sc, top, bottom);
    // A label on every lane when there is room for text, else on every k-th.
    let every = (11.0 / lane_h).ceil().max(1.0) as usize;
    for lane in 0..n_lanes {
        let y = top + lane as f64 * lane_h;
        let _ = write!(s, r#"<g class="lane" data-lane="{lane}""#);
        if per_job {
            let _ = write!(s, r#" data-job="{lane}""#);
        }
        s.push('>');
        if lane % 2 == 1 && lane_h >= 4.0 {
            let _ = write!(
                s,
                r##"<rect x="{LEFT}" y="{y:.1}" width="{:.1}" height="{lane_h:.1}" fill="#f6f6f6"/>"##,
                sc.plot_w
            );
        }
        if lane % every == 0 {
            let label = if per_job {
                info.labels
                    .get(lane)
                    .cloned()
                    .unwrap_or_else(|| lane.to_string())
            } else {
                format!("lane {}", lane + 1)
            };
            let fs = (lane_h * 0.75).clamp(8.0, 11.0);
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="{fs:.0}" fill="#333333">{}</text>"##,
                LEFT - 16.0,
                y + lane_h / 2.0 + fs * 0.35,
                esc(&shorten(&label, 24))
            );
            if per_job {
                // The job's band colour in the memory chart.
                let sw = (lane_h - 4.0).clamp(3.0, 9.0);
                let _ = write!(
                    s,
                    r##"<rect x="{:.1}" y="{:.1}" width="{sw:.1}" height="{sw:.1}" fill="{}"/>"##,
                    LEFT - 12.0,
                    y + (lane_h - sw) / 2.0,
                    BANDS[lane % BANDS.len()]
                );
            }
        }
        s.push_str("</g>\n");
    }

    let pad = if lane_h >= 6.0 { lane_h * 0.15 } else { 0.0 };
    let sep = if per_job {
        ""
    } else {
        r##" stroke="#ffffff" stroke-width="0.5""##
    };
    let _ = writeln!(s, r#"<g class="attempts">"#);
    for (a, &lane) in tl.attempts.iter().zip(lane_of) {
        let y = top + lane as f64 * lane_h + pad;
        let h = lane_h - 2.0 * pad;
        let x0 = sc.x(a.x0);
        let w = (sc.x(a.x1) - x0).max(1.5);
        let (fill, what) = match a.end {
            AttemptEnd::Status(st) => (status_color(st), st.as_str()),
            AttemptEnd::Requeued => (REQUEUED, "requeued"),
            AttemptEnd::Open => (status_color(JobStatus::Running), "running"),
        };
        let _ = write!(
            s,
            r#"<g data-job="{}"><title>job {}: {what}, {} to {}</title><rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"{sep}/>"#,
            a.job,
            a.job,
            axis_secs(a.x0),
            axis_secs(a.x1)
        );
        for &(p0, p1) in &a.pauses {
            let px = sc.x(p0);
            let pw = (sc.x(p1) - px).max(1.0);
            let _ = write!(
                s,
                r#"<rect class="paused" x="{px:.1}" y="{y:.1}" width="{pw:.1}" height="{h:.1}" fill="url(#hatch)"/>"#
            );
        }
        if a.end == AttemptEnd::Requeued && h >= 6.0 {
            // A requeue ends the bar with a red edge: memsweep stopped it, not the job.
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{y:.1}" width="2.5" height="{h:.1}" fill="{LIMIT_LINE}"/>"##,
                x0 + w - 2.5
            );
        }
        if !per_job && h >= 9.0 {
            let text = a.job.to_string();
            if w >= 7.0 * text.len() as f64 + 4.0 {
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" font-size="{:.0}" fill="#ffffff">{text}</text>"##,
                    x0 + 2.0,
                    y + h / 2.0 + h.min(11.0) * 0.35,
                    h.min(11.0)
                );
            }
        }
        s.push_str("</g>\n");
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#999999"/>"##,
        right - LEFT,
        bottom - top
    );
}

/// Legend rows under the charts: the memory chart's items, then the statuses that occur.
fn legend(s: &mut String, tl: &Timeline, per_job: bool, y: f64) {
    let mut statuses: Vec<JobStatus> = Vec::new();
    let mut requeued = false;
    let mut running = false;
    let mut paused = false;
    for a in &tl.attempts {
        match a.end {
            AttemptEnd::Status(st) if !statuses.contains(&st) => statuses.push(st),
            AttemptEnd::Status(_) => {}
            AttemptEnd::Requeued => requeued = true,
            AttemptEnd::Open => running = true,
        }
        paused |= !a.pauses.is_empty();
    }
    statuses.sort_by_key(|s| *s as u8);

    enum Key {
        Band,
        Line(&'static str, bool),
        Box(&'static str),
        Hatch,
        Tri(&'static str),
        Tick(&'static str),
    }
    let row1 = vec![
        if per_job {
            (
                Key::Band,
                "job memory (stacked, one band per job)".to_string(),
            )
        } else {
            (
                Key::Box(BANDS[10]),
                "memory of all running jobs".to_string(),
            )
        },
        (Key::Line(WS_LINE, false), "container working set".into()),
        (Key::Line(BUDGET_LINE, true), "budget".into()),
        (Key::Line(LIMIT_LINE, false), "limit".into()),
        (Key::Tick("#2f7ed8"), "job start / end".into()),
        (Key::Tri(BUDGET_LINE), "pause".into()),
        (Key::Tri(LIMIT_LINE), "requeue".into()),
    ];
    let mut row2: Vec<(Key, String)> = statuses
        .into_iter()
        .map(|st| (Key::Box(status_color(st)), st.as_str().to_string()))
        .collect();
    if running {
        row2.push((Key::Box(status_color(JobStatus::Running)), "running".into()));
    }
    if requeued {
        row2.push((
            Key::Box(REQUEUED),
            "requeued attempt (stopped by memsweep, run again)".into(),
        ));
    }
    if paused {
        row2.push((Key::Hatch, "paused (SIGSTOP)".into()));
    }
    for (r, row) in [row1, row2].into_iter().enumerate() {
        let yy = y + r as f64 * 20.0;
        let mut x = LEFT;
        for (key, text) in row {
            match key {
                Key::Band => {
                    for (i, c) in BANDS.iter().take(3).enumerate() {
                        let _ = write!(
                            s,
                            r#"<rect x="{:.1}" y="{:.1}" width="6" height="10" fill="{c}"/>"#,
                            x + i as f64 * 6.0,
                            yy - 9.0
                        );
                    }
                }
                Key::Line(c, dashed) => {
                    let dash = if dashed {
                        r#" stroke-dasharray="7,4""#
                    } else {
                        ""
                    };
                    let _ = write!(
                        s,
                        r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"{dash}/>"#,
                        yy - 4.0,
                        x + 18.0,
                        yy - 4.0
                    );
                }
                Key::Box(c) => {
                    let _ = write!(
                        s,
                        r#"<rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="{c}"/>"#,
                        yy - 9.0
                    );
                }
                Key::Hatch => {
                    let _ = write!(
                        s,
                        r##"<rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="#3a9a5b"/><rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="url(#hatch)"/>"##,
                        yy - 9.0,
                        yy - 9.0
                    );
                }
                Key::Tri(c) => {
                    let _ = write!(
                        s,
                        r#"<path d="M{:.1},{:.1} h10 l-5,8 z" fill="{c}"/>"#,
                        x + 4.0,
                        yy - 9.0
                    );
                }
                Key::Tick(c) => {
                    let _ = write!(
                        s,
                        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="1.5"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="1.5"/>"#,
                        x + 5.0,
                        yy,
                        x + 5.0,
                        yy - 8.0,
                        x + 12.0,
                        yy - 8.0,
                        x + 12.0,
                        yy - 14.0,
                        status_color(JobStatus::Succeeded)
                    );
                }
            }
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{yy:.1}" fill="#333333">{}</text>"##,
                x + 24.0,
                esc(&text)
            );
            x += 24.0 + 6.6 * text.chars().count() as f64 + 18.0;
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::fixtures::*;

    const MIB: u64 = 1 << 20;

    fn info(n: usize) -> PlotInfo {
        PlotInfo {
            title: "memsweep · out · complete".into(),
            subtitle: "sub <&>".into(),
            labels: (0..n).map(|i| format!("{i} lr={i}")).collect(),
        }
    }

    fn running(t: f64, ws: u64, jobs: &[(usize, u64)]) -> Event {
        Event::Sample {
            t,
            working_set_bytes: ws,
            available_bytes: 0,
            budget_bytes: 1 << 30,
            running: jobs.to_vec(),
            psi_some_avg10: None,
        }
    }

    #[test]
    fn attempts_pauses_and_requeues_become_bars_in_runner_time() {
        let events = vec![
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            start(100.0, 1, 1),
            running(101.0, 300 * MIB, &[(1, 100 * MIB), (0, 150 * MIB)]),
            Event::JobPause {
                t: 101.0,
                job: 1,
                reason: "p".into(),
            },
            Event::JobResume { t: 102.0, job: 1 },
            Event::JobRequeue {
                t: 103.0,
                job: 0,
                attempt: 1,
                reason: "r".into(),
                usage_bytes: 1,
            },
            end(104.0, 1, 1, JobStatus::Succeeded, 1),
            start(104.0, 0, 2),
            // The runner dies; an hour later it is resumed.
            sweep_start(3700.0, true),
            start(3700.0, 0, 3),
            end(3702.0, 0, 3, JobStatus::Failed, 1),
            sweep_end(3702.0, 2.0),
        ];
        let tl = Timeline::build(&events);
        let bars: Vec<_> = tl
            .attempts
            .iter()
            .map(|a| (a.job, a.x0, a.x1, a.end))
            .collect();
        assert_eq!(
            bars,
            [
                (0, 0.0, 3.0, AttemptEnd::Requeued),
                (1, 0.0, 4.0, AttemptEnd::Status(JobStatus::Succeeded)),
                (0, 4.0, 4.0, AttemptEnd::Status(JobStatus::Interrupted)),
                (0, 4.0, 6.0, AttemptEnd::Status(JobStatus::Failed)),
            ],
            "the hour between runs is cut out"
        );
        assert_eq!(tl.attempts[1].pauses, [(1.0, 2.0)]);
        assert_eq!(tl.runs.len(), 2);
        assert_eq!((tl.runs[1].x0, tl.runs[1].x1), (4.0, 6.0));
        assert_eq!(tl.samples[0].running, [(0, 150 * MIB), (1, 100 * MIB)]);
        assert_eq!(tl.x_end, 6.0);

        // The plan has 3 jobs (the fixture's sweep_start): job 2 never ran but has its lane.
        let svg = timeline_svg(&events, &info(3));
        assert_eq!(svg.matches(r#"<g class="lane""#).count(), 3);
        assert_eq!(svg.matches(r#"class="paused""#).count(), 1);
        assert_eq!(svg.matches(r#"<g class="resume">"#).count(), 1);
        assert_eq!(svg.matches(r#"<line class="budget""#).count(), 2);
        assert!(svg.contains("sub &lt;&amp;&gt;"), "text is escaped");
        assert!(svg.contains("requeued attempt"), "legend names requeues");
    }

    #[test]
    fn an_open_attempt_reaches_the_latest_event_and_shows_as_running() {
        let events = vec![
            sweep_start(0.0, false),
            start(0.0, 0, 1),
            running(5.0, 10 * MIB, &[(0, 10 * MIB)]),
        ];
        let tl = Timeline::build(&events);
        assert_eq!(tl.attempts[0].end, AttemptEnd::Open);
        assert_eq!(tl.attempts[0].x1, 5.0);
        assert!(timeline_svg(&events, &info(1)).contains("job 0: running"));
    }

    #[test]
    fn five_hundred_jobs_pack_into_as_many_lanes_as_ran_at_once() {
        let mut events = vec![sweep_start(0.0, false)];
        // 500 jobs of 1 s, 8 at a time.
        for j in 0..500usize {
            let t0 = (j / 8) as f64;
            events.push(start(t0, j, 1));
            events.push(end(t0 + 1.0, j, 1, JobStatus::Succeeded, 50 * MIB));
            if j % 8 == 7 {
                let run: Vec<_> = (j - 7..=j).map(|k| (k, 50 * MIB)).collect();
                events.push(running(t0 + 0.5, 420 * MIB, &run));
            }
        }
        events.push(sweep_end(63.0, 63.0));
        let tl = Timeline::build(&events);
        let (_, lanes, per_job) = tl.lanes();
        assert!(!per_job);
        assert_eq!(lanes, 8, "lanes = most jobs at once");
        let svg = timeline_svg(&events, &info(500));
        assert_eq!(svg.matches(r#"<g class="lane""#).count(), 8);
        assert!(svg.len() < 2 << 20, "{} bytes", svg.len());
    }

    #[test]
    fn axis_labels_use_binary_units_and_round_times() {
        assert_eq!(axis_bytes(256 * MIB), "256 MiB");
        assert_eq!(axis_bytes(1 << 30), "1 GiB");
        assert_eq!(axis_bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes_step(1 << 30), 256 * MIB);
        assert_eq!(axis_secs(90.0), "1m30s");
        assert_eq!(axis_secs(5400.0), "1h30m");
        assert_eq!(time_step(7.0), 1.0);
        assert_eq!(time_step(600.0), 60.0);
    }
}
