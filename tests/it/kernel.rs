//! What the kernel does under memory pressure, seen end to end: its OOM kills counted
//! honestly (v1 counts a kill only in the victim's own cgroup, which memsweep then resets or
//! removes), and jobs that burst faster than any sample caught through kernel events.

use std::time::Duration;

use crate::cgroup;
use crate::harness::tempdir;
use crate::run::{read_json, run_in};

const MIB: u64 = 1 << 20;

#[test]
fn kernel_kills_inside_job_cgroups_are_counted_as_oom_kills() {
    // Regression: with --on-pressure none, jobs the kernel killed (status oom) left
    // "0 OOM kills" in the summary, because only the container's counter was read.
    let cg = cgroup!("oomcount", 512 * MIB);
    let dir = tempdir();
    let out = dir.path().join("sw");
    // Each job touches 700 MiB at once in a 512 MiB container: the kernel must kill it.
    let res = run_in(dir.path())
        .args(["-j", "2", "--mem-per-job", "8M", "--on-pressure", "none"])
        .arg("--out")
        .arg(&out)
        .args(["-p", "i=0,1", "--", "env", "JOB={i}", "python3", "-c"])
        .arg("b = b'x' * (700 << 20)")
        .timeout(Duration::from_secs(60))
        .in_cgroup(&cg)
        .run();
    res.assert_code(1).assert_no_panic();
    let s = read_json(&out.join("summary.json"));
    let oom_jobs = s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["status"] == "oom")
        .count() as u64;
    assert_eq!(oom_jobs, 2, "both jobs should be killed by the kernel: {s}");
    assert_eq!(s["oom_kills"], oom_jobs, "{s}");
    assert!(
        res.stdout.contains("2 OOM kills"),
        "the totals line hides the kills:\n{}",
        res.stdout
    );
}
