//! The Slurm backend: the Slurm commands on PATH (sbatch, squeue, scancel, sinfo, and sacct where
//! accounting is configured; all honour `SLURM_CONF`), the files a sweep directory holds for it,
//! and the wrapper that runs each job on its node. The policy (each job's `--mem`, what a state
//! means) is pure, in [`policy`]; the loop is `commands/run/slurm.rs`.
//!
//! Files (the sweep directory must be on a filesystem every node sees): `.slurm/batch-K.sh` (the
//! sbatch script of submission K, its options as `#SBATCH` lines), `.slurm/batch-K.jobs` (array
//! index i runs the job on line i+1: `JOB ATTEMPT`), `.slurm/slurm-%A_%a.out` (Slurm's own
//! messages), and `N/result.json` (what the wrapper measured: the attempt, exit status, peak,
//! wall time). Job names are `ms-<dir name>-<hash of its path>`, so `squeue --name` finds a sweep.
//!
//! Shelling out is the interface Slurm documents for users (its C API changes with every
//! release), so this module runs the commands and parses their `--parsable`/`-o` output.

pub mod policy;
pub mod wrapper;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::exit::usage;

/// The `accounting` of a Slurm sweep's `sweep_start` and summary.
pub const ACCOUNTING: &str = "slurm";
/// The folder in the sweep directory with the sbatch scripts and batch lists.
pub const SLURM_DIR: &str = ".slurm";
/// The wrapper's record in each job folder.
pub const RESULT_FILE: &str = "result.json";

/// What the wrapper recorded about one attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub job: usize,
    pub attempt: u32,
    /// `ARRAYID_INDEX` of the attempt.
    pub slurm_id: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The kernel killed a process in the job's cgroup.
    pub oom: bool,
    pub peak_bytes: Option<u64>,
    /// "slurm-cgroup-v1", "slurm-cgroup-v2" or "proc" (sampled).
    pub peak_source: String,
    /// The job's memory limit as its cgroup saw it.
    pub limit_bytes: Option<u64>,
    pub wall_s: f64,
    pub node: String,
}

/// `DIR/N/result.json` if it records `attempt` of its job.
pub fn read_result(job_dir: &Path, attempt: u32) -> Option<JobResult> {
    let bytes = std::fs::read(job_dir.join(RESULT_FILE)).ok()?;
    serde_json::from_slice::<JobResult>(&bytes)
        .ok()
        .filter(|r| r.attempt == attempt)
}

/// The job name of every job of the sweep in `dir` (absolute): short, readable, unique per path.
pub fn job_name(dir: &Path) -> String {
    let base: String = dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    // FNV-1a: a stable hash is all that is needed (std's hasher is seeded per process).
    let mut h: u32 = 0x811c_9dc5;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    format!("ms-{base}-{h:08x}")
}

/// One line of a batch list: the job and its attempt.
pub fn parse_batch_line(line: &str) -> Option<(usize, u32)> {
    let mut it = line.split_whitespace();
    let job = it.next()?.parse().ok()?;
    let attempt = it.next()?.parse().ok()?;
    Some((job, attempt))
}

/// One submission: jobs sharing a `--mem`, as an array.
#[derive(Debug, Clone)]
pub struct Batch {
    pub seq: usize,
    pub mem_bytes: u64,
    /// (job, attempt) per array index.
    pub jobs: Vec<(usize, u32)>,
}

impl Batch {
    pub fn script_path(&self, dir: &Path) -> PathBuf {
        dir.join(SLURM_DIR).join(format!("batch-{}.sh", self.seq))
    }

    pub fn list_path(&self, dir: &Path) -> PathBuf {
        dir.join(SLURM_DIR).join(format!("batch-{}.jobs", self.seq))
    }

    /// The `--comment` that ties a queued job back to its batch list (for re-attaching).
    pub fn comment(&self) -> String {
        format!("memsweep-batch-{}", self.seq)
    }

