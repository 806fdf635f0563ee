"""The launcher's work: one ``memsweep run`` per ``launch()`` call.

For each job the parent writes a cloudpickle payload (task function, Hydra context, config and
Hydra's singleton state, as Hydra's joblib, submitit and RQ launchers send to their workers) and
one line of a jobs file running ``python -m hydra_plugins.hydra_memsweep_launcher._worker IN OUT``.
memsweep decides how many run at once from the container's memory; each worker does what Hydra's
own launchers do in a worker and writes the pickled ``JobReturn`` to OUT. A job that leaves no OUT
(OOM kill, crash, requeued too often) becomes a FAILED ``JobReturn`` saying what memsweep saw.

Files, all under Hydra's sweep dir (``hydra.sweep.dir``), next to Hydra's own ``N/`` folders:

    .memsweep/io/N.in.pkl, N.out.pkl   payload and result of Hydra job N
    .memsweep/jobs-F.jsonl             the jobs file of the batch whose first job is F
    .memsweep/run-F/                   memsweep's sweep dir for that batch: journal.jsonl,
                                       summary.json, and I/stdout, I/stderr for its I-th job
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import cloudpickle
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

import memsweep

from .memsweep_launcher import MemsweepLauncher

log = logging.getLogger(__name__)

WORKER_MODULE = "hydra_plugins.hydra_memsweep_launcher._worker"

# Launcher field -> `memsweep run` flag, for building the command and for naming the field when
# memsweep rejects a value.
SIZE_FLAGS = {
    "mem_per_job": "--mem-per-job",
    "reserve": "--reserve",
    "limit": "--limit",
    "job_mem_max": "--job-mem-max",
}
ON_PRESSURE = ("pause", "requeue", "none")
KNOWN_OPTIONS = set(SIZE_FLAGS) | {
    "n_jobs",
    "on_pressure",
    "retries",
    "history",
    "cgroups",
    "binary",
}
STDERR_TAIL_LINES = 20


def execute_job(
    idx: int,
    overrides: Sequence[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: Dict[Any, Any],
) -> JobReturn:
    """Run Hydra job ``idx`` in this (worker) process, as Hydra's own launchers do in theirs."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def human(n: Optional[float]) -> str:
    """Bytes as memsweep prints them: binary units, e.g. ``312 MiB``, ``1.5 GiB``."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def run_flags(options: Dict[str, Any]) -> List[str]:
    """The ``memsweep run`` flags for the launcher's fields. Raises ValueError naming the field."""
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown hydra.launcher field(s) {', '.join(unknown)} for hydra/launcher=memsweep; "
            f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
        )
    flags: List[str] = []
    n_jobs = options.get("n_jobs")
    if n_jobs is not None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 0:
            raise ValueError(
                f"hydra.launcher.n_jobs={n_jobs!r}: give a number of jobs >= 0 "
                "(0 = memory is the only cap), or null for the container's CPUs"
            )
        flags += ["-j", str(n_jobs)]
    for field, flag in SIZE_FLAGS.items():
        value = options.get(field)
        if value is None:
            continue
        text = str(value).strip()
        # A bare number is bytes to memsweep; `mem_per_job=4` meaning 4 GiB would silently plan
        # for 4 bytes, so demand a unit for anything that small.
        if re.fullmatch(r"\d+(\.\d*)?", text) and float(text) < 2**20:
            raise ValueError(
                f"hydra.launcher.{field}={text} means {text} bytes; give a unit, e.g. {text}G"
            )
        flags += [flag, text]
    on_pressure = options.get("on_pressure")
    if on_pressure is not None:
        if on_pressure not in ON_PRESSURE:
            raise ValueError(
                f"hydra.launcher.on_pressure={on_pressure!r}: use one of {', '.join(ON_PRESSURE)}"
            )
        flags += ["--on-pressure", on_pressure]
    retries = options.get("retries")
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"hydra.launcher.retries={retries!r}: give a number >= 0")
        flags += ["--retries", str(retries)]
    if options.get("history") is False:
        flags.append("--no-history")
    if options.get("cgroups") is False:
        flags.append("--no-cgroups")
    return flags


def job_params(overrides: Sequence[str]) -> Dict[str, str]:
    """A job's overrides as memsweep parameters (shown in its table and summary.json)."""
    params: Dict[str, str] = {}
    for o in overrides:
        key, sep, value = o.partition("=")
        params[key] = value if sep else ""
    return params


def unique_dir(parent: Path, stem: str) -> str:
    """``stem``, or ``stem.2``, ``stem.3``... if a sweep dir is reused and it already exists."""
    name, n = stem, 1
    while (parent / name).exists() or (parent / f"{name}.jsonl").exists():
        n += 1
        name = f"{stem}.{n}"
    return name


