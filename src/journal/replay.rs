//! The attempts of each job, replayed from the journal's events: the one reading of attempt
//! starts and ends behind the summary fold ([`super::SummaryFold`]), the timeline plot
//! (`output::plot`) and `show`'s completion of a journal whose runner died.
//!
//! The rules, in one place:
//! - an attempt starts with `job_start` and ends with its `job_end`, or with a `job_requeue`
//!   (memsweep stopped it to run it again; a `job_end` after that closes no attempt);
//! - an attempt still open when its run ends (`sweep_end`, or the `sweep_start` of a later run:
//!   the runner died) ends [`End::Interrupted`] — except at the `sweep_start` of a Slurm run,
//!   whose jobs outlive the runner and are re-attached;
//! - a requeued job not started again is *waiting*; a new run starts with no job waiting (the
//!   resumed runner queues them again).

use std::collections::{BTreeMap, HashMap};

use super::Event;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum End<'a> {
    /// Its `job_end` (the event itself).
    Ended(&'a Event),
    /// memsweep stopped it to run it again later, holding `usage_bytes`.
    Requeued { usage_bytes: u64 },
    /// Its run ended (or its runner died) while it ran.
    Interrupted,
    /// A second `job_start` without an end (only in a journal edited by hand).
    Restarted,
}

/// One step of the replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step<'a> {
    /// An attempt of `job` began (`attempt` counts from 1).
    Start { job: usize, attempt: u32 },
    /// `job`'s attempt ended; `open` is false for an end that closes no attempt (a `job_end`
    /// after a requeue, or of a requeued job skipped at the end of a run).
    End {
        job: usize,
        end: End<'a>,
        open: bool,
    },
    /// Any other event, after the attempts it closes (`sweep_start`, `sweep_end`, pauses,
    /// resumes, samples).
    Event(&'a Event),
}

/// The replay's state: which attempts are open and which requeued jobs wait.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// job -> attempt number, for attempts started and not ended.
    open: HashMap<usize, u32>,
    /// job -> attempt number of the attempt that was requeued.
    waiting: BTreeMap<usize, u32>,
}

impl Replay {
    /// Feed one event; `f` sees the steps it makes, in order.
    pub fn step<'a>(&mut self, e: &'a Event, mut f: impl FnMut(Step<'a>)) {
        match e {
            // Slurm jobs outlive their runner: a resumed runner re-attaches to them and
            // journals their ends when they come.
            Event::SweepStart { accounting, .. } if accounting == crate::slurm::ACCOUNTING => {
                self.waiting.clear();
                f(Step::Event(e));
            }
            Event::SweepStart { .. } | Event::SweepEnd { .. } => {
                let mut open: Vec<usize> = self.open.drain().map(|(j, _)| j).collect();
                open.sort_unstable();
                for job in open {
                    f(Step::End {
                        job,
                        end: End::Interrupted,
                        open: true,
                    });
                }
                if matches!(e, Event::SweepStart { .. }) {
                    self.waiting.clear();
                }
                f(Step::Event(e));
            }
            Event::JobStart { job, attempt, .. } => {
                if self.open.remove(job).is_some() {
                    f(Step::End {
                        job: *job,
                        end: End::Restarted,
                        open: true,
                    });
                }
                self.waiting.remove(job);
                self.open.insert(*job, *attempt);
                f(Step::Start {
                    job: *job,
                    attempt: *attempt,
                });
            }
            Event::JobRequeue {
                job,
                attempt,
                usage_bytes,
                ..
            } => {
                let open = self.open.remove(job).is_some();
                self.waiting.insert(*job, *attempt);
                f(Step::End {
                    job: *job,
                    end: End::Requeued {
                        usage_bytes: *usage_bytes,
                    },
                    open,
                });
            }
            Event::JobEnd { job, .. } => {
                let open = self.open.remove(job).is_some();
                self.waiting.remove(job);
                f(Step::End {
                    job: *job,
                    end: End::Ended(e),
                    open,
                });
            }
            Event::JobPause { .. } | Event::JobResume { .. } | Event::Sample { .. } => {
                f(Step::Event(e))
            }
        }
    }

    /// Requeued jobs not started again since, with the attempt that was requeued, by job id.
    pub fn waiting(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.waiting.iter().map(|(&j, &a)| (j, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JobStatus;
    use crate::journal::fixtures::{end, start, sweep_end, sweep_start};

    fn requeue(t: f64, job: usize, attempt: u32) -> Event {
        Event::JobRequeue {
            t,
            job,
            attempt,
            reason: "r".into(),
            usage_bytes: 7,
        }
    }

    /// The steps as (job, what) pairs, `what` one of start / ended / requeued / interrupted.
    fn steps(events: &[Event]) -> (Vec<(usize, &'static str, bool)>, Replay) {
        let mut r = Replay::default();
        let mut out = Vec::new();
        for e in events {
            r.step(e, |s| match s {
                Step::Start { job, .. } => out.push((job, "start", true)),
                Step::End { job, end, open } => out.push((
                    job,
                    match end {
                        End::Ended(_) => "ended",
                        End::Requeued { .. } => "requeued",
                        End::Interrupted => "interrupted",
                        End::Restarted => "restarted",
                    },
                    open,
                )),
                Step::Event(_) => {}
            });
        }
        (out, r)
    }

    #[test]
    fn attempts_end_by_their_end_a_requeue_or_the_end_of_their_run() {
        let events = [
            sweep_start(0.0, false),
            start(0.0, 0, 1),
            start(0.0, 1, 1),
            start(0.0, 2, 1),
            requeue(1.0, 0, 1),
            end(1.5, 1, 1, JobStatus::Succeeded, 1),
            // Job 2's runner dies; the next run starts job 0 again.
            sweep_start(10.0, true),
            start(10.0, 0, 2),
            requeue(11.0, 0, 2),
            // Out of retries: the end after the requeue closes no attempt.
            end(11.0, 0, 2, JobStatus::RequeuedOut, 1),
            start(12.0, 3, 1),
            sweep_end(13.0, 3.0),
        ];
        let (s, r) = steps(&events);
        assert_eq!(
            s,
            [
                (0, "start", true),
                (1, "start", true),
                (2, "start", true),
                (0, "requeued", true),
                (1, "ended", true),
                (2, "interrupted", true),
                (0, "start", true),
                (0, "requeued", true),
                (0, "ended", false),
                (3, "start", true),
                (3, "interrupted", true),
            ]
        );
        assert_eq!(
            r.waiting().count(),
            0,
            "the end took job 0 out of the waiting"
        );
        let (_, r) = steps(&events[..6]);
        assert_eq!(r.waiting().collect::<Vec<_>>(), [(0, 1)]);
    }
}
