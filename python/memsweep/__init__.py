"""memsweep from Python: the container's real memory, and a headroom check before a big run.

Both functions call the ``memsweep`` binary that this package installs next to the Python
interpreter (the venv's scripts directory), so Python and the command line always agree: one
implementation of cgroup v1, cgroup v2 and host memory, in Rust.

    >>> import memsweep
    >>> memsweep.memory_status()["limit_bytes"]        # the cgroup limit, not the host's RAM
    >>> if not memsweep.check_memory_headroom(required_gb=10.0):
    ...     raise SystemExit("not enough memory for this run")
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = [
    "MemsweepError",
    "MemsweepJobError",
    "MemsweepNotFoundError",
    "check_memory_headroom",
    "find_binary",
    "memory_status",
]

__version__ = "0.1.0"

log = logging.getLogger(__name__)

#: Environment variable naming the memsweep binary to use instead of searching for it.
BINARY_ENV = "MEMSWEEP_BIN"

_EXE = "memsweep.exe" if os.name == "nt" else "memsweep"


class MemsweepError(RuntimeError):
    """The memsweep binary failed (e.g. a bad argument); the message includes its stderr."""


class MemsweepNotFoundError(MemsweepError, FileNotFoundError):
    """The memsweep binary is not installed where this Python can find it."""


class MemsweepJobError(MemsweepError):
    """A Hydra job that produced no result under ``hydra/launcher=memsweep`` (OOM-killed,
    crashed, requeued too often); the message says what memsweep saw happen to it."""


def _candidates() -> List[Path]:
    # The venv's scripts dir first: a venv's python run without activating the venv has that
    # dir off PATH, so `shutil.which` alone would miss the binary this package installed.
    dirs: List[Path] = []
    for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if d and Path(d) not in dirs:
            dirs.append(Path(d))
    return [d / _EXE for d in dirs]


def find_binary(explicit: Optional[str] = None) -> str:
    """Path of the memsweep binary.

    Looks at ``explicit`` (e.g. the launcher's ``binary`` field), then ``$MEMSWEEP_BIN``, then
    the Python environment's scripts directory, then ``PATH``. Raises
    :class:`MemsweepNotFoundError` saying where it looked and how to install it.
    """
    for what, value in (("binary", explicit), (BINARY_ENV, os.environ.get(BINARY_ENV))):
        if value:
            path = Path(value).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
            raise MemsweepNotFoundError(
                f"{what}={value!r} is not an executable file; point it at a memsweep binary "
                f"(e.g. target/release/memsweep) or unset it to use the installed one"
            )
    tried = _candidates()
    for path in tried:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("memsweep")
    if found:
        return found
    raise MemsweepNotFoundError(
        "the memsweep binary was not found (looked in "
        + ", ".join(str(p.parent) for p in tried)
        + " and on PATH). Install the package with a Rust toolchain present "
        "(`pip install ./python` from the memsweep repository builds the binary into this "
        f"environment), or set {BINARY_ENV}=/path/to/memsweep"
    )


def _call(args: List[str], ok_codes: tuple = (0,), binary: Optional[str] = None) -> Dict[str, Any]:
    exe = find_binary(binary)
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    cmd = " ".join([exe, *args])
    if proc.returncode not in ok_codes:
        raise MemsweepError(
            f"`{cmd}` exited with code {proc.returncode}: {proc.stderr.strip() or '(no stderr)'}"
        )
    try:
        value = json.loads(proc.stdout)
    except ValueError as e:
        raise MemsweepError(
            f"`{cmd}` did not print one JSON object ({e}); stdout began {proc.stdout[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise MemsweepError(f"`{cmd}` printed {type(value).__name__}, expected a JSON object")
    return value


def memory_status() -> Dict[str, Any]:
    """The memory this process can really use, as ``memsweep mem --json`` reports it.

    Keys include ``source`` ("cgroup2", "cgroup1" or "host"), ``cgroup_path``,
    ``cgroup_limit_bytes`` (None when unlimited), ``limit_bytes`` (the smaller of that and the
    host's RAM), ``usage_bytes``, ``working_set_bytes``, ``available_bytes``,
    ``host_total_bytes``, ``host_available_bytes``, ``swap_limit_bytes``,
    ``memory_high_bytes``, ``peak_bytes``, ``oom_kills``, ``pressure`` and ``cpus``.
    """
    return _call(["mem", "--json"])


def check_memory_headroom(required_gb: float = 10.0) -> bool:
    """True when at least ``required_gb`` GiB (2**30 bytes each) is available to this process.

    Available means within the container's memory limit, not the host's free RAM. When there is
    not enough, logs the same warning as ``memsweep check`` (``logging.warning``) and returns
    False; raises :class:`MemsweepError` if memory cannot be read at all.
    """
    if isinstance(required_gb, bool) or not isinstance(required_gb, (int, float)):
        raise TypeError(f"required_gb must be a number of GiB, got {required_gb!r}")
    if math.isnan(required_gb) or math.isinf(required_gb) or required_gb < 0:
        raise ValueError(f"required_gb must be a finite number >= 0, got {required_gb!r}")
    need = int(required_gb * 2**30)
    verdict = _call(["check", "--need", str(need), "--json"], ok_codes=(0, 1))
    ok = verdict.get("ok")
    if not isinstance(ok, bool):
        raise MemsweepError(f"`memsweep check --json` gave no boolean 'ok': {verdict!r}")
    if not ok:
        message = verdict.get("message") or (
            f"only {verdict.get('available_bytes')} bytes available, {need} needed"
        )
        log.warning(message)
    return ok
