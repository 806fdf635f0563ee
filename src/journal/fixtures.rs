//! Fixtures shared by the unit tests of the journal, history and output modules.

use super::*;
use crate::sweep::{Job, JobCommand, JobList, RunConfig, SweepPlan};

pub fn jobs(n: usize) -> JobList {
    (0..n)
        .map(|id| {
            Job::new(
                id,
                JobCommand::Argv(vec![
                    "python3".into(),
                    "train.py".into(),
                    format!("lr={id}"),
                ]),
                vec![("lr".into(), id.to_string())],
                None,
            )
        })
        .collect()
}

pub fn plan(n: usize) -> SweepPlan {
    SweepPlan {
        schema_version: SCHEMA_VERSION,
        jobs: jobs(n),
        config: RunConfig {
            jobs: Some(4),
            sample_interval_s: 1.0,
            ..RunConfig::default()
        },
        template: "python3 train.py lr={lr}".into(),
    }
}

pub fn ctx(out: &str) -> SummaryContext {
    SummaryContext {
        out: out.into(),
        limit_bytes: 2 << 30,
        budget_bytes: 1 << 30,
        accounting: "cgroup-v1".into(),
        oom_kills: 0,
        cpus: None,
    }
}

pub fn sweep_start(t: f64, resumed: bool) -> Event {
    Event::SweepStart {
        t,
        schema_version: SCHEMA_VERSION,
        out: "sweeps/x".into(),
        jobs: 3,
        limit_bytes: 2 << 30,
        budget_bytes: 1 << 30,
        reserve_bytes: 1 << 30,
        parallel_cap: Some(4),
        accounting: "cgroup-v1".into(),
        resumed,
        downgrades: Vec::new(),
    }
}

pub fn start(t: f64, job: usize, attempt: u32) -> Event {
    Event::JobStart {
        t,
        job,
        attempt,
        command: format!("python3 train.py lr={job}"),
        estimate_bytes: None,
        estimate_source: None,
        slurm_id: None,
    }
}

pub fn end(t: f64, job: usize, attempt: u32, status: JobStatus, peak: u64) -> Event {
    Event::JobEnd {
        t,
        job,
        attempt,
        status,
        exit_code: Some(if status == JobStatus::Succeeded { 0 } else { 1 }),
        signal: None,
        wall_s: 2.0,
        peak_bytes: Some(peak),
        peak_source: "cgroup-v1".into(),
        cpu_s: Some(0.5),
    }
}

pub fn sample(t: f64, ws: u64) -> Event {
    Event::Sample {
        t,
        working_set_bytes: ws,
        available_bytes: (1 << 30) - ws,
        budget_bytes: 1 << 30,
        running: vec![(0, ws)],
        psi_some_avg10: Some(0.5),
    }
}

pub fn sweep_end(t: f64, makespan_s: f64) -> Event {
    Event::SweepEnd {
        t,
        makespan_s,
        succeeded: 0,
        failed: 0,
        exit_code: 0,
        interrupted: false,
        fail_fast_job: None,
    }
}
