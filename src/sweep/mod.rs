//! From what the user wrote to a list of jobs: command templates, parameter grids (`a=1,2`,
//! `range()`, `@file`), jobs files and sweep.toml, merged into one validated [`SweepPlan`]. Pure
//! apart from reading the files it is pointed at.
//!
//! Files: `template` (placeholders, rendering), `params` (value syntax, the product), `quote`
//! (sh quoting), `jobsfile`, `spec` (sweep.toml), `check` (option bounds). The format of
//! sweep.toml is documented in docs/sweep-toml.md.

mod check;
mod jobsfile;
mod params;
mod quote;
mod spec;
mod template;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::{OnPressure, RunArgs};
use crate::size::SizeSpec;

/// How a job's command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobCommand {
    /// Executed directly (no shell); values were substituted into single arguments.
    Argv(Vec<String>),
    /// Run by `sh -c` (jobs files, `--shell`).
    Shell(String),
}

impl JobCommand {
    /// A one-line rendering for tables and logs (argv shell-quoted where needed).
    pub fn display(&self) -> String {
        match self {
            JobCommand::Argv(argv) => quote::join_argv(argv),
            JobCommand::Shell(s) => s.clone(),
        }
    }
}

/// One job of the sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// 0-based, in sweep order; also the job's folder name (`DIR/0/`), as in Hydra.
    pub id: usize,
    pub command: JobCommand,
    /// The parameter values of this job, in `-p` order.
    pub params: Vec<(String, String)>,
    /// History key for this exact job (the rendered command), so a rerun predicts its own peak.
    pub key: String,
}

/// Every `run` option after merging sweep.toml and flags; sizes stay specs until the limit is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// None: default (effective CPUs); Some(0): no cap but memory.
    pub jobs: Option<usize>,
    pub limit: Option<u64>,
    pub reserve: Option<SizeSpec>,
    pub mem_per_job: Option<SizeSpec>,
    pub job_mem_max: Option<SizeSpec>,
    pub history: bool,
    pub cgroups: bool,
    pub on_pressure: OnPressure,
    pub retries: u32,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub grace_s: f64,
    pub sample_interval_s: f64,
    pub dry_run: bool,
}

/// A sweep ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    pub jobs: Vec<Job>,
    pub config: RunConfig,
    /// The command as written (template or jobs file path); the history groups jobs by it.
    pub template: String,
}

/// Build the plan from the flags (and the sweep.toml they name). Errors are
/// [`crate::exit::UsageError`]s naming the flag, file or line at fault.
pub fn plan(args: &RunArgs) -> anyhow::Result<SweepPlan> {
    // An empty base leaves relative paths relative, so messages show them as the user wrote them.
    plan_with(args, Path::new(""), &mut std::io::stdin().lock())
}

/// [`plan`] with the directory that `-p NAME=@file`, `--jobs-file` and `-f` are relative to, and
/// the reader behind `--jobs-file -`.
pub fn plan_with(args: &RunArgs, cwd: &Path, stdin: &mut dyn Read) -> anyhow::Result<SweepPlan> {
    build(args, cwd, stdin).map_err(crate::exit::usage)
}

/// What produces the jobs, after sweep.toml and flags are merged.
enum Source {
    Argv(Vec<String>),
    Shell(String),
    JobsFile(PathBuf),
}

