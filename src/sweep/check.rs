//! Range checks for `run` options, shared by the flags and sweep.toml so both say the same thing;
//! callers prefix the flag or `file:line: key` at fault.

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

pub fn limit(bytes: u64) -> Result<u64, String> {
    if bytes == 0 {
        return Err(
            "0 bytes leaves nothing to run jobs in; give the memory to plan for, e.g. 16G".into(),
        );
    }
    Ok(bytes)
}

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
