//! The pressure rules of [`Sched::decide`]: requeue near the critical line (or over the budget
//! and growing with `--on-pressure requeue`), pause the youngest growing jobs while the
//! projection is over budget, resume the oldest when it fits again, and requeue a pause that
//! lasts past [`MAX_PAUSE_S`].

use super::{
    Action, MAX_PAUSE_S, MIN_PAUSE_S, OnPressure, Reason, Sched, pause_slack, resume_margin,
};

impl Sched {
    /// A pause that does not end frees memory instead of holding it: once the oldest paused job
    /// has waited [`MAX_PAUSE_S`] (and at least as long as the youngest paused job had run, so
    /// a requeue never throws away more work than the wait cost), the youngest paused job is
    /// requeued — if it has a retry left; memsweep never fails a job to make room.
    pub(super) fn requeue_long_paused(&mut self, out: &mut Vec<Action>) {
        if self.stopped || self.cfg.on_pressure != OnPressure::Pause {
            return;
        }
        if self.runs.iter().any(|r| r.stopping) {
            return;
        }
        let Some(oldest) = self.runs.iter().find(|r| r.paused) else {
            return;
        };
        let waited = self.now - oldest.paused_at;
        let Some(i) = self.runs.iter().rposition(|r| r.paused) else {
            return;
        };
        let v = &self.runs[i];
        let live = self.runs.iter().filter(|r| !r.stopping).count();
        if live < 2
            || waited < MAX_PAUSE_S.max(v.paused_at - v.started)
            || self.requeues[v.job] >= self.cfg.retries
        {
            return;
        }
        let reason = Reason::PausedTooLong {
            waited,
            usage: v.current,
        };
        let (job, usage) = (v.job, v.current);
        self.runs[i].stopping = true;
        out.push(Action::Requeue { job, reason, usage });
    }

    /// Half-way into the reserve (or, with `--on-pressure requeue`, over the budget and still
    /// growing): stop the youngest job and requeue it — never the last one running.
    pub(super) fn requeue_if_critical(&mut self, out: &mut Vec<Action>) {
        if self.cfg.on_pressure == OnPressure::None {
            return;
        }
        let b = self.cfg.budget;
        let freeing: u64 = self
            .runs
            .iter()
            .filter(|r| r.stopping)
            .map(|r| r.current)
            .sum();
        let ws = self.working_set.saturating_sub(freeing);
        let live = self.runs.iter().filter(|r| !r.stopping).count();
        if live < 2 {
            return;
        }
        let reason = if let Some(why) = self.critical_reason(freeing) {
            why
        } else if self.cfg.on_pressure == OnPressure::Requeue
            && ws > b.budget
            && self.projection_soon() > b.budget + pause_slack(b.budget)
        {
            Reason::GrowingOverBudget {
                working_set: ws,
                budget: b.budget,
            }
        } else {
            return;
        };
        // The youngest job with a retry left, else the youngest: a job memsweep stops must not
        // end requeued-out while another could have made the room.
        let retries = self.cfg.retries;
        let requeues = &self.requeues;
        let pick = self
            .runs
            .iter()
            .rposition(|r| !r.stopping && requeues[r.job] < retries)
            .or_else(|| self.runs.iter().rposition(|r| !r.stopping));
        if let Some(r) = pick.map(|i| &mut self.runs[i]) {
            r.stopping = true;
            out.push(Action::Requeue {
                job: r.job,
                reason,
                usage: r.current,
            });
        }
    }