def python_path() -> str:
    # Workers must import what the payload references by module name (the task function's
    # module, test modules, the app's packages) from the parent's exact sys.path.
    seen: List[str] = []
    for p in sys.path:
        a = os.path.abspath(p) if p else os.getcwd()
        if a not in seen:
            seen.append(a)
    return os.pathsep.join(seen)


def parent_death_signal() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` that has the kernel send memsweep SIGTERM when this process dies.

    memsweep runs in its own session (see :func:`run_memsweep`), so if Hydra is killed with
    SIGKILL nothing else would tell it; on SIGTERM it stops its jobs. prctl is looked up here,
    before fork, so that only the call itself runs between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_pdeathsig() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return set_pdeathsig


class Progress:
    """Turns memsweep's ``--json`` events into one log line per finished job (and a few more)."""

    def __init__(self, initial_job_idx: int, overrides: Sequence[Sequence[str]], total: int):
        self.first = initial_job_idx
        self.overrides = overrides
        self.total = total
        self.done = 0
        self.ends: Dict[int, Dict[str, Any]] = {}
        self.end: Optional[Dict[str, Any]] = None

    def label(self, job: Any) -> str:
        if isinstance(job, int) and 0 <= job < len(self.overrides):
            return f"#{self.first + job} : {' '.join(filter_overrides(self.overrides[job]))}"
        return f"job {job}"

    def __call__(self, line: str) -> None:
        try:
            ev = json.loads(line)
        except ValueError:
            log.info(line)
            return
        if not isinstance(ev, dict):
            log.info(line)
            return
        kind = ev.get("event")
        job = ev.get("job")
        if kind == "sweep_start":
            cap = ev.get("parallel_cap")
            log.info(
                "memsweep: budget %s of a %s limit (reserve %s), at most %s at once, "
                "per-job accounting: %s",
                human(ev.get("budget_bytes")),
                human(ev.get("limit_bytes")),
                human(ev.get("reserve_bytes")),
                cap if cap else "as memory allows",
                ev.get("accounting"),
            )
        elif kind == "job_end":
            self.ends[job] = ev
            self.done += 1
            status = ev.get("status")
            detail = [f"{ev.get('wall_s') or 0:.1f} s", f"peak {human(ev.get('peak_bytes'))}"]
            if ev.get("exit_code") not in (None, 0):
                detail.append(f"exit code {ev['exit_code']}")
            if ev.get("signal") is not None:
                detail.append(f"signal {ev['signal']}")
            if (ev.get("attempt") or 1) > 1:
                detail.append(f"attempt {ev['attempt']}")
            level = logging.INFO if status == "succeeded" else logging.WARNING
            log.log(
                level,
                "[%d/%d] %s %s (%s)",
                self.done,
                self.total,
                self.label(job),
                status,
                ", ".join(detail),
            )
        elif kind == "job_requeue":
            log.info(
                "memsweep requeued %s (%s, using %s); it will run again",
                self.label(job),
                ev.get("reason"),
                human(ev.get("usage_bytes")),
            )
        elif kind == "job_pause":
            log.debug("memsweep paused %s (%s)", self.label(job), ev.get("reason"))
        elif kind == "job_resume":
            log.debug("memsweep resumed %s", self.label(job))
        elif kind == "sweep_end":
            self.end = ev
        # job_start and sample events are in memsweep's journal; the log stays one line a job.


def run_memsweep(
    cmd: List[str], env: Dict[str, str], on_line: Callable[[str], None]
) -> Tuple[int, List[str]]:
    """Run memsweep, feeding each stdout line to ``on_line``; returns (exit code, stderr lines).

    memsweep runs in its own session so that Ctrl-C reaches it exactly once (forwarded from
    here): a second SIGINT would make it kill the jobs without their grace period.
    """
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
        bufsize=1,
        start_new_session=True,
        preexec_fn=parent_death_signal(),
    )
    stderr: Deque[str] = deque(maxlen=200)

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            stderr.append(line)
            # memsweep's own warnings and errors reach the user; its closing table and advice
            # (written for a shell user, about worker commands) only with hydra.verbose, since
            # the launcher logs one line per job and a summary line of its own.
            if line.startswith("memsweep:"):
                log.warning(line)
            elif line.strip():
                log.debug(line)

    reader = threading.Thread(target=drain_stderr, name="memsweep-stderr", daemon=True)
    reader.start()
    interrupts = 0
    while True:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.strip()
                if line:
                    on_line(line)
            proc.wait()
            break
        except KeyboardInterrupt:
            # First Ctrl-C: memsweep stops the jobs gracefully; second: at once.
            interrupts += 1
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            if interrupts >= 3:
                proc.kill()
                proc.wait()
                break
    reader.join(timeout=5)
    if interrupts:
        log.warning(
            "interrupted: memsweep stopped the running jobs (exit code %s); what finished is in "
            "its summary",
            proc.returncode,
        )
        raise KeyboardInterrupt
    return proc.returncode, list(stderr)


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> List[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


STATUS_TEXT = {
    "failed": "the worker exited before writing a result",
    "killed": "it was killed by a signal",
    "oom": "it was killed for running out of memory",
    "requeued-out": "memsweep stopped it under memory pressure and it ran out of retries",
    "skipped": "it never ran (the sweep was interrupted or memsweep stopped early)",
    "succeeded": "it exited 0 but left no result file",
}


def explain_missing(
    num: int,
    overrides: Sequence[str],
    record: Optional[Dict[str, Any]],
    job_dir: Path,
    options: Dict[str, Any],
    memsweep_code: int,
) -> str:
    """The error of a job with no result: what memsweep saw, and the end of its stderr."""
    label = f"job #{num} ({' '.join(overrides) or 'no overrides'}) produced no result"
    if record is None:
        msg = (
            f"{label}: memsweep (exit code {memsweep_code}) reported no outcome for it; "
            f"see memsweep's journal in {job_dir.parent}"
        )
    else:
        status = record.get("status") or "unknown"
        parts = [f"memsweep status '{status}': {STATUS_TEXT.get(status, 'no result')}"]
        if record.get("exit_code") is not None:
            parts.append(f"exit code {record['exit_code']}")
        sig = record.get("signal")
        if sig is not None:
            try:
                parts.append(f"signal {sig} ({signal.Signals(sig).name})")
            except ValueError:
                parts.append(f"signal {sig}")
        if record.get("attempts") is not None:
            parts.append(f"{record['attempts']} attempt(s)")
        if record.get("wall_s") is not None:
            parts.append(f"{record['wall_s']:.1f} s")
        if record.get("peak_bytes") is not None:
            src = record.get("peak_source")
            parts.append(f"peak {human(record['peak_bytes'])}" + (f" ({src})" if src else ""))
        msg = f"{label}: " + ", ".join(parts)
        if status == "oom":
            cap = options.get("job_mem_max")
            msg += (
                f". Its cap is hydra.launcher.job_mem_max={cap}: raise it if the job needs more"
                if cap
                else ". Give it more memory: lower hydra.launcher.n_jobs or set "
                "hydra.launcher.mem_per_job to its real peak"
            )
        elif status == "requeued-out":
            msg += (
                ". Raise hydra.launcher.retries, or set hydra.launcher.mem_per_job to the job's "
                "real peak so that fewer run at once"
            )
    lines = tail(job_dir / "stderr")
    if lines:
        msg += f"\nLast lines of its stderr ({job_dir / 'stderr'}):\n  " + "\n  ".join(lines)
    return msg


def failed_return(
    launcher: MemsweepLauncher, overrides: Sequence[str], error: BaseException
) -> JobReturn:
    assert launcher.config is not None
    ret = JobReturn(
        overrides=list(overrides),
        status=JobStatus.FAILED,
        task_name=str(launcher.config.hydra.job.name),
    )
    ret.return_value = error
    return ret


def load_result(path: Path) -> JobReturn:
    with open(path, "rb") as f:
        ret = cloudpickle.load(f)
    if not isinstance(ret, JobReturn):
        raise TypeError(f"{path} holds a {type(ret).__name__}, not a JobReturn")
    return ret


def write_payload(
    path: Path,
    launcher: MemsweepLauncher,
    num: int,
    overrides: Sequence[str],
    singleton_state: Dict[Any, Any],
) -> None:
    """Write the worker's input for Hydra job ``num`` (atomically: the file is whole or absent).

    The task function is pickled by value when it lives in ``__main__`` (a script's
    ``@hydra.main`` function) and by reference otherwise, so workers import its module.
    """
    payload = dict(
        idx=num,
        overrides=list(overrides),
        hydra_context=launcher.hydra_context,
        config=launcher.config,
        task_function=launcher.task_function,
        singleton_state=singleton_state,
    )
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        cloudpickle.dump(payload, f)
    os.replace(tmp, path)


def launch(
    launcher: MemsweepLauncher,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> Sequence[JobReturn]:
    setup_globals()
    assert launcher.config is not None
    assert launcher.task_function is not None
    assert launcher.hydra_context is not None
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)

    options = launcher.options
    flags = run_flags(options)  # bad options fail before anything is written
    if not job_overrides:
        return []
    binary = memsweep.find_binary(options.get("binary"))

    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    state_dir = sweep_dir / ".memsweep"
    io_dir = state_dir / "io"
    io_dir.mkdir(parents=True, exist_ok=True)
    batch = unique_dir(state_dir, f"run-{initial_job_idx}")
    run_dir = state_dir / batch
    jobs_file = state_dir / f"jobs-{batch[len('run-') :]}.jsonl"

    log.info(
        "memsweep is launching %d jobs (%s)",
        len(job_overrides),
        " ".join(flags) or "memsweep's defaults",
    )
    log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    for idx, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))

    task_name = str(config.hydra.job.name)
    config_name = config.hydra.job.get("config_name") or ""
    sweep_name = f"hydra:{task_name}" + (f":{config_name}" if config_name else "")
    singleton_state = Singleton.get_state()
    outs: List[Path] = []
    with open(jobs_file, "w", encoding="utf-8") as jf:
        for idx, overrides in enumerate(job_overrides):
            num = initial_job_idx + idx
            in_path, out_path = io_dir / f"{num}.in.pkl", io_dir / f"{num}.out.pkl"
            # A result left by an earlier run in a reused sweep dir must not pass for this one's.
            out_path.unlink(missing_ok=True)
            write_payload(in_path, launcher, num, overrides, singleton_state)
            outs.append(out_path)
            line = {
                "cmd": [
                    sys.executable,
                    "-m",
                    WORKER_MODULE,
                    str(in_path.resolve()),
                    str(out_path.resolve()),
                ],
                "key": f"{sweep_name} {' '.join(overrides)}".rstrip(),
                "params": {"hydra.job.num": str(num), **job_params(overrides)},
            }
            jf.write(json.dumps(line) + "\n")

    cmd = [
        binary,
        "run",
        "--jobs-file",
        str(jobs_file),
        "--json",
        "--out",
        str(run_dir),
        "--name",
        sweep_name,
        *flags,
    ]
    log.debug("running %s", " ".join(cmd))
    env = dict(os.environ)
    env["PYTHONPATH"] = python_path()
    progress = Progress(initial_job_idx, job_overrides, len(job_overrides))
    code, stderr = run_memsweep(cmd, env, progress)

    summary: Dict[int, Dict[str, Any]] = {}
    try:
        with open(run_dir / "summary.json", encoding="utf-8") as f:
            data = json.load(f)
        summary = {int(rec["id"]): rec for rec in data.get("jobs", [])}
        log.info(
            "memsweep: %s of %d jobs succeeded in %.1f s; peak working set %s of a %s budget; "
            "%s requeues, %s pauses; journal and summary in %s",
            data.get("succeeded"),
            len(job_overrides),
            data.get("makespan_s") or 0.0,
            human(data.get("peak_working_set_bytes")),
            human(data.get("budget_bytes")),
            data.get("requeues"),
            data.get("pauses"),
            run_dir,
        )
        if data.get("oom_kills"):
            log.warning(
                "the kernel's OOM killer fired %s time(s) during this sweep (memsweep's "
                "summary: %s)",
                data["oom_kills"],
                run_dir / "summary.json",
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # memsweep died before writing it: fall back on the events it streamed
    if code not in (0, 1) and not summary and not progress.ends:
        # memsweep refused to start (exit 2: bad option or jobs file): nothing ran.
        text = "\n".join(stderr[-STDERR_TAIL_LINES:]) or "(no stderr)"
        fields = ", ".join(f"{k} is {v}" for k, v in SIZE_FLAGS.items())
        raise memsweep.MemsweepError(
            f"memsweep run exited with code {code} before running any job:\n{text}\n"
            f"(command: {' '.join(cmd)}; the flags come from hydra.launcher: n_jobs is -j, "
            f"{fields})"
        )

    results: List[JobReturn] = []
    for idx, overrides in enumerate(job_overrides):
        num = initial_job_idx + idx
        out = outs[idx]
        if out.exists():
            try:
                results.append(load_result(out))
                continue
            except Exception as e:  # unreadable result: say so instead of crashing the sweep
                err: BaseException = memsweep.MemsweepJobError(
                    f"job #{num} ({' '.join(overrides)}): could not load its result {out}: "
                    f"{type(e).__name__}: {e}"
                )
        else:
            record = summary.get(idx) or progress.ends.get(idx)
            err = memsweep.MemsweepJobError(
                explain_missing(num, overrides, record, run_dir / str(idx), options, code)
            )
        results.append(failed_return(launcher, overrides, err))
    return results
