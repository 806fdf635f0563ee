//! Folding journal events into a [`Summary`]: the one implementation behind the engine's
//! `summary.json` (rewritten after every job) and `--resume` (which replays earlier runs).
//!
//! Attempts come from [`super::replay`] (the one reading of starts and ends, shared with the plot
//! and `show`): an attempt open when its run ends, or when a new run starts (its runner died),
//! counts as interrupted.
//! Under the Slurm backend (`accounting: "slurm"`) jobs outlive the runner: a resumed runner
//! re-attaches to them and records their ends when they come (see [`super::replay`]).

use std::collections::HashMap;

use serde::Serialize;

use super::replay::{End, Step};
use super::{Event, JobStatus, JobSummary, Replay, Summary, SummaryRows};
use crate::sched;
use crate::sweep::{JobList, JobRef};

/// What the journal does not know: supplied by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryContext {
    pub out: String,
    pub limit_bytes: u64,
    pub budget_bytes: u64,
    pub accounting: String,
    /// Every OOM kill of the sweep (the container's and the job cgroups' counters).
    pub oom_kills: u64,
    /// The CPUs the sweep runs on, for the advice.
    pub cpus: Option<f64>,
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
    exit_code: Option<i32>,
    signal: Option<i32>,
    wall_s: OptF64,
    peak_bytes: OptU64,
    /// Index into [`Jobs::sources`] plus one (0: none): every job of a sweep has one of two
    /// or three sources, and a string per job was 32 bytes of heap each.
    peak_source: u8,
    pauses: u32,
    cpu_s: OptF64,
    /// Usage at this attempt's latest pause, until it is judged (by the next pause or the end).
    paused_at: OptU64,
}

/// An `Option<f64>` in 8 bytes (NaN: none, which JSON cannot hold): the fold keeps a few per job.
#[derive(Debug, Clone, Copy)]
struct OptF64(f64);

impl Default for OptF64 {
    fn default() -> Self {
        OptF64(f64::NAN)
    }
}

impl OptF64 {
    fn get(self) -> Option<f64> {
        (!self.0.is_nan()).then_some(self.0)
    }
    fn of(v: Option<f64>) -> Self {
        OptF64(v.unwrap_or(f64::NAN))
    }
}

/// An `Option<u64>` in 8 bytes (`u64::MAX`: none, more bytes than any machine has).
#[derive(Debug, Clone, Copy)]
struct OptU64(u64);

impl Default for OptU64 {
    fn default() -> Self {
        OptU64(u64::MAX)
    }
}

impl OptU64 {
    fn get(self) -> Option<u64> {
        (self.0 != u64::MAX).then_some(self.0)
    }
    fn of(v: Option<u64>) -> Self {
        OptU64(v.unwrap_or(u64::MAX))
    }
    fn take(&mut self) -> Option<u64> {
        std::mem::take(self).get()
    }
}

/// Ids up to this are kept in the dense table ([`Jobs`]); a journal that claims more jobs, or
/// names a job beyond its count, has the rest in a map.
const DENSE_MAX: usize = 1 << 24;

/// What the journal says of each job, by id: a vector for the ids the sweep announced (dense,
/// 64 bytes a job, touched only as jobs start), a map for any other id (`memsweep guard`
/// learns its processes as it goes; a damaged journal may name any id). A hash map of every
/// job was 2-3× larger and set much of a 100 000-job sweep's footprint.
#[derive(Debug, Clone, Default)]
struct Jobs {
    dense: Vec<Option<JobFold>>,
    /// How many ids the dense table may hold (the largest `jobs` of a `sweep_start`).
    dense_cap: usize,
    sparse: HashMap<usize, JobFold>,
    /// The distinct peak sources seen ("cgroup-v1", "proc", ...).
    sources: Vec<Box<str>>,
}

impl Jobs {
    fn announce(&mut self, jobs: usize) {
        self.dense_cap = self.dense_cap.max(jobs.min(DENSE_MAX));
    }

    // An id may sit in the map while the table covers it (it came before a `sweep_start` that
    // announced more jobs): lookups fall back to the map, and `entry` moves it over.
    fn get(&self, id: usize) -> Option<&JobFold> {
        match self.dense.get(id).and_then(Option::as_ref) {
            Some(f) => Some(f),
            None => self.sparse.get(&id),
        }
    }