    /// Why memory is half-way into the reserve, if it is: the container's working set with no
    /// `--limit`; with one, the jobs' sum against it or the container's working set against the
    /// container's own line.
    fn critical_reason(&self, freeing: u64) -> Option<Reason> {
        let b = self.cfg.budget;
        match self.cfg.container {
            None => {
                let ws = self.container_ws.saturating_sub(freeing);
                (ws >= b.critical()).then_some(Reason::Critical {
                    working_set: ws,
                    limit: b.limit,
                })
            }
            Some(c) => {
                let jobs = self.jobs_total.saturating_sub(freeing);
                let ws = self.container_ws.saturating_sub(freeing);
                if jobs >= b.critical() {
                    Some(Reason::JobsCritical {
                        jobs,
                        limit: b.limit,
                    })
                } else if ws >= c.critical() {
                    Some(Reason::ContainerCritical {
                        working_set: ws,
                        container_limit: c.limit,
                    })
                } else {
                    None
                }
            }
        }
    }

    /// The projection exceeds the budget: pause the youngest jobs growing now until it fits,
    /// always leaving one running. Returns whether it paused anything (then nothing is resumed
    /// or admitted this turn).
    pub(super) fn pause_if_over(&mut self, out: &mut Vec<Action>) -> bool {
        let budget = self.cfg.budget.budget;
        let mut proj = self.projection_soon();
        if proj <= budget + pause_slack(budget) || self.cfg.on_pressure != OnPressure::Pause {
            self.over_since = None;
            return false;
        }
        // A small excess while the working set is still within the budget waits for the next
        // sample to confirm it: most false pauses were a ramp's last step projected ahead, and
        // one sample (25 ms) of real growth stays far below the critical line.
        let small = proj <= budget + self.cfg.budget.reserve / 4 && self.working_set <= budget;
        let since = *self.over_since.get_or_insert(self.now);
        if small && since >= self.now {
            return false;
        }
        let mut paused = false;
        let reason = Reason::OverBudget {
            projection: proj,
            budget,
        };
        for i in (0..self.runs.len()).rev() {
            if proj <= budget {
                break;
            }
            let active = self.runs.iter().filter(|r| r.moving()).count();
            let r = &self.runs[i];
            if active < 2 || r.paused || r.stopping || self.ending_soon(r) {
                continue;
            }
            // Only a job growing right now: pausing one that merely has room reserved for it
            // frees nothing real and costs its progress.
            let g = self.expected_soon(r).saturating_sub(r.current);
            if g == 0 || r.rate <= 0.0 {
                continue;
            }
            proj -= g;
            let (job, usage) = (r.job, r.current);
            self.runs[i].paused = true;
            self.runs[i].paused_at = self.now;
            // Paused again without having grown since the last pause: that one was false.
            let r = &mut self.runs[i];
            if super::pause_was_false(r.paused_usage, r.current) {
                self.false_pauses += 1;
            }
            r.paused_usage = r.current;
            self.pauses += 1;
            paused = true;
            out.push(Action::Pause { job, reason, usage });
        }
        paused
    }

    /// Resume paused jobs, oldest first, while they fit with a margin (hysteresis); if nothing
    /// else runs, resume the oldest regardless. Returns whether it resumed anything.
    pub(super) fn resume_if_room(&mut self, out: &mut Vec<Action>) -> bool {
        if self.stopped {
            return false;
        }
        let mut resumed = false;
        let budget = self.cfg.budget.budget;
        let mut proj = self.projection_soon();
        for i in 0..self.runs.len() {
            if !self.runs[i].paused {
                continue;
            }
            let active = self.runs.iter().filter(|r| r.moving()).count();
            let g = self
                .expected_soon(&self.runs[i])
                .saturating_sub(self.runs[i].current);
            let fits = self.working_set + resume_margin(budget) <= budget
                && proj + g + resume_margin(budget) <= budget
                && self.now - self.runs[i].paused_at >= MIN_PAUSE_S;
            if !(fits || active == 0) {
                break;
            }
            proj += g;
            let r = &mut self.runs[i];
            r.paused = false;
            r.paused_total += self.now - r.paused_at;
            resumed = true;
            r.grew_at = self.now;
            out.push(Action::Resume {
                job: self.runs[i].job,
            });
        }
        resumed
    }
}
