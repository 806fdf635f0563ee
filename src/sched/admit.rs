//! The admission chain of [`Sched::decide`]: which queued job may start now (the head if it
//! fits, an EASY backfill, a speculative start, the slow start with no estimate), and the
//! timeline fit of a job on its own profile.

use super::lookahead::Choice;
use super::{
    Action, BACKFILL_WINDOW, Estimate, FIRM_WEIGHT, MAX_BYPASS, OVER_ESTIMATE_HOLD_S, OnPressure,
    PROFILE_SLACK, PSI_HOLD, Profile, RAMP_HEADROOM, Run, SPECULATIVE_ROOM, Sched, Source,
    TIMELINE_POINTS, growth_tolerance,
};

impl Sched {
    /// The admission chain: each filter can stop admission; the first queued job (or a later,
    /// smaller one: backfill) that fits starts.
    pub(super) fn admit(&mut self, out: &mut Vec<Action>) {
        if self.stopped || self.runs.iter().any(|r| r.paused || r.stopping) {
            return;
        }

        let budget = self.cfg.budget.budget;
        let mut proj = self.projection();
        while !self.queue.is_empty() {
            if self.cfg.cap.is_some_and(|c| self.runs.len() >= c) {
                return;
            }
            if self.runs.is_empty() {
                // At least one job always runs: an oversized job runs alone, no deadlock.
                let job = self.queue[0];
                let e = self.estimate(job);
                proj += e.bytes;
                self.start(0, e, e.bytes > budget, out);
                continue;
            }
            if self.psi.is_some_and(|p| p >= PSI_HOLD) {
                return;
            }
            if self
                .over_estimate_at
                .is_some_and(|t| self.now - t < OVER_ESTIMATE_HOLD_S)
            {
                return;
            }
            // Every size and run time known: the rollout picks the job (or waits).
            match self.lookahead(proj) {
                Some(Choice::Start(pos)) => {
                    let e = self.estimate(self.queue[pos]);
                    proj += e.bytes;
                    self.start(pos, e, false, out);
                    continue;
                }
                Some(Choice::Wait) => return,
                None => {}
            }
            let head = self.queue[0];
            let e = self.estimate(head);
            // A guess not yet confirmed waits; jobs known better may still pass it (backfill).
            let waits = self.is_guess(head, e) && !self.guesses_confirmed(e.source);
            if e.source.is_provisional() {
                // Nothing firm known: ramp up like a slow start — each job that has plateaued
                // vouches for one more, so 1 running becomes 2, then 4 — while jobs not yet flat
                // are fewer than flat ones and the headroom stays comfortably above the largest
                // usage seen for each start.
                let need = (self.largest_seen.max(e.bytes) as f64 * RAMP_HEADROOM) as u64;
                let flat = self.runs.iter().filter(|r| self.plateaued(r)).count();
                let growing = self.runs.len() - flat;
                let room = budget.saturating_sub(proj);
                if growing >= flat || room < need {
                    // Not comfortable, but everything running has plateaued and the room left
                    // would hold most of the largest job seen: with pause as the safety net,
                    // try one more (a 600 MiB first job of a grid left 680 MiB idle for its
                    // whole life). If it outgrows the room it is paused, keeping its progress.
                    // A requeued job's raised size must fit the room too: it outgrew it once.
                    if self.cfg.on_pressure == OnPressure::Pause
                        && growing == 0
                        && room >= self.raised[self.queue[0]]
                        && room as f64 >= SPECULATIVE_ROOM * self.largest_seen as f64
                    {
                        self.start_speculative(e, out);
                    }
                    return;
                }
                proj += e.bytes;
                self.start(0, e, false, out);
                continue;
            }
            if !waits && self.fits(proj, head, e) {
                proj += e.bytes;
                self.start(0, e, false, out);
                continue;
            }
            // Backfill: a later, smaller job that fits now and does not delay the head.
            if let Some((pos, ej)) = self.backfill(proj, head, e) {
                proj += ej.bytes;
                self.start(pos, ej, false, out);
                continue;
            }
            // Speculative start: sizes learned from other jobs vary, and this one may well be
            // small. With pause as the safety net, start it assuming the low quantile — one at a
            // time, only while everything else has plateaued; if it grows beyond the room left,
            // it is paused (keeping its progress) until memory frees.
            if waits {
                return;
            }
            if let Some(low) = self.speculative(proj, e) {
                let e = Estimate {
                    bytes: low,
                    source: e.source,
                };
                self.start_speculative(e, out);
            }
            return;
        }
    }

