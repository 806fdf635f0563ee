//! Range checks for `run` options, shared by the flags and sweep.toml so both say the same thing;
//! callers prefix the flag or `file:line: key` at fault.

use super::JobCommand;
use crate::size::SizeSpec;

/// Input files are read whole; past these sizes a file is refused before it can fill memory
/// (`--jobs-file /dev/zero`). A million-job jobs file is ~100 MiB.
pub const MAX_JOBS_FILE: u64 = 256 << 20;
pub const MAX_VALUES_FILE: u64 = 64 << 20;
pub const MAX_SWEEP_TOML: u64 = 16 << 20;
/// The kernel's limit on one argument or environment string (MAX_ARG_STRLEN, 32 pages): a
/// longer one fails every job with "Argument list too long", so it is refused at plan time.
pub const MAX_ARG_BYTES: usize = 128 << 10;

/// A job's command must be passable to execve: no NUL, no argument over [`MAX_ARG_BYTES`]
/// (a shell command is one argument of `sh -c`).
pub fn command(c: &JobCommand) -> Result<(), String> {
    let args: &[String] = match c {
        JobCommand::Argv(a) => a,
        JobCommand::Shell(s) => std::slice::from_ref(s),
    };
    for a in args {
        if a.contains('\0') {
            return Err(format!(
                "the command {} contains a NUL byte, which no command can carry",
                short(a)
            ));
        }
        if a.len() >= MAX_ARG_BYTES {
            return Err(format!(
                "an argument of the command is {} bytes; the kernel refuses one of 128 KiB or \
                 more (\"Argument list too long\"); pass large data in a file",
                a.len()
            ));
        }
    }
    Ok(())
}

/// The first characters of a long text, quoted with NULs shown, for messages.
fn short(s: &str) -> String {
    let t: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        format!("{t:?}…")
    } else {
        format!("{t:?}")
    }
}

/// More parallel jobs than this is a typo, not a machine: each job is at least a process.
pub const MAX_PARALLEL: usize = 10_000;
pub const MAX_RETRIES: u32 = 100;
/// A day: longer is surely a typo, and keeps the value far from `Duration` overflow.
pub const MAX_GRACE_S: f64 = 86_400.0;

pub fn jobs(n: usize) -> Result<usize, String> {
    if n > MAX_PARALLEL {
        return Err(format!(
            "{n} jobs at once is more than {MAX_PARALLEL}; use 0 to let memory alone limit parallelism"
        ));
    }
    Ok(n)
}

pub fn retries(n: u32) -> Result<u32, String> {
    if n > MAX_RETRIES {
        return Err(format!(
            "{n} retries is more than {MAX_RETRIES}; a job requeued that often will not fit"
        ));
    }
    Ok(n)
}

pub fn grace(s: f64) -> Result<f64, String> {
    if !s.is_finite() || !(0.0..=MAX_GRACE_S).contains(&s) {
        return Err(format!(
            "{s} is not a grace period; give seconds from 0 to {MAX_GRACE_S}"
        ));
    }
    Ok(s)
}

pub fn sample_interval(s: f64) -> Result<f64, String> {
    if !s.is_finite() || !(0.01..=60.0).contains(&s) {
        return Err(format!(
            "{s} is not a sample interval; give seconds from 0.01 to 60 (default 0.2)"
        ));
    }
    Ok(s)
}

/// A memory size under this is a typo (`--mem-per-job 0.5` is half a byte: a bare number is
/// bytes): no job runs in less.
pub const MIN_SIZE: u64 = 1 << 20;

pub fn limit(bytes: u64) -> Result<u64, String> {
    if bytes == 0 {
        return Err(
            "0 bytes leaves nothing to run jobs in; give the memory to plan for, e.g. 16G".into(),
        );
    }
    size(Some(SizeSpec::Bytes(bytes)), false)?;
    Ok(bytes)
}

/// A size given in bytes must be at least [`MIN_SIZE`] (`zero_ok`: or exactly 0, e.g. no
/// reserve). Percentages are checked once the limit they resolve against is known.
pub fn size(s: Option<SizeSpec>, zero_ok: bool) -> Result<(), String> {
    match s {
        Some(SizeSpec::Bytes(b)) if b < MIN_SIZE && !(zero_ok && b == 0) => Err(format!(
            "{b} bytes is less than 1 MiB; a bare number is bytes: give a unit, e.g. 512M or 2G"
        )),
        _ => Ok(()),
    }
}

/// A job's time limit: `90`, `90s`, `1.5m`, `2h`, `1h30m` (jiff's friendly format or ISO 8601
/// `PT1H30M`); a bare number is seconds. More than zero, at most 30 days.
pub fn timeout(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let secs = match t.parse::<f64>() {
        Ok(n) => n,
        Err(_) => t
            .parse::<jiff::SignedDuration>()
            .map(|d| d.as_secs_f64())
            .map_err(|_| {
                format!(
                    "'{text}' is not a duration; write seconds (90) or e.g. 90s, 1.5m, 2h, 1h30m"
                )
            })?,
    };
    timeout_secs(secs).map_err(|_| {
        format!("'{text}' is out of range; give a duration above 0 and at most 30 days, e.g. 2h")
    })
}

