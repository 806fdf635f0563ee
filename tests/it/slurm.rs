//! `memsweep run --backend slurm` against a real single-node Slurm (munged, slurmctld, slurmd with
//! task/cgroup, so --mem is enforced by the kernel and OUT_OF_MEMORY is real), started by
//! scripts/slurm-up in a temp dir on first use and stopped by scripts/slurm-down when this test
//! process exits. Tests skip with the reason where it cannot start (not root, Slurm not installed)
//! and fail instead under MEMSWEEP_REQUIRE_SLURM=1 (CI).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::harness::{Ms, ms, poll, tempdir};

const MIB: u64 = 1 << 20;

/// The running cluster: its slurm.conf, and the pipe whose closing (this process exiting) makes
/// the keeper shell run scripts/slurm-down.
struct Cluster {
    conf: PathBuf,
    _keeper: Mutex<ChildStdin>,
    _dir: tempfile::TempDir,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
/// One Slurm test at a time: the node has few CPUs, and timings stay readable.
static SERIAL: Mutex<()> = Mutex::new(());

fn start() -> Result<Cluster, String> {
    for c in ["slurmctld", "slurmd", "sbatch", "munged"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            return Err(format!(
                "{c} is not installed (scripts/setup installs Slurm as root)"
            ));
        }
    }
    if is_root() {
        let dir = tempfile::Builder::new()
            .prefix("memsweep-slurm-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        // setsid: a Ctrl-C to `cargo test` must not kill the keeper before it stops the daemons.
        let mut keeper = Command::new("setsid")
            .arg("sh")
            .arg("-c")
            .arg(
                "\"$1/slurm-up\" \"$2\" >&2 || exit 1; echo READY; cat >/dev/null; \
                 \"$1/slurm-down\" \"$2\" >/dev/null 2>&1; rm -rf \"$2\"",
            )
            .arg("keeper")
            .arg(&scripts)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run scripts/slurm-up: {e}"))?;
        let mut line = String::new();
        let mut out = BufReader::new(keeper.stdout.take().unwrap());
        let _ = out.read_line(&mut line);
        if line.trim() != "READY" {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(keeper.stderr.as_mut().unwrap(), &mut err);
            return Err(format!("scripts/slurm-up failed: {}", err.trim()));
        }
        let stdin = keeper.stdin.take().unwrap();
        // The keeper lives on after this process; its stderr is not read any more.
        drop(keeper);
        return Ok(Cluster {
            conf: dir.path().join("etc/slurm.conf"),
            _keeper: Mutex::new(stdin),
            _dir: dir,
        });
    }
    Err("not root: slurmd and munged need root".into())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

/// The cluster and the serial lock, or the reason there is none.
fn cluster() -> Result<(&'static Cluster, MutexGuard<'static, ()>), String> {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    match CLUSTER.get_or_init(start) {
        Ok(c) => Ok((c, guard)),
        Err(e) => Err(e.clone()),
    }
}

/// Skip with the reason, or fail under MEMSWEEP_REQUIRE_SLURM=1.
macro_rules! need_cluster {
    () => {
        match cluster() {
            Ok(c) => c,
            Err(why) => {
                if std::env::var("MEMSWEEP_REQUIRE_SLURM").as_deref() == Ok("1") {
                    panic!("cannot skip under MEMSWEEP_REQUIRE_SLURM=1: {why}");
                }
                eprintln!("SKIPPED {}: {why}", module_path!());
                return;
            }
        }
    };
}

/// Holds `mb` MiB (every page written) for `secs` seconds.
fn hog(mb: u64, secs: f64) -> String {
    format!("import time; b = b'x' * ({mb} << 20); time.sleep({secs})")
}

/// [`hog`] of `{m}` MiB for a second: a template for `-p m=...`.
const HOG_M: &str = "import time; b = b'x' * ({m} << 20); time.sleep(1)";

/// `memsweep run --backend slurm` in `dir` against the cluster, with `dir`'s own history.
fn run_in(c: &Cluster, dir: &Path) -> Ms {
    ms(["run", "--backend", "slurm"])
        .env("SLURM_CONF", &c.conf)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
        .timeout(Duration::from_secs(180))
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events<'a>(j: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    j.iter().filter(|e| e["event"] == kind).collect()
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// Jobs of the sweep in `out` the controller shows queued or running.
fn live_jobs(c: &Cluster, out: &Path) -> Vec<String> {
    let script = std::fs::read_to_string(out.join(".slurm/batch-0.sh")).unwrap();
    let name = script
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --job-name="))
        .unwrap()
        .to_string();
    let o = Command::new("squeue")
        .args(["-h", "-r", "--name", &name, "-o", "%i %T"])
        .env("SLURM_CONF", &c.conf)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn grid_succeeds_then_asks_close_to_each_peak_and_teaches_a_local_run() {
    let (c, _serial) = need_cluster!();
    let dir = tempdir();
    let mbs = "150,214,278,342,407,471,535,600";
    let grid = |out: &str| {
        run_in(c, dir.path())
            .args(["--out", out, "-p", &format!("m={mbs}"), "--"])
            .args(["python3", "-c", HOG_M])
    };
    let first = grid("first").run();
    first.assert_code(0).assert_no_panic();
    let s1 = summary(&dir.path().join("first"));
    assert_eq!(s1["accounting"], "slurm");
    assert_eq!(s1["succeeded"], 8, "{}", first.stdout);
    let j1 = journal(&dir.path().join("first"));
    let requeues = events(&j1, "job_requeue").len();
    assert!(
        requeues == 0,
        "first run: {requeues} failed attempts of 8 jobs\n{}",
        first.stderr
    );
    for job in s1["jobs"].as_array().unwrap() {
        let mb: u64 = job["params"][0][1].as_str().unwrap().parse().unwrap();
        let peak = job["peak_bytes"].as_u64().unwrap();
        assert!(
            peak >= mb * MIB && peak < (mb + 64) * MIB,
            "job {job}: peak {peak} for {mb} MiB"
        );
        assert!(
            job["peak_source"]
                .as_str()
                .unwrap()
                .starts_with("slurm-cgroup"),
            "{job}"
        );
    }

    let second = grid("second").run();
    second.assert_code(0);
    let out2 = dir.path().join("second");
    let j2 = journal(&out2);
    assert!(
        events(&j2, "job_requeue").is_empty(),
        "second run failed attempts:\n{}",
        second.stderr
    );
    let s2 = summary(&out2);
    assert_eq!(s2["succeeded"], 8);
    for start in events(&j2, "job_start") {
        let job = start["job"].as_u64().unwrap() as usize;
        let asked = start["estimate_bytes"].as_u64().unwrap();
        let peak = s2["jobs"][job]["peak_bytes"].as_u64().unwrap();
        assert!(
            asked >= peak && asked as f64 <= 1.3 * peak as f64 + 32.0 * MIB as f64,
            "job {job}: asked {asked} for a peak of {peak}"
        );
    }

    // The same sweep directory shape as a local run: show reads it, table and SVG.
    let shown = ms(["show", "second", "--svg", "t.svg"])
        .current_dir(dir.path())
        .run();
    shown.assert_code(0);
    assert!(shown.stdout.contains("on Slurm"), "{}", shown.stdout);
    assert!(
        std::fs::read_to_string(dir.path().join("t.svg"))
            .unwrap()
            .contains("<svg")
    );

    // A Slurm run teaches a later local run: its dry run estimates every job from its history.
    let local = ms(["run", "--dry-run", "-p", &format!("m={mbs}"), "--"])
        .args(["python3", "-c", HOG_M])
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .current_dir(dir.path())
        .run();
    local.assert_code(0);
    assert_eq!(
        local.stdout.matches("job history").count(),
        8,
        "{}",
        local.stdout
    );
}

#[test]
fn too_small_mem_ends_out_of_memory_and_is_resubmitted_larger() {
    let (c, _serial) = need_cluster!();
    let dir = tempdir();
    let out = run_in(c, dir.path())
        .args([
            "--out",
            "o",
            "--mem-per-job",
            "100M",
            "--",
            "python3",
            "-c",
            &hog(250, 0.5),
        ])
        .run();
    out.assert_code(0);
    let j = journal(&dir.path().join("o"));
    let requeues = events(&j, "job_requeue");
    assert!(!requeues.is_empty(), "no resubmission:\n{}", out.stderr);
    assert!(
        requeues[0]["reason"]
            .as_str()
            .unwrap()
            .contains("OUT_OF_MEMORY at --mem 100 MiB"),
        "{}",
        requeues[0]
    );
    let asks: Vec<u64> = events(&j, "job_start")
        .iter()
        .map(|s| s["estimate_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(asks[0], 100 * MIB);
    for w in asks.windows(2) {
        assert!(w[1] as f64 >= 1.5 * w[0] as f64, "asks {asks:?}");
    }
    let s = summary(&dir.path().join("o"));
    assert_eq!(s["jobs"][0]["status"], "succeeded");
    assert!(s["jobs"][0]["peak_bytes"].as_u64().unwrap() >= 250 * MIB);

    // With no retries, the same job ends oom (exit 1), its state reported.
    let out = run_in(c, dir.path())
        .args([
            "--out",
            "p",
            "--no-history",
            "--retries",
            "0",
            "--mem-per-job",
            "100M",
        ])
        .args(["--", "python3", "-c", &hog(250, 0.5)])
        .run();
    out.assert_code(1);
    assert_eq!(summary(&dir.path().join("p"))["jobs"][0]["status"], "oom");

    // Any other failure is reported with its exit code (jobs from a jobs file).
    std::fs::write(
        dir.path().join("jobs.txt"),
        "echo fine\necho bad >&2; exit 3\n",
    )
    .unwrap();
    let out = run_in(c, dir.path())
        .args(["--out", "q", "--jobs-file", "jobs.txt"])
        .run();
    out.assert_code(1);
    let s = summary(&dir.path().join("q"));
    assert_eq!(s["jobs"][0]["status"], "succeeded");
    assert_eq!(s["jobs"][1]["status"], "failed");
    assert_eq!(s["jobs"][1]["exit_code"], 3);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("q/1/stderr")).unwrap(),
        "bad\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("q/0/stdout")).unwrap(),
        "fine\n"
    );
}

#[test]
fn ctrl_c_cancels_every_job_and_exits_130() {
    let (c, _serial) = need_cluster!();
    let dir = tempdir();
    let mut child = run_in(c, dir.path())
        .args([
            "--out",
            "o",
            "--mem-per-job",
            "64M",
            "-p",
            "s=1,2,3,4",
            "--",
        ])
        .args(["sh", "-c", "sleep 60; echo {s}"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = dir.path().join("o");
    poll(Duration::from_secs(60), || {
        (live_jobs_if_any(c, &out)
            .iter()
            .filter(|l| l.ends_with("RUNNING"))
            .count()
            >= 1)
            .then_some(())
    })
    .expect("no job started running");
    assert_eq!(events(&journal(&out), "job_start").len(), 4);
    kill(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        live_jobs(c, &out).is_empty(),
        "left in squeue: {:?}",
        live_jobs(c, &out)
    );
    let s = summary(&out);
    assert!(
        s["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "interrupted"),
        "{s}"
    );
}

fn live_jobs_if_any(c: &Cluster, out: &Path) -> Vec<String> {
    if out.join(".slurm/batch-0.sh").exists() {
        live_jobs(c, out)
    } else {
        vec![]
    }
}

fn kill(pid: u32, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

#[test]
fn kill_9_then_resume_submits_no_job_twice() {
    let (c, _serial) = need_cluster!();
    let dir = tempdir();
    // sweep.toml carries the backend and the sbatch options.
    std::fs::write(
        dir.path().join("sweep.toml"),
        "backend = \"slurm\"\nmem-per-job = \"64M\"\njobs = 2\nout = \"o\"\n\
         command = [\"sh\", \"-c\", \"sleep 3; echo {s}\"]\n[params]\ns = \"range(0,5)\"\n\
         [slurm]\nargs = [\"--time=5\"]\n",
    )
    .unwrap();
    let mut child = ms(["run", "-f", "sweep.toml"])
        .env("SLURM_CONF", &c.conf)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .current_dir(dir.path())
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = dir.path().join("o");
    poll(Duration::from_secs(30), || {
        (events(&journal(&out), "job_start").len() == 5).then_some(())
    })
    .expect("jobs not submitted");
    kill(child.id(), "KILL");
    child.wait().unwrap();
    let script = std::fs::read_to_string(out.join(".slurm/batch-0.sh")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-4%2\n") && script.contains("#SBATCH --time=5\n"),
        "{script}"
    );
    // As if the runner had died after sbatch but before its journal reached the disk: the last
    // two submissions are missing from the journal; resume must find them in squeue, not resubmit.
    let text = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let mut dropped = 0;
    let kept: Vec<&str> = text
        .lines()
        .rev()
        .filter(|l| {
            if dropped < 2 && l.contains("\"job_start\"") {
                dropped += 1;
                return false;
            }
            true
        })
        .collect();
    let kept: Vec<&str> = kept.into_iter().rev().collect();
    std::fs::write(out.join("journal.jsonl"), kept.join("\n") + "\n").unwrap();
    assert!(
        !live_jobs(c, &out).is_empty(),
        "jobs should outlive the runner"
    );

    let resumed = ms(["run", "--resume", "o"])
        .env("SLURM_CONF", &c.conf)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .current_dir(dir.path())
        .timeout(Duration::from_secs(120))
        .run();
    resumed.assert_code(0);
    let batches = std::fs::read_dir(out.join(".slurm"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jobs"))
        .count();
    assert_eq!(batches, 1, "resume submitted again:\n{}", resumed.stderr);
    let s = summary(&out);
    assert_eq!(s["succeeded"], 5, "{s}");
    for j in s["jobs"].as_array().unwrap() {
        assert_eq!(j["attempts"], 1, "{j}");
    }
    // --resume keeps the backend.
    let e = ms(["run", "--resume", "o", "--backend", "local"])
        .current_dir(dir.path())
        .run();
    e.assert_code(2);
    assert!(e.stderr.contains("keeps its backend"), "{}", e.stderr);
}

#[test]
fn dry_run_prints_the_sbatch_scripts_and_each_mem() {
    let (c, _serial) = need_cluster!();
    let dir = tempdir();
    let out = run_in(c, dir.path())
        .args([
            "--dry-run",
            "--out",
            "o",
            "-j",
            "3",
            "--slurm-arg=--partition=debug",
        ])
        .args(["-p", "m=1,2,3,4,5", "--", "echo", "{m}"])
        .run();
    out.assert_code(0);
    assert!(
        !dir.path().join("o").exists(),
        "a dry run created the sweep directory"
    );
    let o = &out.stdout;
    for want in [
        "probe (nothing known yet)",
        "#SBATCH --partition=debug",
        "#SBATCH --array=0-2%3",
        "slurm-job",
    ] {
        assert!(o.contains(want), "{want:?} missing:\n{o}");
    }
    // The first, middle and last jobs probe; the others wait to be sized from them.
    assert_eq!(o.matches("probe (nothing known yet)").count(), 3, "{o}");
    assert_eq!(o.matches("sized from the probes").count(), 2, "{o}");
}

#[test]
fn slurm_options_are_checked_like_every_other() {
    let dir = tempdir();
    let e = ms(["run", "--slurm-arg=--time=5", "--", "true"])
        .current_dir(dir.path())
        .run();
    e.assert_code(2);
    assert!(
        e.stderr
            .contains("--slurm-arg --time=5: sbatch options need --backend slurm"),
        "{}",
        e.stderr
    );
    let e = ms([
        "run",
        "--backend",
        "slurm",
        "--slurm-arg=--mem=1G",
        "--",
        "true",
    ])
    .current_dir(dir.path())
    .run();
    e.assert_code(2);
    assert!(e.stderr.contains("use --mem-per-job"), "{}", e.stderr);
    let e = ms(["run", "--backend", "slurm", "--", "true"])
        .env("PATH", "/nonexistent")
        .current_dir(dir.path())
        .run();
    e.assert_code(2);
    assert!(e.stderr.contains("sbatch not found"), "{}", e.stderr);
}
