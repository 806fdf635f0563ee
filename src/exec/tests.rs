//! Real-process tests of the executor: outcomes, cgroup and /proc accounting, caps, pause and
//! resume, the orphan guard (by SIGKILLing a re-executed runner), stale-cgroup cleanup, and the
//! v2 setup on a fixture tree. Tests that need a writable memory cgroup print SKIPPED (and fail
//! under MEMSWEEP_REQUIRE_CGROUPS=1). All take one lock: the executor reaps every child of the
//! process, so two running at once would steal each other's exits.

use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::*;
use crate::probe::{CgroupVersion, Fs, Layout};

fn lock() -> MutexGuard<'static, ()> {
    crate::testutil::children()
}

macro_rules! skip {
    ($($arg:tt)*) => {{
        let why = format!($($arg)*);
        if std::env::var("MEMSWEEP_REQUIRE_CGROUPS").as_deref() == Ok("1") {
            panic!("cannot skip under MEMSWEEP_REQUIRE_CGROUPS=1: {why}");
        }
        eprintln!("SKIPPED {}: {why}", module_path!());
        return;
    }};
}

const MIB: u64 = 1 << 20;

/// A v1 memory cgroup made for one test under this process's own memory cgroup, standing in
/// for "the runner's cgroup"; killed and removed on drop.
struct TestParent {
    dir: PathBuf,
}

impl TestParent {
    fn new(tag: &str) -> Result<TestParent, String> {
        let text = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let rel = text
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                ctrls
                    .split(',')
                    .any(|c| c == "memory")
                    .then(|| path.to_string())
            })
            .ok_or("no v1 memory cgroup in /proc/self/cgroup")?;
        let own = Path::new("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/'));
        if !own.join("memory.usage_in_bytes").exists() {
            return Err(format!("{} is not a v1 memory cgroup", own.display()));
        }
        let dir = own.join(format!("exec-test-{}-{tag}", std::process::id()));
        let _ = cgroup::remove_tree(&dir);
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cannot create {} ({e}): cgroups not writable",
                dir.display()
            )
        })?;
        Ok(TestParent { dir })
    }

    fn layout(&self) -> Layout {
        Layout {
            version: Some(CgroupVersion::V1),
            cgroup_path: None,
            dir: Some(self.dir.clone()),
            mount_point: Some(PathBuf::from("/sys/fs/cgroup/memory")),
        }
    }
}

impl Drop for TestParent {
    fn drop(&mut self) {
        let _ = cgroup::remove_tree(&self.dir);
    }
}

fn no_layout() -> Layout {
    Layout {
        version: None,
        cgroup_path: None,
        dir: None,
        mount_point: None,
    }
}

fn cfg(no_cgroups: bool, cap: Option<u64>) -> ExecConfig {
    ExecConfig {
        no_cgroups,
        job_mem_max: cap,
        sample_interval: Duration::from_millis(50),
    }
}

fn sh(s: &str) -> JobCommand {
    JobCommand::Shell(s.to_string())
}

fn argv(a: &[&str]) -> JobCommand {
    JobCommand::Argv(a.iter().map(|s| s.to_string()).collect())
}

fn spec(dir: &Path, job: usize, command: JobCommand) -> SpawnSpec {
    SpawnSpec {
        job,
        attempt: 1,
        command,
        stdout: dir.join(format!("{job}.out")),
        stderr: dir.join(format!("{job}.err")),
        env: vec![("MEMSWEEP_JOB_ID".into(), job.to_string())],
        job_dir: None,
    }
}

#[derive(Debug, Clone)]
struct Done {
    outcome: Outcome,
    peak: Option<u64>,
    accounting: Accounting,
}

/// Wait until no job runs and collect exits by job id; panics after `limit`.
fn drain(ex: &mut Executor, limit: Duration) -> std::collections::BTreeMap<usize, Done> {
    let end = Instant::now() + limit;
    let mut out = std::collections::BTreeMap::new();
    loop {
        for ev in ex.wait(Duration::from_millis(100)) {
            if let ExecEvent::Exited(JobExit {
                job,
                outcome,
                peak_bytes,
                accounting,
                ..
            }) = ev
            {
                out.insert(
                    job,
                    Done {
                        outcome,
                        peak: peak_bytes,
                        accounting,
                    },
                );
            }
        }
        if ex.running() == 0 && ex.wait(Duration::ZERO).is_empty() {
            return out;
        }
        assert!(Instant::now() < end, "jobs still running after {limit:?}");
    }
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Process state letter from /proc/<pid>/stat; None when the process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let s = read(format!("/proc/{pid}/stat"));
    s.rfind(')')
        .and_then(|i| s[i + 1..].trim_start().chars().next())
}

fn alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(c) if c != 'Z' && c != 'X')
}

fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

// ---------------------------------------------------------------------------------------------
// Outcomes and spawning

fn check_outcomes(ex: &mut Executor, tmp: &Path, in_cgroup: bool) {
    std::fs::write(tmp.join("5.out"), "previous run\n").unwrap();
    ex.spawn(spec(tmp, 0, sh("exit 0"))).unwrap();
    ex.spawn(spec(tmp, 1, sh("echo oops >&2; exit 3"))).unwrap();
    ex.spawn(spec(tmp, 2, sh("kill -TERM $$; sleep 5")))
        .unwrap();
    ex.spawn(spec(tmp, 3, argv(&["/nonexistent/memsweep-prog", "x"])))
        .unwrap();
    ex.spawn(spec(tmp, 4, sh("sleep 30"))).unwrap();
    ex.spawn(spec(
        tmp,
        5,
        sh(
            "echo id=$MEMSWEEP_JOB_ID; echo adj=$(cat /proc/self/oom_score_adj); \
            echo pgid=$(cut -d' ' -f5 /proc/$$/stat) pid=$$; echo stdin=$(cat); \
            echo cg=$(grep -c memsweep- /proc/$$/cgroup)",
        ),
    ))
    .unwrap();
    ex.spawn(spec(tmp, 6, argv(&["printf", "%s|", "a b", "'; rm -rf x"])))
        .unwrap();
    assert_eq!(ex.running(), 6, "the missing program is not a running job");
    assert!(
        poll_until(Duration::from_secs(5), || ex
            .pid(4)
            .is_some_and(|p| alive(p as i32))),
        "sleep job should run"
    );
    ex.signal(4, libc::SIGTERM).unwrap();
    let done = drain(ex, Duration::from_secs(20));
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    assert_eq!(done[&1].outcome, Outcome::Failed { code: 3 });
    assert_eq!(read(tmp.join("1.err")), "oops\n");
    assert_eq!(
        done[&2].outcome,
        Outcome::Signaled {
            signal: libc::SIGTERM
        }
    );
    match &done[&3].outcome {
        Outcome::FailedToSpawn { error } => {
            assert!(
                error.contains("memsweep-prog") && error.contains("not found"),
                "{error}"
            )
        }
        o => panic!("missing program gave {o:?}"),
    }
    assert_eq!(
        done[&4].outcome,
        Outcome::Stopped {
            signal: libc::SIGTERM
        }
    );
    assert_eq!(done[&5].outcome, Outcome::Succeeded);
    let out = read(tmp.join("5.out"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "previous run",
        "stdout is appended, not truncated: {out}"
    );
    assert_eq!(lines[1], "id=5");
    assert_eq!(lines[2], "adj=1000");
    let (pg, pid) = lines[3].split_once(' ').unwrap();
    assert_eq!(
        pg.strip_prefix("pgid=").unwrap(),
        pid.strip_prefix("pid=").unwrap(),
        "own group"
    );
    assert_eq!(lines[4], "stdin=", "stdin is /dev/null");
    assert_eq!(
        lines[5],
        if in_cgroup { "cg=1" } else { "cg=0" },
        "job cgroup membership"
    );
    assert_eq!(
        read(tmp.join("6.out")),
        "a b|'; rm -rf x|",
        "argv is passed literally"
    );
    for d in done.values() {
        assert_eq!(d.accounting, ex.accounting());
    }
    // Every job that ran has a peak; the spawn failure has none.
    assert!(done[&0].peak.is_some_and(|p| p > 0), "{:?}", done[&0]);
    assert!(done[&3].peak.is_none());
}

#[test]
fn outcomes_in_cgroup_mode() {
    let _l = lock();
    let parent = match TestParent::new("outcomes") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(false, None), &parent.layout(), &Fs::new(None)).unwrap();
    assert_eq!(
        ex.accounting(),
        Accounting::CgroupV1,
        "{}",
        ex.accounting_note()
    );
    assert!(
        ex.accounting_note().starts_with(&format!(
            "per-job cgroups under {}/memsweep-",
            parent.dir.display()
        )),
        "{}",
        ex.accounting_note()
    );
    check_outcomes(&mut ex, tmp.path(), true);
    drop(ex);
    let left: Vec<_> = std::fs::read_dir(&parent.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "cgroups left behind after drop: {left:?}");
}

