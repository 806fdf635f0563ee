//! From what the user wrote to a list of jobs: command templates, parameter grids (`a=1,2`,
//! `range()`, `@file`), jobs files and sweep.toml, merged into one validated [`SweepPlan`]. Pure
//! apart from reading the files it is pointed at.
//!
//! Files: `template` (placeholders, rendering), `params` (value syntax, the product), `quote`
//! (sh quoting), `jobsfile`, `spec` (sweep.toml), `check` (option bounds). The format of
//! sweep.toml is documented in docs/sweep-toml.md.

pub mod check;
mod jobsfile;
mod params;
#[cfg(test)]
mod props;
mod quote;
mod spec;
mod template;

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
    pub jobs: Vec<Job>,
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

    // The jobs are built in place over the parsed lines, with the capacity a growing vector
    // left: 40% more than needed at 10 000 jobs, held for the whole sweep.
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
) -> Result<Vec<Job>, String> {
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
    let total = params::product_len(params, &groups)?;
    let lens: Vec<usize> = groups.iter().map(|g| params[g[0]].values.len()).collect();
    let mut jobs = Vec::with_capacity(total);
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

fn jobs_from_file(path: &Path, stdin: &mut dyn Read) -> Result<(Vec<Job>, String), String> {
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
fn config(args: &Request, spec: &spec::Spec) -> Result<RunConfig, String> {
    let mut c = RunConfig::default();
    c.apply(&spec.options());
    c.apply(&args.options);
    c.validate()?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::RunArgs;
    use crate::exit::UsageError;
    use std::time::Instant;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn args(params: &[&str], cmd: &[&str]) -> RunArgs {
        RunArgs {
            params: s(params),
            command: s(cmd),
            ..RunArgs::default()
        }
    }

    /// Plans from flags, as `memsweep run` does (through `Request::from`).
    fn plan_in(a: &RunArgs, cwd: &Path) -> anyhow::Result<SweepPlan> {
        plan_with(&a.into(), cwd, &mut std::io::empty())
    }

    /// The usage error's message; panics if planning succeeded or failed some other way.
    fn usage_err(a: &RunArgs, cwd: &Path) -> String {
        let e = plan_in(a, cwd).expect_err("should be a usage error");
        e.downcast_ref::<UsageError>()
            .unwrap_or_else(|| panic!("not a UsageError: {e}"))
            .to_string()
    }

    fn argv_of(j: &Job) -> &[String] {
        match &j.command {
            JobCommand::Argv(a) => a,
            JobCommand::Shell(s) => panic!("expected argv, got shell {s}"),
        }
    }

    #[test]
    fn sweep_json_of_earlier_versions_still_loads_and_new_sizes_are_snake_case() {
        // As written before schema_version, the job controls and snake_case sizes existed.
        let old = r#"{"jobs":[{"id":0,"command":{"argv":["true"]},"params":[],"key":"true"}],
            "config":{"jobs":null,"limit":null,"reserve":{"Percent":10.0},
            "mem_per_job":{"Bytes":1048576},"job_mem_max":null,"history":true,"cgroups":true,
            "on_pressure":"pause","retries":3,"out":null,"json":false,"grace_s":10.0,
            "sample_interval_s":0.2,"dry_run":false},"template":"true"}"#;
        let p: SweepPlan = serde_json::from_str(old).unwrap();
        assert_eq!(p.config.reserve, Some(SizeSpec::Percent(10.0)));
        assert_eq!(p.config.mem_per_job, Some(SizeSpec::Bytes(1 << 20)));
        assert_eq!((p.config.timeout_s, p.config.fail_fast), (None, false));
        assert_eq!(p.schema_version, crate::journal::SCHEMA_VERSION);
        let new = serde_json::to_string(&p).unwrap();
        assert!(new.contains(r#""reserve":{"percent":10.0}"#), "{new}");
        assert!(new.contains(r#""mem_per_job":{"bytes":1048576}"#), "{new}");
        assert!(new.starts_with(r#"{"schema_version":1,"#), "{new}");
        assert_eq!(serde_json::from_str::<SweepPlan>(&new).unwrap(), p);
    }

    #[test]
    fn cartesian_product_in_flag_order_first_slowest() {
        let a = args(
            &["lr=0.1,0.01", "seed=range(0,3)"],
            &["python", "train.py", "--lr", "{lr}", "--seed={seed}"],
        );
        let p = plan_in(&a, Path::new(".")).unwrap();
        let got: Vec<(usize, String, String)> = p
            .jobs
            .iter()
            .map(|j| (j.id, argv_of(j)[3].clone(), argv_of(j)[4].clone()))
            .collect();
        let want: Vec<(usize, String, String)> = [
            ("0.1", "0"),
            ("0.1", "1"),
            ("0.1", "2"),
            ("0.01", "0"),
            ("0.01", "1"),
            ("0.01", "2"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (lr, seed))| (i, lr.to_string(), format!("--seed={seed}")))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            p.jobs[4].params,
            [("lr".into(), "0.01".into()), ("seed".into(), "1".into())]
        );
        assert_eq!(p.jobs[4].key, "python train.py --lr 0.01 --seed=1");
        assert_eq!(p.template, "python train.py --lr {lr} --seed={seed}");
    }

    #[test]
    fn parameters_order_the_product_even_if_placeholders_appear_in_another_order() {
        let a = args(&["b=1,2", "a=x,y"], &["echo", "{a}", "{b}"]);
        let p = plan_in(&a, Path::new(".")).unwrap();
        let keys: Vec<&str> = p.jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, ["echo x 1", "echo y 1", "echo x 2", "echo y 2"]);
        assert_eq!(p.jobs[1].params[0], ("b".into(), "1".into()));
    }

    #[test]
    fn hostile_value_stays_one_literal_argument() {
        let evil = "'; rm -rf x'";
        let a = args(
            &[&format!("name={evil}")],
            &["echo", "--name={name}", "{name}"],
        );
        let p = plan_in(&a, Path::new(".")).unwrap();
        assert_eq!(p.jobs.len(), 1);
        assert_eq!(
            argv_of(&p.jobs[0]),
            s(&["echo", &format!("--name={evil}"), evil])
        );
        // The displayed key pastes back into a shell as the same three words.
        assert_eq!(
            quote::tests::sh_words(&p.jobs[0].key),
            s(&["echo", &format!("--name={evil}"), evil])
        );
    }

    #[test]
    fn hostile_value_stays_one_word_under_shell() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "keep").unwrap();
        let evil = "'; rm -rf x'";
        let mut a = args(
            &[&format!("v={evil},$(rm x),a b")],
            &["printf", "'%s\\n'", "{v}", ">>", "out.txt"],
        );
        a.shell = true;
        let p = plan_in(&a, dir.path()).unwrap();
        assert_eq!(p.template, "printf '%s\\n' {v} >> out.txt");
        for j in &p.jobs {
            let JobCommand::Shell(script) = &j.command else {
                panic!("expected shell")
            };
            let _children = crate::testutil::children();
            let st = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "{script}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            format!("{evil}\n$(rm x)\na b\n")
        );
        assert!(dir.path().join("x").exists(), "the value ran as a command");
    }

    #[test]
    fn template_errors_name_the_flag_and_fix() {
        let cwd = Path::new(".");
        for (a, needles) in [
            (
                args(&["lr=1"], &["t", "{lr}", "{seed}"]),
                &[
                    "the command after --: uses {seed}",
                    "add -p seed=VALUES",
                    "parameters given: lr",
                ][..],
            ),
            (
                args(&["lr=1", "seed=1,2"], &["t", "{lr}"]),
                &[
                    "-p 'seed=1,2': the command has no {seed} placeholder",
                    "2 value(s)",
                ][..],
            ),
            (
                args(&["lr=1", "lr=2"], &["t", "{lr}"]),
                &["-p 'lr=2': parameter lr is already given by -p 'lr=1'"][..],
            ),
            (
                args(&["lr"], &["t", "{lr}"]),
                &["-p 'lr': expected NAME=VALUES"][..],
            ),
            (
                args(&["lr="], &["t", "{lr}"]),
                &["-p 'lr=': the value list is empty"][..],
            ),
            (
                args(&["s=range(0,0)"], &["t", "{s}"]),
                &["-p 's=range(0,0)': range(0,0) is empty"][..],
            ),
            (args(&["s=range(0,3,0)"], &["t", "{s}"]), &["step is 0"][..]),
            (
                args(&[], &["t", "{lr"]),
                &["the command after --: argument 2 '{lr'"][..],
            ),
            (args(&[], &[]), &["nothing to run"][..]),
        ] {
            let e = usage_err(&a, cwd);
            for n in needles {
                assert!(
                    e.contains(n),
                    "{:?} {:?}: {e}\n(missing {n:?})",
                    a.params,
                    a.command
                );
            }
        }
    }

    #[test]
    fn option_errors_name_the_flag() {
        let cwd = Path::new(".");
        let base = || args(&[], &["true"]);
        let cases: Vec<(RunArgs, &str)> = vec![
            (
                RunArgs {
                    jobs: Some(20_000),
                    ..base()
                },
                "-j: 20000 jobs at once",
            ),
            (
                RunArgs {
                    grace: Some(-1.0),
                    ..base()
                },
                "--grace: -1",
            ),
            (
                RunArgs {
                    grace: Some(f64::NAN),
                    ..base()
                },
                "--grace: NaN",
            ),
            (
                RunArgs {
                    sample_interval: Some(0.0),
                    ..base()
                },
                "--sample-interval: 0",
            ),
            (
                RunArgs {
                    sample_interval: Some(61.0),
                    ..base()
                },
                "--sample-interval: 61",
            ),
            (
                RunArgs {
                    retries: Some(101),
                    ..base()
                },
                "--retries: 101",
            ),
            (
                RunArgs {
                    limit: Some(0),
                    ..base()
                },
                "--limit: 0 bytes",
            ),
            (
                RunArgs {
                    name: Some(" ".into()),
                    ..base()
                },
                "--name: the name is empty",
            ),
            (
                RunArgs {
                    mem_per_job: Some(SizeSpec::Bytes(2 << 30)),
                    job_mem_max: Some(SizeSpec::Bytes(1 << 30)),
                    ..base()
                },
                "--job-mem-max (1.00 GiB) is below --mem-per-job (2.00 GiB)",
            ),
            (
                RunArgs {
                    jobs_file: Some("j.txt".into()),
                    ..base()
                },
                "either the command after -- or --jobs-file",
            ),
        ];
        for (a, needle) in cases {
            let e = usage_err(&a, cwd);
            assert!(e.contains(needle), "{e} (wanted {needle:?})");
        }
    }

    #[test]
    fn defaults_and_flags() {
        let p = plan_in(&args(&[], &["true"]), Path::new(".")).unwrap();
        assert_eq!(
            p.config,
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
                backend: Backend::Local,
                slurm_args: vec![],
                best_effort: false,
                timeout_s: None,
                fail_fast: false,
                output: OutputMode::Files,
                links: Vec::new(),
            }
        );
        assert_eq!(p.jobs.len(), 1);
        let a = RunArgs {
            jobs: Some(0),
            limit: Some(1 << 30),
            reserve: Some(SizeSpec::Percent(10.0)),
            no_history: true,
            no_cgroups: true,
            on_pressure: Some(OnPressure::None),
            retries: Some(0),
            grace: Some(0.0),
            sample_interval: Some(1.0),
            json: true,
            dry_run: true,
            name: Some("mine".into()),
            ..args(&[], &["true"])
        };
        let p = plan_in(&a, Path::new(".")).unwrap();
        let c = &p.config;
        assert_eq!((c.jobs, c.limit, c.retries), (Some(0), Some(1 << 30), 0));
        assert!(!c.history && !c.cgroups && c.json && c.dry_run);
        assert_eq!((c.grace_s, c.sample_interval_s), (0.0, 1.0));
        assert_eq!(c.on_pressure, OnPressure::None);
        assert_eq!(p.template, "mine");
    }

    #[test]
    fn jobs_file_from_path_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let text = "# sweep\necho a\n\n{\"cmd\": [\"echo\", \"b c\"], \"key\": \"k-b\", \"params\": {\"x\": \"1\"}}\n";
        std::fs::write(dir.path().join("jobs.txt"), text).unwrap();
        let a = RunArgs {
            jobs_file: Some("jobs.txt".into()),
            ..RunArgs::default()
        };
        let p = plan_in(&a, dir.path()).unwrap();
        assert_eq!(p.jobs.len(), 2);
        assert_eq!(p.jobs[0].command, JobCommand::Shell("echo a".into()));
        assert_eq!(p.jobs[0].key, "echo a");
        assert_eq!(p.jobs[1].id, 1);
        assert_eq!(p.jobs[1].key, "k-b");
        assert_eq!(p.jobs[1].params, [("x".into(), "1".into())]);
        let canon = std::fs::canonicalize(dir.path().join("jobs.txt")).unwrap();
        assert_eq!(p.template, format!("jobs-file:{}", canon.display()));

        let a = RunArgs {
            jobs_file: Some("-".into()),
            ..RunArgs::default()
        };
        let p = plan_with(&(&a).into(), dir.path(), &mut text.as_bytes()).unwrap();
        assert_eq!((p.jobs.len(), p.template.as_str()), (2, "jobs-file:-"));
        // JSON argv jobs without a key are keyed by their pasteable display.
        let p = plan_with(
            &(&a).into(),
            dir.path(),
            &mut &br#"{"cmd": ["echo", "b c"]}"#[..],
        )
        .unwrap();
        assert_eq!(p.jobs[0].key, "echo 'b c'");

        let e = plan_with(&(&a).into(), dir.path(), &mut &b"# nothing\n\n"[..]).unwrap_err();
        assert!(e.to_string().contains("<stdin>: no jobs"), "{e}");
        let e = plan_with(&(&a).into(), dir.path(), &mut &b"echo\n{bad\n"[..]).unwrap_err();
        assert!(e.to_string().contains("<stdin>:2: invalid JSON job"), "{e}");
        let a = RunArgs {
            jobs_file: Some("missing.txt".into()),
            ..RunArgs::default()
        };
        let e = usage_err(&a, dir.path());
        assert!(
            e.contains("--jobs-file") && e.contains("missing.txt"),
            "{e}"
        );
    }

    #[test]
    fn values_files_on_the_command_line_are_relative_to_the_cwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("models.txt"), "resnet\n\nvit b\n").unwrap();
        let a = args(&["m=@models.txt"], &["train", "--model", "{m}"]);
        let p = plan_in(&a, dir.path()).unwrap();
        let keys: Vec<&str> = p.jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, ["train --model resnet", "train --model 'vit b'"]);
        let e = usage_err(&args(&["m=@nope.txt"], &["t", "{m}"]), dir.path());
        assert!(
            e.contains("-p 'm=@nope.txt': cannot read the values file"),
            "{e}"
        );
    }

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sweep.toml")
    }

    #[test]
    fn the_documented_example_plans() {
        let doc = include_str!("../../docs/sweep-toml.md");
        let ex = include_str!("../../examples/sweep.toml");
        assert!(
            doc.contains(ex),
            "docs/sweep-toml.md must quote examples/sweep.toml verbatim"
        );
        let a = RunArgs {
            file: Some(example()),
            ..RunArgs::default()
        };
        let p = plan_in(&a, Path::new(".")).unwrap();
        assert_eq!(p.jobs.len(), 12);
        assert_eq!(p.template, "lr-sweep");
        assert_eq!(
            p.jobs[0].key,
            "python3 examples/fake_train.py --lr 0.1 --seed=0 --data data/small.csv --mem-mib 100"
        );
        assert_eq!(
            p.jobs[11].key,
            "python3 examples/fake_train.py --lr 0.01 --seed=2 --data data/large.csv --mem-mib 300"
        );
        let c = &p.config;
        assert_eq!(c.jobs, Some(4));
        assert_eq!(c.reserve, Some(SizeSpec::Percent(10.0)));
        assert_eq!(c.timeout_s, Some(300.0));
        assert_eq!(c.links, [["data", "mem"]]);
        // No `out`: the default sweeps/DATE/TIME, under the current directory.
        assert_eq!(c.out, None);
    }

    #[test]
    fn flags_override_the_file() {
        let a = RunArgs {
            file: Some(example()),
            params: s(&["seed=7", "extra=a,b"]),
            command: s(&["run", "{lr}", "{seed}", "{data}", "{mem}", "{extra}"]),
            jobs: Some(2),
            mem_per_job: Some(SizeSpec::Bytes(1 << 30)),
            name: Some("cli-name".into()),
            ..RunArgs::default()
        };
        let p = plan_in(&a, Path::new(".")).unwrap();
        // seed replaced in place (still second), extra appended (fastest), lr and data kept.
        let names: Vec<&str> = p.jobs[0].params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["lr", "seed", "data", "mem", "extra"]);
        assert_eq!(p.jobs.len(), 2 * 2 * 2);
        assert_eq!(p.jobs[0].key, "run 0.1 7 data/small.csv 100 a");
        assert_eq!(p.jobs[1].key, "run 0.1 7 data/small.csv 100 b");
        assert_eq!(p.config.jobs, Some(2));
        assert_eq!(p.config.mem_per_job, Some(SizeSpec::Bytes(1 << 30)));
        assert_eq!(
            p.config.reserve,
            Some(SizeSpec::Percent(10.0)),
            "kept from the file"
        );
        assert_eq!(p.template, "cli-name");

        // The file's params still have to be used by a command that replaces the file's.
        let a = RunArgs {
            file: Some(example()),
            command: s(&["run", "{lr}"]),
            ..RunArgs::default()
        };
        let e = usage_err(&a, Path::new("."));
        assert!(
            e.contains("sweep.toml:16: params.seed: the command has no {seed}"),
            "{e}"
        );
    }

    #[test]
    fn file_shell_commands_and_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.toml");
        std::fs::write(
            &f,
            "command = \"echo {x} | cat\"\n[params]\nx = [\"a b\", 2]\n",
        )
        .unwrap();
        let a = RunArgs {
            file: Some("s.toml".into()),
            ..RunArgs::default()
        };
        let p = plan_in(&a, dir.path()).unwrap();
        assert_eq!(
            p.jobs[0].command,
            JobCommand::Shell("echo 'a b' | cat".into())
        );
        assert_eq!(p.jobs[1].command, JobCommand::Shell("echo 2 | cat".into()));
        assert_eq!(p.template, "echo {x} | cat");

        // `shell = true` joins an argv command; the CLI's --shell does the same to the CLI command.
        std::fs::write(
            &f,
            "shell = true\ncommand = [\"echo\", \"{x}\", \">\", \"o\"]\n[params]\nx = \"1\"\n",
        )
        .unwrap();
        let p = plan_in(&a, dir.path()).unwrap();
        assert_eq!(p.jobs[0].command, JobCommand::Shell("echo 1 > o".into()));

        std::fs::write(&f, "jobs = 2\n[params]\nx = \"1,2\"\n").unwrap();
        let e = usage_err(&a, dir.path());
        assert!(e.contains("s.toml: no command"), "{e}");
        std::fs::write(&f, "\ncommand = [\"t\", \"{y}\"]\n").unwrap();
        let e = usage_err(&a, dir.path());
        assert!(e.contains("s.toml:2: command: uses {y}"), "{e}");
        assert!(e.contains("or y = ... under [params]"), "{e}");
        std::fs::write(&f, "jobs-file = \"j.txt\"\n[params]\nx = \"1,2\"\n").unwrap();
        std::fs::write(dir.path().join("j.txt"), "echo 1\n").unwrap();
        let e = usage_err(&a, dir.path());
        assert!(
            e.contains("s.toml:3: params.x: parameters fill {name} placeholders"),
            "{e}"
        );
        std::fs::write(&f, "jobs-file = \"j.txt\"\nbogus = 1\n").unwrap();
        let e = usage_err(&a, dir.path());
        assert!(e.contains("s.toml:2: unknown field `bogus`"), "{e}");
        std::fs::write(&f, "jobs-file = \"j.txt\"\njobs = 3\n").unwrap();
        let p = plan_in(&a, dir.path()).unwrap();
        assert_eq!((p.jobs.len(), p.config.jobs), (1, Some(3)));
        assert!(p.template.starts_with("jobs-file:/"), "{}", p.template);
    }

    #[test]
    fn ten_thousand_jobs_plan_fast() {
        let a = args(
            &["a=range(0,100)", "b=range(0,100)"],
            &["python", "train.py", "--a={a}", "--b", "{b}"],
        );
        let t = Instant::now();
        let p = plan_in(&a, Path::new(".")).unwrap();
        let took = t.elapsed();
        assert_eq!(p.jobs.len(), 10_000);
        assert_eq!(p.jobs[9_999].key, "python train.py --a=99 --b 99");
        let keys: std::collections::HashSet<&str> = p.jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys.len(), 10_000, "every job has its own history key");
        // Unoptimized build on a shared 2-core machine: generous, still catches quadratic work.
        assert!(
            took.as_secs_f64() < 2.0,
            "planning 10 000 jobs took {took:?}"
        );
        eprintln!("planned 10 000 jobs in {took:?}");
    }

    #[test]
    fn display_quotes_only_where_needed() {
        let c = JobCommand::Argv(s(&["python", "-c", "print(1)", "a b", ""]));
        assert_eq!(c.display(), "python -c 'print(1)' 'a b' ''");
        assert_eq!(
            JobCommand::Shell("echo $HOME | cat".into()).display(),
            "echo $HOME | cat"
        );
    }
}
