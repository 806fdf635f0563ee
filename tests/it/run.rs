//! `memsweep run` end to end: real processes, real memory cgroups, real OOM kills (for xargs),
//! signals, resume after a SIGKILL, the /proc sampling mode, exit codes and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cgroup;
use crate::harness::{Ms, ms, pids_with, poll, signal, tempdir};

const MIB: u64 = 1 << 20;

/// Holds `mb` MiB (touched: bytes multiplication writes every page) for `secs` seconds.
fn hog(mb: u64, secs: f64) -> String {
    format!("import time; b = b'x' * ({mb} << 20); time.sleep({secs})")
}

/// `memsweep run` in `dir`, with its own history store (tests must not share one).
pub fn run_in(dir: &Path) -> Ms {
    ms(["run"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn statuses(summary: &serde_json::Value) -> Vec<String> {
    summary["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .map(|j| j["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn twelve_300mib_jobs_in_1gib_finish_without_oom_while_xargs_gets_killed() {
    let cg = cgroup!("twelve", 1 << 30);
    let dir = tempdir();
    let out = dir.path().join("sw");
    let res = run_in(dir.path())
        .args(["-j", "12", "--out"])
        .arg(&out)
        .args([
            "-p",
            "i=range(0,12)",
            "--",
            "env",
            "JOB={i}",
            "python3",
            "-c",
        ])
        .arg(hog(300, 2.0))
        .timeout(Duration::from_secs(150))
        .in_cgroup(&cg)
        .run();
    res.assert_code(0);
    assert_eq!(
        cg.oom_kills(),
        0,
        "memsweep let the kernel kill:\n{}",
        res.stderr
    );
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["succeeded"], 12, "{s}");
    assert_eq!(s["oom_kills"], 0);
    for j in s["jobs"].as_array().unwrap() {
        let peak = j["peak_bytes"].as_u64().unwrap_or(0);
        assert!(
            peak >= 290 * MIB,
            "peak of a 300 MiB job recorded as {peak}: {j}"
        );
    }
    drop(cg);

    // The same jobs with xargs -P 12 in an identical cgroup: the kernel kills some.
    let cg = cgroup!("twelve-xargs", 1 << 30);
    let script = format!(
        "echo $$ > '{}' && seq 12 | xargs -P 12 -I@ python3 -c \"{}\"",
        cg.procs_file().display(),
        hog(300, 2.0)
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        cg.oom_kills() > 0,
        "xargs -P 12 should have been OOM-killed: the test could not fail"
    );
}

#[test]
fn a_job_that_suddenly_grows_is_paused_or_requeued_not_oom_killed() {
    let cg = cgroup!("grow", 1 << 30);
    let dir = tempdir();
    let out = dir.path().join("sw");
    // Told 150M, each job holds 100 MiB for a second, then grows to 500 MiB in 25 MiB steps:
    // two of them (1 GiB) cannot both finish at once.
    let code = "import time\nb = [b'x' * (100 << 20)]\ntime.sleep(1)\nfor _ in range(16):\n    b.append(b'x' * (25 << 20)); time.sleep(0.1)\ntime.sleep(1)";
    let res = run_in(dir.path())
        .args(["-j", "2", "--mem-per-job", "150M", "--out"])
        .arg(&out)
        .args(["-p", "i=0,1", "--", "env", "JOB={i}", "python3", "-c", code])
        .in_cgroup(&cg)
        .run();
    res.assert_code(0);
    assert_eq!(cg.oom_kills(), 0, "{}", res.stderr);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["succeeded"], 2, "{s}");
    let acted = s["pauses"].as_u64().unwrap() + s["requeues"].as_u64().unwrap();
    assert!(acted >= 1, "neither paused nor requeued: {s}");
}

#[test]
fn requeue_mode_stops_and_reruns_a_growing_job_instead_of_an_oom_kill() {
    let cg = cgroup!("requeue", 1 << 30);
    let dir = tempdir();
    let out = dir.path().join("sw");
    // As above, but --on-pressure requeue: the younger job is stopped and run again later.
    let code = "import time\nb = [b'x' * (100 << 20)]\ntime.sleep(1)\nfor _ in range(16):\n    b.append(b'x' * (25 << 20)); time.sleep(0.1)\ntime.sleep(1)";
    let res = run_in(dir.path())
        .args([
            "-j",
            "2",
            "--mem-per-job",
            "150M",
            "--on-pressure",
            "requeue",
            "--out",
        ])
        .arg(&out)
        .args(["-p", "i=0,1", "--", "env", "JOB={i}", "python3", "-c", code])
        .in_cgroup(&cg)
        .run();
    res.assert_code(0);
    assert_eq!(cg.oom_kills(), 0, "{}", res.stderr);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["succeeded"], 2, "{s}");
    assert!(
        s["requeues"].as_u64().unwrap() >= 1,
        "nothing requeued: {s}"
    );
    assert_eq!(s["pauses"], 0, "requeue mode paused: {s}");
    let attempts: u64 = s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["attempts"].as_u64().unwrap())
        .sum();
    assert!(attempts >= 3, "a requeued job runs again: {s}");
}

#[test]
fn an_oversized_job_runs_alone_and_says_so() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let res = run_in(dir.path())
        .args(["-j", "4", "--limit", "1G", "--mem-per-job", "2G", "--out"])
        .arg(&out)
        .args(["-p", "x=1,2,3", "--", "sh", "-c", "echo {x}"])
        .run();
    res.assert_code(0);
    assert!(res.stderr.contains("runs alone"), "{}", res.stderr);
    assert_eq!(
        res.stderr.matches("runs alone").count(),
        1,
        "said once: {}",
        res.stderr
    );
    // One at a time: every start comes after the previous end.
    let ev = journal(&out);
    let mut running = 0i32;
    for e in &ev {
        match e["event"].as_str().unwrap() {
            "job_start" => running += 1,
            "job_end" => running -= 1,
            _ => {}
        }
        assert!(running <= 1, "two oversized jobs ran at once: {ev:?}");
    }
}

