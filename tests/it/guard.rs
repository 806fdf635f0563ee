//! `memsweep guard` and `memsweep monitor` end to end, in real capped memory cgroups: commands
//! memsweep does not launch the jobs of (xargs -P 8, Hydra's joblib launcher) finish every job
//! without an OOM kill, nothing stays stopped after the command ends, and the monitor logs and
//! warns as a job grows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::harness::{TestCgroup, ms, poll, tempdir};
use crate::skip;

const MIB: u64 = 1 << 20;

macro_rules! cgroup {
    ($name:expr, $limit:expr) => {
        match TestCgroup::new(&format!("guard-{}", $name), $limit) {
            Ok(cg) => cg,
            Err(why) => skip!("{why}"),
        }
    };
}

/// The project's venv Python (scripts/setup makes it, with Hydra), else None.
fn venv_python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    p.is_file().then_some(p)
}

/// A Python that holds `mb` MiB (every page touched) for `secs`, then writes `done/NAME`.
fn hog(mb: u64, secs: f64, done: &Path, name: &str) -> String {
    format!(
        "import time; b = b'x' * ({mb} << 20); time.sleep({secs}); open('{}/{name}', 'w').close()",
        done.display()
    )
}

/// Counts the kernel's OOM kills in a cgroup and in every cgroup below it while a test runs
/// (v1 counts a kill only in the victim's own cgroup, and the guard removes its own at the end,
/// so the counters are read while they exist and the largest seen per cgroup is kept).
struct OomWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl OomWatch {
    fn start(cg: &TestCgroup) -> OomWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let dir = cg.dir().to_path_buf();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen = std::collections::HashMap::<PathBuf, u64>::new();
            loop {
                let done = flag.load(Ordering::Relaxed);
                let mut stack = vec![dir.clone()];
                while let Some(d) = stack.pop() {
                    let n = std::fs::read_to_string(d.join("memory.oom_control"))
                        .unwrap_or_default()
                        .lines()
                        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
                        .unwrap_or(0u64);
                    let e = seen.entry(d.clone()).or_default();
                    *e = (*e).max(n);
                    if let Ok(rd) = std::fs::read_dir(&d) {
                        stack.extend(
                            rd.flatten()
                                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                                .map(|e| e.path()),
                        );
                    }
                }
                if done {
                    return seen.values().sum();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        OomWatch { stop, thread }
    }

    fn total(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Processes in the cgroup (and below) that are stopped (state T).
fn stopped_in(cg: &TestCgroup) -> Vec<(u32, String)> {
    cg.pids()
        .into_iter()
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let state = stat[stat.rfind(')')? + 2..].chars().next()?;
            (state == 'T').then_some((p, stat))
        })
        .collect()
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.count())
}

