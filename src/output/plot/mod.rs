//! The timeline plot of a sweep (`memsweep show --svg`): a self-contained SVG written by hand
//! from the journal's events — memory over time (each running job's usage stacked, the
//! container's working set, budget and limit) above a Gantt chart of the jobs' attempts.
//!
//! x is the runner's own time: seconds since the sweep started, with the gaps between a crash
//! and `--resume` cut out (a dashed line marks each resume), as `makespan_s` counts them.
//! Up to [`LANE_PER_JOB_MAX`] jobs get a lane each; bigger sweeps pack attempts into as many
//! lanes as ran at once (a lane takes the next job when its job ends), so 500 jobs stay readable
//! and the lane count shows the parallelism reached.
//!
//! Files: `data` (the journal as plot coordinates, via `journal::replay`), `svg` (escaping, axes,
//! scales), `memory` (the memory chart), `gantt` (the lanes), `legend`.

mod data;
mod gantt;
mod legend;
mod memory;
mod svg;

use std::fmt::Write as _;

use crate::journal::{Event, JobStatus};

use data::Timeline;
use svg::{Scale, esc, time_axis};

/// Sweeps with more jobs than this pack their attempts into shared lanes.
pub const LANE_PER_JOB_MAX: usize = 80;
/// The budget and limit lines are drawn when at most this many times the data's maximum;
/// higher, they are named above the chart instead of squashing the data.
pub(super) const OFF_SCALE_RATIO: f64 = 2.5;

pub(super) const WIDTH: f64 = 1100.0;
pub(super) const LEFT: f64 = 170.0;
pub(super) const RIGHT: f64 = 30.0;
pub(super) const MEM_HEIGHT: f64 = 300.0;
/// Height the Gantt lanes aim for in total; lanes stay between [`LANE_MIN`] and [`LANE_MAX`].
pub(super) const GANTT_TARGET: f64 = 480.0;
pub(super) const LANE_MIN: f64 = 2.0;
pub(super) const LANE_MAX: f64 = 20.0;

/// Colours of the job bands in the memory chart (ColorBrewer Set3, chosen apart from the
/// status colours of the lanes so the two are not confused).
pub(super) const BANDS: [&str; 12] = [
    "#8dd3c7", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd",
    "#ccebc5", "#ffed6f", "#9ecae1", "#d9d9d9",
];
pub(super) const REQUEUED: &str = "#f5b041";
pub(super) const WS_LINE: &str = "#222222";
pub(super) const BUDGET_LINE: &str = "#e67e22";
pub(super) const LIMIT_LINE: &str = "#c0392b";

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
        JobStatus::Exited => "#5b8c6e",
        JobStatus::Killed => "#8e44ad",
        JobStatus::Oom => "#6e0d0f",
        JobStatus::Timeout => "#b8860b",
        JobStatus::Interrupted => "#7f8c8d",
        JobStatus::RequeuedOut => "#a93226",
        JobStatus::Skipped => "#b0b0b0",
        JobStatus::Running => "#2f7ed8",
        JobStatus::Pending => "#d0d0d0",
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

    memory::memory_chart(&mut s, &tl, &sc, mem_top, mem_bottom, per_job);
    gantt::gantt(
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

    legend::legend(&mut s, &tl, per_job, gantt_bottom + 52.0);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests;
