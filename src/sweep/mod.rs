//! From what the user wrote to a list of jobs: command templates, parameter grids (`a=1,2`,
//! `range()`, `@file`), jobs files and sweep.toml, merged into one validated [`SweepPlan`]. Pure
//! apart from reading the files it is pointed at.
//!
//! Files: `template` (placeholders, rendering), `params` (value syntax, the product), `quote`
//! (sh quoting), `jobsfile`, `joblist` (the plan's jobs, packed), `spec` (sweep.toml), `check`
//! (option bounds). The format of sweep.toml is documented in docs/sweep-toml.md.

pub mod check;
mod joblist;
mod jobsfile;
mod params;
#[cfg(test)]
mod props;
mod quote;
mod spec;
mod template;

pub use joblist::{JobList, JobRef};
pub use quote::quote;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::{Backend, OutputMode};
use crate::sched::OnPressure;
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

/// One job of the sweep, built: a plan keeps its jobs packed in a [`JobList`] and builds one
/// when it is spawned, shown or written out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "JobRecord", into = "JobRecord")]
pub struct Job {
    /// 0-based, in sweep order; also the job's folder name (`DIR/0/`), as in Hydra.
    pub id: usize,
    pub command: JobCommand,
    /// The parameter values of this job, in `-p` order.
    pub params: Vec<(String, String)>,
    /// The history key when it is not the rendered command (a jobs file's JSON `key`); see
    /// [`Job::key`]. Not kept when it is: that copy was a sixth of a big plan.
    pub own_key: Option<Box<str>>,
}

impl Job {
    /// A job whose history key is `key` (None: its rendered command).
    pub fn new(
        id: usize,
        command: JobCommand,
        params: Vec<(String, String)>,
        key: Option<String>,
    ) -> Job {
        let own_key = key
            .filter(|k| *k != command.display())
            .map(String::into_boxed_str);
        Job {
            id,
            command,
            params,
            own_key,
        }
    }

    /// History key for this exact job (the rendered command, unless the jobs file gave one), so a
    /// rerun predicts its own peak.
    pub fn key(&self) -> std::borrow::Cow<'_, str> {
        match &self.own_key {
            Some(k) => std::borrow::Cow::Borrowed(k),
            None => std::borrow::Cow::Owned(self.command.display()),
        }
    }
}

/// A job as `sweep.json` holds it: the key always written out.
#[derive(Serialize, Deserialize)]
struct JobRecord {
    id: usize,
    command: JobCommand,
    params: Vec<(String, String)>,
    key: String,
}

impl From<JobRecord> for Job {
    fn from(r: JobRecord) -> Job {
        Job::new(r.id, r.command, r.params, Some(r.key))
    }
}

impl From<Job> for JobRecord {
    fn from(j: Job) -> JobRecord {
        JobRecord {
            key: j.key().into_owned(),
            id: j.id,
            command: j.command,
            params: j.params,
        }
    }
}

/// What the user asked to run: where the jobs come from and the options given with it, from
/// the command line or any front end that speaks its flags (the Python API, the Hydra
/// launcher). [`plan`] turns it into a validated [`SweepPlan`]; nothing here is checked yet.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The command template (after `--`).
    pub command: Vec<String>,
    /// `-p NAME=VALUES`, as written.
    pub params: Vec<String>,
    pub jobs_file: Option<PathBuf>,
    /// A sweep.toml whose command, parameters and options the rest is laid over.
    pub file: Option<PathBuf>,
    pub name: Option<String>,
    pub shell: bool,
    /// `--link a,b`, as written.
    pub link: Vec<String>,
    pub options: Options,
}

