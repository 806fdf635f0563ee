//! The probe through the binary: every fixture layout gives its expected figures, `mem` and
//! `check` behave on fixtures and bad input, and a real 300 MiB cgroup is seen as 300 MiB.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{TestCgroup, fixtures, ms, poll, tempdir};
use crate::skip;

const MIB: u64 = 1 << 20;

fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    for d in &dirs {
        assert!(
            d.join("expected.json").is_file(),
            "{} has no expected.json",
            d.display()
        );
    }
    dirs.sort();
    dirs
}

fn fixture(name: &str) -> PathBuf {
    let p = fixtures().join(name);
    assert!(p.is_dir(), "no fixture {name}");
    p
}

/// Compare one fixture's output with its expected.json; returns the differences.
fn check_fixture(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
            .unwrap_or_else(|e| panic!("{name}/expected.json: {e}"));
    let expected = expected.as_object().unwrap();
    let out = ms([
        "--root".as_ref(),
        dir.as_os_str(),
        "mem".as_ref(),
        "--json".as_ref(),
    ])
    .run();
    let mut diffs = vec![];
    if out.stderr.contains("panicked") {
        diffs.push(format!("{name}: panic: {}", out.stderr));
        return diffs;
    }
    let want_exit = expected.get("_exit").and_then(Value::as_i64).unwrap_or(0) as i32;
    if out.code != want_exit {
        diffs.push(format!(
            "{name}: exit {} (wanted {want_exit}); stderr: {}",
            out.code, out.stderr
        ));
        return diffs;
    }
    for s in expected
        .get("_stderr_contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = s.as_str().unwrap();
        if !out.stderr.contains(s) {
            diffs.push(format!("{name}: stderr lacks {s:?}: {}", out.stderr));
        }
    }
    if want_exit != 0 {
        if !out.stderr.starts_with("memsweep: error: ") {
            diffs.push(format!(
                "{name}: error not in the usual form: {}",
                out.stderr
            ));
        }
        return diffs;
    }
    let got = out.json();
    for (key, want) in expected {
        if key == "_warning_contains" {
            let w = want.as_str().unwrap();
            let warnings = got["warnings"].to_string();
            if !warnings.contains(w) || !out.stderr.contains(w) {
                diffs.push(format!(
                    "{name}: no warning about {w:?} (json {warnings}, stderr {})",
                    out.stderr
                ));
            }
            continue;
        }
        if key.starts_with('_') {
            continue;
        }
        let Some(g) = got.get(key) else {
            diffs.push(format!("{name}: key {key} missing from the output"));
            continue;
        };
        if !same(g, want) {
            diffs.push(format!("{name}: {key} = {g}, wanted {want}"));
        }
    }
    // Invariants that hold on every layout.
    let n = |k: &str| {
        got[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {k} not a number"))
    };
    if n("available_bytes") > n("host_available_bytes") {
        diffs.push(format!("{name}: available above host MemAvailable"));
    }
    if n("limit_bytes") > n("host_total_bytes") {
        diffs.push(format!("{name}: limit above host MemTotal"));
    }
    if n("working_set_bytes") > n("usage_bytes") {
        diffs.push(format!("{name}: working set above usage"));
    }
    diffs
}

/// JSON equality, with floats compared to 1e-9.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-9
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn every_fixture_layout_gives_its_expected_figures() {
    let dirs = fixture_dirs();
    assert!(
        dirs.len() >= 20,
        "only {} fixture layouts under tests/fixtures",
        dirs.len()
    );
    let diffs: Vec<String> = dirs.iter().flat_map(|d| check_fixture(d)).collect();
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn memsweep_root_env_works_like_the_flag() {
    let dir = fixture("v1-invisible-parent");
    let out = ms(["mem", "--json"]).env("MEMSWEEP_ROOT", &dir).run();
    out.assert_code(0);
    assert_eq!(out.json()["cgroup_limit_bytes"], 1u64 << 30);
}

#[test]
fn mem_table_says_where_the_limit_comes_from_and_what_free_shows() {
    let out = ms([
        "--root".as_ref(),
        fixture("v1-nested-ancestor-limit").as_os_str(),
        "mem".as_ref(),
    ])
    .run();
    out.assert_code(0);
    let t = &out.stdout;
    assert!(t.contains("4.00 GiB"), "{t}");
    assert!(
        t.contains(
            "cgroup limit of the parent cgroup (/sys/fs/cgroup/memory/user.slice/user-1000.slice)"
        ),
        "{t}"
    );
    assert!(
        t.contains("`free -h` shows the host's 16.0 GiB, but this container can use only 4.00 GiB"),
        "{t}"
    );
    assert!(t.contains("available") && t.contains("612 MiB"), "{t}");

    let hidden = ms([
        "--root".as_ref(),
        fixture("v1-invisible-parent").as_os_str(),
        "mem".as_ref(),
    ])
    .run();
    assert!(hidden.stdout.contains("cannot see"), "{}", hidden.stdout);

    // No limit below host RAM: no `free` line.
    for name in ["no-cgroup", "v2-limit-above-host-ram"] {
        let out = ms(["--root".as_ref(), fixture(name).as_os_str(), "mem".as_ref()]).run();
        out.assert_code(0);
        assert!(
            !out.stdout.contains("`free -h` shows the host"),
            "{name}: {}",
            out.stdout
        );
    }
}

fn check(root: &str, need: &str, json: bool) -> crate::harness::Output {
    let dir = fixture(root);
    let mut args = vec!["--root".to_string(), dir.display().to_string()];
    args.extend(["check".into(), "--need".into(), need.into()]);
    if json {
        args.push("--json".into());
    }
    ms(args).run()
}

#[test]
fn check_answers_against_the_available_memory() {
    // v1-docker-cgroupns-host: limit 2 GiB, working set 500 MiB, so 1548 MiB available.
    let ok = check("v1-docker-cgroupns-host", "1.5G", false);
    ok.assert_code(0);
    assert!(
        ok.stdout
            .starts_with("ok: 1.51 GiB available, 1.50 GiB needed"),
        "{}",
        ok.stdout
    );
    let exact = check("v1-docker-cgroupns-host", &(1548 * MIB).to_string(), false);
    exact.assert_code(0);
    let short = check(
        "v1-docker-cgroupns-host",
        &(1548 * MIB + 1).to_string(),
        false,
    );
    short.assert_code(1);
    for s in [
        "only 1.51 GiB",
        "available",
        "needed",
        "limit 2.00 GiB",
        "fewer jobs",
        "one after another",
        "memsweep run",
    ] {
        assert!(
            short.stderr.contains(s),
            "warning lacks {s:?}: {}",
            short.stderr
        );
    }
    assert!(short.stdout.is_empty(), "{}", short.stdout);
    // Percentages are of the limit: 70% of 2 GiB is 1.4 GiB (fits), 80% is 1.6 GiB (does not).
    check("v1-docker-cgroupns-host", "70%", false).assert_code(0);
    let pct = check("v1-docker-cgroupns-host", "80%", false);
    pct.assert_code(1);
    assert!(pct.stderr.contains("80% of the limit"), "{}", pct.stderr);
    check("v1-docker-cgroupns-host", "0", false).assert_code(0);
}

#[test]
fn check_edges_zero_and_the_whole_limit() {
    // v2-garbage-usage: nothing available (host usage stands in under a 1 GiB limit). Needing
    // nothing still fits; needing one byte or 0% vs 100% of the limit is decided exactly.
    check("v2-garbage-usage", "0", false).assert_code(0);
    check("v2-garbage-usage", "0%", false).assert_code(0);
    check("v2-garbage-usage", "1", false).assert_code(1);
    // v2-inactive-file-above-usage: working set 0, so all of the 1 GiB limit is available and
    // 100% fits; v1-docker-cgroupns-host has a 500 MiB working set, so 100% does not.
    check("v2-inactive-file-above-usage", "100%", false).assert_code(0);
    let full = check("v1-docker-cgroupns-host", "100%", true);
    full.assert_code(1);
    let v = full.json();
    assert_eq!(v["need_bytes"], 2u64 << 30);
    assert_eq!(v["ok"], false);
    // Host only: 100% of MemTotal never fits while anything is in use.
    check("no-cgroup", "100%", false).assert_code(1);
    check("no-cgroup", "12G", false).assert_code(0);
    check("no-cgroup", &((12u64 << 30) + 1).to_string(), false).assert_code(1);
}

#[test]
fn check_json_carries_the_verdict_the_message_and_the_status() {
    let ok = check("v2-cgroupns-private", "700M", true);
    ok.assert_code(0);
    let v = ok.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["need_bytes"], 700 * MIB);
    assert_eq!(v["available_bytes"], 724 * MIB);
    assert_eq!(v["limit_bytes"], 1u64 << 30);
    assert!(v["message"].is_null());
    assert_eq!(v["status"]["source"], "cgroup2");

    let short = check("v2-cgroupns-private", "800M", true);
    short.assert_code(1);
    let v = short.json();
    assert_eq!(v["ok"], false);
    let msg = v["message"].as_str().expect("message when not ok");
    assert!(msg.contains("724 MiB") && msg.contains("800 MiB"), "{msg}");
    assert!(
        short.stderr.contains(msg),
        "stderr repeats the message: {}",
        short.stderr
    );
}

#[test]
fn bad_sizes_for_need_are_usage_errors_naming_the_flag() {
    for bad in ["10X", "-5G", "1e999", "", "120%", "abc"] {
        let out = ms(["check", "--need", bad]).run();
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("--need"), "{bad:?}: {}", out.stderr);
    }
    let missing = ms(["check"]).run();
    missing.assert_code(2);
    assert!(missing.stderr.contains("--need"), "{}", missing.stderr);
}

