"""The launcher's parts that need no memsweep binary: options -> flags, the worker process on a
real payload, the error text of a job with no result, and the progress log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, List

import cloudpickle
import pytest
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, RunMode

from hydra_plugins.hydra_memsweep_launcher import _core
from hydra_plugins.hydra_memsweep_launcher.memsweep_launcher import MemsweepLauncher

MiB = 1 << 20


# --- options -> memsweep run flags ---------------------------------------------------------


def test_every_field_becomes_its_memsweep_run_flag() -> None:
    flags = _core.run_flags(
        dict(
            n_jobs=8,
            mem_per_job="3G",
            reserve="10%",
            limit="100G",
            job_mem_max="5GiB",
            on_pressure="requeue",
            retries=1,
            history=False,
            cgroups=False,
            timeout="2h",
            fail_fast=True,
            binary=None,
            backend="slurm",
            slurm_args=["--partition=debug", "--time=10"],
        )
    )
    assert flags == [
        "-j", "8",
        "--mem-per-job", "3G",
        "--reserve", "10%",
        "--limit", "100G",
        "--job-mem-max", "5GiB",
        "--on-pressure", "requeue",
        "--retries", "1",
        "--no-history",
        "--no-cgroups",
        "--timeout", "2h",
        "--fail-fast",
        "--backend", "slurm",
        "--slurm-arg=--partition=debug",
        "--slurm-arg=--time=10",
    ]  # fmt: skip


def test_defaults_leave_the_choice_to_memsweep() -> None:
    from hydra_plugins.hydra_memsweep_launcher.config import MemsweepLauncherConf

    # Every default is null or off: memsweep's own defaults apply, stated in one place.
    fields = {k: v for k, v in vars(MemsweepLauncherConf()).items() if k != "_target_"}
    assert fields, "the launcher has fields"
    assert _core.run_flags(fields) == []


@pytest.mark.parametrize(
    "options, names",
    [
        ({"n_jobs": -1}, "hydra.launcher.n_jobs=-1"),
        ({"mem_per_job": "4"}, "hydra.launcher.mem_per_job=4 means 4 bytes; give a unit, e.g. 4G"),
        ({"job_mem_max": "512"}, "hydra.launcher.job_mem_max=512 means 512 bytes"),
        ({"on_pressure": "panic"}, "hydra.launcher.on_pressure='panic': use one of pause"),
        ({"retries": -2}, "hydra.launcher.retries=-2"),
        ({"n_job": 2}, "unknown hydra.launcher field(s) n_job"),
        ({"slurm_args": "--time=5"}, "hydra.launcher.slurm_args='--time=5': give a list"),
    ],
)
def test_bad_options_name_the_field_to_fix(options: dict, names: str) -> None:
    from hydra.errors import CompactHydraException

    with pytest.raises(ValueError) as e:
        _core.run_flags(options)
    assert names in str(e.value)
    # Hydra prints a CompactHydraException as its message alone, without a traceback.
    assert isinstance(e.value, CompactHydraException)


def test_job_params_and_human_sizes() -> None:
    assert _core.job_params(["x=1", "db=mysql", "+extra=a=b", "~gone"]) == {
        "x": "1",
        "db": "mysql",
        "+extra": "a=b",
        "~gone": "",
    }
    assert _core.human(300 * MiB) == "300 MiB"
    assert _core.human(int(1.5 * 2**30)) == "1.5 GiB"
    assert _core.human(512) == "512 B"
    assert _core.human(None) == "unknown"


def test_a_reused_sweep_dir_gets_a_fresh_memsweep_dir(tmp_path: Path) -> None:
    assert _core.unique_dir(tmp_path, "run-0") == "run-0"
    (tmp_path / "run-0").mkdir()
    assert _core.unique_dir(tmp_path, "run-0") == "run-0.2"
    (tmp_path / "run-0.2").mkdir()
    assert _core.unique_dir(tmp_path, "run-0") == "run-0.3"


# --- what a job with no result reports -------------------------------------------------------


def test_an_oom_killed_job_says_what_memsweep_saw(tmp_path: Path) -> None:
    job_dir = tmp_path / "1"
    job_dir.mkdir()
    (job_dir / "stderr").write_text("".join(f"line {i}\n" for i in range(40)))
    record = dict(
        id=1,
        status="oom",
        exit_code=None,
        signal=9,
        attempts=1,
        wall_s=2.25,
        peak_bytes=200 * MiB,
        peak_source="cgroup-v1",
    )
    msg = _core.explain_missing(7, ["x=2"], record, job_dir, {"job_mem_max": "200M"}, 1)
    assert msg.startswith("job #7 (x=2) produced no result: memsweep status 'oom'")
    assert "killed for running out of memory" in msg
    assert "signal 9 (SIGKILL)" in msg
    assert "peak 200 MiB (cgroup-v1)" in msg
    assert "hydra.launcher.job_mem_max=200M" in msg
    # the end of its stderr, not all of it
    assert "line 39" in msg and "line 20" in msg and "line 19\n" not in msg
    assert str(job_dir / "stderr") in msg


def test_requeued_out_and_unreported_jobs_explain_the_way_out(tmp_path: Path) -> None:
    record = dict(id=0, status="requeued-out", exit_code=None, signal=15, attempts=4)
    msg = _core.explain_missing(0, ["x=1"], record, tmp_path / "0", {}, 1)
    assert "ran out of retries" in msg and "4 attempt(s)" in msg
    assert "hydra.launcher.retries" in msg
    msg = _core.explain_missing(3, [], None, tmp_path / "3", {}, 130)
    assert "job #3 (no overrides)" in msg and "exit code 130" in msg


# --- progress: one log line per finished job -------------------------------------------------


def test_progress_logs_one_line_per_finished_job(caplog: pytest.LogCaptureFixture) -> None:
    progress = _core.Progress(5, [["x=1"], ["x=2", "hydra.verbose=true"]], 2)
    with caplog.at_level(logging.INFO, logger=_core.log.name):
        progress('{"event": "job_start", "t": 1, "job": 0, "attempt": 1, "command": "c"}')
        progress('{"event": "sample", "t": 1, "working_set_bytes": 1, "running": []}')
        progress(
            '{"event": "job_end", "t": 2, "job": 1, "attempt": 2, "status": "oom", '
            '"exit_code": null, "signal": 9, "wall_s": 1.25, "peak_bytes": 314572800, '
            '"peak_source": "cgroup-v1"}'
        )
        progress(
            '{"event": "job_end", "t": 3, "job": 0, "attempt": 1, "status": "succeeded", '
            '"exit_code": 0, "signal": null, "wall_s": 2.0, "peak_bytes": 104857600, '
            '"peak_source": "proc"}'
        )
        progress('{"event": "job_end", "job": 9, "status": "skipped", "wall_s": null}')
        progress("not json: passed through")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "[1/2] #6 : x=2 oom (1.2 s, peak 300 MiB, signal 9, attempt 2)",
        "[2/2] #5 : x=1 succeeded (2.0 s, peak 100 MiB)",
        "[3/2] job 9 skipped (0.0 s, peak unknown)",
        "not json: passed through",
    ]
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.INFO, logging.WARNING, logging.INFO]
    assert set(progress.ends) == {0, 1, 9}


# --- the worker, on a payload written as the launcher writes it ------------------------------


@pytest.fixture
def launcher(tmp_path: Path, hydra_restore_singletons: Any) -> Callable[[Callable], Any]:
    """A MemsweepLauncher set up by a real Hydra context (as Hydra's sweeper does)."""

    def make(task_function: Callable) -> MemsweepLauncher:
        from hydra import initialize

        GlobalHydra.instance().clear()
        initialize(version_base="1.3", config_path=None)
        gh = GlobalHydra.instance()
        assert gh.hydra is not None
        loader = gh.hydra.config_loader
        cfg = loader.load_configuration(
            config_name=None,
            overrides=[f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.job.name=unit"],
            run_mode=RunMode.MULTIRUN,
        )
        ctx = HydraContext(config_loader=loader, callbacks=Callbacks(cfg))
        la = MemsweepLauncher()
        la.setup(hydra_context=ctx, task_function=task_function, config=cfg)
        return la

    return make


def run_worker(tmp_path: Path, la: MemsweepLauncher, overrides: List[str]):
    inp, out = tmp_path / "0.in.pkl", tmp_path / "0.out.pkl"
    _core.write_payload(inp, la, 0, overrides, Singleton.get_state())
    env = dict(os.environ, PYTHONPATH=_core.python_path())
    proc = subprocess.run(
        [sys.executable, "-m", _core.WORKER_MODULE, str(inp), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ret = None
    if out.exists():
        with open(out, "rb") as f:
            ret = cloudpickle.load(f)
        assert isinstance(ret, JobReturn)
    assert not list(tmp_path.glob("*.tmp")), "the worker left a temporary file"
    return proc, ret


def test_worker_runs_the_job_in_hydras_layout(tmp_path: Path, launcher) -> None:
    la = launcher(lambda cfg: cfg.x * 2)
    proc, ret = run_worker(tmp_path, la, ["+x=21"])
    assert proc.returncode == 0, proc.stderr
    assert ret.status == JobStatus.COMPLETED
    assert ret.return_value == 42
    assert ret.overrides == ["+x=21"]
    assert ret.hydra_cfg.hydra.job.num == 0
    assert ret.hydra_cfg.hydra.job.id == "unit_0"
    out_dir = tmp_path / "sweep" / "0"
    assert Path(ret.hydra_cfg.hydra.runtime.output_dir) == out_dir
    assert (out_dir / ".hydra" / "overrides.yaml").read_text() == "- +x=21\n"
    assert (out_dir / "unit.log").exists()


def test_worker_returns_the_tasks_exception_with_its_traceback(tmp_path: Path, launcher) -> None:
    def task(cfg: Any) -> None:
        raise ValueError(f"x={cfg.x} is not allowed")

    proc, ret = run_worker(tmp_path, launcher(task), ["+x=99"])
    assert proc.returncode == 1
    assert ret.status == JobStatus.FAILED
    with pytest.raises(ValueError, match="x=99 is not allowed") as e:
        _ = ret.return_value
    notes = "".join(getattr(e.value, "__notes__", []))
    assert "Traceback in the memsweep worker" in notes and "in task" in notes


def test_worker_reports_a_return_value_that_cannot_be_pickled(tmp_path: Path, launcher) -> None:
    proc, ret = run_worker(tmp_path, launcher(lambda cfg: threading.Lock()), [])
    assert proc.returncode == 1
    assert ret.status == JobStatus.FAILED
    with pytest.raises(RuntimeError, match="return value could not be pickled"):
        _ = ret.return_value


def test_worker_without_a_payload_exits_2_with_no_result(tmp_path: Path) -> None:
    out = tmp_path / "o.pkl"
    for args in ([str(tmp_path / "missing.pkl"), str(out)], ["only-one"]):
        proc = subprocess.run(
            [sys.executable, "-m", _core.WORKER_MODULE, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2
        assert "FileNotFoundError" in proc.stderr or "usage:" in proc.stderr
        assert not out.exists()
