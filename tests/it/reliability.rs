//! Regression tests for issue 10 (reliability): output that goes nowhere, SIGHUP, unbounded
//! input, errors that belong at plan time, `--resume` validation and a deleted journal, and
//! silent downgrades. Each failed on main before its fix.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Ms, TestCgroup, ms, poll, signal, tempdir};
use crate::skip;

fn run_in(dir: &Path) -> Ms {
    ms(["run"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn count(ev: &[serde_json::Value], kind: &str) -> usize {
    ev.iter().filter(|e| e["event"] == kind).count()
}

/// Run `cmd` with stdout and stderr on one pipe whose reader goes away after `lines` lines (as
/// `2>&1 | head -N` does); returns the exit code (128+N for a signal).
fn run_into_closed_pipe(mut cmd: Command, lines: usize) -> i32 {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut r = BufReader::new(reader);
    for _ in 0..lines {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
    }
    drop(r);
    let status = poll(Duration::from_secs(60), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("memsweep did not exit within 60 s");
    };
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[test]
fn a_closed_pipe_never_loses_a_journal_line_nor_panics() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let cmd = run_in(dir.path())
        .args(["--no-history", "-j", "2", "--out"])
        .arg(&out)
        .args(["-p", "i=range(0,6)", "--", "/nonexistent/prog", "{i}"])
        .command();
    let code = run_into_closed_pipe(cmd, 2);
    assert_eq!(code, 1, "jobs failed to start: exit 1, not a panic");
    let ev = journal(&out);
    assert_eq!(count(&ev, "job_end"), 6, "every job has its end: {ev:?}");
    assert_eq!(count(&ev, "sweep_end"), 1);
    assert!(out.join("summary.json").exists());
}

#[test]
fn ctrl_c_with_a_closed_pipe_still_ends_the_sweep() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let mut cmd = run_in(dir.path())
        .args(["--no-history", "--grace", "1", "--out"])
        .arg(&out)
        .args(["-p", "i=1,2", "--", "sleep", "3{i}"])
        .command();
    let (reader, writer) = std::io::pipe().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(reader);
    let started = poll(Duration::from_secs(20), || {
        (count(&journal(&out), "job_start") >= 1).then_some(())
    });
    assert!(started.is_some(), "no job started");
    signal(child.id(), "INT");
    let status = poll(Duration::from_secs(20), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("runner did not exit after SIGINT");
    };
    assert_eq!(status.code(), Some(130));
    let ev = journal(&out);
    assert_eq!(count(&ev, "sweep_end"), 1, "{ev:?}");
}

#[test]
fn read_only_commands_exit_quietly_on_a_broken_pipe_and_2_on_other_write_errors() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    run_in(dir.path())
        .args(["--no-history", "--out"])
        .arg(&out)
        .args(["-p", "i=range(0,40)", "--", "true", "{i}"])
        .run()
        .assert_code(0);
    // A closed pipe: quiet exit 0.
    for args in [
        vec!["mem".to_string(), "--json".into()],
        vec!["mem".into()],
        vec![
            "check".into(),
            "--need".into(),
            "1M".into(),
            "--json".into(),
        ],
        vec!["show".into(), "--json".into(), out.display().to_string()],
        vec!["show".into(), out.display().to_string()],
    ] {
        let code = run_into_closed_pipe(ms(&args).command(), 0);
        assert_eq!(code, 0, "{args:?} on a closed pipe");
    }
    // /dev/full: exit 2 with a message.
    for args in [
        vec!["mem".to_string()],
        vec!["mem".into(), "--json".into()],
        vec![
            "check".into(),
            "--need".into(),
            "1M".into(),
            "--json".into(),
        ],
        vec!["show".into(), "--json".into(), out.display().to_string()],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let res = ms(&args).command().stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{args:?} > /dev/full: {err}");
        assert!(
            err.contains("stdout"),
            "{args:?}: the message names stdout: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn sighup_is_handled_like_sigterm() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let marker = format!("rel-sighup-{}", std::process::id());
    let mut cmd = run_in(dir.path())
        .args(["--no-history", "-j", "2", "--grace", "2", "--out"])
        .arg(&out)
        .args([
            "-p",
            "i=range(0,4)",
            "--",
            "sh",
            "-c",
            "sleep 30",
            &format!("{marker}-{{i}}"),
        ])
        .command();
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let started = poll(Duration::from_secs(20), || {
        (count(&journal(&out), "job_start") >= 2).then_some(())
    });
    assert!(started.is_some(), "jobs did not start");
    signal(child.id(), "HUP");
    let status = poll(Duration::from_secs(15), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("runner did not exit after SIGHUP");
    };
    assert_eq!(
        status.code(),
        Some(130),
        "interrupted, not killed by SIGHUP"
    );
    let ev = journal(&out);
    let end = ev.last().unwrap();
    assert_eq!(end["event"], "sweep_end", "{ev:?}");
    assert_eq!(end["interrupted"], true);
    assert_eq!(
        count(&ev, "job_end"),
        2,
        "both running jobs end in the journal"
    );
    let left = crate::harness::pids_with(&marker);
    assert!(left.is_empty(), "jobs survived SIGHUP: {left:?}");
}

#[test]
fn unbounded_input_is_refused_not_read_into_memory() {
    let cg = match TestCgroup::new("rel-unbounded", 512 << 20) {
        Ok(cg) => cg,
        Err(why) => skip!("{why}"),
    };
    let dir = tempdir();
    for (args, culprit) in [
        (vec!["--jobs-file", "/dev/zero"], "/dev/zero"),
        (vec!["-p", "v=@/dev/zero", "--", "echo", "{v}"], "/dev/zero"),
    ] {
        let res = run_in(dir.path())
            .args(["--dry-run"])
            .args(&args)
            .in_cgroup(&cg)
            .timeout(Duration::from_secs(60))
            .run();
        res.assert_code(2).assert_no_panic();
        assert!(res.stderr.contains(culprit), "{args:?}: {}", res.stderr);
    }
    assert_eq!(cg.oom_kills(), 0);
}

#[test]
fn errors_that_belong_at_plan_time_stop_the_dry_run() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("nul.toml"), "command = [\"echo\", \"a\\u0000b\"]\n").unwrap();
    std::fs::write(d.join("nul.jsonl"), "{\"cmd\": \"echo a\\u0000b\"}\n").unwrap();
    std::fs::write(
        d.join("long.txt"),
        format!("echo {}\n", "x".repeat(1 << 20)),
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-p", "i=range(0,5", "--", "echo", "{i}"], "range(0,5"),
        (vec!["-f", "nul.toml"], "nul.toml"),
        (vec!["--jobs-file", "nul.jsonl"], "nul.jsonl"),
        (vec!["--jobs-file", "long.txt"], "long.txt"),
        (vec!["--mem-per-job", "0.5", "--", "true"], "--mem-per-job"),
        (vec!["--job-mem-max", "1000", "--", "true"], "--job-mem-max"),
        (vec!["--limit", "100K", "--", "true"], "--limit"),
    ];
    for (args, culprit) in cases {
        let res = run_in(d).arg("--dry-run").args(&args).run();
        res.assert_code(2).assert_no_panic();
        assert!(
            res.stderr.contains(culprit),
            "{args:?}: stderr does not name {culprit:?}:\n{}",
            res.stderr
        );
    }
}

/// A finished sweep to resume.
fn finished_sweep(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("sw");
    run_in(dir)
        .args(["--no-history", "--out"])
        .arg(&out)
        .args(["-p", "i=1,2", "--", "true", "{i}"])
        .run()
        .assert_code(0);
    out
}

#[test]
fn resume_validates_its_flags_like_a_fresh_run() {
    let dir = tempdir();
    let out = finished_sweep(dir.path());
    for (flag, value) in [
        ("-j", "20000"),
        ("--retries", "1000"),
        ("--sample-interval", "0.005"),
        ("--mem-per-job", "0.5"),
    ] {
        let res = run_in(dir.path())
            .arg("--resume")
            .arg(&out)
            .args([flag, value])
            .run();
        res.assert_code(2).assert_no_panic();
        assert!(res.stderr.contains(flag), "{flag}: {}", res.stderr);
    }
}

#[test]
fn resume_refuses_a_deleted_journal_unless_forced() {
    let dir = tempdir();
    let out = finished_sweep(dir.path());
    std::fs::remove_file(out.join("journal.jsonl")).unwrap();
    let res = run_in(dir.path()).arg("--resume").arg(&out).run();
    res.assert_code(2).assert_no_panic();
    assert!(
        res.stderr.contains("journal.jsonl") && res.stderr.contains("--force"),
        "{}",
        res.stderr
    );
    run_in(dir.path())
        .arg("--resume")
        .arg(&out)
        .arg("--force")
        .run()
        .assert_code(0);
    assert_eq!(count(&journal(&out), "job_end"), 2);
}

#[test]
fn a_flag_that_cannot_be_honoured_is_an_error_unless_best_effort() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let hog = "import time; b = b'x' * (300 << 20); time.sleep(0.3)";
    let res = run_in(dir.path())
        .args([
            "--no-history",
            "--no-cgroups",
            "--job-mem-max",
            "100M",
            "--out",
        ])
        .arg(&out)
        .args(["--", "python3", "-c", hog])
        .run();
    res.assert_code(2).assert_no_panic();
    assert!(
        res.stderr.contains("--job-mem-max") && res.stderr.contains("--best-effort"),
        "{}",
        res.stderr
    );
    assert!(!out.exists(), "nothing ran");
    let res = run_in(dir.path())
        .args([
            "--no-history",
            "--no-cgroups",
            "--job-mem-max",
            "100M",
            "--json",
        ])
        .args(["--best-effort", "--out"])
        .arg(&out)
        .args(["--", "python3", "-c", hog])
        .run();
    res.assert_code(0);
    assert_eq!(
        res.stderr.matches("--job-mem-max is not enforced").count(),
        1,
        "printed once: {}",
        res.stderr
    );
    let ev = journal(&out);
    let start = ev.iter().find(|e| e["event"] == "sweep_start").unwrap();
    let notes = start["downgrades"].as_array().expect("downgrades recorded");
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("--job-mem-max")),
        "{start}"
    );
}

#[test]
fn a_sweep_whose_stdout_fails_finishes_then_exits_2() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let res = run_in(dir.path())
        .args(["--no-history", "--out"])
        .arg(&out)
        .args(["-p", "i=1,2,3", "--", "true", "{i}"])
        .command()
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
    let ev = journal(&out);
    assert_eq!(count(&ev, "job_end"), 3, "every result kept");
    assert_eq!(count(&ev, "sweep_end"), 1);
}