#[test]
fn outcomes_in_proc_mode() {
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    assert_eq!(ex.accounting(), Accounting::Proc);
    assert_eq!(
        ex.accounting_note(),
        "sampling /proc every 50 ms: --no-cgroups (peaks are sampled)"
    );
    check_outcomes(&mut ex, tmp.path(), false);
}

#[test]
fn interrupts_become_events() {
    let _l = lock();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    // SAFETY: raising a signal this process handles (the executor registered SIGINT/SIGTERM).
    unsafe {
        libc::kill(libc::getpid(), libc::SIGINT);
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
    let mut got = vec![];
    let end = Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && Instant::now() < end {
        for ev in ex.wait(Duration::from_millis(200)) {
            if let ExecEvent::Interrupt { signal } = ev {
                got.push(signal);
            }
        }
    }
    got.sort();
    assert_eq!(got, vec![libc::SIGINT, libc::SIGTERM]);
}

// ---------------------------------------------------------------------------------------------
// Accounting

/// A job that holds ~200 MiB and prints its own VmHWM (bytes) last.
fn hog_200() -> JobCommand {
    argv(&[
        "python3",
        "-c",
        "import time\nb=b'x'*(200<<20)\ntime.sleep(0.6)\n\
         hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n\
         print(int(hwm.split()[1])*1024)",
    ])
}

fn hwm_of(out: &Path) -> u64 {
    read(out).trim().parse().expect("the hog prints its VmHWM")
}

#[test]
fn cgroup_peak_matches_vmhwm() {
    let _l = lock();
    let parent = match TestParent::new("peak") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(false, None), &parent.layout(), &Fs::new(None)).unwrap();
    // Twice: the second run reuses the slot, whose peak must have been reset.
    for job in 0..2 {
        ex.spawn(spec(tmp.path(), job, hog_200())).unwrap();
        let done = drain(&mut ex, Duration::from_secs(30));
        assert_eq!(done[&job].outcome, Outcome::Succeeded);
        let hwm = hwm_of(&tmp.path().join(format!("{job}.out")));
        let peak = done[&job].peak.unwrap();
        let err = (peak as f64 - hwm as f64).abs() / hwm as f64;
        eprintln!("cgroup peak {peak} vs VmHWM {hwm}: {:.1}%", err * 100.0);
        assert!(
            err < 0.05,
            "cgroup peak {peak} not within 5% of VmHWM {hwm}"
        );
    }
}

#[test]
fn proc_peak_matches_vmhwm() {
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    // Wrapped in a shell that waits, so the hog is a descendant, not the job's own process.
    ex.spawn(spec(
        tmp.path(),
        0,
        sh(
            "python3 -c \"import time\nb=b'x'*(200<<20)\ntime.sleep(0.6)\n\
            hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n\
            print(int(hwm.split()[1])*1024)\"; true",
        ),
    ))
    .unwrap();
    let mut max_usage = 0;
    let end = Instant::now() + Duration::from_secs(30);
    let mut done = None;
    while done.is_none() && Instant::now() < end {
        for ev in ex.wait(Duration::from_millis(100)) {
            if let ExecEvent::Exited(JobExit {
                outcome,
                peak_bytes,
                ..
            }) = ev
            {
                done = Some((outcome, peak_bytes));
            }
        }
        for u in ex.usage() {
            max_usage = max_usage.max(u.current_bytes);
        }
    }
    let (outcome, peak) = done.expect("hog finished");
    assert_eq!(outcome, Outcome::Succeeded);
    let hwm = hwm_of(&tmp.path().join("0.out"));
    let peak = peak.unwrap();
    let err = (peak as f64 - hwm as f64).abs() / hwm as f64;
    eprintln!("proc peak {peak} vs VmHWM {hwm}: {:.1}%", err * 100.0);
    assert!(
        err < 0.15,
        "sampled peak {peak} not within 15% of VmHWM {hwm}"
    );
    assert!(
        max_usage > 150 * MIB,
        "usage() saw the tree's RSS: {max_usage}"
    );
}

#[test]
fn job_mem_max_kills_only_the_hog() {
    let _l = lock();
    let parent = match TestParent::new("cap") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(
        cfg(false, Some(100 * MIB)),
        &parent.layout(),
        &Fs::new(None),
    )
    .unwrap();
    ex.spawn(spec(
        tmp.path(),
        0,
        argv(&[
            "python3",
            "-c",
            "import time; b=b'x'*(300<<20); time.sleep(2)",
        ]),
    ))
    .unwrap();
    ex.spawn(spec(tmp.path(), 1, sh("sleep 1; echo fine")))
        .unwrap();
    let done = drain(&mut ex, Duration::from_secs(30));
    assert_eq!(done[&0].outcome, Outcome::OomKilled, "{:?}", done[&0]);
    assert!(done[&0].peak.unwrap() <= 100 * MIB + MIB);
    assert_eq!(done[&1].outcome, Outcome::Succeeded);
    assert_eq!(read(tmp.path().join("1.out")), "fine\n");
}

#[test]
fn an_ancestor_oom_kill_is_oom_killed() {
    // The container's limit (here: the runner's cgroup) is hit, not a per-job cap: the kernel
    // counts the kill in the victim's own cgroup, so the job is still reported as OomKilled.
    let _l = lock();
    let parent = match TestParent::new("ancestor") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    for f in ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"] {
        if parent.dir.join(f).exists() {
            std::fs::write(parent.dir.join(f), (150 * MIB).to_string()).unwrap();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(false, None), &parent.layout(), &Fs::new(None)).unwrap();
    ex.spawn(spec(
        tmp.path(),
        0,
        sh("python3 -c \"import time; b=b'x'*(300<<20); time.sleep(2)\""),
    ))
    .unwrap();
    let done = drain(&mut ex, Duration::from_secs(30));
    assert_eq!(done[&0].outcome, Outcome::OomKilled, "{:?}", done[&0]);
}

// ---------------------------------------------------------------------------------------------
// Pause, resume, signal

#[test]
fn pause_stops_and_resume_continues() {
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    ex.spawn(spec(tmp.path(), 0, sh("sleep 0.4; echo done")))
        .unwrap();
    ex.spawn(spec(tmp.path(), 1, sh("sleep 30"))).unwrap();
    let (p0, p1) = (ex.pid(0).unwrap() as i32, ex.pid(1).unwrap() as i32);
    ex.pause(0).unwrap();
    ex.pause(1).unwrap();
    // Every process of each group is stopped (T) — or is a shell in vfork waiting (D) for its
    // stopped child to exec — and at least one is T.
    let stopped = |pg: i32| {
        let states: Vec<char> = sample::scan()
            .iter()
            .filter(|p| p.pgid == pg)
            .filter_map(|p| proc_state(p.pid))
            .collect();
        states.contains(&'T') && states.iter().all(|&c| c == 'T' || c == 'D')
    };
    assert!(
        poll_until(Duration::from_secs(5), || stopped(p0)),
        "job 0 not stopped"
    );
    assert!(
        poll_until(Duration::from_secs(5), || stopped(p1)),
        "job 1 not stopped"
    );
    assert!(ex.is_paused(0));
    // Paused, the 0.4 s job cannot finish within 1 s.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(1) {
        let evs = ex.wait(Duration::from_millis(200));
        assert!(
            evs.iter().all(|e| !matches!(e, ExecEvent::Exited(_))),
            "a paused job exited: {evs:?}"
        );
    }
    ex.resume(0).unwrap();
    assert!(
        poll_until(Duration::from_secs(5), || !stopped(p0)),
        "job 0 still stopped"
    );
    // SIGTERM to a paused job must still take effect (signal resumes it).
    ex.signal(1, libc::SIGTERM).unwrap();
    let done = drain(&mut ex, Duration::from_secs(10));
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    assert_eq!(read(tmp.path().join("0.out")), "done\n");
    assert_eq!(
        done[&1].outcome,
        Outcome::Stopped {
            signal: libc::SIGTERM
        }
    );
    assert!(ex.pause(0).is_err(), "pausing a finished job is an error");
}