fn build(args: &RunArgs, cwd: &Path, stdin: &mut dyn Read) -> Result<SweepPlan, String> {
    let spec = match &args.file {
        Some(f) => spec::load(&cwd.join(f))?,
        None => spec::Spec::default(),
    };
    let shell = args.shell || spec.shell;

    // A jobs source on the command line replaces the file's (command or jobs-file).
    let (source, cmd_origin) = if !args.command.is_empty() {
        if args.jobs_file.is_some() {
            return Err("give either the command after -- or --jobs-file, not both".into());
        }
        let src = if shell {
            Source::Shell(args.command.join(" "))
        } else {
            Source::Argv(args.command.clone())
        };
        (src, "the command after --".to_string())
    } else if let Some(j) = &args.jobs_file {
        let path = if j.as_os_str() == "-" { j.clone() } else { cwd.join(j) };
        (Source::JobsFile(path), "--jobs-file".to_string())
    } else {
        let origin = format!("{}: command", spec.path.display());
        match (&spec.command, &spec.jobs_file) {
            (Some(spec::SpecCommand::Argv(a)), _) if shell => (Source::Shell(a.join(" ")), origin),
            (Some(spec::SpecCommand::Argv(a)), _) => (Source::Argv(a.clone()), origin),
            (Some(spec::SpecCommand::Shell(s)), _) => (Source::Shell(s.clone()), origin),
            (None, Some(j)) => (Source::JobsFile(j.clone()), format!("{}: jobs-file", spec.path.display())),
            (None, None) if args.file.is_some() => {
                return Err(format!(
                    "{}: no command: add command = [\"prog\", \"arg\", ...] or jobs-file = \"FILE\", \
                     or give the command after --",
                    spec.path.display()
                ));
            }
            (None, None) => {
                return Err("nothing to run: give the command after --, e.g. memsweep run -p \
                            lr=0.1,0.01 -- python train.py --lr {lr}; or --jobs-file FILE; or -f \
                            sweep.toml"
                    .into());
            }
        }
    };

    // sweep.toml's parameters first, in file order; a -p of the same name replaces one in place,
    // a new name is appended.
    let mut params = spec.params.clone();
    let mut given: Vec<&params::Param> = Vec::new();
    let parsed: Vec<params::Param> = args
        .params
        .iter()
        .map(|a| params::parse_flag(a, cwd))
        .collect::<Result<_, _>>()?;
    for p in &parsed {
        if let Some(first) = given.iter().find(|g| g.name == p.name) {
            return Err(format!(
                "{}: parameter {} is already given by {}; give all its values in one flag, e.g. \
                 -p {}=a,b,c",
                p.origin, p.name, first.origin, p.name
            ));
        }
        given.push(p);
        match params.iter_mut().find(|q| q.name == p.name) {
            Some(slot) => *slot = p.clone(),
            None => params.push(p.clone()),
        }
    }

    let name = match (&args.name, &spec.name) {
        (Some(n), _) => {
            check::name(n).map_err(|e| format!("--name: {e}"))?;
            Some(n.clone())
        }
        (None, n) => n.clone(),
    };

    let (jobs, written) = match source {
        Source::Argv(argv) => {
            let t = template::Template::argv(&argv).map_err(|e| format!("{cmd_origin}: {e}"))?;
            let written = template_text(&argv);
            (jobs_from_template(&t, &params, &cmd_origin, spec.path.as_os_str().is_empty())?, written)
        }
        Source::Shell(script) => {
            let t = template::Template::shell(&script).map_err(|e| format!("{cmd_origin}: {e}"))?;
            (jobs_from_template(&t, &params, &cmd_origin, spec.path.as_os_str().is_empty())?, script)
        }
        Source::JobsFile(path) => {
            if let Some(p) = params.first() {
                return Err(format!(
                    "{}: parameters fill {{name}} placeholders in a command, but the jobs come \
                     from a jobs file ({}); remove the parameters or use a command template",
                    p.origin,
                    path.display()
                ));
            }
            jobs_from_file(&path, stdin)?
        }
    };

    Ok(SweepPlan {
        jobs,
        config: config(args, &spec)?,
        template: name.unwrap_or(written),
    })
}

