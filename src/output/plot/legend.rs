//! The legend: only what the charts draw.

use std::fmt::Write as _;

use super::data::{AttemptEnd, Mark, Timeline};
use super::svg::esc;
use super::{BANDS, BUDGET_LINE, LEFT, LIMIT_LINE, REQUEUED, WS_LINE, status_color};
use crate::journal::JobStatus;

/// Legend rows under the charts: the memory chart's items, then the statuses that occur.
pub(super) fn legend(s: &mut String, tl: &Timeline, per_job: bool, y: f64) {
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
    // Only what the charts show.
    let has = |m: Mark| tl.marks.iter().any(|&(_, k)| k == m);
    let last_run = tl.runs.last();
    let mut row1 = Vec::new();
    if !tl.samples.is_empty() {
        row1.push(if per_job {
            (
                Key::Band,
                "job memory (stacked, one band per job)".to_string(),
            )
        } else {
            (
                Key::Box(BANDS[10]),
                "memory of all running jobs".to_string(),
            )
        });
        row1.push((Key::Line(WS_LINE, false), "container working set".into()));
    }
    if last_run.is_some_and(|r| !tl.off_scale(r.budget)) {
        row1.push((Key::Line(BUDGET_LINE, true), "budget".into()));
    }
    if last_run.is_some_and(|r| !tl.off_scale(r.limit)) {
        row1.push((Key::Line(LIMIT_LINE, false), "limit".into()));
    }
    if !tl.attempts.is_empty() {
        row1.push((Key::Tick("#2f7ed8"), "job start / end".into()));
    }
    if has(Mark::Pause) {
        row1.push((Key::Tri(BUDGET_LINE), "pause".into()));
    }
    if has(Mark::Requeue) {
        row1.push((Key::Tri(LIMIT_LINE), "requeue".into()));
    }
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