#[test]
fn runner_killed_then_resumed_runs_every_job_exactly_once_and_leaves_no_orphans() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let lines = dir.path().join("lines");
    let marker = format!("engine-resume-{}", std::process::id());
    let script = "sleep 1 && echo \"$JOB\" >> \"$1\"";
    let mut child = run_in(dir.path())
        .args(["-j", "2", "--mem-per-job", "10M", "--out"])
        .arg(&out)
        .args([
            "-p",
            "i=range(0,8)",
            "--",
            "env",
            "JOB={i}",
            "sh",
            "-c",
            script,
        ])
        .arg(format!("{marker}-{{i}}"))
        .arg(&lines)
        .command();
    child.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = child.spawn().unwrap();
    // Mid-sweep, right after job 3 started: jobs 0 and 1 ended (journaled), 2 and 3 are asleep.
    // (Killing right after a job's append would catch it before its end is journaled, and it
    // would rightly run again: "exactly once" holds for jobs whose end was recorded.)
    let mid = poll(Duration::from_secs(30), || {
        journal(&out)
            .iter()
            .any(|e| e["event"] == "job_start" && e["job"] == 3)
            .then_some(())
    });
    assert!(mid.is_some(), "job 3 did not start within 30 s");
    signal(child.id(), "KILL");
    child.wait().unwrap();
    let gone = poll(Duration::from_secs(5), || {
        pids_with(&marker).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "jobs outlived the SIGKILLed runner: {:?}",
        pids_with(&marker)
    );
    let before = std::fs::read_to_string(&lines).unwrap().lines().count();
    assert!(
        before < 8,
        "the sweep finished before the kill; the test proves nothing"
    );

    let res = run_in(dir.path()).arg("--resume").arg(&out).run();
    res.assert_code(0);
    let text = std::fs::read_to_string(&lines).unwrap();
    let mut ids: Vec<u32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..8).collect::<Vec<_>>(), "each job exactly once");
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["succeeded"], 8, "{s}");
    assert!(statuses(&s).iter().all(|st| st == "succeeded"), "{s}");
}

