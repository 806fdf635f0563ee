//! From what the user wrote to a list of jobs: command templates, parameter grids (`a=1,2`,
//! `range()`, `@file`), jobs files and sweep.toml, merged into one validated [`SweepPlan`]. Pure
//! apart from reading the files it is pointed at.

use std::path::PathBuf;

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
        todo!("sweep helper")
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
    let _ = args;
    todo!("sweep helper")
}
