//! `memsweep run`: the engine loop wiring sweep → sched ↔ probe → exec → journal → output.
//!
//! This file resolves what to run (a new plan, or `--resume DIR`) and the numbers to run it with
//! (limit, budget, cap, estimates), prints the plan for `--dry-run`, and hands over to
//! [`engine::Engine`], which owns the loop.

mod engine;
mod slurm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::exec::{Accounting, ExecConfig, Executor};
use crate::exit::Exit;
use crate::history::{History, Record};
use crate::journal::{ResumeState, SweepDir};
use crate::probe::{Fs, MemStatus, Probe};
use crate::sched::features::{self, Features, Written};
use crate::sched::similar::Similar;
use crate::sched::{self, Budget, Estimator, Profile, Source};
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
            if let Some(b) = request.options.backend
                && b != plan.config.backend
            {
                return Err(crate::exit::usage(format!(
                    "--backend {}: this sweep ran with --backend {}; a resumed sweep keeps its \
                     backend (start a new sweep to switch; the history carries what it learned)",
                    b.as_str(),
                    plan.config.backend.as_str()
                )));
            }
            // The flags given now over the sweep's recorded options, through the same
            // validation as a fresh run.
            plan.config.resume_with(&request.options);
            plan.config.validate().map_err(crate::exit::usage)?;
            (plan, Some((sweep_dir, prior)))
        }
        None => (sweep::plan(&request)?, None),
    };
    if let Some((i, _)) = plan.jobs.iter().enumerate().find(|(i, j)| j.id() != *i) {
        anyhow::bail!("internal error: job ids are not 0..n (position {i}); please report this");
    }
    let probe = Probe::new(fs.clone())?;
    let status = probe.status()?;
    let setup = Setup::new(&plan, &status, resumed.as_ref().map(|(_, p)| p))?;

    if plan.config.backend == crate::cli::Backend::Slurm {
        let cluster = crate::slurm::Cluster::connect()?;
        if plan.config.dry_run {
            return slurm::dry_run(&plan, setup, &cluster);
        }
        let (dir, prior) = match resumed {
            Some((dir, prior)) => (dir, Some(prior)),
            None => (create_dir(&plan)?, None),
        };
        return slurm::SlurmRun::new(plan, setup, cluster, dir, prior)?.run();
    }
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
    /// Slurm backend: each job's last submitted attempt that has no end yet (attempt, slurm id,
    /// --mem): it may still be queued or running, so it is re-attached, not submitted again.
    open: Vec<Option<(u32, String, u64)>>,
    /// Slurm backend: the --mem of each job's last attempt and whether it ran out of it.
    last_mem: Vec<Option<(u64, bool)>>,
}

