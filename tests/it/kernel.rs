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

/// Idles at 50 MiB for 0.5 s, then touches 400 MiB as fast as the machine allows (huge pages
/// where the kernel gives them: a fault per 2 MiB), and holds it for a second.
const BURST: &str = "\
import mmap, time
def touch(n):
    m = mmap.mmap(-1, n << 20)
    try:
        m.madvise(mmap.MADV_HUGEPAGE)
    except (AttributeError, OSError):
        pass
    for o in range(0, n << 20, 4096):
        m[o] = 1
    return m
a = touch(50)
time.sleep(0.5)
t = time.monotonic()
b = touch(400)
print(round((time.monotonic() - t) * 1000), 'ms')
time.sleep(1)
";

#[test]
fn jobs_bursting_400mib_in_a_small_cgroup_all_finish_without_an_oom_kill() {
    // 1 GiB: two bursts fit (2 × 450 MiB), three do not. Nothing is known in advance, and
    // until they burst the jobs sit still, so memsweep samples only every second
    // (--sample-interval 1): the kernel's usage events must catch a burst in time to pause the
    // others before the container runs out. (How fast a burst is depends on the machine: each
    // job prints its burst's duration to its stdout.)
    let cg = cgroup!("burst", 1 << 30);
    let dir = tempdir();
    let out = dir.path().join("sw");
    let res = run_in(dir.path())
        .args(["-j", "4", "--sample-interval", "1", "--out"])
        .arg(&out)
        .args([
            "-p",
            "i=range(0,6)",
            "--",
            "env",
            "JOB={i}",
            "python3",
            "-c",
            BURST,
        ])
        .timeout(Duration::from_secs(150))
        .in_cgroup(&cg)
        .run();
    res.assert_code(0).assert_no_panic();
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["succeeded"], 6, "{s}");
    // Every kernel kill: the container's counter and (through memsweep) each job cgroup's.
    assert_eq!(cg.oom_kills(), 0, "{}", res.stderr);
    assert_eq!(s["oom_kills"], 0, "{s}");
    for j in s["jobs"].as_array().unwrap() {
        assert!(
            j["peak_bytes"].as_u64().unwrap_or(0) >= 440 * MIB,
            "a job did not burst: {j}"
        );
    }
}
