//! `memsweep run`: the engine loop wiring sweep → sched ↔ probe → exec → journal → output.
//!
//! This file resolves what to run (a new plan, or `--resume DIR`) and the numbers to run it with
//! (limit, budget, cap, estimates), prints the plan for `--dry-run`, and hands over to
//! [`engine::Engine`], which owns the loop.

mod engine;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::history::{History, Record};
use crate::journal::{ResumeState, SweepDir};
use crate::probe::{Fs, MemStatus, Probe};
use crate::sched::{self, Budget, Estimator, Source};
use crate::size::human;
use crate::sweep::{self, RunConfig, SweepPlan};

pub fn run(fs: &Fs, args: RunArgs) -> anyhow::Result<Exit> {
    let (mut plan, resumed) = match &args.resume {
        Some(dir) => {
            let (sweep_dir, state) = SweepDir::resume(dir)?;
            // Keep only what the rerun needs (the events of a big sweep are not small).
            let ResumeState {
                plan,
                succeeded,
                events,
                ..
            } = state;
            let prior = Prior::new(plan.jobs.len(), &succeeded, &events);
            (plan, Some((sweep_dir, prior)))
        }
        None => (sweep::plan(&args)?, None),
    };
    if resumed.is_some() {
        override_config(&mut plan.config, &args);
    }
    if let Some((i, _)) = plan.jobs.iter().enumerate().find(|(i, j)| j.id != *i) {
        anyhow::bail!("internal error: job ids are not 0..n (position {i}); please report this");
    }
    let probe = Probe::new(fs.clone())?;
    let status = probe.status()?;
    let setup = Setup::new(&plan, &status, resumed.as_ref().map(|(_, p)| p))?;

    if plan.config.dry_run {
        print_plan(&plan, &setup, &status);
        return Ok(Exit::Ok);
    }
    let (dir, resumed) = match resumed {
        Some((dir, _)) => (dir, true),
        None => (create_dir(&plan)?, false),
    };
    engine::Engine::new(plan, setup, probe, status, dir, resumed)?.run()
}

/// What earlier runs of a resumed sweep leave to this one.
pub struct Prior {
    /// Attempts each job already had (attempt numbers continue).
    attempts: Vec<u32>,
    /// Jobs that succeeded (never rerun).
    succeeded: Vec<bool>,
}

impl Prior {
    fn new(n: usize, succeeded: &[usize], events: &[crate::journal::Event]) -> Prior {
        let mut p = Prior {
            attempts: vec![0; n],
            succeeded: vec![false; n],
        };
        for e in events {
            if let crate::journal::Event::JobStart { job, .. } = e
                && *job < n
            {
                p.attempts[*job] += 1;
            }
        }
        for &j in succeeded {
            if j < n {
                p.succeeded[j] = true;
            }
        }
        p
    }
}

/// Flags given with `--resume DIR` override what the sweep was started with.
fn override_config(c: &mut RunConfig, a: &RunArgs) {
    if a.jobs.is_some() {
        c.jobs = a.jobs;
    }
    if a.limit.is_some() {
        c.limit = a.limit;
    }
    if a.reserve.is_some() {
        c.reserve = a.reserve;
    }
    if a.mem_per_job.is_some() {
        c.mem_per_job = a.mem_per_job;
    }
    if a.job_mem_max.is_some() {
        c.job_mem_max = a.job_mem_max;
    }
    if a.no_history {
        c.history = false;
    }
    if a.no_cgroups {
        c.cgroups = false;
    }
    if let Some(p) = a.on_pressure {
        c.on_pressure = p;
    }
    if let Some(r) = a.retries {
        c.retries = r;
    }
    if let Some(g) = a.grace {
        c.grace_s = g;
    }
    if let Some(s) = a.sample_interval {
        c.sample_interval_s = s;
    }
    // How this invocation talks and whether it runs at all are this invocation's choice.
    c.json = a.json;
    c.dry_run = a.dry_run;
}