#[test]
fn a_signal_right_after_spawn_reaches_the_job_not_the_runner() {
    // Regression: a SIGTERM that hit a job between fork and exec ran the runner's inherited
    // signal-hook handler — the job lived on and the runner saw a fake Interrupt.
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    for job in 0..20 {
        ex.spawn(spec(tmp.path(), job, sh("sleep 30"))).unwrap();
        ex.signal(job, libc::SIGTERM).unwrap();
    }
    let end = Instant::now() + Duration::from_secs(20);
    let mut exits = 0;
    while exits < 20 && Instant::now() < end {
        for ev in ex.wait(Duration::from_millis(200)) {
            match ev {
                ExecEvent::Exited(JobExit { outcome, .. }) => {
                    assert_eq!(
                        outcome,
                        Outcome::Stopped {
                            signal: libc::SIGTERM
                        }
                    );
                    exits += 1;
                }
                ExecEvent::Interrupt { signal } => panic!("fake interrupt {signal}"),
                ExecEvent::Memory => {}
            }
        }
    }
    assert_eq!(exits, 20, "SIGTERMed jobs still running");
}

// ---------------------------------------------------------------------------------------------
// No orphans

const ROLE: &str = "MEMSWEEP_EXEC_TEST_ROLE";

/// The runner side: start two jobs whose trees include a backgrounded grandchild, a nested one
/// and one in a new session, then idle until SIGKILLed by the test.
fn act_as_runner() {
    let dir = PathBuf::from(std::env::var("MEMSWEEP_EXEC_TEST_DIR").unwrap());
    let layout = match std::env::var("MEMSWEEP_EXEC_TEST_CGDIR") {
        Ok(d) => Layout {
            version: Some(CgroupVersion::V1),
            cgroup_path: None,
            dir: Some(PathBuf::from(d)),
            mount_point: None,
        },
        Err(_) => no_layout(),
    };
    let no_cg = layout.version.is_none();
    let mut ex = Executor::new(cfg(no_cg, None), &layout, &Fs::new(None)).unwrap();
    std::fs::write(dir.join("mode"), format!("{:?}", ex.accounting())).unwrap();
    for job in 0..2 {
        ex.spawn(spec(&dir, job, tree_script(&dir))).unwrap();
    }
    loop {
        ex.wait(Duration::from_millis(100));
    }
}

fn orphan_test(test_name: &str, parent: Option<&TestParent>) {
    if std::env::var(ROLE).as_deref() == Ok("runner") {
        act_as_runner();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "runner")
        .env("MEMSWEEP_EXEC_TEST_DIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(p) = parent {
        cmd.env("MEMSWEEP_EXEC_TEST_CGDIR", &p.dir);
    }
    let mut runner = cmd.spawn().unwrap();
    let pids_file = tmp.path().join("pids");
    let ready = poll_until(Duration::from_secs(20), || {
        read(&pids_file).lines().count() >= 8
    });
    let pids: Vec<i32> = read(&pids_file)
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    if !ready {
        let _ = runner.kill();
        panic!("runner did not start its jobs: {pids:?}");
    }
    assert!(pids.iter().all(|&p| alive(p)), "all job processes run");
    let expect = if parent.is_some() { "CgroupV1" } else { "Proc" };
    assert_eq!(read(tmp.path().join("mode")), expect);
    if parent.is_none() {
        // Proc mode learns the setsid'd grandchild's group at the next sample.
        std::thread::sleep(Duration::from_millis(400));
    }
    runner.kill().unwrap(); // SIGKILL: the runner gets no chance to clean up
    runner.wait().unwrap();
    let all_dead = poll_until(Duration::from_secs(5), || pids.iter().all(|&p| !alive(p)));
    let survivors: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    for &p in &survivors {
        let _ = sys::kill(p, libc::SIGKILL);
    }
    assert!(
        all_dead,
        "processes outlived the SIGKILLed runner: {survivors:?}"
    );
}

#[test]
fn no_orphans_after_runner_sigkill_cgroup_mode() {
    let role = std::env::var(ROLE).is_ok();
    let _l = (!role).then(lock);
    let parent = if role {
        None
    } else {
        match TestParent::new("orphans") {
            Ok(p) => Some(p),
            Err(why) => skip!("{why}"),
        }
    };
    orphan_test(
        "exec::tests::no_orphans_after_runner_sigkill_cgroup_mode",
        parent.as_ref(),
    );
    if let Some(p) = parent {
        // The guard removed the job cgroups; the dead runner's base dir goes at the next start.
        let base = std::fs::read_dir(&p.dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("memsweep-"));
        if let Some(base) = base {
            let jobs = || {
                std::fs::read_dir(base.path())
                    .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).count())
                    .unwrap_or(0)
            };
            assert!(
                poll_until(Duration::from_secs(5), || jobs() == 0),
                "the guard left {} job cgroups behind",
                jobs()
            );
        }
    }
}

#[test]
fn no_orphans_after_runner_sigkill_proc_mode() {
    let role = std::env::var(ROLE).is_ok();
    let _l = (!role).then(lock);
    orphan_test(
        "exec::tests::no_orphans_after_runner_sigkill_proc_mode",
        None,
    );
}

fn tree_script(dir: &Path) -> JobCommand {
    sh(&format!(
        "echo $$ >> {d}/pids; sleep 300 & echo $! >> {d}/pids; \
         sh -c 'sleep 300 & echo $! >> {d}/pids; wait' & \
         setsid sleep 300 & echo $! >> {d}/pids; wait",
        d = dir.display()
    ))
}

fn check_drop_kills(layout: &Layout, no_cgroups: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(no_cgroups, None), layout, &Fs::new(None)).unwrap();
    ex.spawn(spec(tmp.path(), 0, tree_script(tmp.path())))
        .unwrap();
    let pids_file = tmp.path().join("pids");
    assert!(poll_until(Duration::from_secs(10), || read(&pids_file)
        .lines()
        .count()
        >= 4));
    let pids: Vec<i32> = read(&pids_file)
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(pids.iter().all(|&p| alive(p)));
    drop(ex); // no sample has run: Proc mode must find the setsid'd one by walking the tree
    let all_dead = poll_until(Duration::from_secs(5), || pids.iter().all(|&p| !alive(p)));
    let survivors: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    for &p in &survivors {
        let _ = sys::kill(p, libc::SIGKILL);
    }
    assert!(
        all_dead,
        "processes outlived the dropped executor: {survivors:?}"
    );
}

