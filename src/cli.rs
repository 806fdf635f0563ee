//! The command line as clap sees it: every flag, its help text and its syntax check.
//!
//! Nothing here decides anything; `commands/` turns these raw arguments into validated
//! configurations (for `run`, merged with a sweep.toml by `sweep::spec`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

use crate::sched::OnPressure;
use crate::size::{self, SizeSpec};

/// Run experiment sweeps as fast as memory allows, without ever running the container out of memory.
///
/// Sizes (all flags, sweep.toml, output): K, M, G, T, P are binary — G, GB and GiB all mean 2^30
/// bytes, as in `docker -m` and Slurm's `--mem`; a bare number is bytes; where noted, N% is a
/// percentage of the memory limit.
#[derive(Debug, Parser)]
#[command(name = "memsweep", version, about, max_term_width = 100)]
pub struct Cli {
    /// When to colour output: auto (a terminal, unless NO_COLOR is set or TERM=dumb; CLICOLOR_FORCE forces it), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// For mem, check and run: read /proc and /sys under DIR instead of / (also accepted after the subcommand).
    #[arg(long, value_name = "DIR", env = "MEMSWEEP_ROOT", value_hint = ValueHint::DirPath)]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// `--root`, for the subcommands that read the machine (not `show`, which reads a directory).
#[derive(Debug, Args, Default, Clone)]
pub struct RootArg {
    /// Read /proc and /sys under DIR instead of / (a fixture tree standing in for a machine).
    #[arg(long, value_name = "DIR", env = "MEMSWEEP_ROOT", value_hint = ValueHint::DirPath)]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the memory this process can really use: the container's limit, not the host's.
    Mem(MemArgs),
    /// Exit 0 if at least SIZE of memory is available here, 1 (with a warning) if not.
    Check(CheckArgs),
    /// Run a sweep: one command over many parameter values, as many at once as memory allows.
    Run(Box<RunArgs>),
    /// Show what happened in a sweep directory (finished, running or crashed): the table and advice, JSON, or an SVG timeline.
    Show(ShowArgs),
    /// Run a command that launches its own jobs (xargs -P, Hydra's joblib) and keep its process tree within memory.
    ///
    /// New processes wait while memory is tight, growing ones are paused youngest first and resumed oldest first; a kill is the last resort. The exit code is the command's.
    Guard(GuardArgs),
    /// Watch memory in the foreground: a live view, or JSON lines with --log; warn past a threshold.
    Monitor(MonitorArgs),
    /// Print a shell completion script.
    ///
    /// e.g. `memsweep completions bash > ~/.local/share/bash-completion/completions/memsweep`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff).
    ///
    /// e.g. `memsweep man > ~/.local/share/man/man1/memsweep.1`.
    Man,
    /// Run one job of a `--backend slurm` sweep on its node and record its peak, exit status and
    /// wall time in the sweep directory (what the sbatch script runs; not for direct use).
    #[command(hide = true)]
    SlurmJob(SlurmJobArgs),
}

/// Where a sweep's jobs run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// On this machine, as many at once as its memory allows.
    #[default]
    Local,
    /// As Slurm jobs (sbatch), each asking for its learned peak plus a margin as --mem.
    Slurm,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Slurm => "slurm",
        }
    }
}

#[derive(Debug, Args)]
pub struct SlurmJobArgs {
    /// The sweep directory (on a filesystem the node shares with the submitting host).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The batch file listing "job attempt" per array index.
    #[arg(long, value_name = "FILE")]
    pub batch: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct MemArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Refresh every INTERVAL seconds until Ctrl-C, which ends it with exit 0 (default 2).
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2", allow_negative_numbers = true)]
    pub watch: Option<f64>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// Memory needed: 10G, 512M, 1.5GiB, bytes, or N% of the limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_spec, allow_hyphen_values = true)]
    pub need: SizeSpec,
    /// Print the verdict and the memory status as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Where a job's output goes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// Only to DIR/N/stdout and DIR/N/stderr.
    #[default]
    Files,
    /// To those files and to the terminal too, each line tagged with its job: `[3] ...`.
    Live,
}

