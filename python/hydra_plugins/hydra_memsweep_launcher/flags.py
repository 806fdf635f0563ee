"""The launcher's fields as ``memsweep run`` flags, and the job parameters memsweep shows.

A field memsweep can check is passed through and checked there (one validation path for the
command line, sweep.toml and Hydra); only what would be silently misread is refused here.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

from hydra.errors import CompactHydraException

import memsweep


class LauncherConfigError(CompactHydraException, memsweep.MemsweepError, ValueError):
    """A bad ``hydra.launcher`` field, or options memsweep refused (its exit code 2): Hydra
    prints the message alone, without a traceback."""


# Launcher field -> `memsweep run` flag, for building the command and for naming the field when
# memsweep rejects a value.
SIZE_FLAGS = {
    "mem_per_job": "--mem-per-job",
    "reserve": "--reserve",
    "limit": "--limit",
    "job_mem_max": "--job-mem-max",
}
ON_PRESSURE = ("pause", "requeue", "none")
# Every field that becomes a flag, to name the field when memsweep rejects the flag's value.
FIELD_FLAGS = {
    "n_jobs": "-j",
    **SIZE_FLAGS,
    "on_pressure": "--on-pressure",
    "retries": "--retries",
    "timeout": "--timeout",
}
KNOWN_OPTIONS = set(SIZE_FLAGS) | {
    "n_jobs",
    "on_pressure",
    "retries",
    "history",
    "cgroups",
    "binary",
    "timeout",
    "fail_fast",
    "backend",
    "slurm_args",
}
STDERR_TAIL_LINES = 20


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
    """The ``memsweep run`` flags for the launcher's fields. Raises LauncherConfigError (a
    ValueError) naming the field."""
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise LauncherConfigError(
            f"unknown hydra.launcher field(s) {', '.join(unknown)} for hydra/launcher=memsweep; "
            f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
        )
    flags: List[str] = []
    n_jobs = options.get("n_jobs")
    if n_jobs is not None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 0:
            raise LauncherConfigError(
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
            raise LauncherConfigError(
                f"hydra.launcher.{field}={text} means {text} bytes; give a unit, e.g. {text}G"
            )
        flags += [flag, text]
    on_pressure = options.get("on_pressure")
    if on_pressure is not None:
        if on_pressure not in ON_PRESSURE:
            raise LauncherConfigError(
                f"hydra.launcher.on_pressure={on_pressure!r}: use one of {', '.join(ON_PRESSURE)}"
            )
        flags += ["--on-pressure", on_pressure]
    retries = options.get("retries")
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise LauncherConfigError(f"hydra.launcher.retries={retries!r}: give a number >= 0")
        flags += ["--retries", str(retries)]
    if options.get("history") is False:
        flags.append("--no-history")
    if options.get("cgroups") is False:
        flags.append("--no-cgroups")
    timeout = options.get("timeout")
    if timeout is not None:
        # memsweep checks the duration and names the flag if it is bad.
        flags += ["--timeout", str(timeout)]
    if options.get("fail_fast"):
        flags.append("--fail-fast")
    backend = options.get("backend")
    if backend is not None and backend != "local":  # memsweep checks the name
        flags += ["--backend", str(backend)]
    slurm_args = options.get("slurm_args") or []
    if isinstance(slurm_args, str):
        # A string would be taken apart character by character.
        raise LauncherConfigError(
            f"hydra.launcher.slurm_args={slurm_args!r}: give a list, e.g. "
            "\"hydra.launcher.slurm_args=['--partition=debug','--time=10']\""
        )
    # `--slurm-arg=VALUE`: one argv word, so a value starting with '-' is never taken for a flag.
    flags += [f"--slurm-arg={a}" for a in slurm_args]
    return flags


def job_params(overrides: Sequence[str]) -> Dict[str, str]:
    """A job's overrides as memsweep parameters (shown in its table and summary.json)."""
    params: Dict[str, str] = {}
    for o in overrides:
        key, sep, value = o.partition("=")
        params[key] = value if sep else ""
    return params
