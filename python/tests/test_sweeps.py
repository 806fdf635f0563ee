"""Multiruns of the example Hydra app (examples/hydra_app) through hydra/launcher=memsweep, as a
user runs them: in a memory cgroup that Hydra's joblib launcher overruns, with a failing job, with
an OOM-killed job, with bad options, and the command the docs show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import yaml
from conftest import EXAMPLE_APP, MiB, run_app

JOBS = 8
JOB_MIB = 250


def results(sweep: Path, n: int) -> Dict[int, dict]:
    found = {}
    for i in range(n):
        f = sweep / str(i) / "result.json"
        if f.exists():
            found[i] = json.loads(f.read_text())
    return found


def summary(sweep: Path, batch: str = "run-0") -> dict:
    return json.loads((sweep / ".memsweep" / batch / "summary.json").read_text())


def out(proc) -> str:
    return f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def sweep_args(sweep: Path, launcher: List[str]) -> List[str]:
    seeds = ",".join(str(i) for i in range(JOBS))
    return [
        "--multirun",
        *launcher,
        f"seed={seeds}",
        f"mem_mib={JOB_MIB}",
        "seconds=1.5",
        f"hydra.sweep.dir={sweep}",
    ]


def test_memsweep_finishes_in_a_cgroup_where_joblib_gets_oom_killed(
    make_cgroup, tmp_path: Path
) -> None:
    # 8 jobs of 250 MiB (plus ~40 MiB of Python each) in 1 GiB: all at once cannot fit.
    limit = 1 << 30

    # Hydra's joblib launcher with one worker per job, the team's setup that lost its container.
    cg_joblib = make_cgroup(limit)
    joblib_dir = tmp_path / "joblib"
    try:
        proc = run_app(
            sweep_args(joblib_dir, ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={JOBS}"]),
            wrap=cg_joblib.wrap,
            timeout=90,
        )
        joblib_code = proc.returncode
    except Exception as e:  # TimeoutExpired: a hung pool after its workers were killed
        joblib_code = f"did not finish: {e}"
    joblib_ooms = cg_joblib.oom_kills()
    joblib_done = len(results(joblib_dir, JOBS))
    assert joblib_ooms > 0, (
        f"joblib was not OOM-killed, so this test proves nothing ({joblib_code})"
    )
    assert joblib_code != 0 and joblib_done < JOBS
    cg_joblib.destroy()

    # The same sweep, same cgroup size, same n_jobs, through memsweep.
    cg = make_cgroup(limit)
    sweep = tmp_path / "memsweep"
    proc = run_app(
        sweep_args(sweep, ["hydra/launcher=memsweep", f"hydra.launcher.n_jobs={JOBS}"]),
        wrap=cg.wrap,
        timeout=150,
        # A first run: no history of this app's peaks from other tests of the session.
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, out(proc)
    assert cg.oom_kills() == 0, "the kernel's OOM killer fired inside the memsweep sweep"
    done = results(sweep, JOBS)
    assert sorted(done) == list(range(JOBS)), out(proc)
    assert sorted(r["seed"] for r in done.values()) == list(range(JOBS))
    # The jobs really ran inside the capped cgroup (memsweep's per-job cgroups nest below it).
    for r in done.values():
        assert r["memory_cgroup"].startswith("/" + cg.path.name), r
    assert cg.max_usage() > 2 * JOB_MIB * MiB, "jobs never ran side by side"
    assert cg.max_usage() <= limit
    s = summary(sweep)
    assert s["oom_kills"] == 0
    assert [j["status"] for j in s["jobs"]] == ["succeeded"] * JOBS
    assert all(j["peak_bytes"] >= JOB_MIB * MiB for j in s["jobs"]), s["jobs"]
    # Hydra's own layout, and one progress line per job in the log.
    assert (sweep / "multirun.yaml").exists()
    for i in range(JOBS):
        assert (sweep / str(i) / ".hydra" / "overrides.yaml").exists()
        assert (sweep / str(i) / "my_app.log").exists()
    logged = proc.stdout + proc.stderr
    for k in range(1, JOBS + 1):
        assert f"[{k}/{JOBS}] #" in logged, out(proc)


def test_a_failing_job_fails_the_multirun_after_the_others_finish(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_app(
        [
            "--multirun",
            "hydra/launcher=memsweep",
            "fail=false,true,false",
            "mem_mib=10",
            "seconds=0.1",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert proc.returncode == 1, out(proc)
    # Hydra's own report: the user's exception, plus where it was raised in the worker.
    assert "Error executing job with overrides: ['fail=True', 'mem_mib=10', 'seconds=0.1']" in (
        proc.stderr
    )
    assert "ValueError: seed=0: failing on purpose (fail=true)" in proc.stderr
    assert "Traceback in the memsweep worker" in proc.stderr
    assert sorted(results(sweep, 3)) == [0, 2]
    s = summary(sweep)
    assert [(j["status"], j["exit_code"]) for j in s["jobs"]] == [
        ("succeeded", 0),
        ("failed", 1),
        ("succeeded", 0),
    ]
    assert "#1 : fail=True mem_mib=10 seconds=0.1 failed" in proc.stdout + proc.stderr


def test_an_oom_killed_job_is_reported_with_what_memsweep_saw(make_cgroup, tmp_path: Path) -> None:
    # job_mem_max puts each job in its own capped memory cgroup: the 400 MiB job is killed alone.
    cg = make_cgroup(2 << 30)
    sweep = tmp_path / "sweep"
    proc = run_app(
        [
            "--multirun",
            "hydra/launcher=memsweep",
            "hydra.launcher.job_mem_max=150M",
            "mem_mib=10,400",
            "seconds=0.5",
            f"hydra.sweep.dir={sweep}",
        ],
        wrap=cg.wrap,
    )
    assert proc.returncode == 1, out(proc)
    assert sorted(results(sweep, 2)) == [0]
    s = summary(sweep)
    assert [j["status"] for j in s["jobs"]] == ["succeeded", "oom"], s["jobs"]
    err = proc.stderr
    assert "Error executing job with overrides: ['mem_mib=400', 'seconds=0.5']" in err, out(proc)
    assert "memsweep.MemsweepJobError: job #1 (mem_mib=400 seconds=0.5) produced no result" in err
    assert "memsweep status 'oom'" in err and "running out of memory" in err
    assert "hydra.launcher.job_mem_max=150M" in err
    assert "peak" in err


def test_bad_launcher_options_fail_before_any_job_runs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    base = ["--multirun", "hydra/launcher=memsweep", "seed=1,2", f"hydra.sweep.dir={sweep}"]

    proc = run_app([*base, "hydra.launcher.binary=/nonexistent/memsweep"])
    assert proc.returncode == 1
    assert "binary='/nonexistent/memsweep' is not an executable file" in proc.stderr, out(proc)

    proc = run_app([*base, "hydra.launcher.mem_per_job=2"])
    assert proc.returncode == 1
    assert "hydra.launcher.mem_per_job=2 means 2 bytes; give a unit, e.g. 2G" in proc.stderr
    # One clear message, not a traceback.
    assert "Traceback" not in proc.stderr, out(proc)

    # memsweep itself judges sizes and durations; its message names the flag, ours the field.
    for field, flag in (("reserve", "--reserve"), ("timeout", "--timeout")):
        proc = run_app([*base, f"hydra.launcher.{field}=lots"])
        assert proc.returncode == 1
        assert "memsweep refused to run (exit code 2)" in proc.stderr, out(proc)
        assert f"hydra.launcher.{field} is {flag}" in proc.stderr, out(proc)
        assert "Traceback" not in proc.stderr, out(proc)
    assert not (sweep / "0").exists() and not (sweep / "1").exists()


def test_the_docs_example_runs_with_hydras_layout(tmp_path: Path) -> None:
    # docs/hydra.md: python -m my_app --config-name=math-c3 --multirun hydra/launcher=memsweep
    # trajectory.eval.limit=5 (here with a known sweep dir and shorter jobs).
    sweep = tmp_path / "sweep"
    proc = run_app(
        [
            "--config-name=math-c3",
            "--multirun",
            "hydra/launcher=memsweep",
            "trajectory.eval.limit=5",
            "seconds=0.2",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=EXAMPLE_APP,
    )
    assert proc.returncode == 0, out(proc)
    done = results(sweep, 4)
    assert sorted(done) == [0, 1, 2, 3]
    assert all(r["mem_mib"] == 300 for r in done.values())
    multirun = yaml.safe_load((sweep / "multirun.yaml").read_text())
    assert multirun["hydra"]["launcher"]["_target_"].endswith("MemsweepLauncher")
    for i in range(4):
        job = sweep / str(i)
        hydra_yaml = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_yaml["job"]["num"] == i
        assert hydra_yaml["job"]["id"] == f"my_app_{i}"
        assert hydra_yaml["mode"] == "MULTIRUN"
        assert hydra_yaml["runtime"]["choices"]["hydra/launcher"] == "memsweep"
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"seed={i}" in overrides and "trajectory.eval.limit=5" in overrides
        assert (job / "my_app.log").read_text().strip()
    s = summary(sweep)
    assert [j["status"] for j in s["jobs"]] == ["succeeded"] * 4
    jobs_file = (sweep / ".memsweep" / "jobs-0.jsonl").read_text().splitlines()
    first = json.loads(jobs_file[0])
    assert first["cmd"][1:3] == ["-m", "hydra_plugins.hydra_memsweep_launcher._worker"]
    assert first["params"]["seed"] == "0"
    assert first["key"].startswith("hydra:my_app:math-c3 ")


def test_batches_run_as_one_memsweep_run_each(tmp_path: Path) -> None:
    # A sweeper may call launch() several times; job numbers continue across batches.
    sweep = tmp_path / "sweep"
    proc = run_app(
        [
            "--multirun",
            "hydra/launcher=memsweep",
            "hydra.sweeper.max_batch_size=2",
            "seed=0,1,2",
            "mem_mib=10",
            "seconds=0.1",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert proc.returncode == 0, out(proc)
    assert sorted(results(sweep, 3)) == [0, 1, 2]
    assert len(summary(sweep, "run-0")["jobs"]) == 2
    assert [j["params"] for j in summary(sweep, "run-2")["jobs"]] == [
        [["hydra.job.num", "2"], ["seed", "2"], ["mem_mib", "10"], ["seconds", "0.1"]]
    ]
    assert "[1/1] #2 : seed=2" in proc.stdout + proc.stderr


def _processes_mentioning(text: str) -> List[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def start_long_sweep(sweep: Path) -> subprocess.Popen:
    """A 4-job sweep of 60 s jobs, returned once its first job is running."""
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "my_app",
            "--multirun",
            "hydra/launcher=memsweep",
            "seed=0,1,2,3",
            "mem_mib=10",
            "seconds=60",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=EXAMPLE_APP,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not _processes_mentioning(f"{sweep}/.memsweep/io/0.in.pkl"):
        if time.monotonic() > deadline or app.poll() is not None:
            app.kill()
            raise AssertionError(f"no job started within 30 s:\n{app.communicate()[0]}")
        time.sleep(0.1)
    return app


def wait_gone(text: str, seconds: float) -> List[str]:
    deadline = time.monotonic() + seconds
    while _processes_mentioning(text) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _processes_mentioning(text)


def test_ctrl_c_stops_the_jobs_and_leaves_no_process_behind(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    app = start_long_sweep(sweep)
    try:
        app.send_signal(signal.SIGINT)
        output, _ = app.communicate(timeout=30)  # memsweep's grace is 10 s; jobs stop at once
    finally:
        if app.poll() is None:
            app.kill()
    assert app.returncode != 0
    assert "interrupted: memsweep stopped the running jobs" in output, output
    assert "KeyboardInterrupt" in output
    assert wait_gone(str(sweep), 2) == []
    assert results(sweep, 4) == {}


def test_killing_hydra_stops_memsweep_and_its_jobs(tmp_path: Path) -> None:
    # kill -9 of the Hydra process: nothing can clean up in it, so the kernel tells memsweep
    # (parent-death signal), which stops the jobs instead of running them unobserved.
    sweep = tmp_path / "sweep"
    app = start_long_sweep(sweep)
    app.kill()
    app.communicate(timeout=30)
    assert wait_gone(str(sweep), 15) == []
