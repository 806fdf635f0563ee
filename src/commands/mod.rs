//! The subcommands, one file each, and the one place that turns their results into exit codes.

pub mod check;
pub mod guard;
pub mod mem;
pub mod monitor;
pub mod run;
pub mod show;
pub mod slurm_job;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::exit::{Exit, UsageError};
use crate::output::color;
use crate::probe::Fs;

/// Parse the command line, run the subcommand, print any error once, and pick the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    color::set(cli.color);
    if let Command::Guard(ref args) = cli.command {
        // The guarded command's own exit code, whatever it is.
        let fs = Fs::new(args.root.root.as_deref().or(cli.root.as_deref()));
        return match guard::run(&fs, args) {
            Ok(code) => ExitCode::from(code),
            Err(err) => {
                report(&err);
                Exit::Usage.into()
            }
        };
    }
    // Read-only commands end quietly with 0 when their reader goes away (`| head`).
    let read_only = matches!(
        cli.command,
        Command::Mem(_) | Command::Show(_) | Command::Completions(_) | Command::Man
    );
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            Exit::Usage
        }
    };
    crate::output::stdio::finish(code, read_only).into()
}

/// Help and version go to stdout as clap prints them; a usage error gets memsweep's one error
/// prefix (`memsweep: error: ...`) and exit code 2.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.use_stderr() {
            Exit::Usage.into()
        } else {
            Exit::Ok.into()
        };
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    crate::errln!("memsweep: error: {}", text.trim_end());
    Exit::Usage.into()
}

fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    // `--root` before the subcommand (as earlier versions took it) or after it.
    let fs = |sub: &crate::cli::RootArg| Fs::new(sub.root.as_deref().or(cli.root.as_deref()));
    match cli.command {
        Command::Mem(ref args) => mem::run(&fs(&args.root), args),
        Command::Check(ref args) => check::run(&fs(&args.root), args),
        Command::Run(args) => run::run(&fs(&args.root.clone()), *args),
        Command::Show(args) => show::run(&args),
        Command::SlurmJob(args) => slurm_job::run(&args),
        Command::Monitor(ref args) => monitor::run(&fs(&args.root), args),
        Command::Guard(_) => unreachable!("handled in main: it exits with the command's own code"),
        Command::Completions(args) => {
            let mut cmd = Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "memsweep", &mut out);
            write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            write_stdout(&out)
        }
    }
}

/// Write generated text to stdout under the one output policy (a closed pipe ends quietly).
fn write_stdout(bytes: &[u8]) -> anyhow::Result<Exit> {
    crate::output::stdio::stdout().write_all(bytes)?;
    Ok(Exit::Ok)
}

/// Print an error as `memsweep: error: ...` with its causes, each on its own line.
pub fn report(err: &anyhow::Error) {
    if let Some(u) = err.downcast_ref::<UsageError>() {
        crate::errln!("memsweep: error: {u}");
        return;
    }
    crate::errln!("memsweep: error: {err}");
    for cause in err.chain().skip(1) {
        crate::errln!("  caused by: {cause}");
    }
}
