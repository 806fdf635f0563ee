//! The chaos test: kill -9 the runner at random moments (fresh runs and `--resume`s alike), in
//! cgroup and /proc mode, until a run finishes. After each kill no job process (including
//! background children and double-forked daemons) may outlive the runner by more than 1 s and
//! no cgroup may be left; at the end every job has succeeded exactly once in the journal.
//!
//! The seed is printed; `MEMSWEEP_CHAOS_SEED=N` replays a run, `MEMSWEEP_CHAOS_ITERS=N` sets
//! the iterations per mode (default 12, so 24 in all).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TestCgroup, ms, pids_with, poll, tempdir};
use crate::skip;

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("MEMSWEEP_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

const JOBS: usize = 8;

/// Each job: a background child and a double-forked daemon (both named by the marker, so a
/// survivor is visible), then 0.1–0.9 s of work, then success.
const SCRIPT: &str = "sh -c 'sleep 60' \"$0-bg\" & \
    (setsid sh -c 'sleep 60' \"$0-daemon\" &); \
    sleep 0.$(( ($1 * 37 + $MEMSWEEP_ATTEMPT * 11) % 9 + 1 )); exit 0";

#[derive(Default)]
struct Tally {
    kills: usize,
    kills_in_resume: usize,
    runs: usize,
}

fn start(dir: &Path, out: &Path, marker: &str, cg: Option<&TestCgroup>) -> Child {
    let mut m = ms(["run"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir);
    let have_plan = out.join("sweep.json").exists();
    if have_plan {
        m = m.arg("--resume").arg(out);
    } else {
        // Killed before the plan was written: nothing ran; start afresh.
        let _ = std::fs::remove_dir_all(out);
        m = m
            .args(["-p", &format!("i=range(0,{JOBS})"), "--out"])
            .arg(out)
            .args(["--", "sh", "-c", SCRIPT, &format!("{marker}-{{i}}"), "{i}"]);
    }
    m = m.args(["-j", "4", "--no-history", "--grace", "1"]);
    m = match cg {
        Some(cg) => m.in_cgroup(cg),
        None => m.arg("--no-cgroups"),
    };
    let mut cmd = m.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

/// Directories (cgroups) left under the test cgroup.
fn cgroups_left(cg: &TestCgroup) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![cg.dir().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path().display().to_string());
                stack.push(e.path());
            }
        }
    }
    out
}

/// One sweep, killed at random moments until a run ends by itself.
fn iteration(rng: &mut Rng, it: usize, cg: Option<&TestCgroup>, tally: &mut Tally) {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let mode = if cg.is_some() { "cgroup" } else { "proc" };
    let marker = format!("chaos-{mode}-{}-{it}", std::process::id());
    let mut kills_here = 0;
    loop {
        let resuming = out.join("sweep.json").exists();
        let mut child = start(dir.path(), &out, &marker, cg);
        tally.runs += 1;
        // Kill at most 3 times per sweep, at 0–1.5 s; then let it finish.
        let kill_after =
            (kills_here < 3 && rng.below(4) != 0).then(|| Duration::from_millis(rng.below(1500)));
        let t0 = Instant::now();
        let ended = poll(kill_after.unwrap_or(Duration::from_secs(120)), || {
            child.try_wait().unwrap()
        });
        if let Some(status) = ended {
            if kill_after.is_none() || status.success() {
                assert!(
                    status.success(),
                    "{mode} iteration {it}: the run ended with {status} (seed in the log)"
                );
                break;
            }
            panic!("{mode} iteration {it}: the run failed early with {status}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills_here += 1;
        tally.kills += 1;
        if resuming {
            tally.kills_in_resume += 1;
        }
        let clean = poll(Duration::from_secs(1), || {
            let procs = pids_with(&marker);
            let cgs = cg.map(cgroups_left).unwrap_or_default();
            (procs.is_empty() && cgs.is_empty()).then_some(())
        });
        if clean.is_none() {
            let procs = pids_with(&marker);
            for p in &procs {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &p.to_string()])
                    .status();
            }
            panic!(
                "{mode} iteration {it}: 1 s after kill -9 at {:?} (resume: {resuming}): \
                 processes {procs:?}, cgroups {:?}",
                t0.elapsed(),
                cg.map(cgroups_left).unwrap_or_default()
            );
        }
    }
    // Every job succeeded exactly once; no leftovers after the clean end either.
    let text = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let mut ok = [0usize; JOBS];
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue; // a torn line of a killed run
        };
        if e["event"] == "job_end" && e["status"] == "succeeded" {
            ok[e["job"].as_u64().unwrap() as usize] += 1;
        }
    }
    assert_eq!(
        ok, [1; JOBS],
        "{mode} iteration {it}: succeeded job_ends per job"
    );
    let left = poll(Duration::from_secs(1), || {
        pids_with(&marker).is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "{mode} iteration {it}: processes left after the end"
    );
    if let Some(cg) = cg {
        assert_eq!(
            cgroups_left(cg),
            Vec::<String>::new(),
            "{mode}: cgroups left"
        );
        assert_eq!(cg.oom_kills(), 0);
    }
}

fn chaos(cg: Option<&TestCgroup>) {
    let iters: usize = std::env::var("MEMSWEEP_CHAOS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let seed = seed();
    let mode = if cg.is_some() { "cgroup" } else { "proc" };
    eprintln!("chaos {mode}: seed {seed} (MEMSWEEP_CHAOS_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let t = Instant::now();
    for it in 0..iters {
        iteration(&mut rng, it, cg, &mut tally);
    }
    eprintln!(
        "chaos {mode}: {iters} sweeps, {} runs, {} kill -9 ({} during --resume), {:.1} s",
        tally.runs,
        tally.kills,
        tally.kills_in_resume,
        t.elapsed().as_secs_f64()
    );
    assert!(tally.kills >= iters / 2, "too few kills to mean anything");
}

#[test]
fn chaos_kill_9_in_cgroup_mode() {
    let cg = match TestCgroup::new("chaos", 2 << 30) {
        Ok(cg) => cg,
        Err(why) => skip!("{why}"),
    };
    chaos(Some(&cg));
}

#[test]
fn chaos_kill_9_in_proc_mode() {
    chaos(None);
}