/// The `run` options one source gives (flags, sweep.toml); `None` or `false`: not given there.
/// Sources are laid over each other with [`RunConfig::apply`]; the result passes the one
/// validation, [`RunConfig::validate`], whatever its sources (a fresh run, or `--resume`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub jobs: Option<usize>,
    pub limit: Option<u64>,
    pub reserve: Option<SizeSpec>,
    pub mem_per_job: Option<SizeSpec>,
    pub job_mem_max: Option<SizeSpec>,
    pub no_history: bool,
    pub no_cgroups: bool,
    pub on_pressure: Option<OnPressure>,
    pub retries: Option<u32>,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub grace: Option<f64>,
    pub sample_interval: Option<f64>,
    pub dry_run: bool,
    pub best_effort: bool,
    /// `--timeout`, in seconds.
    pub timeout: Option<f64>,
    pub fail_fast: bool,
    pub output: Option<OutputMode>,
    pub backend: Option<Backend>,
    /// `--slurm-arg`s / `[slurm] args` (None: not given here).
    pub slurm_args: Option<Vec<String>>,
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
    /// Where the jobs run (sweep directories of older versions are local).
    #[serde(default)]
    pub backend: Backend,
    /// sbatch options added to every submission (`--slurm-arg`, `[slurm] args`).
    #[serde(default)]
    pub slurm_args: Vec<String>,
    /// Run even where an option cannot be honoured here (each downgrade printed and journaled).
    #[serde(default)]
    pub best_effort: bool,
    /// `--timeout`: seconds a job may run (not counting time paused by memsweep).
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// `--fail-fast`: start no more jobs after the first failure.
    #[serde(default)]
    pub fail_fast: bool,
    /// `--output`.
    #[serde(default)]
    pub output: OutputMode,
    /// `--link` groups, as given (the jobs already pair their values).
    #[serde(default)]
    pub links: Vec<Vec<String>>,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            jobs: None,
            limit: None,
            reserve: None,
            mem_per_job: None,
            job_mem_max: None,
            history: true,
            cgroups: true,
            on_pressure: OnPressure::Pause,
            retries: 3,
            out: None,
            json: false,
            grace_s: 10.0,
            sample_interval_s: 0.2,
            dry_run: false,
            best_effort: false,
            timeout_s: None,
            fail_fast: false,
            output: OutputMode::Files,
            links: Vec::new(),
            backend: Backend::Local,
            slurm_args: Vec::new(),
        }
    }
}

impl RunConfig {
    /// Lay one source's options over this config: what it gives wins.
    pub fn apply(&mut self, o: &Options) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        fn set_opt<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
            if v.is_some() {
                slot.clone_from(v);
            }
        }
        set_opt(&mut self.jobs, &o.jobs);
        set_opt(&mut self.limit, &o.limit);
        set_opt(&mut self.reserve, &o.reserve);
        set_opt(&mut self.mem_per_job, &o.mem_per_job);
        set_opt(&mut self.job_mem_max, &o.job_mem_max);
        set_opt(&mut self.out, &o.out);
        set(&mut self.on_pressure, &o.on_pressure);
        set(&mut self.retries, &o.retries);
        set(&mut self.grace_s, &o.grace);
        set(&mut self.sample_interval_s, &o.sample_interval);
        set_opt(&mut self.timeout_s, &o.timeout);
        set(&mut self.output, &o.output);
        set(&mut self.backend, &o.backend);
        set(&mut self.slurm_args, &o.slurm_args);
        self.history &= !o.no_history;
        self.cgroups &= !o.no_cgroups;
        self.json |= o.json;
        self.dry_run |= o.dry_run;
        self.best_effort |= o.best_effort;
        self.fail_fast |= o.fail_fast;
    }

    /// The options of a `--resume` invocation over the sweep's recorded config. How this
    /// invocation talks, whether it runs at all and what it tolerates are its own choice.
    pub fn resume_with(&mut self, o: &Options) {
        self.json = false;
        self.dry_run = false;
        self.best_effort = false;
        self.apply(o);
    }

    /// The one validation every config passes, from whatever sources it was merged (flags,
    /// sweep.toml, a resumed sweep's sweep.json). Messages name the flag at fault.
    pub fn validate(&self) -> Result<(), String> {
        fn flag<T>(name: &'static str, r: Result<T, String>) -> Result<T, String> {
            r.map_err(|e| format!("{name}: {e}"))
        }
        if let Some(n) = self.jobs {
            flag("-j", check::jobs(n))?;
        }
        if let Some(b) = self.limit {
            flag("--limit", check::limit(b))?;
        }
        flag("--retries", check::retries(self.retries))?;
        flag("--grace", check::grace(self.grace_s))?;
        flag(
            "--sample-interval",
            check::sample_interval(self.sample_interval_s),
        )?;
        if let Some(t) = self.timeout_s {
            flag("--timeout", check::timeout_secs(t))?;
        }
        flag("--reserve", check::size(self.reserve, true))?;
        flag("--mem-per-job", check::size(self.mem_per_job, false))?;
        flag("--job-mem-max", check::size(self.job_mem_max, false))?;
        check::slurm_args(self.backend, &self.slurm_args)?;
        if let (Some(SizeSpec::Bytes(est)), Some(SizeSpec::Bytes(max))) =
            (self.mem_per_job, self.job_mem_max)
            && max < est
        {
            return Err(format!(
                "--job-mem-max ({}) is below --mem-per-job ({}): every job would be killed at its \
                 cap before reaching its expected peak; raise --job-mem-max or lower --mem-per-job",
                crate::size::human(max),
                crate::size::human(est)
            ));
        }
        Ok(())
    }
}