    fn get_mut(&mut self, id: usize) -> Option<&mut JobFold> {
        match self.dense.get_mut(id).and_then(Option::as_mut) {
            Some(f) => Some(f),
            None => self.sparse.get_mut(&id),
        }
    }

    fn entry(&mut self, id: usize) -> &mut JobFold {
        if id < self.dense_cap {
            if id >= self.dense.len() {
                if self.dense.capacity() == 0 {
                    // Once, exactly: doubling would hold two tables at the moment of growth.
                    self.dense.reserve_exact(self.dense_cap);
                }
                self.dense.resize(id + 1, None);
            }
            if let Some(moved) = self.sparse.remove(&id) {
                self.dense[id] = Some(moved);
            }
            self.dense[id].get_or_insert_with(JobFold::default)
        } else {
            self.sparse.entry(id).or_default()
        }
    }

    fn source_index(&mut self, source: &str) -> u8 {
        if source.is_empty() {
            return 0;
        }
        if let Some(i) = self.sources.iter().position(|s| &**s == source) {
            return i as u8 + 1;
        }
        if self.sources.len() >= u8::MAX as usize {
            return 0; // 255 distinct sources: only a damaged journal has them
        }
        self.sources.push(source.into());
        self.sources.len() as u8
    }

    fn source(&self, f: &JobFold) -> Option<&str> {
        (f.peak_source > 0).then(|| &*self.sources[f.peak_source as usize - 1])
    }
}

/// An incremental fold over journal events; [`SummaryFold::summary`] can be taken at any point.
#[derive(Debug, Clone, Default)]
pub struct SummaryFold {
    jobs: Jobs,
    peak_working_set: u64,
    requeues: u64,
    pauses: u64,
    /// Pauses of jobs that never grew past what they held when paused.
    false_pauses: u64,
    /// Seconds of runner time in closed runs (a resumed sweep has several).
    closed_runs_s: f64,
    /// (start, latest t) of the run in progress.
    open_run: Option<(f64, f64)>,
    /// The latest run ended with `sweep_end`: unstarted jobs are skipped, not pending.
    ended: bool,
    /// The latest run's `--fail-fast` stop, if any.
    fail_fast_job: Option<usize>,
    /// Which attempts are open: the one reading of starts and ends.
    replay: Replay,
}

impl SummaryFold {
    pub fn add(&mut self, event: &Event) {
        // A new run's start does not extend the previous run (the runner was dead in between).
        if let (Some((_, last)), false) = (
            &mut self.open_run,
            matches!(event, Event::SweepStart { .. }),
        ) {
            *last = last.max(event.t());
        }
        let Self {
            replay,
            jobs: fold_jobs,
            requeues,
            false_pauses,
            ..
        } = self;
        if let Event::SweepStart { jobs, .. } = event {
            // Before the steps: a new run's start may end the last run's open attempts.
            fold_jobs.announce(*jobs);
        }
        replay.step(event, |step| match step {
            Step::Start { job, .. } => {
                let j = fold_jobs.entry(job);
                j.phase = Some(Phase::Started);
                j.paused_at = OptU64::default();
                j.attempts += 1;
                j.exit_code = None;
                j.signal = None;
                j.wall_s = OptF64::default();
                j.cpu_s = OptF64::default();
            }
            Step::End {
                job,
                end: End::Ended(e),
                ..
            } => {
                let Event::JobEnd {
                    status,
                    exit_code,
                    signal,
                    wall_s,
                    peak_bytes,
                    peak_source,
                    cpu_s,
                    ..
                } = e
                else {
                    return;
                };
                let source = fold_jobs.source_index(peak_source);
                let j = fold_jobs.entry(job);
                if let (Some(at), Some(peak)) = (j.paused_at.take(), *peak_bytes) {
                    *false_pauses += u64::from(sched::pause_was_false(at, peak));
                }
                j.phase = Some(Phase::Ended(*status));
                j.exit_code = *exit_code;
                j.signal = *signal;
                j.wall_s = OptF64::of(Some(*wall_s));
                j.peak_bytes = OptU64::of(*peak_bytes);
                j.peak_source = source;
                j.cpu_s = OptF64::of(*cpu_s);
            }
            Step::End {
                job,
                end: End::Requeued { usage_bytes },
                ..
            } => {
                *requeues += 1;
                let j = fold_jobs.entry(job);
                j.phase = Some(Phase::Requeued);
                // What it reached before being stopped: a lower bound on its peak.
                j.peak_bytes = OptU64::of(Some(j.peak_bytes.get().unwrap_or(0).max(usage_bytes)));
            }
            Step::End {
                job,
                end: End::Interrupted,
                ..
            } => {
                // Its run ended, or its runner died, while it ran.
                if let Some(j) = fold_jobs.get_mut(job) {
                    j.phase = Some(Phase::Ended(JobStatus::Interrupted));
                }
            }
            Step::End {
                end: End::Restarted,
                ..
            }
            | Step::Event(_) => {}
        });
        match event {
            Event::SweepStart { t, .. } => {
                self.close_run();
                self.open_run = Some((*t, *t));
                self.ended = false;
                self.fail_fast_job = None;
            }
            Event::JobPause {
                job, usage_bytes, ..
            } => {
                self.pauses += 1;
                let j = self.jobs.entry(*job);
                j.pauses += 1;
                // The previous pause of this attempt was false if the job is paused again
                // without having grown past it.
                if let (Some(at), Some(now)) = (j.paused_at.get(), *usage_bytes) {
                    self.false_pauses += u64::from(sched::pause_was_false(at, now));
                }
                j.paused_at = OptU64::of(*usage_bytes);
            }
            Event::Sample {
                working_set_bytes, ..
            } => self.peak_working_set = self.peak_working_set.max(*working_set_bytes),
            Event::SweepEnd { fail_fast_job, .. } => {
                self.close_run();
                self.ended = true;
                self.fail_fast_job = *fail_fast_job;
            }
            Event::JobStart { .. }
            | Event::JobEnd { .. }
            | Event::JobRequeue { .. }
            | Event::JobResume { .. } => {}
        }
    }