#[test]
fn sigint_stops_jobs_writes_the_summary_and_exits_130() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let marker = format!("engine-sigint-{}", std::process::id());
    let mut cmd = run_in(dir.path())
        .args(["-j", "2", "--grace", "2", "--mem-per-job", "10M", "--out"])
        .arg(&out)
        .args([
            "-p",
            "i=range(0,6)",
            "--",
            "sh",
            "-c",
            "sleep 30",
            &format!("{marker}-{{i}}"),
        ])
        .command();
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = poll(Duration::from_secs(20), || {
        let n = journal(&out)
            .iter()
            .filter(|e| e["event"] == "job_start")
            .count();
        (n >= 2).then_some(())
    });
    assert!(started.is_some(), "jobs did not start");
    signal(child.id(), "INT");
    let status = poll(Duration::from_secs(15), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("runner did not exit within 15 s of SIGINT");
    };
    assert_eq!(status.code(), Some(130));
    assert!(
        poll(Duration::from_secs(3), || pids_with(&marker)
            .is_empty()
            .then_some(()))
        .is_some(),
        "jobs survived the interrupt: {:?}",
        pids_with(&marker)
    );
    let s = read_json(&out.join("summary.json"));
    let st = statuses(&s);
    assert_eq!(st.iter().filter(|s| *s == "skipped").count(), 4, "{s}");
    // Stopped by the interrupt: not the jobs' failure.
    assert_eq!(st.iter().filter(|s| *s == "interrupted").count(), 2, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    let ev = journal(&out);
    assert_eq!(ev.last().unwrap()["event"], "sweep_end");
    assert_eq!(ev.last().unwrap()["interrupted"], true);
}

#[test]
fn a_job_ignoring_the_interrupt_is_waited_for_then_a_second_interrupt_kills_it() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let marker = format!("engine-stubborn-{}", std::process::id());
    let mut cmd = run_in(dir.path())
        .args(["--grace", "60", "--out"])
        .arg(&out)
        .args([
            "--",
            "sh",
            "-c",
            "trap '' INT TERM; touch \"$MEMSWEEP_JOB_DIR/trapped\"; while true; do sleep 0.1; done",
            &marker,
        ])
        .command();
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Not just journaled as started: the shell has set its trap (a SIGINT before that, on a
    // loaded machine, killed the job and the runner rightly quit at once).
    let started = poll(Duration::from_secs(20), || {
        out.join("0/trapped").exists().then_some(())
    });
    assert!(started.is_some(), "the job did not start");
    signal(child.id(), "INT");
    // Within the 60 s grace the runner waits for the job.
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "runner quit before --grace"
    );
    assert!(
        !pids_with(&marker).is_empty(),
        "the job was killed before --grace"
    );
    // A second interrupt kills at once.
    signal(child.id(), "INT");
    let status = poll(Duration::from_secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("a second SIGINT did not stop the runner");
    };
    assert_eq!(status.code(), Some(130));
    assert!(pids_with(&marker).is_empty(), "the job survived");
    let s = read_json(&out.join("summary.json"));
    assert_eq!(statuses(&s), ["interrupted"]);
}

