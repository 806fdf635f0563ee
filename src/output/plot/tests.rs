//! The plot from journal events: bars, lanes, marks, scales and the SVG's content.

use super::data::{AttemptEnd, Timeline};
use super::svg::{axis_bytes, axis_secs, bytes_step, time_step};
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
            usage_bytes: None,
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
    // 300 MiB of data under a 1 GiB budget and 2 GiB limit: the lines would squash the
    // data, so they are named above the chart instead of drawn.
    assert_eq!(svg.matches(r#"<line class="budget""#).count(), 0);
    assert!(
        svg.contains("limit 2 GiB, budget 1 GiB (above this scale)"),
        "{svg}"
    );
    assert!(svg.contains("sub &lt;&amp;&gt;"), "text is escaped");
    assert!(svg.contains("requeued attempt"), "legend names requeues");
    // Near the data, the lines are drawn: the limit's label above its line, the budget's
    // below its own, so neither line crosses a label.
    let mut near = events.clone();
    near.insert(3, running(101.5, 900 * MIB, &[(0, 150 * MIB)]));
    let svg = timeline_svg(&near, &info(3));
    assert_eq!(svg.matches(r#"<line class="budget""#).count(), 2);
    let y_of = |class: &str, attr: &str| -> f64 {
        let at = svg.rfind(&format!(r#"class="{class}""#)).unwrap();
        let rest = &svg[at..];
        let v = rest.split(&format!(r#" {attr}=""#)).nth(1).unwrap();
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    assert!(y_of("limit-label", "y") < y_of("limit", "y1"));
    assert!(y_of("budget-label", "y") > y_of("budget", "y1") + 9.0);
    assert!(!svg.contains("above this scale"));
}

#[test]
fn a_job_requeued_out_ends_in_a_failure_colour_and_the_legend_lists_only_what_is_drawn() {
    let events = vec![
        sweep_start(100.0, false),
        start(100.0, 0, 1),
        running(101.0, 300 * MIB, &[(0, 250 * MIB)]),
        Event::JobRequeue {
            t: 102.0,
            job: 0,
            attempt: 1,
            reason: "r".into(),
            usage_bytes: 1,
        },
        // Out of retries: the end comes after the requeue that stopped the last attempt.
        end(102.1, 0, 1, JobStatus::RequeuedOut, 1),
        sweep_end(103.0, 3.0),
    ];
    let tl = Timeline::build(&events);
    assert_eq!(
        tl.attempts[0].end,
        AttemptEnd::Status(JobStatus::RequeuedOut)
    );
    let svg = timeline_svg(&events, &info(3));
    assert!(svg.contains(status_color(JobStatus::RequeuedOut)));
    assert_ne!(status_color(JobStatus::RequeuedOut), REQUEUED);
    assert!(
        !svg.contains("requeued attempt"),
        "no attempt is drawn as requeued"
    );
    // A requeue mark is drawn, a pause is not: the legend says the same.
    assert!(svg.contains(">requeue</text>"));
    assert!(!svg.contains(">pause</text>"));
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