/// A sweep ready to run (`sweep.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// [`crate::journal::SCHEMA_VERSION`] (absent before version 1).
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    pub jobs: JobList,
    pub config: RunConfig,
    /// The command as written (template or jobs file path); the history groups jobs by it.
    pub template: String,
}

fn schema_version() -> u32 {
    crate::journal::SCHEMA_VERSION
}

/// Build the plan from a request (and the sweep.toml it names). Errors are
/// [`crate::exit::UsageError`]s naming the flag, file or line at fault.
pub fn plan(args: &Request) -> anyhow::Result<SweepPlan> {
    // An empty base leaves relative paths relative, so messages show them as the user wrote them.
    plan_with(args, Path::new(""), &mut std::io::stdin().lock())
}

/// Read sweep.toml text as `-f` would (errors name `path` and the line), without planning or
/// running anything: the entry of the `sweep_toml` fuzz target (fuzz/).
pub fn check_sweep_toml(src: &str, path: &Path) -> Result<(), String> {
    spec::parse(src, path).map(|_| ())
}

/// [`plan`] with the directory that `-p NAME=@file`, `--jobs-file` and `-f` are relative to, and
/// the reader behind `--jobs-file -`.
pub fn plan_with(args: &Request, cwd: &Path, stdin: &mut dyn Read) -> anyhow::Result<SweepPlan> {
    build(args, cwd, stdin).map_err(crate::exit::usage)
}

/// What produces the jobs, after sweep.toml and flags are merged.
enum Source {
    Argv(Vec<String>),
    Shell(String),
    JobsFile(PathBuf),
}

