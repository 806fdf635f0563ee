//! `memsweep run`: the engine loop wiring sweep → sched ↔ probe → exec → journal → output.
//!
//! This file resolves what to run (a new plan, or `--resume DIR`) and the numbers to run it with
//! (limit, budget, cap, estimates), prints the plan for `--dry-run`, and hands over to
//! [`engine::Engine`], which owns the loop.

mod engine;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::exec::{Accounting, ExecConfig, Executor};
use crate::exit::Exit;
use crate::history::{History, Record};
use crate::journal::{ResumeState, SweepDir};
use crate::probe::{Fs, MemStatus, Probe};
use crate::sched::{self, Budget, Estimator, Source};
use crate::size::human;
use crate::sweep::{self, Options, Request, SweepPlan};

pub fn run(fs: &Fs, args: RunArgs) -> anyhow::Result<Exit> {
    let request = Request::from(&args);
    let (plan, resumed) = match &args.resume {
        Some(dir) => {
            let (sweep_dir, state) = SweepDir::resume(dir, args.force)?;
            // Keep only what the rerun needs (the events of a big sweep are not small).
            let ResumeState {
                plan,
                succeeded,
                events,
                ..
            } = state;
            let prior = Prior::new(plan.jobs.len(), &succeeded, &events);
            let mut plan = plan;
            // The flags given now over the sweep's recorded options, through the same
            // validation as a fresh run.
            plan.config.resume_with(&request.options);
            plan.config.validate().map_err(crate::exit::usage)?;
            (plan, Some((sweep_dir, prior)))
        }
        None => (sweep::plan(&request)?, None),
    };
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
    if let (Some((dir, _)), true) = (&resumed, setup.done_before == plan.jobs.len()) {
        // Nothing to rerun: say so rather than start (and journal) an empty run.
        crate::errln!(
            "memsweep: every job of {} already succeeded ({n} of {n}); nothing to resume \
             (see `memsweep show {}`)",
            dir.root().display(),
            dir.root().display(),
            n = plan.jobs.len()
        );
        return Ok(Exit::Ok);
    }
    // The executor before the sweep directory: an option it cannot honour stops the run
    // before anything is written.
    let exec = Executor::new(
        ExecConfig {
            no_cgroups: !plan.config.cgroups,
            job_mem_max: setup.job_mem_max,
            sample_interval: Duration::from_secs_f64(plan.config.sample_interval_s),
        },
        probe.layout(),
        probe.fs(),
    )?;
    if let Some(cap) = setup.job_mem_max
        && exec.accounting() == Accounting::Proc
        && !plan.config.best_effort
    {
        return Err(crate::exit::usage(format!(
            "--job-mem-max {} cannot be enforced here: it needs per-job memory cgroups, and jobs \
             would be measured by {}. Run where cgroups are writable, drop --job-mem-max, or pass \
             --best-effort to run without the cap",
            human(cap),
            exec.accounting_note()
        )));
    }
    let (dir, resumed) = match resumed {
        Some((dir, _)) => (dir, true),
        None => (create_dir(&plan)?, false),
    };
    engine::Engine::new(plan, setup, probe, status, dir, exec, resumed)?.run()
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

impl From<&RunArgs> for Request {
    /// The flags as a request: the only place `run` reads clap's struct.
    fn from(a: &RunArgs) -> Request {
        Request {
            command: a.command.clone(),
            params: a.params.clone(),
            jobs_file: a.jobs_file.clone(),
            file: a.file.clone(),
            name: a.name.clone(),
            shell: a.shell,
            link: a.link.clone(),
            options: Options {
                jobs: a.jobs,
                limit: a.limit,
                reserve: a.reserve,
                mem_per_job: a.mem_per_job,
                job_mem_max: a.job_mem_max,
                no_history: a.no_history,
                no_cgroups: a.no_cgroups,
                on_pressure: a.on_pressure,
                retries: a.retries,
                out: a.out.clone(),
                json: a.json,
                grace: a.grace,
                sample_interval: a.sample_interval,
                dry_run: a.dry_run,
                best_effort: a.best_effort,
                timeout: a.timeout,
                fail_fast: a.fail_fast,
                output: a.output,
            },
        }
    }
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
                crate::errln!("memsweep: warning: history not used: {e:#}");
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
fn create_dir(plan: &SweepPlan) -> anyhow::Result<SweepDir> {
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
    let _ = std::io::Write::write_all(&mut crate::output::stdio::stdout(), o.as_bytes());
}
