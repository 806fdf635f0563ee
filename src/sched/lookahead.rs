//! Which job to start when every job's size and run time are known (history): each candidate
//! that fits now is rolled out — the rest of the sweep simulated with peaks reserved, first-fit
//! in queue order — and the one that finishes the sweep soonest starts.
//!
//! Only with every queued and running job's own record (a rerun, or a sweep whose parameters
//! history knows): sizes and run times borrowed from similar jobs are guesses the rollout would
//! trust. And only while every running job is within its recorded run time: a job past it is
//! "about to end" at every turn, so waiting for it would win turn after turn for as long as it
//! overran, with a queued job that fits kept out. The model starts no more jobs at once than
//! `-j` allows.
//!
//! First-fit in a fixed order (what the queue did alone) burns small jobs early as backfill and
//! leaves a long job to run alone at the end. A one-step rollout is never worse than its base
//! order on the model it simulates, and the model is cheap (a few hundred events), so it is
//! redone at every admission while the queue is short enough.

use super::{BACKFILL_WINDOW, PROFILE_SLACK, Sched, Source};

/// The rollout is used while at most this many jobs are queued (each decision simulates
/// every candidate over the whole queue: ~candidates × queue² steps).
pub const LOOKAHEAD_MAX_QUEUE: usize = 256;
/// Candidates whose sizes and run times round to the same (MiB, 50 ms) are one candidate.
const WALL_GRAIN_S: f64 = 0.05;
/// Rollouts whose makespans differ by less than this are a tie (the earlier queue position,
/// or starting over waiting, wins).
const TIE_S: f64 = 0.02;

/// A job in a rollout: what it reserves and for how long.
#[derive(Debug, Clone, Copy)]
struct Item {
    bytes: u64,
    wall: f64,
}

/// What the rollout decided: start the queued job at this position, or start nothing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    Start(usize),
    Wait,
}

/// A rollout's starting point: the time, the bytes free, the running jobs' (end time, bytes
/// they give back), and the most jobs that may run at once (`-j`).
#[derive(Debug, Clone, Copy)]
struct State<'a> {
    now: f64,
    free: u64,
    ends: &'a [(f64, u64)],
    cap: Option<usize>,
}

/// Makespan of first-fit in `queue` order from `at`. `Start(i)`: queued job `i` starts at once
/// whether or not it fits (the caller's admission, which may overlap ramps, said it does), then
/// the others first-fit; `Wait`: nothing starts before the next end (unless nothing runs).
fn rollout(at: State, queue: &[Item], first: Choice) -> f64 {
    let State {
        now,
        free,
        ends,
        cap,
    } = at;
    let cap = cap.unwrap_or(usize::MAX);
    let mut running: Vec<(f64, u64)> = ends.to_vec();
    let mut free = free as i128;
    let mut waiting: Vec<Item> = Vec::with_capacity(queue.len());
    for (i, it) in queue.iter().enumerate() {
        if first == Choice::Start(i) {
            running.push((now + it.wall, it.bytes));
            free -= i128::from(it.bytes);
        } else {
            waiting.push(*it);
        }
    }
    let mut makespan = running.iter().map(|r| r.0).fold(now, f64::max);
    let mut t = now;
    let mut skip = first == Choice::Wait;
    loop {
        if !skip || running.is_empty() {
            let mut k = 0;
            while k < waiting.len() {
                let it = waiting[k];
                if running.len() >= cap {
                    break;
                }
                if i128::from(it.bytes) <= free || running.is_empty() {
                    free -= i128::from(it.bytes);
                    running.push((t + it.wall, it.bytes));
                    makespan = makespan.max(t + it.wall);
                    waiting.remove(k);
                } else {
                    k += 1;
                }
            }
        }
        skip = false;
        if running.is_empty() {
            return makespan;
        }
        // Advance to the next end; everything ending then gives its memory back.
        let next = running.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        t = next;
        running.retain(|&(end, bytes)| {
            if end <= next {
                free += i128::from(bytes);
                false
            } else {
                true
            }
        });
    }
}

