"""Shared fixtures: an isolated memsweep history, the example Hydra app, and real memory cgroups.

A test that needs a writable memory cgroup hierarchy skips, with the reason printed, where there
is none, and fails instead under MEMSWEEP_REQUIRE_CGROUPS=1 (CI sets it: a skip there would hide
a broken test).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_APP = REPO / "examples" / "hydra_app"
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
MiB = 1 << 20


@pytest.fixture(autouse=True, scope="session")
def isolated_history() -> Iterator[str]:
    """memsweep learns job peaks into a history under $XDG_CACHE_HOME; tests must neither read
    the developer's history nor leave entries in it (every process they start inherits this)."""
    old = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="memsweep-python-tests-cache-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        yield cache
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def require_cgroups() -> bool:
    return os.environ.get("MEMSWEEP_REQUIRE_CGROUPS") == "1"


def skip_or_fail(reason: str) -> None:
    print(f"\nSKIP: {reason}", file=sys.stderr)
    if require_cgroups():
        pytest.fail(f"{reason} (MEMSWEEP_REQUIRE_CGROUPS=1 forbids skipping)")
    pytest.skip(reason)


_names = itertools.count()


class MemCgroup:
    """A cgroup v1 memory cgroup with a limit; everything in it is killed and it is removed on
    :meth:`destroy`. The name contains "python" (this branch) and the pid, so it is unique."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self.path = CGROUP_V1_MEMORY / f"memsweep-python-test-{os.getpid()}-{next(_names)}"
        self.path.mkdir()
        try:
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            # Where swap exists, cap memory+swap too so that the limit means what it says.
            memsw = self.path / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(str(limit_bytes))
        except OSError:
            self.destroy()
            raise

    def wrap(self, argv: List[str]) -> List[str]:
        """``argv`` run from inside this cgroup (a shell moves itself in, then execs it)."""
        script = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
        return ["sh", "-c", script, str(self.path), *argv]

    def oom_kills(self) -> int:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        raise AssertionError(f"{self.path}/memory.oom_control has no oom_kill counter")

    def max_usage(self) -> int:
        return int((self.path / "memory.max_usage_in_bytes").read_text())

    def destroy(self) -> None:
        # Children first (memsweep's per-job cgroups may sit below this one).
        dirs = sorted((p for p in self.path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, self.path]:
            deadline = time.monotonic() + 10
            while True:
                try:
                    pids = (d / "cgroup.procs").read_text().split()
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            try:
                d.rmdir()
            except OSError:
                pass


def cgroup_unavailable() -> Optional[str]:
    if not CGROUP_V1_MEMORY.is_dir():
        return (
            f"no cgroup v1 memory hierarchy at {CGROUP_V1_MEMORY} (these tests create v1 cgroups)"
        )
    if not os.access(CGROUP_V1_MEMORY, os.W_OK):
        return f"{CGROUP_V1_MEMORY} is not writable (run as root, or on a machine that allows it)"
    return None


@pytest.fixture
def make_cgroup() -> Iterator:
    """``make_cgroup(limit_bytes)`` -> a fresh :class:`MemCgroup`, or skip/fail with the reason."""
    made: List[MemCgroup] = []

    def make(limit_bytes: int) -> MemCgroup:
        reason = cgroup_unavailable()
        if reason:
            skip_or_fail(reason)
        try:
            cg = MemCgroup(limit_bytes)
        except OSError as e:
            skip_or_fail(f"cannot create a memory cgroup under {CGROUP_V1_MEMORY}: {e}")
        made.append(cg)
        return cg

    yield make
    for cg in made:
        cg.destroy()


def run_app(
    args: List[str],
    cwd: Path = EXAMPLE_APP,
    timeout: float = 120,
    wrap=None,
    env: Optional[dict] = None,
) -> subprocess.CompletedProcess:
    """Run the example Hydra app (``python -m my_app ARGS``) as a user would, capturing output."""
    argv = [sys.executable, "-m", "my_app", *args]
    if wrap is not None:
        argv = wrap(argv)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("HYDRA_FULL_ERROR", "0")
    return subprocess.run(
        argv,
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """A private single-node Slurm (scripts/slurm-up), its SLURM_CONF exported to every memsweep
    the tests start, stopped by scripts/slurm-down at the end of the session. Skips with the
    reason where it cannot start; fails instead under MEMSWEEP_REQUIRE_SLURM=1 (CI)."""

    def unavailable(reason: str) -> None:
        print(f"\nSKIP: {reason}", file=sys.stderr)
        if os.environ.get("MEMSWEEP_REQUIRE_SLURM") == "1":
            pytest.fail(f"{reason} (MEMSWEEP_REQUIRE_SLURM=1 forbids skipping)")
        pytest.skip(reason)

    import shutil

    missing = [c for c in ("slurmctld", "slurmd", "sbatch", "munged") if not shutil.which(c)]
    if missing:
        unavailable(
            f"Slurm not installed ({', '.join(missing)}; scripts/setup installs it as root)"
        )
    if os.geteuid() != 0:
        unavailable("not root: slurmd and munged need root")
    base = Path(tempfile.mkdtemp(prefix="memsweep-python-slurm-"))
    up = subprocess.run(
        [str(REPO / "scripts" / "slurm-up"), str(base)], capture_output=True, text=True
    )
    if up.returncode != 0:
        subprocess.run([str(REPO / "scripts" / "slurm-down"), str(base)], capture_output=True)
        unavailable(f"scripts/slurm-up failed: {up.stderr.strip()}")
    conf = str(base / "etc" / "slurm.conf")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield conf
    finally:
        subprocess.run([str(REPO / "scripts" / "slurm-down"), str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
