"""One Hydra job, run by memsweep as `python -m <this module> IN OUT`.

Loads the payload the launcher wrote to IN, runs the job as Hydra's own launchers do in their
workers, and writes the pickled ``JobReturn`` to OUT atomically (OUT exists only when complete,
so a job killed mid-write leaves no half result). Exit code: 0 when the job completed, 1 when the
task raised (its exception is in OUT), 2 when the payload could not be run at all (traceback on
stderr, no OUT), so memsweep's summary agrees with Hydra's view without reading pickles.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, List, Optional

USAGE = "usage: python -m hydra_plugins.hydra_memsweep_launcher._worker IN.pkl OUT.pkl"


def _add_note(exc: BaseException, note: str) -> None:
    # Pickling drops __traceback__, so the parent would show the user's exception without where
    # it came from; a note (printed with the exception on Python >= 3.11) carries it across.
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python < 3.11 prints no notes, but keeps them for whoever inspects the exception
        notes: Optional[List[str]] = getattr(exc, "__notes__", None)
        try:
            exc.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]
        except Exception:
            pass


def _dumps(ret: Any) -> bytes:
    import cloudpickle
    from hydra.core.utils import JobStatus

    value = ret._return_value
    if ret.status == JobStatus.FAILED and isinstance(value, BaseException):
        tb = "".join(traceback.format_exception(type(value), value, value.__traceback__))
        _add_note(value, f"Traceback in the memsweep worker (pid {os.getpid()}):\n{tb.rstrip()}")
    try:
        return cloudpickle.dumps(ret)
    except Exception as e:
        # The job ran, but its return value (or exception) cannot cross a process boundary;
        # report that as the job's error rather than losing the job.
        what = "exception" if ret.status == JobStatus.FAILED else "return value"
        ret.status = JobStatus.FAILED
        ret.return_value = RuntimeError(
            f"the job's {what} could not be pickled to send it back to Hydra "
            f"({type(e).__name__}: {e}); it was: {value!r}"
        )
        return cloudpickle.dumps(ret)


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    in_path, out_path = argv
    import cloudpickle
    from hydra.core.utils import JobStatus

    from ._job import execute_job

    with open(in_path, "rb") as f:
        payload = cloudpickle.load(f)
    ret = execute_job(**payload)
    data = _dumps(ret)
    tmp = f"{out_path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_path)
    return 0 if ret.status == JobStatus.COMPLETED else 1


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    sys.exit(code)