const RUN_EXAMPLES: &str = "\
Examples:
  memsweep run -p lr=0.1,0.01 -p 'seed=range(0,3)' -- python train.py --lr {lr} --seed {seed}
  memsweep run -p lr=0.1,0.01 -p wd=0,1e-4 --link lr,wd -- python train.py --lr {lr} --wd {wd}
  memsweep run --jobs-file jobs.txt --timeout 2h --fail-fast
  memsweep run -f sweep.toml --dry-run
  memsweep run --resume sweeps/2026-11-30/15-04-12

Exit codes: 0 every job succeeded, 1 some job failed (or timed out), 2 usage or configuration
error, 130 interrupted.";

#[derive(Debug, Args, Default)]
#[command(after_help = RUN_EXAMPLES)]
pub struct RunArgs {
    #[command(flatten)]
    pub root: RootArg,

    /// The command to run for each job, after `--`; `{name}` is replaced by each value of `-p name=...`.
    #[arg(last = true, value_name = "CMD", value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<String>,

    /// A parameter: name=v1,v2,...  |  name=range(start,stop[,step])  |  name=@file (one value a line). Repeatable; jobs are the cartesian product, in order.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUES")]
    pub params: Vec<String>,

    /// One shell command a line (`-` for stdin); blank lines and # comments are skipped.
    #[arg(long, value_name = "FILE", conflicts_with = "params", value_hint = ValueHint::FilePath)]
    pub jobs_file: Option<PathBuf>,

    /// A sweep.toml with the command, parameters and options; flags given here override it.
    #[arg(short = 'f', long = "file", value_name = "SWEEP.TOML", value_hint = ValueHint::FilePath)]
    pub file: Option<PathBuf>,

    /// Name of the sweep: groups its jobs in the history of earlier sweeps [default: the command as written, or the jobs file's path].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Parameters whose values go together, paired by position instead of crossed (like GNU parallel's `:::+`): `--link lr,warmup`. Repeatable.
    #[arg(long, value_name = "NAME,NAME...")]
    pub link: Vec<String>,

    /// Run the templated command through `sh -c` (values are still shell-quoted).
    #[arg(long)]
    pub shell: bool,

    /// Print the jobs and the plan (budget, estimates, parallelism; with --backend slurm the sbatch scripts and each job's --mem) and run nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Where the jobs run: here (local) or as Slurm jobs (slurm) [default: local].
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub backend: Option<Backend>,

    /// An sbatch option for every job, e.g. --slurm-arg=--partition=gpu (repeatable; needs --backend slurm).
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub slurm_args: Vec<String>,

    /// At most N jobs at once (default: the effective CPUs; 0: memory is the only cap). With --backend slurm: the array throttle %N (default: none).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,

    /// Memory memsweep's own jobs may use together (minus --reserve); the detected limit still bounds the whole container.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_bytes)]
    pub limit: Option<u64>,

    /// Memory kept free for your shell and SSH (default: max(5% of the limit, 256M)); N% of the limit allowed.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_spec)]
    pub reserve: Option<SizeSpec>,

    /// Expected peak of each job; skips learning (N% of the limit allowed).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_spec)]
    pub mem_per_job: Option<SizeSpec>,

    /// Hard cap per job: a job above it is killed alone (needs per-job cgroups). With --backend slurm: the largest --mem asked for.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_spec)]
    pub job_mem_max: Option<SizeSpec>,

    /// Do not read or write the history of earlier sweeps.
    #[arg(long)]
    pub no_history: bool,

    /// Measure jobs by sampling /proc instead of giving each its own memory cgroup.
    #[arg(long)]
    pub no_cgroups: bool,

    /// What to do when memory runs short [default: pause].
    #[arg(long, value_enum, value_name = "ACTION")]
    pub on_pressure: Option<OnPressure>,

    /// Attempts after the first for a job stopped by memsweep under pressure (with --backend slurm: for a job that ran out of its --mem) [default: 3].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,

