"""memsweep's ``--json`` events as Hydra log lines: one line per finished job, and a few more."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional, Sequence

from hydra.core.utils import filter_overrides

from .flags import human

log = logging.getLogger("hydra_plugins.hydra_memsweep_launcher._core")


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
            if isinstance(job, int):
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