fn build(args: &Request, cwd: &Path, stdin: &mut dyn Read) -> Result<SweepPlan, String> {
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
        let path = if j.as_os_str() == "-" {
            j.clone()
        } else {
            cwd.join(j)
        };
        (Source::JobsFile(path), "--jobs-file".to_string())
    } else {
        let origin = spec.command_at.clone();
        match (&spec.command, &spec.jobs_file) {
            (Some(spec::SpecCommand::Argv(a)), _) if shell => (Source::Shell(a.join(" ")), origin),
            (Some(spec::SpecCommand::Argv(a)), _) => (Source::Argv(a.clone()), origin),
            (Some(spec::SpecCommand::Shell(s)), _) => (Source::Shell(s.clone()), origin),
            (None, Some(j)) => (
                Source::JobsFile(j.clone()),
                format!("{}: jobs-file", spec.path.display()),
            ),
            (None, None) if args.file.is_some() => {
                return Err(format!(
                    "{}: no command: add command = [\"prog\", \"arg\", ...] or jobs-file = \"FILE\", \
                     or give the command after --",
                    spec.path.display()
                ));
            }
            (None, None) => {
                return Err(
                    "nothing to run: give the command after --, e.g. memsweep run -p \
                            lr=0.1,0.01 -- python train.py --lr {lr}; or --jobs-file FILE; or -f \
                            sweep.toml"
                        .into(),
                );
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

    let mut links = spec.links.clone();
    for l in &args.link {
        links.push(params::parse_link(l, format!("--link '{l}'"))?);
    }
    if let (Some(l), true) = (links.first(), params.is_empty()) {
        return Err(format!(
            "{}: there are no parameters to link; give them with -p NAME=VALUES",
            l.origin
        ));
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
            (
                jobs_from_template(
                    &t,
                    &params,
                    &links,
                    &cmd_origin,
                    spec.path.as_os_str().is_empty(),
                )?,
                written,
            )
        }
        Source::Shell(script) => {
            let t = template::Template::shell(&script).map_err(|e| format!("{cmd_origin}: {e}"))?;
            (
                jobs_from_template(
                    &t,
                    &params,
                    &links,
                    &cmd_origin,
                    spec.path.as_os_str().is_empty(),
                )?,
                script,
            )
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

    // The arena doubles as it grows: up to half of it would be held, unused, for the whole sweep.
    let mut jobs = jobs;
    jobs.shrink_to_fit();
    let mut config = config(args, &spec)?;
    config.links = links.into_iter().map(|l| l.names).collect();
    Ok(SweepPlan {
        schema_version: crate::journal::SCHEMA_VERSION,
        jobs,
        config,
        template: name.unwrap_or(written),
    })
}

/// The command as written, for the history's grouping: quoted where needed, placeholders bare.
fn template_text(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(|c| quote::is_safe(c) || c == '{' || c == '}') {
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
    links: &[params::Link],
    cmd_origin: &str,
    no_file: bool,
) -> Result<JobList, String> {
    let groups = params::groups(params, links)?;
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
    // Refuses a product past the job limit before any job is made.
    params::product_len(params, &groups)?;
    let lens: Vec<usize> = groups.iter().map(|g| params[g[0]].values.len()).collect();
    let mut jobs = JobList::new();
    let mut slot_values: Vec<&str> = vec![""; slot_param.len()];
    let mut combo = vec![0usize; params.len()];
    for (id, by_group) in params::product(&lens).enumerate() {
        // Linked parameters take the same position in their values.
        for (g, &i) in groups.iter().zip(&by_group) {
            for &pi in g {
                combo[pi] = i;
            }
        }
        for (slot, &pi) in slot_param.iter().enumerate() {
            slot_values[slot] = &params[pi].values[combo[pi]];
        }
        let command = if t.is_shell() {
            JobCommand::Shell(t.render_shell(&slot_values))
        } else {
            JobCommand::Argv(t.render_argv(&slot_values))
        };
        check::command(&command).map_err(|e| format!("{cmd_origin}: job {id}: {e}"))?;
        let values = params
            .iter()
            .zip(&combo)
            .map(|(p, &i)| (p.name.as_str(), p.values[i].as_str()));
        jobs.push_parts(id, &command, values, None);
    }
    Ok(jobs)
}

/// Read a whole input file as UTF-8, refusing one over `max` bytes (`/dev/zero`, a wrong
/// file) before it can fill memory.
pub(crate) fn read_text(r: &mut dyn Read, max: u64) -> Result<String, String> {
    let mut bytes = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "it is larger than {}, more than any sweep needs (is it the right file?)",
            crate::size::human(max)
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8 text ({e})"))
}

fn jobs_from_file(path: &Path, stdin: &mut dyn Read) -> Result<(JobList, String), String> {
    let (text, label, written) = if path.as_os_str() == "-" {
        let text = read_text(stdin, check::MAX_JOBS_FILE)
            .map_err(|e| format!("--jobs-file -: cannot read stdin: {e}"))?;
        (text, "<stdin>".to_string(), "jobs-file:-".to_string())
    } else {
        let text = std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|mut f| read_text(&mut f, check::MAX_JOBS_FILE))
            .map_err(|e| format!("--jobs-file {}: cannot read it: {e}", path.display()))?;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        (
            text,
            path.display().to_string(),
            format!("jobs-file:{}", canon.display()),
        )
    };
    // Each line goes into the list as it is read: the lines are never all held as entries.
    let mut jobs = JobList::new();
    jobsfile::parse_each(&text, &label, |e| {
        let id = jobs.len();
        jobs.push(&Job::new(id, e.command, e.params, e.key));
    })?;
    if jobs.is_empty() {
        return Err(format!(
            "{label}: no jobs: every line is blank or a # comment; write one shell command a line"
        ));
    }
    Ok((jobs, written))
}

/// Merge options: a flag given on the command line beats sweep.toml, which beats the default.
fn config(args: &Request, spec: &spec::Spec) -> Result<RunConfig, String> {
    let mut c = RunConfig::default();
    c.apply(&spec.options());
    c.apply(&args.options);
    c.validate()?;
    Ok(c)
}

#[cfg(test)]
mod tests;