#[test]
fn exit_code_is_0_when_all_succeed_and_1_when_one_fails() {
    let dir = tempdir();
    let out = dir.path().join("ok");
    let res = run_in(dir.path())
        .args(["--out"])
        .arg(&out)
        .args(["-p", "x=a,b,c", "--", "sh", "-c", "echo {x}"])
        .run();
    res.assert_code(0);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(statuses(&s), ["succeeded"; 3]);
    assert_eq!(
        std::fs::read_to_string(out.join("1/stdout")).unwrap(),
        "b\n"
    );
    // The table goes to stdout.
    assert!(res.stdout.contains("succeeded"), "{}", res.stdout);

    let out = dir.path().join("bad");
    let res = run_in(dir.path())
        .args(["--out"])
        .arg(&out)
        .args(["-p", "x=0,3,0", "--", "sh", "-c", "exit {x}"])
        .run();
    res.assert_code(1);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(statuses(&s), ["succeeded", "failed", "succeeded"]);
    assert_eq!(s["jobs"][1]["exit_code"], 3);
}

#[test]
fn a_killed_job_is_killed_not_failed() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let res = run_in(dir.path())
        .args(["--out"])
        .arg(&out)
        .args(["--", "sh", "-c", "kill -TERM $$"])
        .run();
    res.assert_code(1);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(statuses(&s), ["killed"]);
    assert_eq!(s["jobs"][0]["signal"], 15);
}

#[test]
fn a_hostile_parameter_value_stays_one_literal_argument() {
    let dir = tempdir();
    std::fs::write(dir.path().join("x"), "keep").unwrap();
    for shell in [false, true] {
        let out = dir.path().join(format!("sw-{shell}"));
        let mut m = run_in(dir.path()).args(["--out"]).arg(&out);
        if shell {
            m = m.arg("--shell");
        }
        let res = m
            .args(["-p", "v=; rm -rf x", "--", "printf", "[%s]", "{v}"])
            .run();
        res.assert_code(0);
        assert_eq!(
            std::fs::read_to_string(out.join("0/stdout")).unwrap(),
            "[; rm -rf x]",
            "--shell={shell}"
        );
        assert!(
            dir.path().join("x").exists(),
            "--shell={shell}: x was removed"
        );
    }
}

#[test]
fn proc_sampling_mode_records_peaks() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let res = run_in(dir.path())
        .args(["--no-cgroups", "--sample-interval", "0.05", "--out"])
        .arg(&out)
        .args(["-p", "i=0,1", "--", "env", "JOB={i}", "python3", "-c"])
        .arg(hog(64, 1.0))
        .run();
    res.assert_code(0);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["accounting"], "proc", "{s}");
    for j in s["jobs"].as_array().unwrap() {
        assert_eq!(j["peak_source"], "proc", "{j}");
        let peak = j["peak_bytes"].as_u64().unwrap_or(0);
        assert!(peak >= 60 * MIB, "peak {peak} for a 64 MiB job: {j}");
    }
}

#[test]
fn dry_run_runs_nothing_and_prints_the_plan() {
    let dir = tempdir();
    let res = run_in(dir.path())
        .args([
            "--dry-run",
            "--limit",
            "4G",
            "--mem-per-job",
            "1G",
            "-j",
            "0",
        ])
        .args(["-p", "f=a,b", "--", "touch", "{f}"])
        .run();
    res.assert_code(0);
    assert!(!dir.path().join("a").exists() && !dir.path().join("b").exists());
    assert!(
        !dir.path().join("sweeps").exists(),
        "a dry run creates no sweep directory"
    );
    for want in [
        "touch a",
        "touch b",
        "budget",
        "3.75 GiB",
        "--mem-per-job",
        "about 2 at once",
    ] {
        assert!(
            res.stdout.contains(want),
            "missing {want:?}:\n{}",
            res.stdout
        );
    }
}

#[test]
fn json_mode_streams_parseable_events_and_the_table_goes_to_stderr() {
    let dir = tempdir();
    let res = run_in(dir.path())
        .args(["--json", "--out"])
        .arg(dir.path().join("sw"))
        .args(["-p", "x=1,2", "--", "sh", "-c", "echo {x}"])
        .run();
    res.assert_code(0);
    let events = res.json_lines();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"sweep_start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"sweep_end"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "job_start").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "job_end").count(), 2);
    assert!(
        res.stderr.contains("succeeded"),
        "table on stderr: {}",
        res.stderr
    );
}