#[test]
fn guard_with_xargs_p8_finishes_a_heterogeneous_sweep_without_an_oom_kill() {
    let Some(py) = venv_python() else {
        skip!("no .venv/bin/python: run scripts/setup");
    };
    let cg = cgroup!("xargs", 1 << 30);
    let dir = tempdir();
    let done = dir.path().join("done");
    std::fs::create_dir(&done).unwrap();
    // 12 jobs of 100–400 MiB (2.6 GiB in all) in 1 GiB, eight at once: xargs alone loses jobs.
    let sizes = [300u64, 100, 400, 200];
    let lines: String = (0..12)
        .map(|i| {
            let mb = sizes[i % 4];
            format!(
                "{} -c \"{}\"\n",
                py.display(),
                hog(mb, 1.0, &done, &format!("j{i}"))
            )
        })
        .collect();
    std::fs::write(dir.path().join("jobs.txt"), lines).unwrap();
    let out = dir.path().join("g");
    let watch = OomWatch::start(&cg);
    let res = ms(["guard", "--out"])
        .arg(&out)
        .args([
            "--",
            "sh",
            "-c",
            "xargs -d '\\n' -n 1 -P 8 sh -c < jobs.txt",
        ])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(240))
        .in_cgroup(&cg)
        .run();
    let oom = watch.total();
    res.assert_code(0).assert_no_panic();
    assert_eq!(oom, 0, "the kernel killed:\n{}", res.stderr);
    assert_eq!(files_in(&done), 12, "jobs lost:\n{}", res.stderr);
    assert!(stopped_in(&cg).is_empty(), "a process was left stopped");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["oom_kills"], 0, "{s}");
    // Each Python job is one row, with its measured peak.
    let big: Vec<&serde_json::Value> = s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["peak_bytes"].as_u64().unwrap_or(0) >= 95 * MIB)
        .collect();
    assert_eq!(big.len(), 12, "one row per job process: {s}");
    // It had to act: memory does not fit eight at once.
    let held = journal(&out)
        .iter()
        .filter(|e| e["event"] == "job_pause")
        .count();
    assert!(held > 0, "nothing was held or paused:\n{}", res.stderr);
    // `memsweep show` reads the directory: the table and an SVG.
    let svg = dir.path().join("g.svg");
    let shown = ms(["show"]).arg(&out).arg("--svg").arg(&svg).run();
    shown.assert_code(0);
    assert!(shown.stdout.contains("pauses"), "{}", shown.stdout);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn guard_with_hydra_joblib_n_jobs_8_finishes_8_of_8_in_1gib() {
    let Some(py) = venv_python() else {
        skip!("no .venv/bin/python: run scripts/setup");
    };
    let ok = Command::new(&py)
        .args(["-c", "import hydra_plugins.hydra_joblib_launcher"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip!("hydra-joblib-launcher is not installed in .venv: run scripts/setup");
    }
    let cg = cgroup!("hydra", 1 << 30);
    let dir = tempdir();
    let done = dir.path().join("done");
    std::fs::create_dir(&done).unwrap();
    let lines: String = (0..8)
        .map(|i| {
            format!(
                "{} -c \"{}\" id=j{i}\n",
                py.display(),
                hog(250, 1.0, &done, &format!("j{i}"))
            )
        })
        .collect();
    let jobs = dir.path().join("jobs.txt");
    std::fs::write(&jobs, lines).unwrap();
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/hydra_app/app.py");
    let out = dir.path().join("g");
    let watch = OomWatch::start(&cg);
    let res = ms(["guard", "--out"])
        .arg(&out)
        .arg("--")
        .arg(&py)
        .arg(&app)
        .args([
            "--multirun",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=8",
            "job=j0,j1,j2,j3,j4,j5,j6,j7",
        ])
        .arg(format!(
            "hydra.sweep.dir={}",
            dir.path().join("hy").display()
        ))
        .env("BENCH_JOBS", &jobs)
        .current_dir(dir.path())
        .timeout(Duration::from_secs(300))
        .in_cgroup(&cg)
        .run();
    let oom = watch.total();
    res.assert_code(0).assert_no_panic();
    assert_eq!(oom, 0, "the kernel killed:\n{}", res.stderr);
    assert_eq!(files_in(&done), 8, "jobs lost:\n{}", res.stderr);
    assert!(stopped_in(&cg).is_empty(), "a process was left stopped");
}

#[test]
fn nothing_stays_stopped_when_the_command_ends_and_its_exit_code_is_the_guards() {
    command_ends_while_processes_are_held(&[]);
}

#[test]
fn through_proc_only_nothing_stays_stopped_either() {
    command_ends_while_processes_are_held(&["--no-cgroups"]);
}

fn command_ends_while_processes_are_held(flags: &[&str]) {
    let Some(py) = venv_python() else {
        skip!("no .venv/bin/python: run scripts/setup");
    };
    let cg = cgroup!("ends", 1 << 30);
    let dir = tempdir();
    let done = dir.path().join("done");
    std::fs::create_dir(&done).unwrap();
    // The command (a Python that is never held: it is the command itself) starts four 150 MiB
    // jobs and exits 3 half a second later, while the guard still holds the later ones
    // (nothing is known yet: one starts, the rest wait until it has plateaued).
    let script = format!(
        "import subprocess, sys, time\nfor i in range(4):\n    subprocess.Popen([sys.executable, '-c', {:?}.replace('NAME', 'j%d' % i)])\ntime.sleep(0.5)\nsys.exit(3)",
        hog(150, 1.0, &done, "NAME")
    );
    let out = dir.path().join("g");
    let res = ms(["guard"])
        .args(flags)
        .arg("--out")
        .arg(&out)
        .arg("--")
        .arg(&py)
        .args(["-c", &script])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(60))
        .in_cgroup(&cg)
        .run();
    res.assert_code(3).assert_no_panic();
    let held = journal(&out)
        .iter()
        .filter(|e| e["event"] == "job_pause")
        .count();
    assert!(held > 0, "the test needs held processes:\n{}", res.stderr);
    assert!(
        stopped_in(&cg).is_empty(),
        "left stopped: {:?}",
        stopped_in(&cg)
    );
    // The jobs it left behind run to their end.
    let finished = poll(Duration::from_secs(20), || {
        (files_in(&done) == 4).then_some(())
    });
    assert!(finished.is_some(), "{} of 4 finished", files_in(&done));
}

