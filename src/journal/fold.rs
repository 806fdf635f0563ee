//! Folding journal events into a [`Summary`]: the one implementation behind the engine's
//! `summary.json` (rewritten after every job) and `--resume` (which replays earlier runs).
//!
//! Conventions the fold relies on (the engine's side of the contract):
//! - every attempt starts with a `job_start`; it ends with a `job_end`, or with a `job_requeue`
//!   when memsweep stopped it to run it again later (a `job_end` after a requeue is allowed too);
//! - a `sweep_start` begins a run of the runner; `sweep_end` closes it. A job still started when a
//!   new `sweep_start` arrives died with the previous runner (SIGKILL): it counts as killed.

use std::collections::HashMap;

use super::{Event, JobStatus, JobSummary, Summary};
use crate::sweep::Job;

/// What the journal does not know: supplied by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryContext {
    pub out: String,
    pub limit_bytes: u64,
    pub budget_bytes: u64,
    pub accounting: String,
    /// The probe's OOM-kill counter for the container, over the sweep.
    pub oom_kills: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Started,
    Ended(JobStatus),
    Requeued,
}

#[derive(Debug, Clone, Default)]
struct JobFold {
    phase: Option<Phase>,
    attempts: u32,
    command: Option<String>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    wall_s: Option<f64>,
    peak_bytes: Option<u64>,
    peak_source: Option<String>,
}

/// An incremental fold over journal events; [`SummaryFold::summary`] can be taken at any point.
#[derive(Debug, Clone, Default)]
pub struct SummaryFold {
    jobs: HashMap<usize, JobFold>,
    peak_working_set: u64,
    requeues: u64,
    pauses: u64,
    /// Seconds of runner time in closed runs (a resumed sweep has several).
    closed_runs_s: f64,
    /// (start, latest t) of the run in progress.
    open_run: Option<(f64, f64)>,
    /// The latest run ended with `sweep_end`: unstarted jobs are skipped, not pending.
    ended: bool,
}

impl SummaryFold {
    pub fn add(&mut self, event: &Event) {
        let t = event_time(event);
        if let Some((_, last)) = &mut self.open_run {
            *last = last.max(t);
        }
        match event {
            Event::SweepStart { t, .. } => {
                self.close_run();
                for job in self.jobs.values_mut() {
                    if job.phase == Some(Phase::Started) {
                        job.phase = Some(Phase::Ended(JobStatus::Killed));
                    }
                }
                self.open_run = Some((*t, *t));
                self.ended = false;
            }
            Event::JobStart { job, command, .. } => {
                let j = self.jobs.entry(*job).or_default();
                j.phase = Some(Phase::Started);
                j.attempts += 1;
                j.command = Some(command.clone());
                j.exit_code = None;
                j.signal = None;
                j.wall_s = None;
            }
            Event::JobEnd {
                job,
                status,
                exit_code,
                signal,
                wall_s,
                peak_bytes,
                peak_source,
                ..
            } => {
                let j = self.jobs.entry(*job).or_default();
                j.phase = Some(Phase::Ended(*status));
                j.exit_code = *exit_code;
                j.signal = *signal;
                j.wall_s = Some(*wall_s);
                j.peak_bytes = *peak_bytes;
                j.peak_source = Some(peak_source.clone()).filter(|s| !s.is_empty());
            }
            Event::JobRequeue {
                job, usage_bytes, ..
            } => {
                self.requeues += 1;
                let j = self.jobs.entry(*job).or_default();
                j.phase = Some(Phase::Requeued);
                // What it reached before being stopped: a lower bound on its peak.
                j.peak_bytes = Some(j.peak_bytes.unwrap_or(0).max(*usage_bytes));
            }
            Event::JobPause { .. } => self.pauses += 1,
            Event::JobResume { .. } => {}
            Event::Sample {
                working_set_bytes, ..
            } => self.peak_working_set = self.peak_working_set.max(*working_set_bytes),
            Event::SweepEnd { .. } => {
                self.close_run();
                self.ended = true;
            }
        }
    }

    fn close_run(&mut self) {
        if let Some((start, last)) = self.open_run.take() {
            self.closed_runs_s += (last - start).max(0.0);
        }
    }

    /// The summary of the events so far, one row per job of `jobs` (in their order).
    pub fn summary(&self, jobs: &[Job], ctx: &SummaryContext) -> Summary {
        let empty = JobFold::default();
        let rows: Vec<JobSummary> = jobs
            .iter()
            .map(|job| {
                let f = self.jobs.get(&job.id).unwrap_or(&empty);
                let status = match (f.phase, self.ended) {
                    (Some(Phase::Ended(s)), _) => s,
                    (Some(Phase::Started), true) => JobStatus::Killed,
                    (Some(Phase::Started), false) => JobStatus::Running,
                    (Some(Phase::Requeued), true) => JobStatus::RequeuedOut,
                    (Some(Phase::Requeued), false) | (None, false) => JobStatus::Pending,
                    (None, true) => JobStatus::Skipped,
                };
                JobSummary {
                    id: job.id,
                    command: f.command.clone().unwrap_or_else(|| job.key.clone()),
                    params: job.params.clone(),
                    status,
                    exit_code: f.exit_code,
                    signal: f.signal,
                    attempts: f.attempts,
                    wall_s: f.wall_s,
                    peak_bytes: f.peak_bytes,
                    peak_source: f.peak_source.clone(),
                }
            })
            .collect();
        let open_s = self.open_run.map_or(0.0, |(s, l)| (l - s).max(0.0));
        Summary {
            out: ctx.out.clone(),
            makespan_s: self.closed_runs_s + open_s,
            limit_bytes: ctx.limit_bytes,
            budget_bytes: ctx.budget_bytes,
            accounting: ctx.accounting.clone(),
            peak_working_set_bytes: self.peak_working_set,
            oom_kills: ctx.oom_kills,
            requeues: self.requeues,
            pauses: self.pauses,
            succeeded: rows
                .iter()
                .filter(|r| r.status == JobStatus::Succeeded)
                .count(),
            failed: rows.iter().filter(|r| r.status.is_failure()).count(),
            skipped: rows
                .iter()
                .filter(|r| r.status != JobStatus::Succeeded && !r.status.is_failure())
                .count(),
            jobs: rows,
        }
    }
}

/// Fold a whole journal into a summary (pure). `makespan_s` is the runner's own time summed over
/// its runs (time between runs, when nothing ran, does not count); `attempts` counts every start
/// of the job across runs; exit, signal, wall time and peak are those of its latest attempt.
pub fn summarize(jobs: &[Job], events: &[Event], ctx: &SummaryContext) -> Summary {
    let mut fold = SummaryFold::default();
    for e in events {
        fold.add(e);
    }
    fold.summary(jobs, ctx)
}

fn event_time(e: &Event) -> f64 {
    match e {
        Event::SweepStart { t, .. }
        | Event::JobStart { t, .. }
        | Event::JobPause { t, .. }
        | Event::JobResume { t, .. }
        | Event::JobRequeue { t, .. }
        | Event::JobEnd { t, .. }
        | Event::Sample { t, .. }
        | Event::SweepEnd { t, .. } => *t,
    }
}
