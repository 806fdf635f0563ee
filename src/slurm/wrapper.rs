//! The wrapper each Slurm job runs on its node (`memsweep slurm-job DIR --batch FILE`, written
//! into the sbatch script): it looks up which job and attempt its array index stands for, runs the
//! job's command with memsweep's usual environment and output files, and records the exit status,
//! wall time and peak in `DIR/N/result.json` — the sweep directory is on the shared filesystem,
//! so results never depend on slurmdbd.
//!
//! The peak is read from the job's own Slurm cgroup when it has one (task/cgroup: the probe finds
//! the step's memory cgroup, limited by `--mem`, and reads its max usage and OOM-kill counter);
//! otherwise the job's process tree is sampled through /proc every 50 ms.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{JobResult, RESULT_FILE, parse_batch_line};
use crate::exec::sample;
use crate::probe::{Fs, Probe};
use crate::sweep::{JobCommand, SweepPlan};

/// Run the job of this array task; returns the exit code to leave with (128 + signal when a
/// signal ended it).
pub fn run(dir: &Path, batch: &Path) -> anyhow::Result<i32> {
    let index: usize = std::env::var("SLURM_ARRAY_TASK_ID")
        .ok()
        .and_then(|v| v.parse().ok())
        .context("SLURM_ARRAY_TASK_ID is not set: memsweep slurm-job runs inside the array jobs memsweep run --backend slurm submits")?;
    let list =
        std::fs::read_to_string(batch).with_context(|| format!("reading {}", batch.display()))?;
    let (job, attempt) = list
        .lines()
        .nth(index)
        .and_then(parse_batch_line)
        .with_context(|| format!("{}: no line for array index {index}", batch.display()))?;
    let plan_path = dir.join(crate::journal::PLAN_FILE);
    let plan: SweepPlan = serde_json::from_slice(
        &std::fs::read(&plan_path).with_context(|| format!("reading {}", plan_path.display()))?,
    )
    .with_context(|| format!("parsing {}", plan_path.display()))?;
    let spec = plan
        .jobs
        .get(job)
        .with_context(|| format!("{}: no job {job}", plan_path.display()))?
        .to_job();
    let jdir = dir.join(job.to_string());
    std::fs::create_dir_all(&jdir)?;
    let open = |name: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(jdir.join(name))
            .with_context(|| format!("opening {}", jdir.join(name).display()))
    };

    let probe = Probe::new(Fs::new(None)).ok();
    let before = probe.as_ref().and_then(|p| p.status().ok());
    // The step's own cgroup: limited by --mem (a host reading has no cgroup limit).
    let cgroup = before
        .as_ref()
        .filter(|s| s.cgroup_limit_bytes.is_some() && s.peak_bytes.is_some())
        .map(|s| s.source);

    let mut cmd = match &spec.command {
        JobCommand::Argv(a) => {
            let mut c = Command::new(&a[0]);
            c.args(&a[1..]);
            c
        }
        JobCommand::Shell(s) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(s);
            c
        }
    };
    let slurm_id = format!(
        "{}_{}",
        std::env::var("SLURM_ARRAY_JOB_ID").unwrap_or_default(),
        index
    );
    cmd.stdin(Stdio::null())
        .stdout(open("stdout")?)
        .stderr(open("stderr")?)
        .env("MEMSWEEP_JOB_ID", job.to_string())
        .env("MEMSWEEP_JOB_DIR", &jdir)
        .env("MEMSWEEP_ATTEMPT", attempt.to_string())
        .env("MEMSWEEP_SWEEP_DIR", dir);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::write(
                jdir.join("stderr"),
                format!("memsweep: cannot start the job: {e}\n"),
            );
            write(
                &jdir,
                &JobResult {
                    job,
                    attempt,
                    slurm_id,
                    exit_code: Some(127),
                    signal: None,
                    oom: false,
                    peak_bytes: None,
                    peak_source: String::new(),
                    limit_bytes: before.as_ref().and_then(|s| s.cgroup_limit_bytes),
                    wall_s: 0.0,
                    node: hostname(),
                },
            )?;
            return Ok(127);
        }
    };
    // If the kernel must kill inside the job's cgroup, it takes the job, not this record keeper.
    let _ = std::fs::write(format!("/proc/{}/oom_score_adj", child.id()), "1000");

    let page = 4096;
    let mut sampled = 0u64;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if cgroup.is_none() {
            let procs = sample::scan();
            let t = sample::forest(&procs, &[vec![child.id() as i32]], page);
            sampled = sampled.max(t[0].rss_bytes);
        }
        std::thread::sleep(Duration::from_millis(if cgroup.is_some() {
            100
        } else {
            50
        }));
    };
    let wall_s = started.elapsed().as_secs_f64();
    let after = probe.as_ref().and_then(|p| p.status().ok());
    let oom = match (&before, &after) {
        (Some(b), Some(a)) => a.oom_kills.unwrap_or(0) > b.oom_kills.unwrap_or(0),
        _ => false,
    };
    let (peak, source) = match (cgroup, &after) {
        (Some(src), Some(a)) => (
            a.peak_bytes,
            format!("slurm-{}", src.replace("cgroup", "cgroup-v")),
        ),
        _ => ((sampled > 0).then_some(sampled), "proc".to_string()),
    };
    use std::os::unix::process::ExitStatusExt;
    let result = JobResult {
        job,
        attempt,
        slurm_id,
        exit_code: status.code(),
        signal: status.signal(),
        oom,
        peak_bytes: peak,
        peak_source: source,
        limit_bytes: after.as_ref().and_then(|s| s.cgroup_limit_bytes),
        wall_s,
        node: hostname(),
    };
    write(&jdir, &result)?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

fn write(jdir: &Path, r: &JobResult) -> anyhow::Result<()> {
    crate::journal::atomic_write_json(&jdir.join(RESULT_FILE), r)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
