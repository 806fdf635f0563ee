//! The Gantt chart: a lane per job (or attempts packed into shared lanes past 80 jobs), a bar
//! per attempt coloured by how it ended, paused spans hatched.

use std::fmt::Write as _;

use super::data::{AttemptEnd, Timeline};
use super::svg::{Scale, axis_secs, esc, shorten, time_axis_grid};
use super::{BANDS, LEFT, LIMIT_LINE, PlotInfo, REQUEUED, status_color};
use crate::journal::JobStatus;

pub(super) fn gantt(
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
