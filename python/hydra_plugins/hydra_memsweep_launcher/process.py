"""Running the memsweep binary from the launcher: its environment, its session, Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

log = logging.getLogger("hydra_plugins.hydra_memsweep_launcher._core")


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