impl Sched {
    /// The rollout's choice among the queued jobs that fit now, or None when it does not apply
    /// (a queued or running job without its own recorded size and run time, a running job past
    /// its run time, or a long queue): then the admission chain decides as usual.
    pub(super) fn lookahead(&mut self, proj: u64) -> Option<Choice> {
        if self.queue.len() > LOOKAHEAD_MAX_QUEUE || self.queue.len() < 2 {
            return None;
        }
        let mut ends = Vec::with_capacity(self.runs.len());
        for r in &self.runs {
            let wall = self.est.own_wall(r.job)?;
            let end = r.started + r.paused_total + wall;
            if end + PROFILE_SLACK * wall < self.now {
                return None;
            }
            // Due now: expected to end soon, not to have ended.
            ends.push((end.max(self.now + WALL_GRAIN_S), self.expected(r)));
        }
        let mut items = Vec::with_capacity(self.queue.len());
        for i in 0..self.queue.len() {
            let job = self.queue[i];
            let e = self.estimate(job);
            // Its own record only: run times borrowed from jobs sharing a parameter value
            // (another hold time, another ramp) made the rollout trade a known-good order for
            // a worse one (a generated sweep nobody tuned for: 13.5 s → 14.1 s in the model).
            if e.source != Source::JobHistory {
                return None;
            }
            let wall = self.est.own_wall(job)?;
            items.push((
                job,
                e,
                Item {
                    bytes: e.bytes,
                    wall,
                },
            ));
        }
        let at = State {
            now: self.now,
            free: self.cfg.budget.budget.saturating_sub(proj),
            ends: &ends,
            cap: self.cfg.cap,
        };
        let queue: Vec<Item> = items.iter().map(|x| x.2).collect();
        let mut best: Option<(f64, Choice)> = None;
        let mut seen: Vec<(u64, i64)> = Vec::new();
        for (pos, &(job, e, it)) in items.iter().enumerate().take(BACKFILL_WINDOW + 1) {
            let class = (it.bytes >> 20, (it.wall / WALL_GRAIN_S).round() as i64);
            if seen.contains(&class) || !self.fits(proj, job, e) {
                continue;
            }
            seen.push(class);
            let m = rollout(at, &queue, Choice::Start(pos));
            if best.is_none_or(|(b, _)| m < b - TIE_S) {
                best = Some((m, Choice::Start(pos)));
            }
        }
        let best = best?;
        // Waiting (memory kept for a job that does not fit yet) must win clearly.
        let wait = rollout(at, &queue, Choice::Wait);
        Some(if wait < best.0 - TIE_S {
            Choice::Wait
        } else {
            best.1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn at(free_mib: u64, ends: &[(f64, u64)], cap: Option<usize>) -> State<'_> {
        State {
            now: 0.0,
            free: free_mib * MIB,
            ends,
            cap,
        }
    }

    fn item(mib: u64, wall: f64) -> Item {
        Item {
            bytes: mib * MIB,
            wall,
        }
    }

    #[test]
    fn rollout_is_first_fit_in_order_from_now() {
        // 1000 MiB free, nothing running: 600 + 400 start at once; the second 600 fits only
        // when the first ends (2 s), and ends at 4 s.
        let q = [item(600, 2.0), item(400, 1.0), item(600, 2.0)];
        let m = rollout(at(1000, &[], None), &q, Choice::Start(0));
        assert!((m - 4.0).abs() < 1e-9, "{m}");
        // A running job holding 500 MiB until 0.5 s: the same from then on, ending at 4.5 s.
        let m = rollout(at(500, &[(0.5, 500 * MIB)], None), &q, Choice::Wait);
        assert!((m - 4.5).abs() < 1e-9, "{m}");
    }

    #[test]
    fn rollout_sees_a_long_job_left_alone_at_the_end() {
        // 1000 MiB: four 500 MiB × 1 s jobs and one 500 MiB × 3 s. In queue order the short
        // ones go two at a time (2 s), then the long one alone: 5 s. Started first, the long
        // one runs beside the four short ones, one after another: 4 s.
        let q = [
            item(500, 1.0),
            item(500, 1.0),
            item(500, 1.0),
            item(500, 1.0),
            item(500, 3.0),
        ];
        let in_order = rollout(at(1000, &[], None), &q, Choice::Start(0));
        let long_first = rollout(at(1000, &[], None), &q, Choice::Start(4));
        assert!((in_order - 5.0).abs() < 1e-9, "{in_order}");
        assert!((long_first - 4.0).abs() < 1e-9, "{long_first}");
    }

    #[test]
    fn the_rollout_starts_no_more_jobs_at_once_than_the_cap() {
        // Four 100 MiB × 1 s jobs and 1000 MiB: all at once, 1 s; at -j 2, two waves, 2 s.
        let q = [item(100, 1.0); 4];
        let m = rollout(at(1000, &[], None), &q, Choice::Start(0));
        assert!((m - 1.0).abs() < 1e-9, "{m}");
        let m = rollout(at(1000, &[], Some(2)), &q, Choice::Start(0));
        assert!((m - 2.0).abs() < 1e-9, "{m}");
    }

    #[test]
    fn a_job_larger_than_everything_free_still_runs_alone() {
        let q = [item(2000, 1.0)];
        let m = rollout(at(1000, &[], None), &q, Choice::Wait);
        assert!((m - 1.0).abs() < 1e-9, "{m}");
    }
}