#[test]
fn the_default_out_dir_is_dated_and_job_env_is_set() {
    let dir = tempdir();
    let res = run_in(dir.path())
        .args(["--", "sh", "-c", "echo $MEMSWEEP_JOB_ID $MEMSWEEP_ATTEMPT; test -d \"$MEMSWEEP_JOB_DIR\" && test -f \"$MEMSWEEP_SWEEP_DIR/sweep.json\""])
        .run();
    res.assert_code(0);
    let days: Vec<PathBuf> = std::fs::read_dir(dir.path().join("sweeps"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(days.len(), 1);
    let name = days[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(name.len() == 10 && name.as_bytes()[4] == b'-', "{name}");
    let runs: Vec<PathBuf> = std::fs::read_dir(&days[0])
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        std::fs::read_to_string(runs[0].join("0/stdout")).unwrap(),
        "0 1\n"
    );
}

#[test]
fn bad_input_is_a_usage_error_naming_the_culprit() {
    let dir = tempdir();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-p", "x", "--", "echo", "{x}"], "-p"),
        (vec!["--jobs-file", "no-such-file"], "no-such-file"),
        (vec!["--bogus", "--", "true"], "--bogus"),
        (vec!["--limit", "12Q", "--", "true"], "12Q"),
        (vec!["--mem-per-job", "lots", "--", "true"], "lots"),
        (vec!["--limit", "100M", "--", "true"], "--limit"),
        (vec!["--", "echo", "{nope}"], "nope"),
        (vec!["--grace=-1", "--", "true"], "--grace"),
        (vec!["--resume", "no-such-dir"], "no-such-dir"),
    ];
    for (args, culprit) in cases {
        let res = run_in(dir.path()).args(&args).run();
        res.assert_code(2).assert_no_panic();
        assert!(
            res.stderr.contains(culprit),
            "{args:?}: stderr does not name {culprit:?}:\n{}",
            res.stderr
        );
    }
    assert!(
        !dir.path().join("sweeps").exists(),
        "bad input started a sweep"
    );
}

/// Issue 8: history is keyed by a job's parameters with run-varying parts aligned, so a jobs file
/// regenerated in another run directory (new paths, another order, another file name) is
/// estimated from the first run's peaks.
#[test]
fn history_survives_a_regenerated_jobs_file_with_per_run_paths() {
    let dir = tempdir();
    let jobs = |run: &str, order: &[u64]| -> PathBuf {
        let d = dir.path().join("runs").join(run);
        std::fs::create_dir_all(d.join("results")).unwrap();
        let text: String = order
            .iter()
            .map(|mb| {
                format!(
                    "python3 -c \"{}\" {} size={mb}\n",
                    hog(*mb, 0.4),
                    d.join("results").join(format!("j{mb}.out")).display()
                )
            })
            .collect();
        let file = d.join(format!("jobs-{run}.txt"));
        std::fs::write(&file, text).unwrap();
        file
    };
    let first = jobs("r1", &[20, 40, 60]);
    run_in(dir.path())
        .args(["-j", "3", "--out"])
        .arg(dir.path().join("sw1"))
        .arg("--jobs-file")
        .arg(&first)
        .timeout(Duration::from_secs(60))
        .run()
        .assert_code(0);
    let second = jobs("r2", &[60, 20, 40]);
    let res = run_in(dir.path())
        .args(["--dry-run", "--jobs-file"])
        .arg(&second)
        .run();
    res.assert_code(0);
    let sources = res
        .stdout
        .lines()
        .filter(|l| l.contains("job history"))
        .count();
    assert_eq!(
        sources, 3,
        "every job estimated from its own history:\n{}",
        res.stdout
    );
}