    /// The sbatch script: every option as an `#SBATCH` line, then the wrapper.
    pub fn script(
        &self,
        dir: &Path,
        exe: &Path,
        name: &str,
        throttle: Option<usize>,
        extra: &[String],
    ) -> String {
        let last = self.jobs.len() - 1;
        let throttle = throttle
            .filter(|&t| t > 0)
            .map_or(String::new(), |t| format!("%{t}"));
        let mut s = format!(
            "#!/bin/sh\n# memsweep: array index i runs the job on line i+1 of {list}\n\
             #SBATCH --job-name={name}\n#SBATCH --array=0-{last}{throttle}\n#SBATCH --mem={mem}M\n\
             #SBATCH --output={out}/slurm-%A_%a.out\n#SBATCH --open-mode=append\n#SBATCH --comment={comment}\n",
            list = self.list_path(dir).display(),
            mem = self.mem_bytes >> 20,
            out = dir.join(SLURM_DIR).display(),
            comment = self.comment(),
        );
        for a in extra {
            s.push_str(&format!("#SBATCH {a}\n"));
        }
        s.push_str(&format!(
            "exec {} slurm-job {} --batch {}\n",
            crate::sweep::quote(&exe.display().to_string()),
            crate::sweep::quote(&dir.display().to_string()),
            crate::sweep::quote(&self.list_path(dir).display().to_string()),
        ));
        s
    }

    pub fn list(&self) -> String {
        self.jobs
            .iter()
            .map(|(j, a)| format!("{j} {a}\n"))
            .collect()
    }
}

/// A queued or recent job as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub state: String,
    pub comment: String,
    /// Its `--mem`, where squeue shows one.
    pub mem_bytes: Option<u64>,
}

/// Run a Slurm command; its stdout, or an error with its stderr.
fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cluster, through its commands.
pub struct Cluster;

impl Cluster {
    /// Check the commands are there and the controller answers; a usage error that says how to
    /// fix it otherwise.
    pub fn connect() -> anyhow::Result<Cluster> {
        for c in ["sbatch", "squeue", "scancel", "sinfo"] {
            if Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
            {
                return Err(usage(format!(
                    "--backend slurm: {c} not found on PATH; run memsweep where the Slurm commands are (a login node), or install slurm-client"
                )));
            }
        }
        Ok(Cluster)
    }

    /// The largest node's memory (sinfo's RealMemory), bytes.
    pub fn node_memory(&self) -> anyhow::Result<u64> {
        let out = run("sinfo", &["-h", "-N", "-o", "%m"]).map_err(|e| {
            usage(format!("--backend slurm: cannot reach the Slurm controller ({e:#}); check SLURM_CONF and that slurmctld runs"))
        })?;
        parse_node_memory(&out).ok_or_else(|| usage("--backend slurm: sinfo lists no nodes with memory; check the partition (--slurm-arg=--partition=...)"))
    }

    /// Submit a script; returns the array's job id.
    pub fn submit(&self, script: &Path) -> anyhow::Result<String> {
        let p = script.display().to_string();
        let out = run("sbatch", &["--parsable", &p])?;
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!("sbatch printed {out:?}, not a job id");
        }
        Ok(id)
    }

    /// Every job with this name the controller still knows (queued, running, or ended within
    /// MinJobAge), one entry per array task: `ARRAYID_INDEX` → state and comment.
    pub fn jobs(&self, name: &str) -> anyhow::Result<HashMap<String, Queued>> {
        let out = run(
            "squeue",
            &["-h", "-r", "-t", "all", "--name", name, "-o", SQUEUE_FORMAT],
        )?;
        Ok(parse_squeue(&out))
    }

    /// States from accounting, where slurmdbd is configured (None otherwise).
    pub fn sacct(&self, ids: &[String]) -> Option<HashMap<String, String>> {
        if ids.is_empty() {
            return Some(HashMap::new());
        }
        let list = ids.join(",");
        let out = run(
            "sacct",
            &["-n", "-P", "-X", "-j", &list, "-o", "JobID,State"],
        )
        .ok()?;
        Some(
            out.lines()
                .filter_map(|l| {
                    let (id, st) = l.split_once('|')?;
                    Some((id.to_string(), st.split_whitespace().next()?.to_string()))
                })
                .collect(),
        )
    }

    /// Cancel every job of the sweep.
    pub fn cancel(&self, name: &str) -> anyhow::Result<()> {
        run("scancel", &["--name", name]).map(|_| ())
    }
}