    /// Whether an estimate is a guess from other jobs that this sweep has not confirmed yet:
    /// template history (a prior from other sweeps), or parameter values shared with finished
    /// jobs before the parameters are known to explain peaks (a hold time shared by chance
    /// with one small job started 19 jobs at once on its 60 MiB).
    fn is_guess(&mut self, job: usize, e: Estimate) -> bool {
        match e.source {
            Source::TemplateHistory => true,
            Source::Similar => self.est.firm_similar(job, FIRM_WEIGHT).is_none(),
            // The max of one to three finished jobs is a guess too (one 100 MiB job had four
            // of 250–450 MiB started at once beside a running 250).
            Source::Sweep => self.est.sweep_is_max_of_few(),
            _ => false,
        }
    }

    /// Jobs started on a guess are admitted only as far as this sweep's jobs confirm it. Those
    /// that have not plateaued yet are unconfirmed; another may start only while they are no
    /// more than the confirmed ones (a plateau within the estimate), so starts double per
    /// confirmation: 1, then 2 more, then 4... A guess from this sweep's own finished jobs
    /// starts two at first (one job alone left half the sweep's first seconds idle); one from
    /// the template, a prior from other sweeps, starts one.
    fn guesses_confirmed(&self, source: Source) -> bool {
        let (mut confirmed, mut unconfirmed) = (0usize, 0usize);
        for r in self.runs.iter().filter(|r| r.guess) {
            // Within the guess itself: a job that went past it (and was raised) refutes it.
            let guess = r.estimate.bytes;
            if self.plateaued(r) && r.peak <= guess + growth_tolerance(guess) {
                confirmed += 1;
            } else {
                unconfirmed += 1;
            }
        }
        unconfirmed <= confirmed.max(usize::from(source != Source::TemplateHistory))
    }

    /// EASY backfill: find when the head will fit (the shadow time: running jobs end, by their
    /// own recorded run times) and start a later, smaller job only if it ends before then or
    /// fits beside the head at that time. Without run times, let the head be passed at most
    /// [`MAX_BYPASS`] times.
    fn backfill(&mut self, proj: u64, head: usize, e: Estimate) -> Option<(usize, Estimate)> {
        if self.bypass.0 != head {
            self.bypass = (head, 0);
        }
        let shadow = self.shadow(proj, e.bytes);
        if shadow.is_none() && self.bypass.1 >= MAX_BYPASS {
            return None;
        }
        for pos in 1..self.queue.len().min(BACKFILL_WINDOW + 1) {
            let job = self.queue[pos];
            let ej = self.estimate(job);
            if ej.source.is_provisional() || ej.bytes >= e.bytes || !self.fits(proj, job, ej) {
                continue;
            }
            if self.is_guess(job, ej) && !self.guesses_confirmed(ej.source) {
                continue;
            }
            let harmless = match shadow {
                Some((t, extra)) => {
                    ej.bytes <= extra || self.expected_wall(job).is_some_and(|w| self.now + w <= t)
                }
                None => true,
            };
            if harmless {
                self.bypass.1 += 1;
                return Some((pos, ej));
            }
        }
        None
    }

    /// When `need` bytes will be free, and how many more then, if every running job has an
    /// expected run time (its own recorded one, else that of the jobs sharing its parameter
    /// values): (shadow time, extra bytes).
    fn shadow(&self, proj: u64, need: u64) -> Option<(f64, u64)> {
        let mut ends: Vec<(f64, u64)> = Vec::with_capacity(self.runs.len());
        for r in &self.runs {
            let wall = self.est.own_wall(r.job).or_else(|| r.plan.map(|p| p.1))?;
            ends.push((r.started + r.paused_total + wall, self.expected(r)));
        }
        ends.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut free = self.cfg.budget.budget.saturating_sub(proj);
        for (end, bytes) in ends {
            free += bytes;
            if free >= need {
                return Some((end.max(self.now), free - need));
            }
        }
        None
    }