/// A timeout in seconds, from any source: more than zero, at most 30 days.
pub fn timeout_secs(secs: f64) -> Result<f64, String> {
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_S {
        return Err(format!(
            "{secs} s is out of range; give a duration above 0 and at most 30 days, e.g. 2h"
        ));
    }
    Ok(secs)
}

/// 30 days: a longer per-job limit is surely a typo.
pub const MAX_TIMEOUT_S: f64 = 30.0 * 86_400.0;

/// A sweep name (`--name`, `name =`): it labels history entries, so it must be visible text.
pub fn name(n: &str) -> Result<(), String> {
    if n.trim().is_empty() {
        return Err("the name is empty; give a short label such as lr-sweep".into());
    }
    if n.chars().any(char::is_control) {
        return Err(format!("{n:?} contains control characters; use plain text"));
    }
    Ok(())
}

/// sbatch options memsweep sets itself, per job or per submission: a `--slurm-arg` giving one
/// would fight memsweep's own value.
const SLURM_OWNED: &[&str] = &[
    "--mem",
    "--mem-per-cpu",
    "--mem-per-gpu",
    "--array",
    "-a",
    "--job-name",
    "-J",
    "--output",
    "-o",
    "--error",
    "-e",
    "--open-mode",
    "--parsable",
    "--wrap",
    "--wait",
    "-W",
    "--comment",
];

/// `--slurm-arg`s: only with the Slurm backend, none that memsweep sets itself.
pub fn slurm_args(backend: crate::cli::Backend, args: &[String]) -> Result<(), String> {
    let Some(first) = args.first() else {
        return Ok(());
    };
    if backend != crate::cli::Backend::Slurm {
        return Err(format!(
            "--slurm-arg {first}: sbatch options need --backend slurm (or backend = \"slurm\" in sweep.toml)"
        ));
    }
    for a in args {
        if !a.starts_with('-') {
            return Err(format!(
                "--slurm-arg {a}: give one sbatch option with its value, e.g. --slurm-arg=--partition=gpu"
            ));
        }
        let name = a.split('=').next().unwrap_or(a);
        let short = name.len() > 2 && !name.starts_with("--");
        let name = if short { &name[..2] } else { name };
        if SLURM_OWNED.contains(&name) {
            let how = match name {
                "--mem" | "--mem-per-cpu" | "--mem-per-gpu" => {
                    "memsweep sets each job's --mem from what it learned; use --mem-per-job to fix it"
                }
                "--array" | "-a" => {
                    "memsweep groups jobs into arrays itself; use -j N for the throttle %N"
                }
                _ => "memsweep sets it itself",
            };
            return Err(format!("--slurm-arg {a}: {how}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(jobs(0), Ok(0));
        assert_eq!(jobs(10_000), Ok(10_000));
        assert!(jobs(10_001).unwrap_err().contains("use 0"));
        assert_eq!(retries(100), Ok(100));
        assert!(retries(101).is_err());
        assert_eq!(grace(0.0), Ok(0.0));
        for bad in [-0.1, f64::NAN, f64::INFINITY, 1e9] {
            assert!(grace(bad).is_err(), "{bad}");
        }
        assert_eq!(sample_interval(0.01), Ok(0.01));
        assert_eq!(sample_interval(60.0), Ok(60.0));
        for bad in [0.0, 0.009, 61.0, f64::NAN] {
            assert!(sample_interval(bad).is_err(), "{bad}");
        }
        assert!(limit(0).is_err());
        assert!(limit(1000).unwrap_err().contains("1 MiB"));
        assert_eq!(limit(1 << 20), Ok(1 << 20));
        assert!(size(Some(SizeSpec::Bytes(0)), true).is_ok());
        assert!(size(Some(SizeSpec::Bytes(0)), false).is_err());
        assert!(size(Some(SizeSpec::Bytes((1 << 20) - 1)), true).is_err());
        assert!(size(Some(SizeSpec::Percent(0.5)), false).is_ok());
        for (text, secs) in [("90", 90.0), ("0.5", 0.5), ("90s", 90.0), ("1.5m", 90.0)] {
            assert_eq!(timeout(text), Ok(secs), "{text}");
        }
        assert_eq!(timeout("1h30m"), Ok(5400.0));
        assert_eq!(timeout("PT2H"), Ok(7200.0));
        for bad in ["0", "-5", "-5s", "soon", "", "31d", "nan"] {
            assert!(timeout(bad).is_err(), "{bad}");
        }
        assert!(name(" ").is_err());
        assert!(name("a\nb").is_err());
        assert!(name("lr sweep").is_ok());
    }

    #[test]
    fn slurm_args_are_checked() {
        use crate::cli::Backend::{Local, Slurm};
        assert!(slurm_args(Local, &[]).is_ok());
        assert!(slurm_args(Slurm, &["--partition=gpu".into(), "-t".into(), "10".into()]).is_err());
        assert!(slurm_args(Slurm, &["--partition=gpu".into(), "--time=10".into()]).is_ok());
        assert!(
            slurm_args(Local, &["--time=10".into()])
                .unwrap_err()
                .contains("--backend slurm")
        );
        assert!(
            slurm_args(Slurm, &["--mem=4G".into()])
                .unwrap_err()
                .contains("--mem-per-job")
        );
        assert!(
            slurm_args(Slurm, &["-a1-3".into()])
                .unwrap_err()
                .contains("-j N")
        );
        assert!(slurm_args(Slurm, &["--job-name=x".into()]).is_err());
    }
}
