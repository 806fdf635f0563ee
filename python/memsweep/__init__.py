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

import functools as _functools
import json as _json
import logging as _logging
import math as _math
import os as _os
import shutil as _shutil
import subprocess as _subprocess
import sys as _sys
import sysconfig as _sysconfig
from pathlib import Path as _Path
from typing import Any as _Any
from typing import Dict as _Dict
from typing import List as _List
from typing import Optional as _Optional
from typing import TypedDict as _TypedDict

__all__ = [
    "MemoryStatus",
    "MemsweepError",
    "MemsweepJobError",
    "MemsweepNotFoundError",
    "Pressure",
    "check_memory_headroom",
    "find_binary",
    "memory_status",
]


def _version() -> str:
    # One version: Cargo.toml's, which maturin writes into the package metadata.
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("memsweep")
    except (ImportError, PackageNotFoundError):  # run from a source tree
        return "0+unknown"


__version__ = _version()

_log = _logging.getLogger(__name__)

#: Environment variable naming the memsweep binary to use instead of searching for it.
BINARY_ENV = "MEMSWEEP_BIN"

_EXE = "memsweep.exe" if _os.name == "nt" else "memsweep"


class Pressure(_TypedDict):
    """Pressure stall information (PSI), share of time stalled over 10 s, in percent."""

    some_avg10: float
    full_avg10: _Optional[float]


class MemoryStatus(_TypedDict):
    """``memsweep mem --json``: sizes in bytes; None where unknown or unlimited."""

    schema_version: int
    source: str
    cgroup_path: _Optional[str]
    cgroup_limit_bytes: _Optional[int]
    limit_from: _Optional[str]
    limit_level: _Optional[str]
    limit_bytes: int
    usage_bytes: int
    working_set_bytes: int
    inactive_file_bytes: int
    available_bytes: int
    host_total_bytes: int
    host_available_bytes: int
    host_swap_total_bytes: int
    swap_limit_bytes: _Optional[int]
    memory_high_bytes: _Optional[int]
    peak_bytes: _Optional[int]
    oom_kills: _Optional[int]
    pressure: _Optional[Pressure]
    pressure_from: _Optional[str]
    cpus: float
    warnings: _List[str]


class MemsweepError(RuntimeError):
    """The memsweep binary failed (e.g. a bad argument); the message includes its stderr."""


class MemsweepNotFoundError(MemsweepError, FileNotFoundError):
    """The memsweep binary is not installed where this Python can find it."""


class MemsweepJobError(MemsweepError):
    """A Hydra job that produced no result under ``hydra/launcher=memsweep`` (OOM-killed,
    crashed, requeued too often); the message says what memsweep saw happen to it."""


def _candidates() -> _List[_Path]:
    """Where ``pip install`` puts the binary, in order: this environment's scripts dir (a
    venv's python run without activating the venv has that dir off PATH), the user scheme's
    (``pip install --user``), and ``TARGET/bin`` for ``pip install --target TARGET``."""
    dirs: _List[_Path] = []
    found = [_sysconfig.get_path("scripts"), _os.path.dirname(_sys.executable)]
    try:
        found.append(_sysconfig.get_path("scripts", f"{_os.name}_user"))
    except KeyError:  # no user scheme on this platform
        pass
    # --target TARGET puts this package in TARGET/memsweep and the binary in TARGET/bin.
    found.append(str(_Path(__file__).resolve().parent.parent / "bin"))
    for d in found:
        if d and _Path(d) not in dirs:
            dirs.append(_Path(d))
    return [d / _EXE for d in dirs]


@_functools.cache
def _binary_version(path: str) -> _Optional[str]:
    """The version a binary reports (``memsweep 0.1.0``), or None if it cannot say."""
    try:
        proc = _subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, _subprocess.SubprocessError):
        return None
    parts = proc.stdout.split()
    return parts[1] if proc.returncode == 0 and len(parts) == 2 else None


