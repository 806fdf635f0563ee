//! Snapshots of what users read: `--help`, the `mem` table (a fixture machine), the dry-run plan
//! and `show`. A change to any of them shows up as a diff here; after checking it, update the
//! files with `SNAPSHOTS=overwrite cargo test --test it snapshots`.

use snapbox::{assert_data_eq, file};

use crate::harness::{fixtures, ms, tempdir};

#[test]
fn help() {
    let out = ms(["--help"]).run();
    out.assert_code(0);
    assert_data_eq!(out.stdout, file!["snapshots/help.txt"]);
}

#[test]
fn run_help() {
    let out = ms(["run", "--help"]).run();
    out.assert_code(0);
    assert_data_eq!(out.stdout, file!["snapshots/run-help.txt"]);
}

#[test]
fn mem_table_of_a_docker_container() {
    let root = fixtures().join("v1-docker-cgroupns-host");
    let out = ms(["mem", "--root"]).arg(root).run();
    out.assert_code(0);
    assert_data_eq!(out.stdout, file!["snapshots/mem-docker.txt"]);
}

#[test]
fn dry_run_plan() {
    let d = tempdir();
    let root = fixtures().join("v1-docker-cgroupns-host");
    let out = ms(["run", "--dry-run", "--no-history", "--root"])
        .arg(root)
        .current_dir(d.path())
        .args([
            "-p",
            "lr=0.1,0.01",
            "-p",
            "seed=range(0,2)",
            "--mem-per-job",
            "300M",
        ])
        .args([
            "--", "python", "train.py", "--lr", "{lr}", "--seed", "{seed}",
        ])
        .run();
    out.assert_code(0);
    assert_data_eq!(out.stdout, file!["snapshots/dry-run.txt"]);
}

#[test]
fn show_of_a_finished_sweep() {
    // A real sweep.json, and a journal with fixed times and figures in place of the run's.
    let d = tempdir();
    ms([
        "run",
        "--no-history",
        "--out",
        "sw",
        "--timeout",
        "1h",
        "-p",
        "x=0,1,2",
    ])
    .args(["--", "echo", "{x}"])
    .current_dir(d.path())
    .env("XDG_CACHE_HOME", d.path().join("cache"))
    .run()
    .assert_code(0);
    let t0 = 1_796_000_000.0;
    let mib = 1u64 << 20;
    let journal = [
        serde_json::json!({"event":"sweep_start","t":t0,"schema_version":1,"out":"sw","jobs":3,
            "limit_bytes":2048*mib,"budget_bytes":1792*mib,"reserve_bytes":256*mib,
            "parallel_cap":2,"accounting":"cgroup-v1","resumed":false}),
        serde_json::json!({"event":"job_start","t":t0,"job":0,"attempt":1,"command":"echo 0","estimate_bytes":null}),
        serde_json::json!({"event":"job_start","t":t0,"job":1,"attempt":1,"command":"echo 1","estimate_bytes":null}),
        serde_json::json!({"event":"sample","t":t0+1.0,"working_set_bytes":900*mib,"available_bytes":1148*mib,
            "budget_bytes":1792*mib,"running":[[0,300*mib],[1,500*mib]],"psi_some_avg10":null}),
        serde_json::json!({"event":"job_end","t":t0+2.5,"job":0,"attempt":1,"status":"succeeded","exit_code":0,
            "signal":null,"wall_s":2.5,"peak_bytes":310*mib,"peak_source":"cgroup-v1"}),
        serde_json::json!({"event":"job_start","t":t0+2.5,"job":2,"attempt":1,"command":"echo 2","estimate_bytes":310*mib}),
        serde_json::json!({"event":"job_end","t":t0+3.0,"job":1,"attempt":1,"status":"failed","exit_code":3,
            "signal":null,"wall_s":3.0,"peak_bytes":520*mib,"peak_source":"cgroup-v1"}),
        serde_json::json!({"event":"job_end","t":t0+9.0,"job":2,"attempt":1,"status":"timeout","exit_code":null,
            "signal":15,"wall_s":6.5,"peak_bytes":128*mib,"peak_source":"cgroup-v1"}),
        serde_json::json!({"event":"sweep_end","t":t0+9.0,"makespan_s":9.0,"succeeded":1,"failed":2,
            "exit_code":1,"interrupted":false,"fail_fast_job":null}),
    ];
    let text: String = journal.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(d.path().join("sw/journal.jsonl"), text).unwrap();
    std::fs::remove_file(d.path().join("sw/summary.json")).unwrap();
    let out = ms(["show", "sw"])
        .current_dir(d.path())
        .env("TZ", "UTC")
        .run();
    out.assert_code(0);
    assert_data_eq!(out.stdout, file!["snapshots/show.txt"]);
}
