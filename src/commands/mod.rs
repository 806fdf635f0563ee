//! The subcommands, one file each, and the one place that turns their results into exit codes.

pub mod check;
pub mod mem;
pub mod run;
pub mod show;
pub mod slurm_job;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::{Exit, UsageError};
use crate::probe::Fs;

/// Parse the command line, run the subcommand, print any error once, and pick the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            report(&err);
            Exit::Usage.into()
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let fs = Fs::new(cli.root.as_deref());
    match cli.command {
        Command::Mem(args) => mem::run(&fs, &args),
        Command::Check(args) => check::run(&fs, &args),
        Command::Run(args) => run::run(&fs, *args),
        Command::Show(args) => show::run(&args),
        Command::SlurmJob(args) => slurm_job::run(&args),
    }
}

/// Print an error as `memsweep: error: ...` with its causes, each on its own line.
pub fn report(err: &anyhow::Error) {
    if let Some(u) = err.downcast_ref::<UsageError>() {
        eprintln!("memsweep: error: {u}");
        return;
    }
    eprintln!("memsweep: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
