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
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals

import memsweep

from ._job import execute_job
from .events import Progress
from .flags import (
    FIELD_FLAGS,
    KNOWN_OPTIONS,
    ON_PRESSURE,
    SIZE_FLAGS,
    LauncherConfigError,
    human,
    job_params,
    run_flags,
)
from .memsweep_launcher import MemsweepLauncher
from .process import parent_death_signal, python_path, run_memsweep
from .results import (
    STATUS_TEXT,
    STDERR_TAIL_LINES,
    explain_missing,
    failed_return,
    load_result,
    tail,
)

__all__ = [
    "FIELD_FLAGS",
    "KNOWN_OPTIONS",
    "ON_PRESSURE",
    "SIZE_FLAGS",
    "STATUS_TEXT",
    "STDERR_TAIL_LINES",
    "WORKER_MODULE",
    "LauncherConfigError",
    "Progress",
    "execute_job",
    "explain_missing",
    "failed_return",
    "human",
    "job_params",
    "launch",
    "load_result",
    "parent_death_signal",
    "python_path",
    "run_flags",
    "run_memsweep",
    "tail",
    "unique_dir",
    "write_payload",
]

log = logging.getLogger(__name__)

WORKER_MODULE = "hydra_plugins.hydra_memsweep_launcher._worker"


def unique_dir(parent: Path, stem: str) -> str:
    """``stem``, or ``stem.2``, ``stem.3``... if a sweep dir is reused and it already exists."""
    name, n = stem, 1
    while (parent / name).exists() or (parent / f"{name}.jsonl").exists():
        n += 1
        name = f"{stem}.{n}"
    return name


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
        # memsweep refused to start (exit 2: bad option or jobs file): nothing ran. Its own
        # error names the flag; say which launcher field that is, in one message.
        errors = [
            line[len("memsweep: error: ") :]
            for line in stderr
            if line.startswith("memsweep: error: ")
        ]
        text = "; ".join(errors) or "\n".join(stderr[-STDERR_TAIL_LINES:]) or "(no stderr)"
        named = [
            f"hydra.launcher.{field} is {flag}"
            for field, flag in FIELD_FLAGS.items()
            if flag in text
        ]
        log.debug("memsweep run exited with code %s: %s", code, " ".join(cmd))
        raise LauncherConfigError(
            f"hydra/launcher=memsweep: memsweep refused to run (exit code {code}): {text}"
            + (f" ({'; '.join(named)})" if named else "")
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