impl Prior {
    fn new(n: usize, succeeded: &[usize], events: &[crate::journal::Event]) -> Prior {
        use crate::journal::replay::{End, Step};
        use crate::journal::{Event, JobStatus, Replay};
        let mut p = Prior {
            attempts: vec![0; n],
            succeeded: vec![false; n],
            open: vec![None; n],
            last_mem: vec![None; n],
        };
        // Attempts through the one reading of starts and ends (`journal::replay`). A Slurm
        // attempt stays open across a runner's restart (it outlives the runner) until its end.
        let mut replay = Replay::default();
        for e in events {
            replay.step(e, |step| match step {
                Step::Start { job, attempt } if job < n => {
                    let Event::JobStart {
                        estimate_bytes,
                        slurm_id,
                        ..
                    } = e
                    else {
                        return;
                    };
                    p.attempts[job] += 1;
                    p.open[job] = slurm_id
                        .clone()
                        .map(|id| (attempt, id, estimate_bytes.unwrap_or(0)));
                    p.last_mem[job] = estimate_bytes.map(|m| (m, false));
                }
                Step::End { job, end, .. } if job < n => match end {
                    End::Ended(ev) => {
                        p.open[job] = None;
                        if let (Event::JobEnd { status, .. }, Some((_, oom))) =
                            (ev, &mut p.last_mem[job])
                        {
                            *oom = *status == JobStatus::Oom;
                        }
                    }
                    End::Requeued { .. } | End::Restarted => p.open[job] = None,
                    // Open at a run's end: a local attempt died with its runner (never open
                    // here); a Slurm one may still be queued or running.
                    End::Interrupted => {}
                },
                _ => {}
            });
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
                backend: a.backend,
                slurm_args: (!a.slurm_args.is_empty()).then(|| a.slurm_args.clone()),
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
    /// Each job's features as history records them, where they are not its parameters (a
    /// plain jobs file's command words); empty without history, or when every job's
    /// parameters are its features (read from the plan when a record is made).
    pub features: Vec<Features>,
    pub limit_source: &'static str,
}

impl Setup {
    /// The history record of `job`, which succeeded with `peak` (None without history): the
    /// same for a local and a Slurm run, so each teaches the other.
    pub fn history_record(
        &self,
        plan: &SweepPlan,
        job: usize,
        peak: u64,
        wall_s: f64,
        profile: Option<Profile>,
    ) -> Option<Record> {
        self.history.as_ref()?;
        Some(Record {
            template: plan.template.clone(),
            key: plan.jobs.at(job).key().into_owned(),
            peak_bytes: peak,
            wall_s,
            t: crate::journal::epoch_now(),
            params: Some(match self.features.get(job) {
                Some(f) => f.clone(),
                None => plan
                    .jobs
                    .at(job)
                    .params()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            }),
            profile,
        })
    }

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
        // A `-p` sweep's (or Hydra's) parameters are its features as they stand, read in
        // place from the plan: no copy of them per job.
        let computed = if plan.jobs.iter().all(|j| j.has_params()) {
            Vec::new()
        } else {
            job_features(plan)
        };
        let n = plan.jobs.len();
        let feats = |i: usize| -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
            if computed.is_empty() {
                Box::new(plan.jobs.at(i).params())
            } else {
                Box::new(features::pairs(&computed[i]))
            }
        };
        let idents: Vec<String> = if history.is_some() {
            (0..n).map(|i| features::ident_of(feats(i))).collect()
        } else {
            Vec::new()
        };
        let records = match &history {
            Some(h) => load_history(h, plan, &idents).unwrap_or_else(|e| {
                crate::errln!("memsweep: warning: history not used: {e:#}");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let record_feats = record_features(&records);
        let own = own_history(&idents, &records, &record_feats);
        let template: Vec<u64> = records
            .iter()
            .filter(|r| r.template == plan.template)
            .map(|r| r.peak_bytes)
            .collect();
        let mut similar = Similar::from_pairs(n, feats);
        for (r, f) in records.iter().zip(&record_feats) {
            similar.learn_history(f, r.peak_bytes, r.profile, r.wall_s as f32);
        }

        let (attempts, succeeded) = match resume {
            Some(p) => (p.attempts.clone(), p.succeeded.clone()),
            None => (vec![0u32; n], vec![false; n]),
        };
        let queue: Vec<usize> = (0..n).filter(|&j| !succeeded[j]).collect();
        let queue = if own.is_empty() {
            queue
        } else {
            sched::order_by_history(queue, |j| {
                own.get(j).copied().flatten().map(|(p, w, _)| (p, w))
            })
        };
        let peaks: Vec<u64> = own.iter().map(|o| o.map_or(0, |(p, _, _)| p)).collect();
        let walls: Vec<f32> = own
            .iter()
            .map(|o| o.map_or(0.0, |(_, w, _)| w as f32))
            .collect();
        let profiles: Vec<Option<Profile>> = if own.iter().any(|o| o.is_some_and(|o| o.2.is_some()))
        {
            own.iter().map(|o| o.and_then(|o| o.2)).collect()
        } else {
            Vec::new()
        };
        let estimator = Estimator::new(mem_per_job, peaks, &template)
            .with_walls(walls)
            .with_profiles(profiles)
            .with_similar(similar);
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
            features: if history.is_some() {
                computed
            } else {
                Vec::new()
            },
            history,
            limit_source: if c.limit.is_some() {
                "--limit"
            } else {
                status.source
            },
        })
    }
}

/// Each job's parameters: its `-p` values or Hydra overrides, else its command's words with the
/// parts that vary from run to run aligned (`sched::features`).
fn job_features(plan: &SweepPlan) -> Vec<Features> {
    features::features_each(plan.jobs.len(), |i, f| {
        let j = plan.jobs.at(i);
        let params: Vec<(&str, &str)> = j.params().collect();
        let shell_words;
        let words: Vec<&str> = if !params.is_empty() {
            Vec::new()
        } else if j.is_shell() {
            shell_words = features::split_words(&j.display());
            shell_words.iter().map(String::as_str).collect()
        } else {
            j.words().collect()
        };
        f(&Written { params, words });
    })
}

/// This template's history and, for a jobs file, that of other jobs files (renamed or
/// regenerated elsewhere) that ran at least one of the same jobs.
fn load_history(h: &History, plan: &SweepPlan, idents: &[String]) -> anyhow::Result<Vec<Record>> {
    const JOBS_FILE: &str = "jobs-file:";
    if !plan.template.starts_with(JOBS_FILE) {
        return h.load(&plan.template);
    }
    let all = h.load_with(&plan.template, |t| t.starts_with(JOBS_FILE))?;
    let feats = record_features(&all);
    let mine: std::collections::HashSet<&str> = idents.iter().map(String::as_str).collect();
    let related: std::collections::HashSet<&str> = all
        .iter()
        .zip(&feats)
        .filter(|(r, f)| r.template != plan.template && mine.contains(features::ident(f).as_str()))
        .map(|(r, _)| r.template.as_str())
        .collect();
    let keep: Vec<bool> = all
        .iter()
        .map(|r| r.template == plan.template || related.contains(r.template.as_str()))
        .collect();
    Ok(all
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(r, _)| r)
        .collect())
}