    /// A queued job's expected run time: its own recorded one, else that of the jobs sharing
    /// its parameter values.
    fn expected_wall(&mut self, job: usize) -> Option<f64> {
        self.est
            .own_wall(job)
            .or_else(|| self.est.profile(job).map(|p| p.1))
    }

    fn speculative(&mut self, proj: u64, e: Estimate) -> Option<u64> {
        // Only a guess across the sweep's spread is worth trying lower: an estimate from jobs
        // with the same parameter values is this job's size.
        if self.cfg.on_pressure != OnPressure::Pause
            || e.source.is_own()
            || e.source == Source::Similar
            || !self.runs.iter().all(|r| self.settled(r))
        {
            return None;
        }
        let low = self.est.low()?.max(self.raised[self.queue[0]]);
        (proj + low <= self.cfg.budget.budget).then_some(low)
    }

    /// Whether a running job leaves the projection firm enough for a speculative start: it has
    /// plateaued, or it was admitted on an estimate (not speculatively), has been sampled since,
    /// and is still clearly below the estimate (a job at it may be heading past it), so its
    /// remaining growth is already reserved. Waiting for such a job to plateau (0.5 s
    /// after its start) left 400–600 MiB idle half a second at a time.
    fn settled(&self, r: &Run) -> bool {
        self.plateaued(r)
            || (!r.speculative
                && !r.guess
                && r.sampled_at > r.started
                && !r.estimate.source.is_provisional()
                && {
                    let est = r.estimate.bytes.max(self.raised[r.job]);
                    r.peak + growth_tolerance(est) <= est
                })
    }

    /// A job fits when the projection plus its estimate stays within the budget and — when the
    /// estimate was learned from other jobs, so this one may be bigger — the projection plus the
    /// high quantile of their peaks stays below the point where a requeue would be needed.
    pub(super) fn fits(&mut self, proj: u64, job: usize, e: Estimate) -> bool {
        let b = self.cfg.budget;
        if e.source == Source::JobHistory
            && let Some((p, wall, true)) = self.est.profile(job)
        {
            return self.fits_timeline(e, (p, wall));
        }
        if proj + e.bytes > b.budget {
            return false;
        }
        // Own history and jobs sharing its parameter values: the estimate is this job's size,
        // not a guess across the sweep's spread.
        if e.source.is_own() || e.source == Source::Similar {
            return true;
        }
        let running_max = self.runs.iter().map(|r| r.peak).max().unwrap_or(0);
        proj + self.est.high(running_max).max(e.bytes) <= b.critical()
    }

    /// Start the head on a bet (pause is the safety net): until it plateaus, no other
    /// speculation.
    fn start_speculative(&mut self, e: Estimate, out: &mut Vec<Action>) {
        self.start(0, e, false, out);
        if let Some(r) = self.runs.last_mut() {
            r.speculative = true;
        }
    }

    pub(super) fn start(
        &mut self,
        pos: usize,
        estimate: Estimate,
        oversized: bool,
        out: &mut Vec<Action>,
    ) {
        let job = self.queue.remove(pos).expect("queue position in range");
        let plan = self.est.profile(job);
        let guess = self.is_guess(job, estimate);
        let mut run = Run::new(job, estimate, self.now, plan);
        run.guess = guess;
        self.runs.push(run);
        out.push(Action::Start {
            job,
            estimate,
            oversized,
        });
    }

    /// Profile-based admission: the job, on its own recorded profile and wall time, fits if at
    /// every point of its expected life the memory not ours, plus what each running job holds
    /// then, plus what it holds then, stays within the budget. Peaks that come after it ends, or
    /// while it is small, no longer keep it out.
    fn fits_timeline(&self, e: Estimate, plan: (Profile, f64)) -> bool {
        let budget = self.cfg.budget.budget;
        let (p, wall) = plan;
        let other = self.working_set.saturating_sub(self.jobs_total);
        for k in 0..=TIMELINE_POINTS {
            let f = k as f64 / TIMELINE_POINTS as f64 * (1.0 + PROFILE_SLACK);
            let t = self.now + f * wall;
            let mine =
                (p.level_between(f - PROFILE_SLACK, f + PROFILE_SLACK) * e.bytes as f64) as u64;
            let held: u64 = self.runs.iter().map(|r| self.held_at(r, t)).sum();
            if other + held + mine > budget {
                return false;
            }
        }
        true
    }
}