fn parse_node_memory(out: &str) -> Option<u64> {
    out.lines()
        .filter_map(|l| l.trim().trim_end_matches('+').parse::<u64>().ok())
        .max()
        .filter(|&m| m > 0)
        .map(|m| m << 20)
}

/// What [`parse_squeue`] reads: job id (`ARRAY_INDEX`), state, `--mem`, comment.
const SQUEUE_FORMAT: &str = "%i|%T|%m|%k";

fn parse_squeue(out: &str) -> HashMap<String, Queued> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(4, '|');
            let id = f.next()?.to_string();
            let state = f.next()?.to_string();
            let mem_bytes = f.next().and_then(|m| crate::size::parse_bytes(m).ok());
            let comment = f.next().unwrap_or("").to_string();
            Some((
                id,
                Queued {
                    state,
                    comment,
                    mem_bytes,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinct() {
        let a = job_name(Path::new("/work/sweeps/2026-01-01/12-00-00"));
        assert_eq!(a, job_name(Path::new("/work/sweeps/2026-01-01/12-00-00")));
        assert!(a.starts_with("ms-12-00-00-"), "{a}");
        assert_ne!(a, job_name(Path::new("/other/sweeps/2026-01-01/12-00-00")));
        assert_eq!(
            job_name(Path::new("/x/a b;c")).split('-').nth(1),
            Some("a_b_c")
        );
    }

    #[test]
    fn parses_sinfo_and_squeue() {
        assert_eq!(parse_node_memory("20489\n64000+\n"), Some(64000 << 20));
        assert_eq!(parse_node_memory("\n"), None);
        let q = parse_squeue(
            "12_0|RUNNING|600M|memsweep-batch-0\n12_1|PENDING|600M|memsweep-batch-0\n\
             13_0|OUT_OF_MEMORY|1G|(null)\n",
        );
        assert_eq!(q["13_0"].mem_bytes, Some(1 << 30));
        // The format asks for the fields in the order the parser reads them.
        assert_eq!(
            SQUEUE_FORMAT.split('|').collect::<Vec<_>>(),
            ["%i", "%T", "%m", "%k"]
        );
        assert_eq!(q.len(), 3);
        assert_eq!(q["12_1"].state, "PENDING");
        assert_eq!(q["12_0"].comment, "memsweep-batch-0");
        assert_eq!(parse_batch_line("7 2"), Some((7, 2)));
        assert_eq!(parse_batch_line("7"), None);
    }

    #[test]
    fn the_script_carries_every_option() {
        let b = Batch {
            seq: 3,
            mem_bytes: 600 << 20,
            jobs: vec![(0, 1), (5, 2)],
        };
        let s = b.script(
            Path::new("/sw/d"),
            Path::new("/bin/memsweep"),
            "ms-d-1",
            Some(2),
            &["--time=10".into()],
        );
        for want in [
            "#SBATCH --job-name=ms-d-1\n",
            "#SBATCH --array=0-1%2\n",
            "#SBATCH --mem=600M\n",
            "#SBATCH --comment=memsweep-batch-3\n",
            "#SBATCH --time=10\n",
            "exec /bin/memsweep slurm-job /sw/d --batch /sw/d/.slurm/batch-3.jobs\n",
        ] {
            assert!(s.contains(want), "{want:?} not in\n{s}");
        }
        assert_eq!(b.list(), "0 1\n5 2\n");
    }
}