#[test]
fn unknown_flags_on_mem_and_check() {
    for args in [
        vec!["mem", "--limit", "1G"],
        vec!["check", "--need", "1G", "--bogus"],
        vec!["mem", "--json=yes"],
    ] {
        let out = ms(&args).run();
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("error"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_root_without_proc_is_a_usage_error_naming_the_flag() {
    let empty = tempdir();
    for cmd in [
        vec!["mem"],
        vec!["mem", "--json"],
        vec!["check", "--need", "1G"],
    ] {
        let out = ms(["--root".as_ref(), empty.path().as_os_str()])
            .args(&cmd)
            .run();
        out.assert_code(2).assert_no_panic();
        assert!(
            out.stderr.contains("--root") && out.stderr.contains("MEMSWEEP_ROOT"),
            "{cmd:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
    // meminfo but no /proc/self/cgroup: a kernel without cgroups, so host figures, with a
    // warning naming the file (the tree may also just be incomplete).
    std::fs::create_dir_all(empty.path().join("proc")).unwrap();
    std::fs::write(
        empty.path().join("proc/meminfo"),
        "MemTotal: 1000 kB\nMemAvailable: 600 kB\n",
    )
    .unwrap();
    let out = ms([
        "--root".as_ref(),
        empty.path().as_os_str(),
        "mem".as_ref(),
        "--json".as_ref(),
    ])
    .run();
    out.assert_code(0);
    assert!(out.stderr.contains("/proc/self/cgroup"), "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["source"], "host");
    assert_eq!(j["limit_bytes"], 1000 * 1024);
    assert_eq!(j["usage_bytes"], 400 * 1024);
    assert_eq!(j["available_bytes"], 600 * 1024);
    let out = ms(["mem"])
        .env("MEMSWEEP_ROOT", "/nonexistent/memsweep-root")
        .run();
    out.assert_code(2);
    assert!(out.stderr.contains("MEMSWEEP_ROOT"), "{}", out.stderr);
}

#[test]
fn watch_rejects_bad_intervals_naming_the_flag() {
    for bad in ["0", "-1", "nan", "inf", "-0.5"] {
        let out = ms(["mem", &format!("--watch={bad}")]).run();
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("--watch"), "{bad}: {}", out.stderr);
    }
    let out = ms(["mem", "--watch", "-1"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("--watch"), "{}", out.stderr);
    let out = ms(["mem", "--watch", "soon"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("--watch"), "{}", out.stderr);
}

#[test]
fn watch_refreshes_until_interrupted_then_exits_zero() {
    let dir = fixture("v2-cgroupns-private");
    let mut cmd = ms([
        "--root".as_ref(),
        dir.as_os_str(),
        "mem".as_ref(),
        "--watch".as_ref(),
        "0.1".as_ref(),
        "--json".as_ref(),
    ])
    .command();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal only once three readings are out: the handler is installed before the first, so
    // a slow start cannot make the signal arrive first (a fixed sleep raced with it).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in 0..3 {
        stdout.read_line(&mut text).unwrap();
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let done = poll(Duration::from_secs(10), || child.try_wait().unwrap());
    let status = match done {
        Some(s) => s,
        None => {
            let _ = child.kill();
            panic!("--watch did not stop on SIGINT");
        }
    };
    stdout.read_to_string(&mut text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readings: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(readings.len() >= 3, "one reading per 0.1 s: {text}");
    assert!(readings.iter().all(|r| r["limit_bytes"] == 1u64 << 30));

    // Without --json and without a TTY: one table block per reading.
    let child = ms([
        "--root".as_ref(),
        dir.as_os_str(),
        "mem".as_ref(),
        "--watch".as_ref(),
        "0.1".as_ref(),
    ])
    .command()
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // As above: wait for output (two readings), not a fixed time, before the signal.
    let mut child = child;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    while text.matches("memory where this process runs").count() < 2 {
        assert!(
            stdout.read_line(&mut text).unwrap() > 0,
            "--watch ended early"
        );
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    stdout.read_to_string(&mut text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text.matches("memory where this process runs").count() >= 2,
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no screen clearing when not a terminal"
    );
}

#[test]
fn real_300mib_cgroup_is_seen_as_300mib() {
    let cg = match TestCgroup::new("probe", 314572800) {
        Ok(cg) => cg,
        Err(why) => skip!("{why}"),
    };
    let out = ms(["mem", "--json"]).in_cgroup(&cg).run();
    out.assert_code(0);
    let v = out.json();
    assert_eq!(v["limit_bytes"], 314572800u64, "{v:#}");
    assert_eq!(v["cgroup_limit_bytes"], 314572800u64);
    let version_source = if cg.dir().starts_with("/sys/fs/cgroup/memory") {
        "cgroup1"
    } else {
        "cgroup2"
    };
    assert_eq!(v["source"], version_source);
    assert_eq!(v["limit_from"], cg.dir().display().to_string());
    let available = v["available_bytes"].as_u64().unwrap();
    assert!(available <= 314572800 && available > 200 * MIB, "{v:#}");

    // For the record: what `free -b` says vs memsweep, inside the same cgroup.
    let free = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && free -b",
            cg.procs_file().display()
        ))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("(free not runnable: {e})"));
    eprintln!("inside a 300 MiB cgroup, `free -b` says:\n{free}");
    eprintln!(
        "memsweep says: limit_bytes {} available_bytes {} (source {})",
        v["limit_bytes"], v["available_bytes"], v["source"]
    );
    let table = ms(["mem"]).in_cgroup(&cg).run();
    table.assert_code(0);
    assert!(table.stdout.contains("300 MiB"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("but this container can use only 300 MiB"),
        "{}",
        table.stdout
    );

    ms(["check", "--need", "200M"])
        .in_cgroup(&cg)
        .run()
        .assert_code(0);
    let short = ms(["check", "--need", "400M"]).in_cgroup(&cg).run();
    short.assert_code(1);
    assert!(
        short.stderr.contains("400 MiB") && short.stderr.contains("300 MiB"),
        "{}",
        short.stderr
    );
    // A 150 MiB resident process in the cgroup: memsweep sees the headroom shrink.
    let mut hog = hog_in(&cg, 150);
    let reading = poll(Duration::from_secs(20), || {
        let v = ms(["mem", "--json"]).in_cgroup(&cg).run().json();
        (v["working_set_bytes"].as_u64()? >= 150 * MIB).then_some(v)
    });
    let _ = hog.kill();
    let _ = hog.wait();
    let v = reading.expect("the 150 MiB process never showed in the cgroup's working set");
    let available = v["available_bytes"].as_u64().unwrap();
    assert!(
        available <= 150 * MIB,
        "300 MiB limit with 150 MiB in use must leave at most 150 MiB: {v:#}"
    );
    eprintln!(
        "with a 150 MiB process inside: working_set_bytes {} available_bytes {}",
        v["working_set_bytes"], v["available_bytes"]
    );
}

/// A python3 process holding `mib` MiB of touched memory inside `cg` for up to 30 s.
fn hog_in(cg: &TestCgroup, mib: u64) -> std::process::Child {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec python3 -c \"import time; b=b'x'*({mib}<<20); time.sleep(30)\"",
            cg.procs_file().display()
        ))
        .spawn()
        .expect("spawn python3")
}

#[test]
fn check_says_no_while_a_hog_holds_the_cgroup() {
    let cg = match TestCgroup::new("probe-hog", 314572800) {
        Ok(cg) => cg,
        Err(why) => skip!("{why}"),
    };
    let mut hog = hog_in(&cg, 200);
    let held = poll(Duration::from_secs(20), || {
        let v = ms(["mem", "--json"]).in_cgroup(&cg).run().json();
        (v["working_set_bytes"].as_u64()? >= 200 * MIB).then_some(())
    });
    let verdict = ms(["check", "--need", "200M", "--json"])
        .in_cgroup(&cg)
        .run();
    let _ = hog.kill();
    let _ = hog.wait();
    held.expect("the 200 MiB process never showed in the cgroup's working set");
    verdict.assert_code(1);
    let v = verdict.json();
    assert_eq!(v["ok"], false);
    assert!(v["available_bytes"].as_u64().unwrap() < 200 * MIB);
    assert!(v["message"].as_str().unwrap().contains("fewer jobs"));
}
