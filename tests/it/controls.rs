//! Job controls end to end: `--timeout`, `--fail-fast`, `--link`, `--output live`, from flags,
//! sweep.toml and `--resume`, as the journal, summary.json, the exit code and `show` report them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Ms, ms, tempdir};

fn run_in(dir: &Path) -> Ms {
    ms(["run", "--no-history"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn statuses(summary: &serde_json::Value) -> Vec<String> {
    summary["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_job_over_its_timeout_ends_timeout_and_the_sweep_exits_1() {
    let d = tempdir();
    let began = Instant::now();
    // Job 1 ignores SIGTERM: it must still be stopped, by SIGKILL after --grace.
    let out = run_in(d.path())
        .args(["--out", "o", "--timeout", "700ms", "--grace", "0.5"])
        .args(["-p", "how=quick,slow,stubborn", "--shell", "--"])
        .arg("case {how} in quick) exit 0;; slow) exec sleep 30;; *) trap '' TERM; sleep 30;; esac")
        .run();
    out.assert_code(1).assert_no_panic();
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "jobs were not stopped"
    );
    let summary = read_json(&d.path().join("o/summary.json"));
    assert_eq!(statuses(&summary), ["succeeded", "timeout", "timeout"]);
    let jobs = summary["jobs"].as_array().unwrap();
    assert_eq!(jobs[1]["signal"], 15, "{summary}");
    assert_eq!(jobs[2]["signal"], 9, "{summary}");
    assert!(jobs[1]["wall_s"].as_f64().unwrap() >= 0.7);
    assert_eq!(summary["failed"], 2);
    let plan = read_json(&d.path().join("o/sweep.json"));
    assert_eq!(plan["config"]["timeout_s"], 0.7);
    // `show` tells it as the run did.
    let shown = ms(["show", "o"]).current_dir(d.path()).run();
    shown.assert_code(0);
    assert!(shown.stdout.contains("timeout"), "{}", shown.stdout);
    assert!(shown.stdout.contains("--timeout 0.7s"), "{}", shown.stdout);
    // The table's exit column names the signal that ended each timed-out job.
    assert!(
        shown.stdout.contains("SIGTERM") && shown.stdout.contains("SIGKILL"),
        "{}",
        shown.stdout
    );
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    let d = tempdir();
    let out = run_in(d.path())
        .args(["--out", "o", "--fail-fast", "-j", "1"])
        .args(["-p", "code=0,3,0,0", "--", "sh", "-c", "exit {code}"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("job 1 failed; --fail-fast: 2 queued jobs will not start"),
        "{}",
        out.stderr
    );
    let summary = read_json(&d.path().join("o/summary.json"));
    assert_eq!(
        statuses(&summary),
        ["succeeded", "failed", "skipped", "skipped"]
    );
    let events = journal(&d.path().join("o"));
    let starts = events.iter().filter(|e| e["event"] == "job_start").count();
    assert_eq!(starts, 2);
    let end = events.last().unwrap();
    assert_eq!(
        (end["event"].as_str(), end["fail_fast_job"].as_u64()),
        (Some("sweep_end"), Some(1))
    );
    let shown = ms(["show", "o"]).current_dir(d.path()).run();
    assert!(
        shown
            .stdout
            .contains("--fail-fast: stopped starting jobs after job 1 failed"),
        "{}",
        shown.stdout
    );
    // Without it, every job runs.
    let out = run_in(d.path())
        .args(["--out", "p", "-j", "1"])
        .args(["-p", "code=0,3,0,0", "--", "sh", "-c", "exit {code}"])
        .run();
    out.assert_code(1);
    let summary = read_json(&d.path().join("p/summary.json"));
    assert_eq!(
        statuses(&summary),
        ["succeeded", "failed", "succeeded", "succeeded"]
    );
}

#[test]
fn linked_parameters_pair_their_values() {
    let d = tempdir();
    let out = run_in(d.path())
        .args([
            "--out", "o", "-p", "a=1,2,3", "-p", "b=x,y,z", "-p", "c=p,q",
        ])
        .args(["--link", "b,a", "--", "echo", "{a}{b}{c}"])
        .run();
    out.assert_code(0);
    let summary = read_json(&d.path().join("o/summary.json"));
    let cmds: Vec<&str> = summary["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        cmds,
        [
            "echo 1xp", "echo 1xq", "echo 2yp", "echo 2yq", "echo 3zp", "echo 3zq"
        ]
    );
    let plan = read_json(&d.path().join("o/sweep.json"));
    assert_eq!(plan["config"]["links"], serde_json::json!([["b", "a"]]));
}

#[test]
fn bad_links_are_usage_errors_that_name_the_link() {
    let d = tempdir();
    for (args, needle) in [
        (
            vec!["-p", "a=1,2", "-p", "b=1,2,3", "--link", "a,b"],
            "--link 'a,b': linked parameters need the same number of values, but a has 2",
        ),
        (
            vec!["-p", "a=1,2", "--link", "a,zz"],
            "--link 'a,zz': there is no parameter zz",
        ),
        (
            vec!["-p", "a=1,2", "--link", "a"],
            "a link pairs two or more parameters",
        ),
    ] {
        let out = run_in(d.path())
            .args(&args)
            .args(["--", "echo", "{a}"])
            .arg("{b}")
            .run();
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("memsweep: error: "),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn live_output_tags_each_line_and_keeps_the_files() {
    let d = tempdir();
    let out = run_in(d.path())
        .args([
            "--out", "o", "--output", "live", "-p", "n=0,1", "--shell", "--",
        ])
        .arg("echo out {n}; echo err {n} >&2; printf 'no newline {n}'")
        .run();
    out.assert_code(0);
    for n in 0..2 {
        for line in [
            format!("[{n}] out {n}\n"),
            format!("[{n}!] err {n}\n"),
            format!("[{n}] no newline {n}\n"),
        ] {
            assert!(
                out.stdout.contains(&line),
                "{line:?} missing from:\n{}",
                out.stdout
            );
        }
        let file = std::fs::read_to_string(d.path().join(format!("o/{n}/stdout"))).unwrap();
        assert_eq!(file, format!("out {n}\nno newline {n}"));
    }
    // The default shows nothing of the jobs' output.
    let out = run_in(d.path())
        .args(["--out", "p", "-p", "n=0,1", "--", "echo", "out {n}"])
        .run();
    out.assert_code(0);
    assert!(!out.stdout.contains("[0]"), "{}", out.stdout);
}

#[test]
fn sweep_toml_sets_the_controls_and_resume_can_change_them() {
    let d = tempdir();
    std::fs::write(
        d.path().join("sweep.toml"),
        "command = [\"sh\", \"-c\", \"sleep {s}; echo {tag}\"]\ntimeout = \"1s\"\nfail-fast = true\noutput = \"live\"\nlink = [[\"s\", \"tag\"]]\n\n[params]\ns = [\"0\", \"5\"]\ntag = [\"fast\", \"slow\"]\n",
    )
    .unwrap();
    let out = run_in(d.path())
        .args(["-f", "sweep.toml", "--out", "o", "-j", "1"])
        .run();
    out.assert_code(1);
    assert!(out.stdout.contains("[0] fast"), "{}", out.stdout);
    let summary = read_json(&d.path().join("o/summary.json"));
    assert_eq!(statuses(&summary), ["succeeded", "timeout"]);
    // A longer --timeout on resume lets the slow job finish.
    let out = run_in(d.path())
        .args(["--resume", "o", "--timeout", "1m"])
        .run();
    out.assert_code(0);
    let summary = read_json(&d.path().join("o/summary.json"));
    assert_eq!(statuses(&summary), ["succeeded", "succeeded"]);
    // Resuming a finished sweep says so and journals nothing.
    let lines = std::fs::read_to_string(d.path().join("o/journal.jsonl"))
        .unwrap()
        .lines()
        .count();
    let out = run_in(d.path()).args(["--resume", "o"]).run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("every job of o already succeeded (2 of 2); nothing to resume"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("resuming"), "{}", out.stderr);
    let after = std::fs::read_to_string(d.path().join("o/journal.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(after, lines);
    // Bad values name the file and line, or the flag.
    std::fs::write(
        d.path().join("bad.toml"),
        "command = \"true\"\ntimeout = \"soon\"\n",
    )
    .unwrap();
    let out = run_in(d.path()).args(["-f", "bad.toml"]).run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("bad.toml:2: timeout: 'soon' is not a duration"),
        "{}",
        out.stderr
    );
    let out = run_in(d.path())
        .args(["--resume", "o", "--timeout", "-5"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("'--timeout <DURATION>': '-5' is out of range"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_journal_holds_the_peak_working_set_the_summary_reports() {
    // Short spikes between the once-a-second journal samples: the journal used to miss them,
    // so the plot stayed below the peak the summary reported.
    let d = tempdir();
    let out = run_in(d.path())
        .args(["--out", "o", "-j", "1", "-p", "i=1,2,3", "--"])
        .args([
            "python3",
            "-c",
            "import time; b = b'x' * (150 << 20); time.sleep(0.3); print({i})",
        ])
        .run();
    out.assert_code(0);
    let summary = read_json(&d.path().join("o/summary.json"));
    let samples: Vec<u64> = journal(&d.path().join("o"))
        .iter()
        .filter(|e| e["event"] == "sample")
        .map(|e| e["working_set_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(
        samples.iter().max().copied(),
        summary["peak_working_set_bytes"].as_u64(),
        "{summary}"
    );
    // Still about one sample a second, plus peaks: not one per 25 ms.
    let makespan = summary["makespan_s"].as_f64().unwrap();
    assert!(
        (samples.len() as f64) <= 2.0 * makespan + 4.0,
        "{} samples in {makespan} s",
        samples.len()
    );
}