    fn close_run(&mut self) {
        if let Some((start, last)) = self.open_run.take() {
            self.closed_runs_s += (last - start).max(0.0);
        }
    }

    /// The summary of the events so far, one row per job of `jobs` (in their order).
    pub fn summary(&self, jobs: &JobList, ctx: &SummaryContext) -> Summary {
        let mut s = self.header(jobs, ctx);
        s.jobs = jobs.iter().map(|job| self.row(job)).collect();
        s
    }

    /// The rows of [`Self::summary`] made one at a time as they are read (see
    /// [`SummaryRows`]): the end-of-sweep report of a big sweep never holds them all.
    pub fn rows<'a>(&'a self, jobs: &'a JobList) -> FoldRows<'a> {
        FoldRows { fold: self, jobs }
    }

    /// [`Self::summary`] serialized as pretty JSON, byte for byte, with the rows made one at a
    /// time instead of all held at once (a 10 000-job summary is megabytes).
    /// `peak_working_set` raises the journal's peak (the runner samples more often than it
    /// journals).
    pub fn write_pretty(
        &self,
        w: impl std::io::Write,
        jobs: &JobList,
        ctx: &SummaryContext,
        peak_working_set: u64,
    ) -> serde_json::Result<()> {
        let mut h = self.header(jobs, ctx);
        h.peak_working_set_bytes = h.peak_working_set_bytes.max(peak_working_set);
        serde_json::to_writer_pretty(
            w,
            &View {
                h: &h,
                jobs,
                fold: self,
            },
        )
    }

    /// (succeeded, failed) over `jobs`, as [`Self::summary`] counts them, without the rows.
    pub fn counts(&self, jobs: &JobList) -> (usize, usize) {
        let (mut succeeded, mut failed) = (0, 0);
        for job in jobs.iter() {
            match self.status(self.jobs.get(job.id())) {
                // A guarded process whose exit status the guard cannot see ended without failing.
                JobStatus::Succeeded | JobStatus::Exited => succeeded += 1,
                s if s.is_failure() => failed += 1,
                _ => {}
            }
        }
        (succeeded, failed)
    }

    fn status(&self, f: Option<&JobFold>) -> JobStatus {
        match (f.and_then(|f| f.phase), self.ended) {
            (Some(Phase::Ended(s)), _) => s,
            (Some(Phase::Started), true) => JobStatus::Interrupted,
            (Some(Phase::Started), false) => JobStatus::Running,
            (Some(Phase::Requeued), true) => JobStatus::RequeuedOut,
            (Some(Phase::Requeued), false) | (None, false) => JobStatus::Pending,
            (None, true) => JobStatus::Skipped,
        }
    }

