//! The subcommands, one file each, and the one place that turns their results into exit codes.

pub mod check;
pub mod guard;
pub mod mem;
pub mod monitor;
pub mod run;
pub mod show;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::{Exit, UsageError};
use crate::probe::Fs;

/// Parse the command line, run the subcommand, print any error once, and pick the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            Exit::Usage.into()
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let fs = Fs::new(cli.root.as_deref());
    match cli.command {
        Command::Mem(args) => mem::run(&fs, &args).map(Into::into),
        Command::Check(args) => check::run(&fs, &args).map(Into::into),
        Command::Run(args) => run::run(&fs, *args).map(Into::into),
        Command::Show(args) => show::run(&args).map(Into::into),
        // The guarded command's own exit code, whatever it is.
        Command::Guard(args) => guard::run(&fs, &args).map(ExitCode::from),
        Command::Monitor(args) => monitor::run(&fs, &args).map(Into::into),
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
