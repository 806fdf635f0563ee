//! The memory chart: each job's usage stacked (or their sum past 80 jobs), the container's
//! working set, budget and limit, and the start, end, pause and requeue marks.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::data::{Mark, Timeline};
use super::svg::{Scale, axis_bytes, bytes_step, esc, time_axis, time_axis_grid};
use super::{BANDS, BUDGET_LINE, LEFT, LIMIT_LINE, WS_LINE, status_color};

pub(super) fn memory_chart(
    s: &mut String,
    tl: &Timeline,
    sc: &Scale,
    top: f64,
    bottom: f64,
    per_job: bool,
) {
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
        let (budget_on, limit_on) = (!tl.off_scale(r.budget), !tl.off_scale(r.limit));
        if budget_on {
            let _ = writeln!(
                s,
                r##"<line class="budget" x1="{x0:.1}" y1="{yb:.1}" x2="{x1:.1}" y2="{yb:.1}" stroke="{BUDGET_LINE}" stroke-width="1.5" stroke-dasharray="7,4"/>"##
            );
        }
        if limit_on {
            let _ = writeln!(
                s,
                r##"<line class="limit" x1="{x0:.1}" y1="{yl:.1}" x2="{x1:.1}" y2="{yl:.1}" stroke="{LIMIT_LINE}" stroke-width="1.5"/>"##
            );
        }
        if last {
            // The limit's label above its line, the budget's below its own (so neither line
            // runs through the other's label), each at least a line of text apart, with a
            // white halo over the data. A line off the scale is named at the chart's top.
            let halo = r##"paint-order="stroke" stroke="#ffffff" stroke-width="3""##;
            let mut off = Vec::new();
            if limit_on {
                let _ = write!(
                    labels,
                    r##"<text class="limit-label" x="{:.1}" y="{:.1}" text-anchor="end" fill="{LIMIT_LINE}" font-size="11" {halo}>limit {}</text>"##,
                    right - 4.0,
                    yl - 4.0,
                    axis_bytes(r.limit)
                );
            } else {
                off.push(format!("limit {}", axis_bytes(r.limit)));
            }
            if budget_on {
                let yb_text = (yb + 13.0).max(yl + 13.0);
                let _ = write!(
                    labels,
                    r##"<text class="budget-label" x="{:.1}" y="{yb_text:.1}" text-anchor="end" fill="{BUDGET_LINE}" font-size="11" {halo}>budget {}</text>"##,
                    right - 4.0,
                    axis_bytes(r.budget)
                );
            } else {
                off.push(format!("budget {}", axis_bytes(r.budget)));
            }
            if !off.is_empty() {
                let _ = write!(
                    labels,
                    r##"<text class="off-scale" x="{:.1}" y="{:.1}" text-anchor="end" fill="#555555" font-size="11">{} (above this scale)</text>"##,
                    right,
                    top - 10.0,
                    esc(&off.join(", "))
                );
            }
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