    fn row(&self, job: JobRef<'_>) -> JobSummary {
        self.row_with(job, &|_| true)
    }

    /// [`Self::row`], with its command, parameters and peak source only if its status passes
    /// `text` (no string is made for a row whose text is not read).
    fn row_with(&self, job: JobRef<'_>, text: &dyn Fn(JobStatus) -> bool) -> JobSummary {
        let f = self.jobs.get(job.id());
        let status = self.status(f);
        let text = text(status);
        let source = f
            .filter(|_| text)
            .and_then(|f| self.jobs.source(f))
            .map(String::from);
        make_row(job, status, f.cloned().unwrap_or_default(), source, text)
    }

    /// Everything but the rows (`jobs` is empty), with the counts over `jobs`.
    pub fn header(&self, jobs: &JobList, ctx: &SummaryContext) -> Summary {
        let (mut succeeded, mut failed, mut skipped) = (0, 0, 0);
        for job in jobs.iter() {
            match self.status(self.jobs.get(job.id())) {
                // A guarded process whose exit status the guard cannot see ended without failing.
                JobStatus::Succeeded | JobStatus::Exited => succeeded += 1,
                s if s.is_failure() => failed += 1,
                _ => skipped += 1,
            }
        }
        let open_s = self.open_run.map_or(0.0, |(s, l)| (l - s).max(0.0));
        Summary {
            schema_version: super::SCHEMA_VERSION,
            out: ctx.out.clone(),
            makespan_s: self.closed_runs_s + open_s,
            limit_bytes: ctx.limit_bytes,
            budget_bytes: ctx.budget_bytes,
            accounting: ctx.accounting.clone(),
            peak_working_set_bytes: self.peak_working_set,
            oom_kills: ctx.oom_kills,
            requeues: self.requeues,
            pauses: self.pauses,
            false_pauses: self.false_pauses,
            succeeded,
            failed,
            skipped,
            fail_fast_job: self.fail_fast_job,
            cpus: ctx.cpus,
            jobs: Vec::new(),
        }
    }
}

/// The rows of a fold's summary, made as they are read ([`SummaryFold::rows`]).
pub struct FoldRows<'a> {
    fold: &'a SummaryFold,
    jobs: &'a JobList,
}

impl SummaryRows for FoldRows<'_> {
    fn len(&self) -> usize {
        self.jobs.len()
    }

    fn each(&self, text: &dyn Fn(JobStatus) -> bool, f: &mut dyn FnMut(&JobSummary)) {
        for job in self.jobs.iter() {
            f(&self.fold.row_with(job, text));
        }
    }
}

/// A [`Summary`] whose rows are made while serializing. The fields and their order must stay
/// those of `Summary` (a unit test compares the bytes).
struct View<'a> {
    h: &'a Summary,
    jobs: &'a JobList,
    fold: &'a SummaryFold,
}

impl Serialize for View<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Rows<'a>(&'a JobList, &'a SummaryFold);
        impl Serialize for Rows<'_> {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                ser.collect_seq(self.0.iter().map(|job| self.1.row(job)))
            }
        }
        let h = self.h;
        let mut st = ser.serialize_struct("Summary", 17)?;
        st.serialize_field("schema_version", &h.schema_version)?;
        st.serialize_field("out", &h.out)?;
        st.serialize_field("makespan_s", &h.makespan_s)?;
        st.serialize_field("limit_bytes", &h.limit_bytes)?;
        st.serialize_field("budget_bytes", &h.budget_bytes)?;
        st.serialize_field("accounting", &h.accounting)?;
        st.serialize_field("peak_working_set_bytes", &h.peak_working_set_bytes)?;
        st.serialize_field("oom_kills", &h.oom_kills)?;
        st.serialize_field("requeues", &h.requeues)?;
        st.serialize_field("pauses", &h.pauses)?;
        st.serialize_field("false_pauses", &h.false_pauses)?;
        st.serialize_field("succeeded", &h.succeeded)?;
        st.serialize_field("failed", &h.failed)?;
        st.serialize_field("skipped", &h.skipped)?;
        st.serialize_field("fail_fast_job", &h.fail_fast_job)?;
        st.serialize_field("cpus", &h.cpus)?;
        st.serialize_field("jobs", &Rows(self.jobs, self.fold))?;
        st.end()
    }
}