#[test]
fn drop_kills_every_job_process() {
    let _l = lock();
    check_drop_kills(&no_layout(), true);
    match TestParent::new("drop") {
        Ok(parent) => check_drop_kills(&parent.layout(), false),
        Err(why) => skip!("{why}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Setup, fallbacks, stale cleanup

#[test]
fn stale_cgroups_of_dead_runners_are_removed() {
    let _l = lock();
    let parent = match TestParent::new("stale") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = parent.dir.join(format!("memsweep-{dead_pid}"));
    std::fs::create_dir_all(stale.join("0")).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let sleeper_pid = sleeper.id() as i32;
    std::fs::write(stale.join("0/cgroup.procs"), sleeper_pid.to_string()).unwrap();
    // A live runner's tree (ours) must be left alone.
    let live = parent
        .dir
        .join(format!("memsweep-{}-999", std::process::id()));
    std::fs::create_dir(&live).unwrap();

    let ex = Executor::new(cfg(false, None), &parent.layout(), &Fs::new(None)).unwrap();
    assert!(!stale.exists(), "stale tree still there");
    assert!(live.exists(), "a live runner's tree was removed");
    assert!(
        ex.accounting_note()
            .contains(&format!("removed stale memsweep-{dead_pid}")),
        "{}",
        ex.accounting_note()
    );
    assert!(poll_until(Duration::from_secs(5), || !alive(sleeper_pid)));
    let _ = sleeper.try_wait();
    drop(ex);
    std::fs::remove_dir(&live).unwrap();
}

/// A v1 job joins its slot through `tasks` (the writing thread alone, which skips the
/// thread-group lock and its RCU wait): the job is one thread then, so everything it starts
/// after exec — threads, children — is in the slot too.
#[test]
fn a_v1_job_its_threads_and_its_children_all_run_in_its_slot() {
    let _l = lock();
    let (_parent, mut ex) = match v1_executor("join") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let script = "import os, threading, time\n\
                  th = threading.Thread(target=time.sleep, args=(0.5,)); th.start()\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    time.sleep(0.5); os._exit(0)\n\
                  files = ['/proc/self/task/%s/cgroup' % t for t in os.listdir('/proc/self/task')]\n\
                  files.append('/proc/%d/cgroup' % pid)\n\
                  for f in files:\n    print([l for l in open(f) if ':memory:' in l][0].split(':')[2].strip())\n\
                  os.waitpid(pid, 0); th.join()";
    ex.spawn(spec(tmp.path(), 0, argv(&["python3", "-c", script])))
        .unwrap();
    let done = drain(&mut ex, Duration::from_secs(30));
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    let out = read(tmp.path().join("0.out"));
    let lines: Vec<&str> = out.lines().collect();
    // The main thread, the sleeping thread, the child.
    assert!(lines.len() >= 3, "{out}");
    let base = format!("/memsweep-{}", std::process::id());
    assert!(
        lines[0].contains(&base),
        "{} is no job slot:\n{out}",
        lines[0]
    );
    for l in &lines {
        assert_eq!(*l, lines[0], "not all in the job's slot:\n{out}");
    }
}

/// Regression: emptying a v1 slot a job left page cache in (`memory.force_empty`) waits ~100 ms
/// in the kernel's reclaim throttle; it ran on the runner's loop and delayed each such job's end,
/// and every admission after it, by that much. The slot is now emptied off the loop and comes
/// back to the pool empty, with its peak reset.
#[test]
fn a_slot_a_job_left_page_cache_in_is_emptied_off_the_loop() {
    let _l = lock();
    let parent = match TestParent::new("reset") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cg = cgroup::JobCgroups::setup(cgroup::Version::V1, &parent.dir, None).unwrap();
    let slot = cg.acquire().unwrap();
    // The job joins the slot and leaves 16 MiB of page cache charged to it.
    let procs = slot.dir.join("cgroup.procs");
    let file = tmp.path().join("cache");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && head -c 16777216 /dev/zero > {}",
            procs.display(),
            file.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let left = read(slot.dir.join("memory.usage_in_bytes"))
        .trim()
        .parse::<u64>()
        .unwrap();
    assert!(left > 8 * MIB, "the job left only {left} bytes charged");
    let fin = cg.finish(&slot);
    assert!(fin.peak.unwrap() > 8 * MIB);
    let dir = slot.dir.clone();
    cg.release(slot);
    // Not emptied on this thread: it is out being emptied, not in the pool.
    assert_eq!(cg.resetting(), 1);
    assert!(!cg.pooled().contains(&dir));
    // A job starting meanwhile gets another slot.
    let other = cg.acquire().unwrap();
    assert_ne!(other.dir, dir);
    assert!(
        poll_until(Duration::from_secs(10), || cg.pooled().contains(&dir)),
        "the slot never came back to the pool"
    );
    assert_eq!(cg.resetting(), 0);
    for f in ["memory.usage_in_bytes", "memory.max_usage_in_bytes"] {
        let v: u64 = read(dir.join(f)).trim().parse().unwrap();
        assert!(v <= MIB, "{f} is {v} after the reset");
    }
    cg.release(other);
    cg.teardown();
    assert!(!cg.base.exists(), "teardown left {}", cg.base.display());
}

#[test]
fn falls_back_to_proc_and_says_why() {
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let v1 = |dir: &Path| Layout {
        version: Some(CgroupVersion::V1),
        cgroup_path: None,
        dir: Some(dir.to_path_buf()),
        mount_point: None,
    };
    let ex = Executor::new(cfg(false, None), &no_layout(), &Fs::new(None)).unwrap();
    assert_eq!(ex.accounting(), Accounting::Proc);
    assert_eq!(
        ex.accounting_note(),
        "sampling /proc every 50 ms: no memory cgroup found (peaks are sampled)"
    );
    drop(ex);
    // A directory that is not a memory cgroup.
    let ex = Executor::new(cfg(false, Some(MIB)), &v1(tmp.path()), &Fs::new(None)).unwrap();
    assert_eq!(ex.accounting(), Accounting::Proc);
    assert!(
        ex.accounting_note().contains("is not a v1 memory cgroup"),
        "{}",
        ex.accounting_note()
    );
    assert!(
        ex.notes()
            .iter()
            .any(|n| n.contains("--job-mem-max is not enforced"))
    );
    drop(ex);
    // A path that cannot hold a cgroup at all (under a regular file).
    let file = tmp.path().join("plain");
    std::fs::write(&file, "0").unwrap();
    let ex = Executor::new(cfg(false, None), &v1(&file.join("x")), &Fs::new(None)).unwrap();
    assert_eq!(ex.accounting(), Accounting::Proc);
}

/// A delegated v2 cgroup `/user` (memory controller available) in a fixture root.
fn v2_fixture(root: &Path) -> (PathBuf, Layout) {
    let user = root.join("sys/fs/cgroup/user");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    std::fs::write(user.join("cgroup.subtree_control"), "").unwrap();
    std::fs::write(user.join("cgroup.procs"), "").unwrap();
    let layout = Layout {
        version: Some(CgroupVersion::V2),
        cgroup_path: Some("/user".into()),
        dir: Some(PathBuf::from("/sys/fs/cgroup/user")),
        mount_point: Some(PathBuf::from("/sys/fs/cgroup")),
    };
    (user, layout)
}

#[test]
fn v2_setup_on_a_fixture_tree() {
    let _l = lock();
    let root = tempfile::tempdir().unwrap();
    let (user, layout) = v2_fixture(root.path());
    let fs = Fs::new(Some(root.path()));
    let mut ex = Executor::new(cfg(false, Some(100 * MIB)), &layout, &fs).unwrap();
    let me = std::process::id();
    let base = user.join(format!("memsweep-{me}"));
    assert_eq!(
        ex.accounting(),
        Accounting::CgroupV2,
        "{}",
        ex.accounting_note()
    );
    assert_eq!(
        ex.accounting_note(),
        format!("per-job cgroups under {}", base.display())
    );
    // The runner left the parent for a leaf before the controller was enabled.
    assert_eq!(read(base.join("runner/cgroup.procs")), me.to_string());
    assert_eq!(read(user.join("cgroup.subtree_control")), "+memory");
    assert_eq!(read(base.join("cgroup.subtree_control")), "+memory");

    let tmp = tempfile::tempdir().unwrap();
    ex.spawn(spec(tmp.path(), 0, sh("sleep 0.3"))).unwrap();
    let job = base.join("0");
    assert_eq!(read(job.join("memory.max")), (100 * MIB).to_string());
    assert_eq!(read(job.join("memory.swap.max")), "0");
    std::fs::write(job.join("memory.peak"), "12345\n").unwrap();
    std::fs::write(job.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
    let done = drain(&mut ex, Duration::from_secs(10));
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    assert_eq!(done[&0].peak, Some(12345));
    assert_eq!(done[&0].accounting, Accounting::CgroupV2);
    // The child joined its cgroup itself ("0" = the writer) before exec.
    assert_eq!(read(job.join("cgroup.procs")), "0");
    drop(ex);
    // Teardown switched the parent's controller off again and moved the runner back.
    assert_eq!(read(user.join("cgroup.subtree_control")), "-memory");
    assert_eq!(read(user.join("cgroup.procs")), me.to_string());

    // Without the memory controller delegated: Proc mode, and why.
    let other = root.path().join("sys/fs/cgroup/other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("cgroup.controllers"), "cpu pids\n").unwrap();
    let layout = Layout {
        dir: Some(PathBuf::from("/sys/fs/cgroup/other")),
        ..layout
    };
    let ex = Executor::new(cfg(false, None), &layout, &fs).unwrap();
    assert_eq!(ex.accounting(), Accounting::Proc);
    assert!(
        ex.accounting_note()
            .contains("the memory controller is not delegated"),
        "{}",
        ex.accounting_note()
    );
    drop(ex);

    // The controller cannot be enabled (here: subtree_control is not writable): Proc mode,
    // and the runner moved back out of its leaf.
    let busy = root.path().join("sys/fs/cgroup/busy");
    std::fs::create_dir_all(busy.join("cgroup.subtree_control")).unwrap();
    std::fs::write(busy.join("cgroup.controllers"), "memory\n").unwrap();
    std::fs::write(busy.join("cgroup.procs"), "").unwrap();
    let layout = Layout {
        dir: Some(PathBuf::from("/sys/fs/cgroup/busy")),
        ..layout
    };
    let ex = Executor::new(cfg(false, None), &layout, &fs).unwrap();
    assert_eq!(ex.accounting(), Accounting::Proc);
    assert!(
        ex.accounting_note()
            .contains("cannot enable the memory controller in"),
        "{}",
        ex.accounting_note()
    );
    assert_eq!(read(busy.join("cgroup.procs")), me.to_string());
}

#[test]
fn a_gated_job_runs_only_once_the_gate_opens() {
    let _l = lock();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mark = tmp.path().join("ran");
    let touch = format!("touch {}", mark.display());
    ex.spawn_gated(spec(tmp.path(), 0, sh(&touch))).unwrap();
    ex.spawn_gated(spec(tmp.path(), 1, sh("true"))).unwrap();
    // Held before exec: forked, folder and files made, the command not run.
    let _ = ex.wait(Duration::from_millis(300));
    assert!(!mark.exists(), "a held job ran");
    assert!(
        tmp.path().join("0.out").exists(),
        "set-up happens before the gate"
    );
    ex.open_gate().unwrap();
    let done = drain(&mut ex, Duration::from_secs(10));
    assert!(mark.exists());
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    assert_eq!(done[&1].outcome, Outcome::Succeeded);

    // A gate that never opens (the runner gave up, or died): the job never runs.
    ex.spawn_gated(spec(
        tmp.path(),
        2,
        sh(&format!("touch {}.2", mark.display())),
    ))
    .unwrap();
    ex.gate = None;
    let done = drain(&mut ex, Duration::from_secs(10));
    assert!(
        matches!(&done[&2].outcome, Outcome::FailedToSpawn { error } if error.contains("stopped before")),
        "{:?}",
        done[&2]
    );
    assert!(!tmp.path().join("ran.2").exists());
}

#[test]
fn jobs_start_with_no_signal_blocked_nor_sigpipe_ignored() {
    // Signals are blocked across the fork and the runner ignores SIGPIPE (Rust does): the job
    // must see every signal unblocked and SIGPIPE at its default. (What memsweep's own parent
    // ignored stays ignored, as with any launcher.)
    let _l = lock();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for job in 0..4 {
        ex.spawn_gated(spec(
            tmp.path(),
            job,
            argv(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]),
        ))
        .unwrap();
    }
    ex.open_gate().unwrap();
    let done = drain(&mut ex, Duration::from_secs(20));
    for job in 0..4 {
        assert_eq!(done[&job].outcome, Outcome::Succeeded, "job {job}");
        let out = read(tmp.path().join(format!("{job}.out")));
        let mask = |name: &str| {
            let line = out.lines().find_map(|l| l.strip_prefix(name)).unwrap();
            u64::from_str_radix(line.trim(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "job {job}: {out}");
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_eq!(mask("SigIgn:") & sigpipe, 0, "job {job}: {out}");
    }
}

#[test]
fn a_job_raising_its_oom_score_leaves_the_runners_alone() {
    // Each job sets its own oom_score_adj to 1000 before exec. The kernel copies such a write
    // to every process that shares the writer's memory: a job started with clone(CLONE_VM)
    // (tried for speed, to avoid copying page tables) made the runner the OOM killer's first
    // choice. Jobs are now started with clone(CLONE_VM | CLONE_VFORK), exempt from the copy:
    // a job held at the gate (set up, its score raised, not yet exec'd: the first of a turn
    // on each spawner thread; the others wait behind them) and jobs that ran must both leave
    // the runner's score as it was.
    let _l = lock();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    let own = || read("/proc/self/oom_score_adj");
    let before = own();
    let tmp = tempfile::tempdir().unwrap();
    for job in 0..4 {
        ex.spawn_gated(spec(tmp.path(), job, sh("cat /proc/self/oom_score_adj")))
            .unwrap();
    }
    assert!(
        poll_until(Duration::from_secs(5), || tmp.path().join("0.out").exists()),
        "the first held job sets itself up"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        own(),
        before,
        "a held job changed the runner's oom_score_adj"
    );
    ex.open_gate().unwrap();
    let done = drain(&mut ex, Duration::from_secs(20));
    for job in 0..4 {
        assert_eq!(done[&job].outcome, Outcome::Succeeded, "job {job}");
        assert_eq!(read(tmp.path().join(format!("{job}.out"))), "1000\n");
    }
    assert_eq!(own(), before, "a job changed the runner's oom_score_adj");
}

#[test]
fn held_jobs_run_once_the_journal_sync_succeeds_and_never_after_one_fails() {
    let _l = lock();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let touch = |job: usize| sh(&format!("touch {}/ran.{job}", tmp.path().display()));
    let journal = std::sync::Arc::new(std::fs::File::create(tmp.path().join("journal")).unwrap());
    ex.spawn_gated(spec(tmp.path(), 0, touch(0))).unwrap();
    ex.open_gate_when_durable(Some(journal.clone())).unwrap();
    let done = drain(&mut ex, Duration::from_secs(10));
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    assert!(tmp.path().join("ran.0").exists());
    assert_eq!(ex.durability_error(true), None);

    // fdatasync on a pipe fails (EINVAL): a stand-in for a failing disk.
    let (_r, w) = sys::pipe().unwrap();
    ex.spawn_gated(spec(tmp.path(), 1, touch(1))).unwrap();
    ex.open_gate_when_durable(Some(std::sync::Arc::new(std::fs::File::from(w))))
        .unwrap();
    // After a failed sync nothing is known durable: a later turn's jobs do not run either.
    ex.spawn_gated(spec(tmp.path(), 2, touch(2))).unwrap();
    ex.open_gate_when_durable(Some(journal)).unwrap();
    let done = drain(&mut ex, Duration::from_secs(10));
    for job in [1, 2] {
        assert!(
            matches!(&done[&job].outcome, Outcome::FailedToSpawn { error } if error.contains("stopped before")),
            "job {job}: {:?}",
            done[&job]
        );
        assert!(
            !tmp.path().join(format!("ran.{job}")).exists(),
            "job {job} ran"
        );
    }
    assert!(ex.durability_error(true).is_some());
}

/// The descriptors of the child of ours whose stdout is `out` once it waits at its gate (a
/// pipe read), or None while there is none.
fn held_child_fds(out: &Path) -> Option<Vec<i32>> {
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = e.path();
        let stat = std::fs::read_to_string(pid.join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1));
        if ppid != Some(me.as_str())
            || std::fs::read_link(pid.join("fd/1")).ok().as_deref() != Some(out)
            || !std::fs::read_to_string(pid.join("wchan"))
                .unwrap_or_default()
                .contains("pipe_read")
        {
            continue;
        }
        let mut fds: Vec<i32> = std::fs::read_dir(pid.join("fd"))
            .ok()?
            .flatten()
            .filter_map(|f| f.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort_unstable();
        return Some(fds);
    }
    None
}

#[test]
fn a_held_job_keeps_no_descriptor_but_its_gate_and_stdio() {
    // A job is cloned by a spawner thread whenever that thread gets to it, and copies every
    // descriptor the runner has open then: another turn's gate's write end among them. Two held
    // jobs each holding the other's gate open never saw end of file when a failed sync dropped
    // both gates (`held_jobs_run_once…` hung in CI-like runs, the spawner threads with it).
    let _l = lock();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // A descriptor of the runner's, not close-on-exec-relevant here: the child has not exec'd.
    let (_r, _w) = sys::pipe().unwrap();
    ex.spawn_gated(spec(tmp.path(), 0, sh("true"))).unwrap();
    let out = tmp.path().join("0.out");
    let t = Instant::now();
    let fds = loop {
        if let Some(fds) = held_child_fds(&out) {
            break fds;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no held job found");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(fds, vec![0, 1, 2, 3], "the held job's descriptors");
    ex.open_gate().unwrap();
    let done = drain(&mut ex, Duration::from_secs(10));
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
}

/// An executor in cgroup v1 mode under a fresh test cgroup (kept alive by the first value).
fn v1_executor(tag: &str) -> Result<(TestParent, Executor), String> {
    let parent = TestParent::new(tag)?;
    let ex = Executor::new(cfg(false, None), &parent.layout(), &Fs::new(None))
        .map_err(|e| e.to_string())?;
    Ok((parent, ex))
}

#[test]
fn a_job_that_ends_before_its_pid_is_reported_still_ends() {
    // Jobs are started by a thread that reports each pid; the runner reaps with waitpid(-1) and
    // may reap a job before that report. The exit must be kept, claimed once the report
    // arrives, and the report must wake the runner (cgroup mode: nothing else would, as no
    // sampling runs between events).
    let _l = lock();
    let (_parent, mut ex) = match v1_executor("early") {
        Ok(x) => x,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    spawner::REPORT_DELAY_MS.store(300, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    ex.spawn(spec(tmp.path(), 0, argv(&["true"]))).unwrap();
    let mut evs = Vec::new();
    while evs.is_empty() && t.elapsed() < Duration::from_secs(20) {
        evs = ex.wait(Duration::from_secs(20));
    }
    spawner::REPORT_DELAY_MS.store(0, std::sync::atomic::Ordering::SeqCst);
    // Not a speed check: a lost wake-up would sleep through the whole 20 s wait.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the report did not wake the runner"
    );
    match evs.as_slice() {
        [ExecEvent::Exited(e)] => {
            assert_eq!((e.job, &e.outcome), (0, &Outcome::Succeeded), "{e:?}");
            assert!(e.cpu.is_some(), "{e:?}");
        }
        other => panic!("expected job 0's exit, got {other:?}"),
    }
    assert_eq!(ex.running(), 0);
}

#[test]
fn failures_before_exec_are_reported_per_job() {
    // The child sets itself up (folder, output files, cgroup) after the clone, on the spawner
    // thread's watch: each failure ends that job as FailedToSpawn with its reason, and the jobs
    // after it still run.
    let _l = lock();
    let (_parent, mut ex) = match v1_executor("failures") {
        Ok(x) => x,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut folder = spec(tmp.path(), 0, sh("true"));
    folder.job_dir = Some((file.join("0"), "true\n".into()));
    let mut stdout = spec(tmp.path(), 1, sh("true"));
    stdout.stdout = tmp.path().join("missing").join("1.out");
    let bad = tmp.path().join("not-a-program");
    std::fs::write(&bad, [0u8, 1, 2, 3]).unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bad_s = bad.display().to_string();
    ex.spawn_gated(folder).unwrap();
    ex.spawn_gated(stdout).unwrap();
    ex.spawn_gated(spec(tmp.path(), 2, argv(&[&bad_s])))
        .unwrap();
    ex.spawn_gated(spec(tmp.path(), 3, sh("echo fine")))
        .unwrap();
    ex.open_gate().unwrap();
    let done = drain(&mut ex, Duration::from_secs(20));
    let error = |job: usize| match &done[&job].outcome {
        Outcome::FailedToSpawn { error } => error.clone(),
        o => panic!("job {job}: {o:?}"),
    };
    assert!(
        error(0).starts_with("cannot create the job's folder and command file"),
        "{}",
        error(0)
    );
    assert!(
        error(1).starts_with("cannot open the job's stdout file"),
        "{}",
        error(1)
    );
    assert!(
        error(2).contains("not-a-program") && error(2).contains("format"),
        "{}",
        error(2)
    );
    assert_eq!(done[&3].outcome, Outcome::Succeeded);
    assert_eq!(read(tmp.path().join("3.out")), "fine\n");
    for job in 0..3 {
        assert!(done[&job].peak.is_none(), "job {job} never ran");
    }
}

#[test]
fn a_cgroup_the_child_cannot_join_is_its_jobs_failure() {
    // The child joins its memory cgroup itself, after the clone: a cgroup it cannot join (here
    // a path that does not exist) is reported for that job, and the child never execs.
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mark = tmp.path().join("ran");
    let mut s = spawner::Spawner::start().unwrap();
    let job = spec(tmp.path(), 0, sh(&format!("touch {}", mark.display())));
    s.send(spawner::Request {
        exe: spawn::program(&job).unwrap(),
        cgroup_procs: Some(c"/nonexistent/memsweep-cgroup/cgroup.procs".into()),
        spec: job,
        gate: None,
    })
    .unwrap();
    let (reports, lost) = s.wait_all();
    assert_eq!(lost, 0);
    let started = match reports.into_iter().next().map(|r| r.result) {
        Some(Ok(started)) => started,
        _ => panic!("the child should have been started"),
    };
    sys::wait_blocking(started.pid);
    let error = started.error.unwrap_or_default();
    assert!(
        error.starts_with("cannot move the job into its memory cgroup"),
        "{error}"
    );
    assert!(!mark.exists(), "the job ran outside its cgroup");
}

// ---------------------------------------------------------------------------------------------
// Kernel memory events

/// Wait up to `limit` for a memory event; also returns whether job 0 was still running then.
fn memory_event_within(ex: &mut Executor, limit: Duration) -> Option<(Duration, bool)> {
    let t = Instant::now();
    while t.elapsed() < limit {
        let evs = ex.wait(Duration::from_millis(20));
        if evs.iter().any(|e| matches!(e, ExecEvent::Memory)) {
            return Some((t.elapsed(), ex.pid(0).is_some()));
        }
    }
    None
}

#[test]
fn v1_usage_thresholds_wake_the_runner_when_a_job_bursts() {
    let _l = lock();
    let parent = match TestParent::new("events") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let fs = Fs::new(None);
    let mut ex = Executor::new(cfg(false, None), &parent.layout(), &fs).unwrap();
    assert_eq!(ex.events_active(), ["usage thresholds"]);
    let tmp = tempfile::tempdir().unwrap();
    // Idle at a few MiB for 0.3 s, then 150 MiB at once, held for 3 s.
    let burst = "import time\ntime.sleep(0.3)\nb=b'x'*(150<<20)\ntime.sleep(3)";
    ex.spawn(spec(tmp.path(), 0, argv(&["python3", "-c", burst])))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // A sample while it idles: 64 MiB of room, so the kernel wakes us 32 MiB above each usage.
    let usage: u64 = read(parent.dir.join("memory.usage_in_bytes"))
        .trim()
        .parse()
        .unwrap();
    ex.usage();
    ex.rearm(64 * MIB, usage);
    let container_at = ex.events.container.as_ref().map(|t| t.at);
    assert_eq!(container_at, Some(usage + 32 * MIB));
    let job = &ex.jobs[0];
    let job_at = job.threshold.as_ref().map(|t| t.at).expect("job armed");
    assert_eq!(job_at, job.current + 32 * MIB);
    // No sample is taken from here on: only the kernel can wake the wait, during the burst.
    let (after, running) = memory_event_within(&mut ex, Duration::from_secs(3))
        .expect("no memory event while the job grew by 150 MiB");
    assert!(
        running,
        "the event came only when the job ended ({after:?})"
    );
    // Both thresholds fired (the job's own and the container's, which counts it too).
    let _ = memory_event_within(&mut ex, Duration::from_millis(200));
    assert!(ex.events.container.as_ref().is_some_and(|t| t.fired));
    assert!(ex.jobs[0].threshold.as_ref().is_some_and(|t| t.fired));
    // Re-armed above the usage once the burst is over, it stays quiet while the job holds.
    let mut last = 0;
    assert!(
        poll_until(Duration::from_secs(5), || {
            let now = ex.usage()[0].current_bytes;
            let flat = now.abs_diff(last) < MIB && now > 100 * MIB;
            last = now;
            std::thread::sleep(Duration::from_millis(50));
            flat
        }),
        "the burst never ended"
    );
    let usage: u64 = read(parent.dir.join("memory.usage_in_bytes"))
        .trim()
        .parse()
        .unwrap();
    ex.rearm(64 * MIB, usage);
    assert!(!ex.jobs[0].threshold.as_ref().unwrap().fired);
    assert_eq!(
        memory_event_within(&mut ex, Duration::from_millis(500)),
        None
    );
    ex.signal(0, libc::SIGKILL).unwrap();
    drain(&mut ex, Duration::from_secs(10));
}

#[test]
fn v2_memory_high_and_memory_events_watches_on_a_fixture_tree() {
    let _l = lock();
    let root = tempfile::tempdir().unwrap();
    let (user, layout) = v2_fixture(root.path());
    std::fs::write(user.join("memory.events"), "high 0\noom_kill 0\n").unwrap();
    std::fs::write(user.join("memory.pressure"), "").unwrap();
    let fs = Fs::new(Some(root.path()));
    let mut ex = Executor::new(cfg(false, None), &layout, &fs).unwrap();
    assert_eq!(
        ex.events_active(),
        ["memory.events watches", "a PSI trigger"]
    );
    // The trigger went to the container's own pressure file: 100 ms stalled within 1 s.
    assert_eq!(read(user.join("memory.pressure")), "some 100000 1000000\0");
    let tmp = tempfile::tempdir().unwrap();
    ex.spawn(spec(tmp.path(), 0, sh("sleep 2"))).unwrap();
    let job = user.join(format!("memsweep-{}/0", std::process::id()));
    std::fs::write(job.join("memory.current"), (100 * MIB).to_string()).unwrap();
    std::fs::write(job.join("memory.events"), "high 0\n").unwrap();
    std::thread::sleep(EVENTS_MIN_AGE);
    ex.usage();
    ex.rearm(300 * MIB, 0);
    // Its usage plus the whole room: past that, the kernel throttles it until we decide.
    assert_eq!(read(job.join("memory.high")), (400 * MIB).to_string());
    // Less room, moved by more than a quarter step: lowered.
    ex.rearm(100 * MIB, 0);
    assert_eq!(read(job.join("memory.high")), (200 * MIB).to_string());
    // The kernel writes memory.events on a high event: the wait wakes.
    assert_eq!(
        memory_event_within(&mut ex, Duration::from_millis(100)),
        None
    );
    std::fs::write(job.join("memory.events"), "high 1\n").unwrap();
    let (_, running) = memory_event_within(&mut ex, Duration::from_secs(1))
        .expect("a memory.events change woke no wait");
    assert!(running);
    // So does the container's own memory.events.
    std::fs::write(user.join("memory.events"), "high 1\noom_kill 0\n").unwrap();
    assert!(memory_event_within(&mut ex, Duration::from_secs(1)).is_some());
    ex.signal(0, libc::SIGKILL).unwrap();
    drain(&mut ex, Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------------
// /proc parsing (pure)

#[test]
fn parses_stat_lines_with_odd_command_names() {
    let line = "4242 (we ird) (x) R 17 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 \
                123 45678 789 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
    let p = sample::parse_stat(line).unwrap();
    assert_eq!((p.pid, p.ppid, p.pgid, p.rss_pages), (4242, 17, 4242, 789));
    assert_eq!(p.start_ticks, 123);
    assert!(sample::parse_stat("garbage").is_none());
}

#[test]
fn trees_follow_parent_links_across_process_groups() {
    let e = sample::ProcEntry::fake;
    let procs = [
        e(1, 0, 1, 5),
        e(10, 1, 10, 1),
        e(11, 10, 10, 2),
        e(12, 11, 12, 4), // setsid'd grandchild: other group, same tree
        e(20, 1, 20, 100),
    ];
    let t = sample::forest(&procs, &[vec![10], vec![20], vec![99]], 4096);
    assert_eq!(t[0].rss_bytes, 7 * 4096);
    assert_eq!(t[0].pgids, vec![10, 12]);
    assert_eq!(t[1].rss_bytes, 100 * 4096);
    assert_eq!(t[2].rss_bytes, 0, "a vanished job has an empty tree");
}

#[test]
fn runner_pids_parse_from_cgroup_names() {
    assert_eq!(cgroup::runner_pid("memsweep-123"), Some(123));
    assert_eq!(cgroup::runner_pid("memsweep-123-4"), Some(123));
    assert_eq!(cgroup::runner_pid("memsweep-test-x"), None);
    assert_eq!(cgroup::runner_pid("other-123"), None);
}

// ---------------------------------------------------------------------------------------------
// Overhead (prints numbers; times are not asserted on a shared machine)

fn run_trivial(ex: &mut Executor, tmp: &Path, n: usize, par: usize) -> Duration {
    let t = Instant::now();
    let (mut next, mut done) = (0, 0);
    while done < n {
        while ex.running() < par && next < n {
            let mut s = spec(tmp, next, argv(&["true"]));
            s.stdout = tmp.join("out");
            s.stderr = tmp.join("out");
            ex.spawn(s).unwrap();
            next += 1;
        }
        for ev in ex.wait(Duration::from_secs(5)) {
            if let ExecEvent::Exited(JobExit { outcome, .. }) = ev {
                assert_eq!(outcome, Outcome::Succeeded);
                done += 1;
            }
        }
    }
    t.elapsed()
}

/// A measurement, not a test: it prints per-job overhead against xargs and asserts nothing
/// about it (timings belong in bench/, see BENCHMARKS.md). Run it with
/// `cargo test --lib overhead_of_500 -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement that prints timings; run with --ignored --nocapture"]
fn overhead_of_500_trivial_jobs() {
    let _l = lock();
    let n = 500;
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let st = std::process::Command::new("sh")
        .args(["-c", "seq 500 | xargs -P 2 -n 1 true"])
        .status()
        .unwrap();
    assert!(st.success());
    let xargs = t.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    let t = Instant::now();
    let mut procs = 0;
    for _ in 0..20 {
        procs = sample::scan().len();
    }
    eprintln!(
        "one /proc sample of {procs} processes: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
    eprintln!("xargs -P 2: {:.3} ms/job", ms(xargs));
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    let d = run_trivial(&mut ex, tmp.path(), n, 2);
    eprintln!(
        "proc mode: {:.3} ms/job ({:.2}x xargs)",
        ms(d),
        d.as_secs_f64() / xargs.as_secs_f64()
    );
    drop(ex);
    match TestParent::new("overhead") {
        Ok(parent) => {
            let mut ex = Executor::new(cfg(false, None), &parent.layout(), &Fs::new(None)).unwrap();
            let d = run_trivial(&mut ex, tmp.path(), n, 2);
            eprintln!(
                "cgroup v1 mode: {:.3} ms/job ({:.2}x xargs)",
                ms(d),
                d.as_secs_f64() / xargs.as_secs_f64()
            );
        }
        Err(why) => eprintln!("SKIPPED cgroup overhead: {why}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Daemons in Proc mode (issue 10, defect 1)

/// A job whose child double-forks a daemon (fork, setsid, fork; the middle process exits at
/// once) holding `mib` MiB; the daemon writes its pid to `<dir>/daemon` once it holds it.
fn daemon_job(dir: &Path, mib: u64) -> JobCommand {
    let script = dir.join("daemon.py");
    std::fs::write(
        &script,
        format!(
            "import os, time\n\
             if os.fork() == 0:\n\
             \x20   os.setsid()\n\
             \x20   if os.fork() == 0:\n\
             \x20       b = b'x' * ({mib} << 20)\n\
             \x20       open('{d}/daemon.tmp', 'w').write(str(os.getpid()))\n\
             \x20       os.rename('{d}/daemon.tmp', '{d}/daemon')\n\
             \x20       time.sleep(300)\n\
             \x20   os._exit(0)\n\
             os.wait()\n",
            d = dir.display()
        ),
    )
    .unwrap();
    // The job outlives the daemon's parent a while, so samples see the daemon.
    sh(&format!(
        "python3 {}; for i in $(seq 50); do [ -e {d}/daemon ] && break; sleep 0.1; done; sleep 1",
        script.display(),
        d = dir.display()
    ))
}

#[test]
fn proc_mode_counts_a_daemon_and_ends_it_with_its_job() {
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    ex.spawn(spec(tmp.path(), 0, daemon_job(tmp.path(), 150)))
        .unwrap();
    let done = drain(&mut ex, Duration::from_secs(60));
    let daemon: i32 = read(tmp.path().join("daemon")).parse().expect("daemon pid");
    let gone = poll_until(Duration::from_secs(1), || !alive(daemon));
    if !gone {
        let _ = sys::kill(daemon, libc::SIGKILL);
    }
    assert_eq!(done[&0].outcome, Outcome::Succeeded);
    assert!(
        gone,
        "the daemon {daemon} outlived its job by more than 1 s"
    );
    let peak = done[&0].peak.unwrap_or(0);
    assert!(
        peak >= 150 * MIB,
        "the job's peak {peak} does not count its 150 MiB daemon"
    );
}

#[test]
fn proc_mode_drop_ends_daemons() {
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Executor::new(cfg(true, None), &no_layout(), &Fs::new(None)).unwrap();
    ex.spawn(spec(tmp.path(), 0, daemon_job(tmp.path(), 1)))
        .unwrap();
    assert!(poll_until(Duration::from_secs(20), || tmp
        .path()
        .join("daemon")
        .exists()));
    let daemon: i32 = read(tmp.path().join("daemon")).parse().unwrap();
    drop(ex);
    let gone = poll_until(Duration::from_secs(1), || !alive(daemon));
    if !gone {
        let _ = sys::kill(daemon, libc::SIGKILL);
    }
    assert!(gone, "the daemon {daemon} outlived the dropped executor");
}

/// The runner is SIGKILLed right after its job's daemon appeared, before any sample could
/// register the daemon's new session with the guard: the guard finds it by its marker.
#[test]
fn the_guard_ends_a_daemon_no_sample_has_seen() {
    if std::env::var(ROLE).as_deref() == Ok("runner") {
        let dir = PathBuf::from(std::env::var("MEMSWEEP_EXEC_TEST_DIR").unwrap());
        let mut c = cfg(true, None);
        c.sample_interval = Duration::from_secs(3600);
        let mut ex = Executor::new(c, &no_layout(), &Fs::new(None)).unwrap();
        ex.spawn(spec(&dir, 0, daemon_job(&dir, 1))).unwrap();
        ex.last_sample = Some(Instant::now());
        loop {
            ex.wait(Duration::from_secs(3600));
        }
    }
    let _l = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut runner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "exec::tests::the_guard_ends_a_daemon_no_sample_has_seen",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "runner")
        .env("MEMSWEEP_EXEC_TEST_DIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let appeared = poll_until(Duration::from_secs(20), || {
        tmp.path().join("daemon").exists()
    });
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert!(appeared, "the job did not start its daemon");
    let daemon: i32 = read(tmp.path().join("daemon")).parse().unwrap();
    let gone = poll_until(Duration::from_secs(1), || !alive(daemon));
    if !gone {
        let _ = sys::kill(daemon, libc::SIGKILL);
    }
    assert!(
        gone,
        "the daemon {daemon} outlived the SIGKILLed runner by 1 s"
    );
}

/// More job cgroups than the guard once had room for (1024), then SIGKILL: every job dies and
/// the guard removes every job cgroup and the runner's `memsweep-<pid>` base (issue 10, defect 4).
#[test]
fn the_guard_covers_every_job_cgroup_and_removes_the_base() {
    const JOBS: usize = 1100;
    if std::env::var(ROLE).as_deref() == Ok("runner") {
        let dir = PathBuf::from(std::env::var("MEMSWEEP_EXEC_TEST_DIR").unwrap());
        let layout = Layout {
            version: Some(CgroupVersion::V1),
            cgroup_path: None,
            dir: Some(PathBuf::from(
                std::env::var("MEMSWEEP_EXEC_TEST_CGDIR").unwrap(),
            )),
            mount_point: None,
        };
        let mut ex = Executor::new(cfg(false, None), &layout, &Fs::new(None)).unwrap();
        let mut pids = String::new();
        for job in 0..JOBS {
            ex.spawn(spec(&dir, job, argv(&["sleep", "300"]))).unwrap();
            pids.push_str(&format!("{}\n", ex.pid(job).unwrap()));
        }
        std::fs::write(dir.join("pids.tmp"), pids).unwrap();
        std::fs::rename(dir.join("pids.tmp"), dir.join("pids")).unwrap();
        loop {
            ex.wait(Duration::from_secs(3600));
        }
    }
    let _l = lock();
    let parent = match TestParent::new("many") {
        Ok(p) => p,
        Err(why) => skip!("{why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut runner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "exec::tests::the_guard_covers_every_job_cgroup_and_removes_the_base",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "runner")
        .env("MEMSWEEP_EXEC_TEST_DIR", tmp.path())
        .env("MEMSWEEP_EXEC_TEST_CGDIR", &parent.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = poll_until(Duration::from_secs(120), || {
        tmp.path().join("pids").exists()
    });
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert!(started, "the runner did not start {JOBS} jobs");
    let pids: Vec<i32> = read(tmp.path().join("pids"))
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(pids.len(), JOBS);
    let left = || {
        std::fs::read_dir(&parent.dir)
            .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    let clean = poll_until(Duration::from_secs(5), || {
        left() == 0 && pids.iter().all(|&p| !alive(p))
    });
    let survivors = pids.iter().filter(|&&p| alive(p)).count();
    for &p in &pids {
        let _ = sys::kill(p, libc::SIGKILL);
    }
    let base = std::fs::read_dir(&parent.dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir());
    let jobs_left = base
        .as_ref()
        .and_then(|b| std::fs::read_dir(b).ok())
        .map_or(0, |rd| rd.flatten().filter(|e| e.path().is_dir()).count());
    assert!(
        clean,
        "after SIGKILL: {survivors} job processes alive, base {base:?} with {jobs_left} job cgroups left"
    );
}

/// `sys::kill` on rustix: existence checks for a process and a group, and the two inputs it
/// refuses instead of passing on — pid 0 (which would signal memsweep's own group) and a
/// signal number that is not a named signal.
#[test]
fn kill_checks_and_refuses() {
    let me = std::process::id() as i32;
    assert!(sys::kill(me, 0).is_ok());
    assert!(sys::kill(-sys::own_pgid(), 0).is_ok());
    assert!(sys::pid_exists(me));
    let zero = sys::kill(0, 0).unwrap_err();
    assert_eq!(zero.raw_os_error(), Some(libc::ESRCH));
    let unnamed = sys::kill(me, libc::SIGRTMAX()).unwrap_err();
    assert_eq!(unnamed.raw_os_error(), Some(libc::EINVAL));
    // A reaped child's pid is gone (pids are not reused this fast).
    let _guard = lock();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(!sys::pid_exists(pid));
    assert_eq!(
        sys::kill(-pid, libc::SIGKILL).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );
}