def _checked(path: str) -> str:
    """``path``, after warning once if its version differs from this package's."""
    want = __version__
    got = _binary_version(path)
    if want != "0+unknown" and got != want:
        _warn_once(
            f"{path} reports version {got or 'unknown'}, but this memsweep package is {want}: "
            f"options or JSON fields may differ; reinstall the package, or set {BINARY_ENV} to "
            "the matching binary"
        )
    return path


@_functools.cache
def _warn_once(message: str) -> None:
    _log.warning(message)


def find_binary(explicit: _Optional[str] = None) -> str:
    """Path of the memsweep binary.

    Looks at ``explicit`` (e.g. the launcher's ``binary`` field), then ``$MEMSWEEP_BIN``, then
    the Python environment's scripts directory, the user scheme's (``pip install --user``), the
    ``bin`` directory of a ``pip install --target`` tree, then ``PATH``. A binary found by the
    search whose version differs from this package's is logged as a warning. Raises
    :class:`MemsweepNotFoundError` saying where it looked and how to install it.
    """
    for what, value in (("binary", explicit), (BINARY_ENV, _os.environ.get(BINARY_ENV))):
        if value:
            path = _Path(value).expanduser()
            if path.is_file() and _os.access(path, _os.X_OK):
                return str(path)
            raise MemsweepNotFoundError(
                f"{what}={value!r} is not an executable file; point it at a memsweep binary "
                f"(e.g. target/release/memsweep) or unset it to use the installed one"
            )
    tried = _candidates()
    for path in tried:
        if path.is_file() and _os.access(path, _os.X_OK):
            return _checked(str(path))
    found = _shutil.which("memsweep")
    if found:
        return _checked(found)
    raise MemsweepNotFoundError(
        "the memsweep binary was not found (looked in "
        + ", ".join(str(p.parent) for p in tried)
        + " and on PATH). Install the package with a Rust toolchain present "
        "(`pip install ./python` from the memsweep repository builds the binary into this "
        f"environment), or set {BINARY_ENV}=/path/to/memsweep"
    )


def _call(
    args: _List[str], ok_codes: tuple = (0,), binary: _Optional[str] = None
) -> _Dict[str, _Any]:
    exe = find_binary(binary)
    proc = _subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    cmd = " ".join([exe, *args])
    if proc.returncode not in ok_codes:
        raise MemsweepError(
            f"`{cmd}` exited with code {proc.returncode}: {proc.stderr.strip() or '(no stderr)'}"
        )
    try:
        value = _json.loads(proc.stdout)
    except ValueError as e:
        raise MemsweepError(
            f"`{cmd}` did not print one JSON object ({e}); stdout began {proc.stdout[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise MemsweepError(f"`{cmd}` printed {type(value).__name__}, expected a JSON object")
    return value


def memory_status() -> MemoryStatus:
    """The memory this process can really use, as ``memsweep mem --json`` reports it (see
    :class:`MemoryStatus` for the keys).

    ``limit_bytes`` is the smaller of the cgroup limit (``cgroup_limit_bytes``, None when
    unlimited) and the host's RAM; ``available_bytes`` is the headroom at the tightest level.
    """
    return _call(["mem", "--json"])  # type: ignore[return-value]


def check_memory_headroom(required_gb: float = 10.0) -> bool:
    """True when at least ``required_gb`` GiB is available to this process.

    ``required_gb`` is in GiB (2**30 bytes), like every size memsweep reads: 10 means
    10 × 1024³ bytes, not 10 × 1000³.

    Available means within the container's memory limit, not the host's free RAM. When there is
    not enough, logs the same warning as ``memsweep check`` (``logging.warning``) and returns
    False; raises :class:`MemsweepError` if memory cannot be read at all.
    """
    if isinstance(required_gb, bool) or not isinstance(required_gb, (int, float)):
        raise TypeError(f"required_gb must be a number of GiB, got {required_gb!r}")
    if _math.isnan(required_gb) or _math.isinf(required_gb) or required_gb < 0:
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
        _log.warning(message)
    return ok
