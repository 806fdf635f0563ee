//! The journal's events as plot coordinates: attempts (from `journal::replay`), runs, samples
//! and marks, in seconds of runner time, and the lanes they go in.

use std::collections::HashMap;

use super::{LANE_PER_JOB_MAX, OFF_SCALE_RATIO};
use crate::journal::replay::{End, Step};
use crate::journal::{Event, JobStatus, Replay};

/// How an attempt ended, as the lanes show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AttemptEnd {
    Status(JobStatus),
    /// memsweep stopped it to run it again later.
    Requeued,
    /// Still running when the journal ends.
    Open,
}

#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub(super) job: usize,
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) end: AttemptEnd,
    /// Paused spans (SIGSTOP to SIGCONT), in plot seconds.
    pub(super) pauses: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub(super) struct Run {
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) limit: u64,
    pub(super) budget: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub(super) x: f64,
    pub(super) ws: u64,
    /// (job, bytes), sorted by job id: the stacking order.
    pub(super) running: Vec<(usize, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mark {
    Start,
    End(JobStatus),
    Pause,
    Requeue,
}

/// The journal turned into plot coordinates (seconds of runner time).
#[derive(Debug, Default)]
pub(super) struct Timeline {
    pub(super) runs: Vec<Run>,
    pub(super) attempts: Vec<Attempt>,
    pub(super) samples: Vec<Sample>,
    pub(super) marks: Vec<(f64, Mark)>,
    pub(super) x_end: f64,
    pub(super) n_jobs: usize,
}

impl Timeline {
    pub(super) fn build(events: &[Event]) -> Timeline {
        let mut tl = Timeline::default();
        // Plot seconds at which the current run began, and its epoch time.
        let mut run_x0 = 0.0;
        let mut run_t0 = events.first().map_or(0.0, Event::t);
        let mut open: HashMap<usize, usize> = HashMap::new();
        let mut paused: HashMap<usize, f64> = HashMap::new();
        let mut replay = Replay::default();
        for e in events {
            // A new run continues the x axis where the last event of the previous one was: the
            // time the runner was dead is cut out.
            let x = match e {
                Event::SweepStart { .. } => tl.x_end,
                _ => run_x0 + (e.t() - run_t0).max(0.0),
            };
            tl.x_end = tl.x_end.max(x);
            replay.step(e, |step| match step {
                Step::Start { job, .. } => {
                    open.insert(job, tl.attempts.len());
                    tl.attempts.push(Attempt {
                        job,
                        x0: x,
                        x1: x,
                        end: AttemptEnd::Open,
                        pauses: Vec::new(),
                    });
                    tl.n_jobs = tl.n_jobs.max(job + 1);
                    tl.marks.push((x, Mark::Start));
                }
                Step::End {
                    job,
                    end,
                    open: was_open,
                } => {
                    let status = match end {
                        End::Ended(Event::JobEnd { status, .. }) => Some(*status),
                        End::Interrupted => Some(JobStatus::Interrupted),
                        _ => None,
                    };
                    if was_open {
                        let how = match (end, status) {
                            (End::Requeued { .. }, _) => AttemptEnd::Requeued,
                            (_, Some(st)) => AttemptEnd::Status(st),
                            _ => AttemptEnd::Open,
                        };
                        tl.close(&mut open, &mut paused, job, x, how);
                        match how {
                            AttemptEnd::Requeued => tl.marks.push((x, Mark::Requeue)),
                            AttemptEnd::Status(st) => tl.marks.push((x, Mark::End(st))),
                            AttemptEnd::Open => {}
                        }
                    } else if let Some(st) = status.filter(|s| s.is_failure())
                        && let Some(a) = tl.attempts.iter_mut().rev().find(|a| a.job == job)
                        && a.end == AttemptEnd::Requeued
                    {
                        // The job's last attempt was stopped by memsweep and it ran out of
                        // retries: that attempt is the job's failure, not one more requeue.
                        a.end = AttemptEnd::Status(st);
                        tl.marks.push((x, Mark::End(st)));
                    } else if matches!(end, End::Requeued { .. }) {
                        tl.marks.push((x, Mark::Requeue));
                    }
                    // Otherwise (a requeued job skipped at the end) there is no bar to close.
                }
                Step::Event(Event::SweepStart {
                    t,
                    jobs,
                    limit_bytes,
                    budget_bytes,
                    ..
                }) => {
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
                }
                Step::Event(Event::JobPause { job, .. }) => {
                    paused.entry(*job).or_insert(x);
                    tl.marks.push((x, Mark::Pause));
                }
                Step::Event(Event::JobResume { job, .. }) => {
                    if let (Some(p), Some(&i)) = (paused.remove(job), open.get(job)) {
                        tl.attempts[i].pauses.push((p, x));
                    }
                }
                Step::Event(Event::Sample {
                    working_set_bytes,
                    running,
                    ..
                }) => {
                    let mut running = running.clone();
                    running.sort_unstable();
                    tl.samples.push(Sample {
                        x,
                        ws: *working_set_bytes,
                        running,
                    });
                }
                Step::Event(_) => {}
            });
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
    pub(super) fn close(
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

    /// The largest byte value the memory chart must show: the data, and the budget and limit
    /// when they are near it. A budget far above what the sweep used (a 24 GiB limit, jobs of
    /// 300 MiB) would flatten the data to a few pixels, so such lines are left off the scale
    /// and named instead (see [`Timeline::off_scale`]).
    pub(super) fn mem_max(&self) -> u64 {
        let data = self.data_max();
        let lines = self
            .runs
            .iter()
            .flat_map(|r| [r.budget, r.limit])
            .filter(|&l| l as f64 <= data as f64 * OFF_SCALE_RATIO || data == 0)
            .max()
            .unwrap_or(0);
        data.max(lines).max(1 << 20)
    }

    pub(super) fn data_max(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.ws.max(s.running.iter().map(|r| r.1).sum()))
            .max()
            .unwrap_or(0)
    }

    /// Whether a budget or limit line of `bytes` is left off the scale.
    pub(super) fn off_scale(&self, bytes: u64) -> bool {
        bytes > self.mem_max()
    }

    /// Lane of each attempt and the number of lanes: one per job for small sweeps, else
    /// attempts packed greedily (the first lane free when the attempt starts).
    pub(super) fn lanes(&self) -> (Vec<usize>, usize, bool) {
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