/// Everything resolved before the first job starts.
pub struct Setup {
    pub budget: Budget,
    pub cap: Option<usize>,
    pub mem_per_job: Option<u64>,
    pub job_mem_max: Option<u64>,
    pub sched: sched::Sched,
    /// Attempts each job already had (earlier runs of a resumed sweep).
    pub attempts: Vec<u32>,
    /// Jobs that succeeded in an earlier run (not rerun).
    pub done_before: usize,
    pub history: Option<History>,
    pub limit_source: &'static str,
}

impl Setup {
    fn new(plan: &SweepPlan, status: &MemStatus, resume: Option<&Prior>) -> anyhow::Result<Setup> {
        let c = &plan.config;
        let limit = c.limit.unwrap_or(status.limit_bytes);
        let budget = Budget::new(limit, c.reserve)?;
        // With --limit, the container's own limit still holds for its whole working set.
        let container = c.limit.map(|_| {
            Budget::new(status.limit_bytes, c.reserve)
                .or_else(|_| Budget::new(status.limit_bytes, Some(crate::size::SizeSpec::Bytes(0))))
                .unwrap_or(budget)
        });
        check_seconds("--grace", c.grace_s, 0.0)?;
        check_seconds("--sample-interval", c.sample_interval_s, 0.001)?;
        let mem_per_job = c.mem_per_job.map(|s| s.resolve(limit));
        if mem_per_job == Some(0) {
            return Err(crate::exit::usage(
                "--mem-per-job must be more than 0 (e.g. 512M or 10%)",
            ));
        }
        let job_mem_max = c.job_mem_max.map(|s| s.resolve(limit));
        if job_mem_max == Some(0) {
            return Err(crate::exit::usage(
                "--job-mem-max must be more than 0 (e.g. 2G or 25%)",
            ));
        }
        let cap = sched::parallel_cap(c.jobs, status.cpus);

        let history = if c.history {
            History::open_default()
        } else {
            None
        };
        let records = match &history {
            Some(h) => h.load(&plan.template).unwrap_or_else(|e| {
                eprintln!("memsweep: warning: history not used: {e:#}");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let own = own_history(plan, &records);
        let template: Vec<u64> = records.iter().map(|r| r.peak_bytes).collect();

        let n = plan.jobs.len();
        let (attempts, succeeded) = match resume {
            Some(p) => (p.attempts.clone(), p.succeeded.clone()),
            None => (vec![0u32; n], vec![false; n]),
        };
        let queue: Vec<usize> = (0..n).filter(|&j| !succeeded[j]).collect();
        let queue = if own.is_empty() {
            queue
        } else {
            sched::order_by_history(queue, |j| own.get(j).copied().flatten())
        };
        let peaks: Vec<u64> = own.iter().map(|o| o.map_or(0, |(p, _)| p)).collect();
        let walls: Vec<f32> = own
            .iter()
            .map(|o| o.map_or(0.0, |(_, w)| w as f32))
            .collect();
        let estimator = Estimator::new(mem_per_job, peaks, &template).with_walls(walls);
        let sched = sched::Sched::new(
            sched::Config {
                budget,
                container,
                cap,
                on_pressure: c.on_pressure,
                retries: c.retries,
            },
            estimator,
            queue,
            n,
        );
        Ok(Setup {
            budget,
            cap,
            mem_per_job,
            job_mem_max,
            sched,
            attempts,
            done_before: succeeded.iter().filter(|&&s| s).count(),
            history,
            limit_source: if c.limit.is_some() {
                "--limit"
            } else {
                status.source
            },
        })
    }
}

fn check_seconds(flag: &str, v: f64, min: f64) -> anyhow::Result<()> {
    if v.is_finite() && v >= min && v <= 86_400.0 {
        return Ok(());
    }
    Err(crate::exit::usage(format!(
        "{flag} {v}: give a number of seconds between {min} and 86400"
    )))
}

/// Each job's own history: the largest of its recent peaks and the latest wall time (an empty
/// vector when the template has no history).
fn own_history(plan: &SweepPlan, records: &[Record]) -> Vec<Option<(u64, f64)>> {
    // Empty when nothing is known: no per-job state for a sweep without history.
    if records.is_empty() {
        return Vec::new();
    }
    let mut by_key: HashMap<&str, (u64, f64)> = HashMap::new();
    for r in records {
        let e = by_key.entry(r.key.as_str()).or_insert((0, 0.0));
        e.0 = e.0.max(r.peak_bytes);
        e.1 = r.wall_s;
    }
    plan.jobs
        .iter()
        .map(|j| by_key.get(j.key.as_str()).copied().filter(|(p, _)| *p > 0))
        .collect()
}

/// `sweeps/YYYY-MM-DD/HH-MM-SS` (local time), or `--out`. A default directory that already
/// exists (two sweeps in one second) gets a `-N` suffix.
pub(crate) fn create_dir(plan: &SweepPlan) -> anyhow::Result<SweepDir> {
    if let Some(out) = &plan.config.out {
        return SweepDir::create(out, plan);
    }
    let now = jiff::ZonedDateTime::now();
    let base = PathBuf::from("sweeps")
        .join(now.strftime("%Y-%m-%d").to_string())
        .join(now.strftime("%H-%M-%S").to_string());
    let mut path = base.clone();
    for n in 1..100 {
        if !path.exists() {
            break;
        }
        path = PathBuf::from(format!("{}-{n}", base.display()));
    }
    SweepDir::create(&path, plan)
}

/// `--dry-run`: the jobs and the plan, nothing run.
fn print_plan(plan: &SweepPlan, setup: &Setup, status: &MemStatus) {
    use std::fmt::Write as _;
    let mut o = String::new();
    let mut s = setup.sched.clone();
    let b = setup.budget;
    let n_queued = s.queued();
    let order = s.take_queue();
    let _ = writeln!(
        o,
        "{} job{} ({} to run):",
        plan.jobs.len(),
        if plan.jobs.len() == 1 { "" } else { "s" },
        n_queued
    );
    let mut queued = vec![false; plan.jobs.len()];
    for &j in &order {
        queued[j] = true;
    }
    for job in &plan.jobs {
        let mark = if queued[job.id] { "" } else { "  (done)" };
        let _ = writeln!(o, "  {:>4}  {}{mark}", job.id, job.command.display());
    }
    let mut s = setup.sched.clone();
    o.push('\n');
    let _ = writeln!(o, "plan:");
    let _ = writeln!(
        o,
        "  limit     {} ({})",
        human(b.limit),
        match setup.limit_source {
            "--limit" => "--limit".to_string(),
            src => format!("{src}; working set now {}", human(status.working_set_bytes)),
        }
    );
    let _ = writeln!(o, "  reserve   {}", human(b.reserve));
    let _ = writeln!(o, "  budget    {}", human(b.budget));
    let _ = writeln!(
        o,
        "  -j cap    {}",
        setup
            .cap
            .map_or("none (memory only)".to_string(), |c| c.to_string())
    );
    if let Some(m) = setup.job_mem_max {
        let _ = writeln!(o, "  per-job hard cap {}", human(m));
    }
    let _ = writeln!(o, "  estimates (in start order):");
    let mut firm = Vec::new();
    for &j in &order {
        let e = s.estimate(j);
        let bytes = if e.source == Source::Unknown {
            "?".to_string()
        } else {
            human(e.bytes)
        };
        let _ = writeln!(o, "  {:>6}  {:>10}  {}", j, bytes, e.source.as_str());
        if !e.source.is_provisional() {
            firm.push(e.bytes);
        }
    }
    let cap = setup.cap.unwrap_or(usize::MAX);
    let parallel = if firm.len() == order.len() && !firm.is_empty() {
        // How many of the first jobs fit together (at least one always runs).
        let mut sum = 0u64;
        let mut k = 0usize;
        for &e in &firm {
            if k >= cap || sum + e > b.budget {
                break;
            }
            sum += e;
            k += 1;
        }
        format!("about {} at once", k.max(1))
    } else if order.is_empty() {
        "nothing to run".to_string()
    } else {
        "starts with 1 and ramps up as jobs are measured".to_string()
    };
    let _ = writeln!(o, "  expected parallelism: {parallel}");
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), o.as_bytes());
}
