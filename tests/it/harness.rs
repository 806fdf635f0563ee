//! The test harness: run the built binary fluently, temp dirs, and real memory cgroups that
//! skip (printing why) where cgroups are not writable — or fail when MEMSWEEP_REQUIRE_CGROUPS=1 (CI).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_memsweep"))
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Every stdout line parsed as JSON (for `--json` event streams).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        self
    }
}

/// `memsweep` with arguments, built up fluently.
pub struct Ms {
    cmd: Command,
    stdin: Option<String>,
    timeout: Duration,
}

pub fn ms<I, S>(args: I) -> Ms
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin());
    cmd.args(args);
    cmd.env_remove("MEMSWEEP_ROOT");
    Ms {
        cmd,
        stdin: None,
        timeout: Duration::from_secs(120),
    }
}

impl Ms {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(a);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub fn current_dir(mut self, d: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(d);
        self
    }
    pub fn stdin(mut self, s: &str) -> Self {
        self.stdin = Some(s.to_string());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Run inside a real memory cgroup.
    pub fn in_cgroup(self, cg: &TestCgroup) -> Ms {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(cg.procs_file())
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = self.cmd.get_current_dir() {
            cmd.current_dir(d);
        }
        Ms { cmd, ..self }
    }
    /// The underlying command (for tests that need to signal the runner).
    pub fn command(self) -> Command {
        self.cmd
    }

    pub fn run(mut self) -> Output {
        use std::io::Write;
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn memsweep");
        if let Some(input) = self.stdin.take() {
            let mut si = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = si.write_all(input.as_bytes());
            });
        }
        let deadline = Instant::now() + self.timeout;
        let pid = child.id();
        let watchdog = std::thread::spawn(move || {
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return;
                }
            }
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        });
        let out = child.wait_with_output().expect("wait memsweep");
        drop(watchdog);
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Output {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Poll `f` until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("memsweep-test-")
        .tempdir()
        .unwrap()
}

/// Skip a test with a printed reason (never silently): `skip!("why")`.
/// Under MEMSWEEP_REQUIRE_CGROUPS=1 (CI on a machine with writable cgroups) a skip is a failure.
#[macro_export]
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

/// A real memory cgroup named for the test (`cgroup!("name", limit)`), or skip the test
/// (printing why).
#[macro_export]
macro_rules! cgroup {
    ($name:expr, $limit:expr) => {
        match $crate::harness::TestCgroup::new(&format!("engine-{}", $name), $limit) {
            Ok(cg) => cg,
            Err(why) => $crate::skip!("{why}"),
        }
    };
}

/// A real memory cgroup with a limit (v1 at /sys/fs/cgroup/memory, or v2 with the memory
/// controller), removed (its processes killed) on drop.
pub struct TestCgroup {
    dir: PathBuf,
    v2: bool,
}

impl TestCgroup {
    /// Err(reason) where no writable memory cgroup hierarchy exists.
    pub fn new(name: &str, limit_bytes: u64) -> Result<TestCgroup, String> {
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (base, v2) =
            if v1.join("memory.limit_in_bytes").exists() || v1.join("cgroup.procs").exists() {
                (v1.to_path_buf(), false)
            } else {
                let unified = Path::new("/sys/fs/cgroup");
                let ctrls =
                    std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
                if !ctrls.split_whitespace().any(|c| c == "memory") {
                    return Err(
                        "no memory cgroup controller (v1 /sys/fs/cgroup/memory or v2 with memory)"
                            .into(),
                    );
                }
                (unified.to_path_buf(), true)
            };
        let dir = base.join(format!(
            "memsweep-test-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ (rand_u32() as u128)
        ));
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cannot create {} ({e}): cgroups not writable here",
                dir.display()
            )
        })?;
        let cg = TestCgroup { dir, v2 };
        let (file, value) = if v2 {
            ("memory.max", limit_bytes.to_string())
        } else {
            ("memory.limit_in_bytes", limit_bytes.to_string())
        };
        std::fs::write(cg.dir.join(file), &value).map_err(|e| format!("cannot set {file}: {e}"))?;
        if !v2 {
            // No swap here may exist; if it does, cap memory+swap too so the limit is real.
            let _ = std::fs::write(cg.dir.join("memory.memsw.limit_in_bytes"), &value);
        } else {
            let _ = std::fs::write(cg.dir.join("memory.swap.max"), "0");
        }
        Ok(cg)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.dir.join(f)).unwrap_or_default()
    }

    /// OOM kills the kernel made in this cgroup (and below).
    pub fn oom_kills(&self) -> u64 {
        let text = if self.v2 {
            self.read("memory.events")
        } else {
            self.read("memory.oom_control")
        };
        text.lines()
            .find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0)
    }

    pub fn peak_bytes(&self) -> u64 {
        let f = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        self.read(f).trim().parse().unwrap_or(0)
    }

    /// Pids in this cgroup and all below.
    pub fn pids(&self) -> Vec<u32> {
        let mut out = vec![];
        collect_pids(&self.dir, &mut out);
        out
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<u32>) {
    if let Ok(t) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(t.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    t ^ std::process::id().rotate_left(16)
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SIGKILL whatever is left (a failed test must not leave memory hogs behind).
                let _ = Command::new("kill").arg("-9").arg(p.to_string()).status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        remove_tree(&self.dir);
    }
}

/// Pids of processes whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<u32> {
    let mut out = vec![];
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(marker) {
            out.push(pid);
        }
    }
    out
}

/// `kill -SIG PID`, asserting it was delivered.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}