#[test]
fn monitor_logs_and_warns_once_while_a_job_grows_past_80_percent_of_512mib() {
    let Some(py) = venv_python() else {
        skip!("no .venv/bin/python: run scripts/setup");
    };
    let cg = cgroup!("monitor", 512 * MIB);
    let dir = tempdir();
    let log = dir.path().join("mon.jsonl");
    let flag = dir.path().join("warned");
    let mut monitor = ms(["monitor", "--interval", "0.1", "--log"])
        .arg(&log)
        .arg("--on-warn")
        .arg(format!("echo x >> '{}'", flag.display()))
        .in_cgroup(&cg)
        .command();
    let monitor = monitor
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Grow to 440 MiB (86% of the limit) in 40 MiB steps, hold, then let go.
    let grow = "import time\nb = []\nfor _ in range(11):\n    b.append(b'x' * (40 << 20)); time.sleep(0.15)\ntime.sleep(1.0)";
    let status = Command::new("sh")
        .arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(cg.procs_file())
        .arg(&py)
        .args(["-c", grow])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(400));
    let _ = Command::new("kill")
        .args(["-TERM", &monitor.id().to_string()])
        .status();
    let out = monitor.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIGTERM ends the monitor with 0"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let samples: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(samples.len() >= 10, "{} samples", samples.len());
    for key in [
        "t",
        "working_set_bytes",
        "usage_bytes",
        "limit_bytes",
        "available_bytes",
        "psi_some_avg10",
        "top",
    ] {
        assert!(samples[0].get(key).is_some(), "no {key}: {}", samples[0]);
    }
    assert_eq!(samples[0]["limit_bytes"], 512 * MIB);
    let peak = samples
        .iter()
        .map(|s| s["working_set_bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(peak >= 430 * MIB, "peak working set {peak}");
    // The top processes name the job with its RSS.
    assert!(samples.iter().any(|s| {
        s["top"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["rss_bytes"].as_u64().unwrap() >= 400 * MIB)
    }));
    // One crossing, one warning and one --on-warn run (hysteresis).
    assert_eq!(samples.iter().filter(|s| s["warned"] == true).count(), 1);
    assert_eq!(
        stderr.matches("warning: working set").count(),
        1,
        "{stderr}"
    );
    let ran = poll(Duration::from_secs(5), || {
        std::fs::read_to_string(&flag)
            .ok()
            .filter(|t| !t.is_empty())
    });
    assert_eq!(ran.as_deref(), Some("x\n"), "--on-warn ran once");
    // `memsweep show --svg` draws the log's timeline.
    let svg = dir.path().join("mon.svg");
    let shown = ms(["show"]).arg(&log).arg("--svg").arg(&svg).run();
    shown.assert_code(0);
    assert!(shown.stdout.contains("1 warning"), "{}", shown.stdout);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<circle"));
}

#[test]
fn guard_and_monitor_refuse_bad_input_with_exit_2() {
    let r = ms(["guard"]).run();
    r.assert_code(2);
    let r = ms(["monitor", "--warn", "150"]).run();
    r.assert_code(2);
    assert!(r.stderr.contains("--warn"), "{}", r.stderr);
    let r = ms(["monitor", "--interval", "0"]).run();
    r.assert_code(2);
    assert!(r.stderr.contains("--interval"), "{}", r.stderr);
    let r = ms(["monitor", "--cgroup", "/nonexistent-cgroup-dir"]).run();
    r.assert_code(2);
    assert!(r.stderr.contains("--cgroup"), "{}", r.stderr);
    let dir = tempdir();
    let r = ms(["guard", "--out"])
        .arg(dir.path().join("g"))
        .args(["--", "no-such-program-xyz"])
        .run();
    r.assert_code(2);
    assert!(r.stderr.contains("no-such-program-xyz"), "{}", r.stderr);
}