/// The command as written, for the history's grouping: quoted where needed, placeholders bare.
fn template_text(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(|c| "{}".contains(c) || quote::quote(&c.to_string()).len() == 1) {
                w.clone()
            } else {
                quote::quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn jobs_from_template(
    t: &template::Template,
    params: &[params::Param],
    cmd_origin: &str,
    no_file: bool,
) -> Result<Vec<Job>, String> {
    // Each placeholder's parameter, by position in `params`.
    let mut slot_param = Vec::with_capacity(t.names().len());
    for name in t.names() {
        match params.iter().position(|p| &p.name == name) {
            Some(i) => slot_param.push(i),
            None => {
                let known: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                let known = if known.is_empty() {
                    "no parameters are given".to_string()
                } else {
                    format!("parameters given: {}", known.join(", "))
                };
                let how = if no_file {
                    format!("add -p {name}=VALUES")
                } else {
                    format!("add -p {name}=VALUES or {name} = ... under [params]")
                };
                return Err(format!(
                    "{cmd_origin}: uses {{{name}}} but there is no parameter {name} ({known}); \
                     {how}, or write {{{{{name}}}}} for literal braces"
                ));
            }
        }
    }
    // An unused parameter would run the same command once per value: an error, because it is
    // almost always a misspelt placeholder, and identical jobs would share one history key.
    if let Some(p) = params.iter().find(|p| !t.names().contains(&p.name)) {
        return Err(format!(
            "{}: the command has no {{{}}} placeholder, so its {} value(s) would all run the same \
             command; use {{{}}} in the command or drop the parameter (to repeat a command N \
             times, pass the counter, e.g. env RUN={{{}}} CMD ...)",
            p.origin,
            p.name,
            p.values.len(),
            p.name,
            p.name
        ));
    }
    let total = params::product_len(params)?;
    let lens: Vec<usize> = params.iter().map(|p| p.values.len()).collect();
    let mut jobs = Vec::with_capacity(total);
    let mut slot_values: Vec<&str> = vec![""; slot_param.len()];
    for (id, combo) in params::product(&lens).enumerate() {
        for (slot, &pi) in slot_param.iter().enumerate() {
            slot_values[slot] = &params[pi].values[combo[pi]];
        }
        let command = if t.is_shell() {
            JobCommand::Shell(t.render_shell(&slot_values))
        } else {
            JobCommand::Argv(t.render_argv(&slot_values))
        };
        let params = params
            .iter()
            .zip(&combo)
            .map(|(p, &i)| (p.name.clone(), p.values[i].clone()))
            .collect();
        jobs.push(Job {
            id,
            key: command.display(),
            command,
            params,
        });
    }
    Ok(jobs)
}

fn jobs_from_file(path: &Path, stdin: &mut dyn Read) -> Result<(Vec<Job>, String), String> {
    let (text, label, written) = if path.as_os_str() == "-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|e| format!("--jobs-file -: cannot read stdin: {e}"))?;
        (text, "<stdin>".to_string(), "jobs-file:-".to_string())
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--jobs-file {}: cannot read it: {e}", path.display()))?;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        (text, path.display().to_string(), format!("jobs-file:{}", canon.display()))
    };
    let entries = jobsfile::parse(&text, &label)?;
    if entries.is_empty() {
        return Err(format!(
            "{label}: no jobs: every line is blank or a # comment; write one shell command a line"
        ));
    }
    let jobs = entries
        .into_iter()
        .enumerate()
        .map(|(id, e)| Job {
            id,
            key: e.key.unwrap_or_else(|| e.command.display()),
            command: e.command,
            params: e.params,
        })
        .collect();
    Ok((jobs, written))
}

/// Merge options: a flag given on the command line beats sweep.toml, which beats the default.
fn config(args: &RunArgs, spec: &spec::Spec) -> Result<RunConfig, String> {
    fn flag(name: &'static str) -> impl Fn(String) -> String {
        move |e| format!("{name}: {e}")
    }
    let jobs = match args.jobs {
        Some(n) => Some(check::jobs(n).map_err(flag("-j"))?),
        None => spec.jobs,
    };
    let limit = match args.limit {
        Some(b) => Some(check::limit(b).map_err(flag("--limit"))?),
        None => spec.limit,
    };
    let retries = match args.retries {
        Some(n) => check::retries(n).map_err(flag("--retries"))?,
        None => spec.retries.unwrap_or(3),
    };
    let grace_s = match args.grace {
        Some(s) => check::grace(s).map_err(flag("--grace"))?,
        None => spec.grace.unwrap_or(10.0),
    };
    let sample_interval_s = match args.sample_interval {
        Some(s) => check::sample_interval(s).map_err(flag("--sample-interval"))?,
        None => spec.sample_interval.unwrap_or(0.2),
    };
    let mem_per_job = args.mem_per_job.or(spec.mem_per_job);
    let job_mem_max = args.job_mem_max.or(spec.job_mem_max);
    if let (Some(SizeSpec::Bytes(est)), Some(SizeSpec::Bytes(max))) = (mem_per_job, job_mem_max)
        && max < est
    {
        return Err(format!(
            "--job-mem-max ({}) is below --mem-per-job ({}): every job would be killed at its \
             cap before reaching its expected peak; raise --job-mem-max or lower --mem-per-job",
            crate::size::human(max),
            crate::size::human(est)
        ));
    }
    Ok(RunConfig {
        jobs,
        limit,
        reserve: args.reserve.or(spec.reserve),
        mem_per_job,
        job_mem_max,
        history: !(args.no_history || spec.no_history),
        cgroups: !(args.no_cgroups || spec.no_cgroups),
        on_pressure: args.on_pressure.or(spec.on_pressure).unwrap_or(OnPressure::Pause),
        retries,
        out: args.out.clone().or_else(|| spec.out.clone()),
        json: args.json || spec.json,
        grace_s,
        sample_interval_s,
        dry_run: args.dry_run,
    })
}