    /// Stop a job that runs longer than DURATION (90s, 30m, 2h, 1h30m; a bare number is seconds): SIGTERM, then SIGKILL after --grace. It ends `timeout` and the sweep exits 1. Time spent paused by memsweep does not count.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = crate::sweep::check::timeout)]
    pub timeout: Option<f64>,

    /// Start no more jobs after the first job fails; running jobs finish (Ctrl-C stops them). Exit 1.
    #[arg(long)]
    pub fail_fast: bool,

    /// Where job output goes: files (DIR/N/stdout, DIR/N/stderr) or live (also to the terminal, each line tagged with its job) [default: files].
    #[arg(long, value_enum, value_name = "MODE")]
    pub output: Option<OutputMode>,

    /// Sweep directory [default: sweeps/YYYY-MM-DD/HH-MM-SS].
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub out: Option<PathBuf>,

    /// Rerun the jobs of an earlier sweep directory that did not succeed.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["params", "jobs_file", "file", "out", "link"], value_hint = ValueHint::DirPath)]
    pub resume: Option<PathBuf>,

    /// With --resume: go on even when the journal is missing (every job runs again).
    #[arg(long, requires = "resume")]
    pub force: bool,

    /// Run even where an option cannot be honoured here (e.g. --job-mem-max without per-job cgroups); each such downgrade is printed and journaled.
    #[arg(long)]
    pub best_effort: bool,

    /// Stream events as JSON lines on stdout (for programs).
    #[arg(long)]
    pub json: bool,

    /// Seconds between SIGTERM and SIGKILL when interrupted [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub grace: Option<f64>,

    /// Seconds between memory samples [default: 0.2].
    #[arg(long, value_name = "SECONDS")]
    pub sample_interval: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The sweep directory (the --out of `memsweep run` or `memsweep guard`), or a `memsweep monitor --log` file.
    #[arg(value_name = "DIR", value_hint = ValueHint::AnyPath)]
    pub dir: PathBuf,
    /// Print the summary as JSON (what summary.json holds, recomputed from the journal).
    #[arg(long)]
    pub json: bool,
    /// Write a timeline plot to FILE as SVG: memory over time and a lane per job.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GuardArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// The command to guard, after `--`; its exit code is the guard's.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Memory kept free for your shell and SSH (default: max(5% of the limit, 256M)); N% of the limit allowed.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_spec)]
    pub reserve: Option<SizeSpec>,
    /// Memory the command's processes may use together (minus --reserve); the detected limit still bounds the whole container.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_bytes)]
    pub limit: Option<u64>,
    /// Directory for the journal and summary (read them with `memsweep show DIR`) [default: sweeps/YYYY-MM-DD/HH-MM-SS].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seconds between scans of the process tree when memory is not tight [default: 0.1].
    #[arg(long, value_name = "SECONDS")]
    pub sample_interval: Option<f64>,
    /// Watch the tree through /proc only, even where the command could get its own memory cgroup.
    #[arg(long)]
    pub no_cgroups: bool,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// Seconds between samples [default: 2].
    #[arg(long, value_name = "S")]
    pub interval: Option<f64>,
    /// Append one JSON line per sample to FILE instead of showing the live view (`memsweep show --svg FILE` draws it).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Warn when the working set passes PCT percent of the limit [default: 80].
    #[arg(long, value_name = "PCT")]
    pub warn: Option<f64>,
    /// Run this shell command once each time the working set passes --warn (again only after it fell below it by 5 points).
    #[arg(long, value_name = "CMD")]
    pub on_warn: Option<String>,
    /// Watch this memory cgroup directory instead of this process's own.
    #[arg(long, value_name = "PATH", conflicts_with = "pid")]
    pub cgroup: Option<PathBuf>,
    /// Watch the memory cgroup of this process; its tree gives the top processes.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
}

fn parse_size_spec(s: &str) -> Result<SizeSpec, String> {
    size::parse_spec(s).map_err(|e| e.to_string())
}

fn parse_size_bytes(s: &str) -> Result<u64, String> {
    size::parse_bytes(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
