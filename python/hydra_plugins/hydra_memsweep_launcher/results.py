"""Reading jobs' results back: the pickled ``JobReturn``, or an error saying what memsweep saw."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cloudpickle
from hydra.core.utils import JobReturn, JobStatus

from .flags import human
from .memsweep_launcher import MemsweepLauncher

STDERR_TAIL_LINES = 20


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