/// Each record's parameters: as recorded, or for older records (which kept only the command)
/// read from its command the way a jobs file is, aligned over the records of its template.
fn record_features(records: &[Record]) -> Vec<Features> {
    let mut out: Vec<Option<Features>> = records.iter().map(|r| r.params.clone()).collect();
    let mut by_template: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.params.is_none() {
            by_template.entry(r.template.as_str()).or_default().push(i);
        }
    }
    for idx in by_template.values() {
        let keys: Vec<&str> = idx.iter().map(|&i| records[i].key.as_str()).collect();
        for (&i, f) in idx.iter().zip(features::from_lines(&keys)) {
            out[i] = Some(f);
        }
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// Each job's own history, matched by its parameters: the largest of its recent peaks, the
/// latest run time (pauses excluded) and profile (an empty vector when nothing matches).
fn own_history(
    idents: &[String],
    records: &[Record],
    feats: &[Features],
) -> Vec<Option<(u64, f64, Option<Profile>)>> {
    // Empty when nothing is known: no per-job state for a sweep without history.
    if records.is_empty() {
        return Vec::new();
    }
    let mut by_ident: HashMap<String, (u64, f64, Option<Profile>)> = HashMap::new();
    for (r, f) in records.iter().zip(feats) {
        let e = by_ident.entry(features::ident(f)).or_insert((0, 0.0, None));
        e.0 = e.0.max(r.peak_bytes);
        // The time it ran, not counting pauses (its profile's span): a job paused for seconds
        // in the run that recorded it is not that much longer, and planning with its wall
        // time left it for the end of the next run.
        e.1 = r
            .profile
            .map(|p| p.run_s)
            .filter(|&s| s > 0.0)
            .map_or(r.wall_s, f64::from);
        e.2 = r.profile.or(e.2);
    }
    let own: Vec<_> = idents
        .iter()
        .map(|i| by_ident.get(i).cloned().filter(|(p, _, _)| *p > 0))
        .collect();
    if own.iter().all(Option::is_none) {
        return Vec::new();
    }
    own
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
    for job in plan.jobs.iter() {
        let mark = if queued[job.id()] { "" } else { "  (done)" };
        let _ = writeln!(o, "  {:>4}  {}{mark}", job.id(), job.display());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(wall_s: f64, run_s: Option<f32>) -> Record {
        Record {
            template: "t".into(),
            key: "job 1".into(),
            peak_bytes: 100 << 20,
            wall_s,
            t: 0.0,
            params: Some(vec![("x".into(), "1".into())]),
            profile: run_s.map(|run_s| Profile {
                run_s,
                t_peak_s: 0.1,
                seg: [1000; crate::sched::profile::SEGMENTS],
            }),
        }
    }

    #[test]
    fn a_jobs_own_run_time_leaves_out_the_time_it_spent_paused() {
        // Recorded by a run that paused it for 2.4 s of its 4 s: it runs 1.6 s.
        let records = [record(4.0, Some(1.6))];
        let feats = record_features(&records);
        let idents = vec![features::ident(&feats[0])];
        let own = own_history(&idents, &records, &feats);
        let (_, wall, _) = own[0].unwrap();
        assert!((wall - 1.6).abs() < 1e-6, "{wall}");
        // A record without a profile (Slurm, older files) has only its wall time.
        let records = [record(4.0, None)];
        let own = own_history(&idents, &records, &feats);
        assert_eq!(own[0].unwrap().1, 4.0);
    }
}