/// Fold a whole journal into a summary (pure). `makespan_s` is the runner's own time summed over
/// its runs (time between runs, when nothing ran, does not count); `attempts` counts every start
/// of the job across runs; exit, signal, wall time and peak are those of its latest attempt.
pub fn summarize(jobs: &JobList, events: &[Event], ctx: &SummaryContext) -> Summary {
    let mut fold = SummaryFold::default();
    for e in events {
        fold.add(e);
    }
    fold.summary(jobs, ctx)
}

/// One `summary.json` row from a job and what the journal says of it.
/// Without `text`, its command and parameters are left empty.
fn make_row(
    job: JobRef<'_>,
    status: JobStatus,
    f: JobFold,
    peak_source: Option<String>,
    text: bool,
) -> JobSummary {
    JobSummary {
        id: job.id(),
        // The engine journals the plan's display command; rendered again here rather than
        // kept per job for the whole run.
        command: if text { job.display() } else { String::new() },
        params: if text {
            job.params()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        } else {
            Vec::new()
        },
        status,
        exit_code: f.exit_code,
        signal: f.signal,
        attempts: f.attempts,
        wall_s: f.wall_s.get(),
        peak_bytes: f.peak_bytes.get(),
        peak_source,
        pauses: f.pauses,
        cpu_s: f.cpu_s.get(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    /// The rows [`SummaryFold::rows`] hands out, with text where `text` says.
    fn rows_of(
        fold: &SummaryFold,
        jobs: &JobList,
        text: &dyn Fn(JobStatus) -> bool,
    ) -> Vec<JobSummary> {
        let mut out = Vec::new();
        fold.rows(jobs).each(text, &mut |r| out.push(r.clone()));
        out
    }

    #[test]
    fn the_streamed_summary_is_byte_for_byte_the_summary() {
        let jobs = jobs(4);
        let events = vec![
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            start(100.0, 1, 1),
            sample(101.0, 700 << 20),
            end(103.0, 1, 1, JobStatus::Failed, 200 << 20),
            end(103.5, 0, 1, JobStatus::Succeeded, 300 << 20),
            start(104.0, 2, 1),
        ];
        let mut fold = SummaryFold::default();
        for e in &events {
            fold.add(e);
        }
        let c = ctx("out");
        let mut want = fold.summary(&jobs, &c);
        want.peak_working_set_bytes = 800 << 20;
        let mut from_rows = fold.header(&jobs, &c);
        from_rows.jobs = rows_of(&fold, &jobs, &|_| true);
        assert_eq!(from_rows, fold.summary(&jobs, &c));
        let mut got = Vec::new();
        fold.write_pretty(&mut got, &jobs, &c, 800 << 20).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
        let back: Summary = serde_json::from_str(&serde_json::to_string(&want).unwrap()).unwrap();
        assert_eq!((back.succeeded, back.failed, back.skipped), (1, 1, 2));
    }

    #[test]
    fn jobs_outside_the_announced_count_are_summarized_like_the_others() {
        // The dense table covers the ids `sweep_start` announced (3 here); a job the journal
        // names beyond them (a damaged journal, `guard`'s processes) or before any `sweep_start`
        // is kept aside, and moves into the table when a later run announces more jobs.
        let jobs = jobs(6);
        let proc_end = |t, job, status| Event::JobEnd {
            t,
            job,
            attempt: 1,
            status,
            exit_code: Some(1),
            signal: None,
            wall_s: 1.0,
            peak_bytes: Some(100 << 20),
            peak_source: "proc".into(),
            cpu_s: None,
        };
        let mut fold = SummaryFold::default();
        let first = [
            start(99.0, 4, 1),
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            end(101.0, 0, 1, JobStatus::Succeeded, 300 << 20),
            start(101.0, 5, 1),
            proc_end(102.0, 5, JobStatus::Failed),
        ];
        for e in &first {
            fold.add(e);
        }
        let s = fold.summary(&jobs, &ctx("out"));
        let st: Vec<JobStatus> = s.jobs.iter().map(|j| j.status).collect();
        use JobStatus::*;
        assert_eq!(
            st,
            [Succeeded, Pending, Pending, Pending, Interrupted, Failed]
        );
        assert_eq!(s.jobs[0].peak_source.as_deref(), Some("cgroup-v1"));
        assert_eq!(s.jobs[5].peak_source.as_deref(), Some("proc"));
        assert_eq!(s.jobs[5].peak_bytes, Some(100 << 20));
        assert_eq!(s.jobs[4].attempts, 1);

        // A resumed run announces all six: job 5's record moves into the table, whole.
        let mut more = sweep_start(200.0, true);
        if let Event::SweepStart { jobs, .. } = &mut more {
            *jobs = 6;
        }
        fold.add(&more);
        fold.add(&Event::JobPause {
            t: 200.5,
            job: 5,
            reason: String::new(),
            usage_bytes: None,
        });
        let s2 = fold.summary(&jobs, &ctx("out"));
        assert_eq!(s2.jobs[5].status, Failed);
        assert_eq!(s2.jobs[5].pauses, 1);
        assert_eq!(s2.jobs[5].peak_source.as_deref(), Some("proc"));
        assert_eq!((s2.succeeded, s2.failed), (1, 1));
        assert_eq!(rows_of(&fold, &jobs, &|_| true), s2.jobs);
    }

    #[test]
    fn the_report_rows_keep_the_numbers_of_every_row_and_the_text_of_the_chosen_ones() {
        let jobs = jobs(3);
        let mut fold = SummaryFold::default();
        for e in [
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            start(100.0, 1, 1),
            end(102.0, 0, 1, JobStatus::Succeeded, 300 << 20),
            end(103.0, 1, 1, JobStatus::Failed, 200 << 20),
        ] {
            fold.add(&e);
        }
        let c = ctx("out");
        let whole = fold.summary(&jobs, &c);
        let rows = rows_of(&fold, &jobs, &|st| st != JobStatus::Succeeded);
        // The succeeded row: numbers only.
        assert_eq!(rows[0].command, "");
        assert!(rows[0].params.is_empty());
        assert_eq!(rows[0].peak_source, None);
        assert_eq!(rows[0].peak_bytes, Some(300 << 20));
        assert_eq!(rows[0].wall_s, whole.jobs[0].wall_s);
        assert_eq!(rows[0].cpu_s, Some(0.5));
        // The others whole.
        assert_eq!(rows[1], whole.jobs[1]);
        assert_eq!(rows[2], whole.jobs[2]);
        let h = fold.header(&jobs, &c);
        assert_eq!((h.succeeded, h.failed), (1, 1));
    }

    #[test]
    fn a_pause_of_a_job_that_never_grew_past_it_is_counted_false() {
        let jobs = jobs(2);
        let pause = |t: f64, job: usize, mib: u64| Event::JobPause {
            t,
            job,
            reason: "memory would reach 1.3 GiB of a 1.25 GiB budget".into(),
            usage_bytes: Some(mib << 20),
        };
        let events = vec![
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            start(100.0, 1, 1),
            // Job 0: paused at 300, paused again at 301 (no growth: false), then grew to 700
            // (the second pause was real).
            pause(100.5, 0, 300),
            Event::JobResume { t: 101.0, job: 0 },
            pause(101.1, 0, 301),
            Event::JobResume { t: 101.5, job: 0 },
            // Job 1: paused at 450, ended at 451 (false). An old journal's pause says nothing.
            pause(100.5, 1, 450),
            Event::JobResume { t: 101.0, job: 1 },
            end(102.0, 0, 1, JobStatus::Succeeded, 700 << 20),
            end(102.0, 1, 1, JobStatus::Succeeded, 451 << 20),
        ];
        let s = summarize(&jobs, &events, &ctx("out"));
        assert_eq!((s.pauses, s.false_pauses), (3, 2));
    }

    #[test]
    fn requeues_pauses_attempts_and_peaks_fold_into_the_summary() {
        let jobs = jobs(3);
        let mut events = vec![
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            start(100.0, 1, 1),
            sample(101.0, 700 << 20),
            Event::JobPause {
                t: 101.0,
                job: 1,
                reason: "working set near the budget".into(),
                usage_bytes: None,
            },
            Event::JobRequeue {
                t: 101.5,
                job: 0,
                attempt: 1,
                reason: "grew past its estimate".into(),
                usage_bytes: 400 << 20,
            },
            sample(102.0, 900 << 20),
            Event::JobResume { t: 102.0, job: 1 },
            end(103.0, 1, 1, JobStatus::Failed, 200 << 20),
            start(103.0, 0, 2),
            sample(104.0, 500 << 20),
        ];
        let s = summarize(&jobs, &events, &ctx("out"));
        assert_eq!(s.jobs[0].status, JobStatus::Running);
        assert_eq!(s.jobs[0].attempts, 2);
        assert_eq!(
            s.jobs[0].peak_bytes,
            Some(400 << 20),
            "lower bound from the requeue"
        );
        assert_eq!(s.jobs[1].status, JobStatus::Failed);
        assert_eq!(s.jobs[1].exit_code, Some(1));
        assert_eq!(s.jobs[1].peak_source.as_deref(), Some("cgroup-v1"));
        assert_eq!(s.jobs[2].status, JobStatus::Pending);
        assert_eq!((s.requeues, s.pauses), (1, 1));
        assert_eq!(s.peak_working_set_bytes, 900 << 20);
        assert_eq!(s.makespan_s, 4.0);
        assert_eq!((s.succeeded, s.failed, s.skipped), (0, 1, 2));

        events.push(end(107.0, 0, 2, JobStatus::Succeeded, 450 << 20));
        events.push(sweep_end(107.5, 7.5));
        let s = summarize(&jobs, &events, &ctx("out"));
        assert_eq!(s.jobs[0].status, JobStatus::Succeeded);
        assert_eq!(s.jobs[0].peak_bytes, Some(450 << 20));
        assert_eq!(s.jobs[0].wall_s, Some(2.0));
        assert_eq!(
            s.jobs[2].status,
            JobStatus::Skipped,
            "never started, sweep over"
        );
        assert_eq!((s.succeeded, s.failed, s.skipped), (1, 1, 1));
        assert_eq!(s.makespan_s, 7.5);
        assert_eq!(s.out, "out");
        assert_eq!(s.budget_bytes, 1 << 30);
    }

    #[test]
    fn a_run_killed_mid_job_then_resumed_counts_both_runs() {
        let jobs = jobs(2);
        let mut events = vec![
            sweep_start(100.0, false),
            start(100.0, 0, 1),
            start(100.0, 1, 1),
            end(105.0, 0, 1, JobStatus::Succeeded, 10),
            // SIGKILL: no end for job 1, no sweep_end.
            sweep_start(200.0, true),
        ];
        let s = summarize(&jobs, &events, &ctx("o"));
        assert_eq!(
            s.jobs[1].status,
            JobStatus::Interrupted,
            "died with the runner"
        );
        events.extend([
            start(201.0, 1, 1),
            end(210.0, 1, 1, JobStatus::Succeeded, 20),
            sweep_end(211.0, 11.0),
        ]);
        let s = summarize(&jobs, &events, &ctx("o"));
        assert_eq!(s.jobs[0].status, JobStatus::Succeeded);
        assert_eq!(s.jobs[0].attempts, 1);
        assert_eq!(s.jobs[1].status, JobStatus::Succeeded);
        assert_eq!(s.jobs[1].attempts, 2);
        assert_eq!(
            s.makespan_s,
            5.0 + 11.0,
            "the gap between runs does not count"
        );
        assert_eq!((s.succeeded, s.failed), (2, 0));
    }

    #[test]
    fn jobs_left_unfinished_at_the_end_are_killed_or_requeued_out() {
        let jobs = jobs(3);
        let events = vec![
            sweep_start(0.0, false),
            start(0.0, 0, 1),
            start(0.0, 1, 1),
            Event::JobRequeue {
                t: 1.0,
                job: 1,
                attempt: 1,
                reason: "pressure".into(),
                usage_bytes: 1,
            },
            sweep_end(2.0, 2.0),
        ];
        let s = summarize(&jobs, &events, &ctx("o"));
        let statuses: Vec<_> = s.jobs.iter().map(|j| j.status).collect();
        assert_eq!(
            statuses,
            [
                JobStatus::Interrupted,
                JobStatus::RequeuedOut,
                JobStatus::Skipped
            ]
        );
        // Interrupted is not a failure of the job; requeued-out is.
        assert_eq!((s.failed, s.skipped), (1, 2));
        assert_eq!(s.jobs[0].command, "python3 train.py lr=0");
    }
}
