#!/usr/bin/env python3
"""Overhead on a shape the harness does not run: memsweep builds against each other and against
xargs, interleaved, on N trivial jobs or on a jobs file of shell lines; wall time and all CPU
(runner and jobs, from wait4's rusage) per job, medians over REPS rounds.

    python3 bench/overhead_ab.py new=target/release/memsweep old=/path/to/old/memsweep
    J=4 JOBSFILE=jobs.txt python3 bench/overhead_ab.py new=... old=...   # shell lines, -j 4

Environment: N (jobs, default 1000), REPS (default 5), J (-j, default 2), JOBSFILE (a jobs file
instead of `true {i}` jobs; xargs runs its lines with `sh -c`), EXTRA (more memsweep flags).
Each memsweep run gets its own empty history (XDG_CACHE_HOME), so history is on but empty.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

n = int(os.environ.get("N", 1000))
reps = int(os.environ.get("REPS", 5))
j = os.environ.get("J", "2")
jobsfile = os.environ.get("JOBSFILE")
extra = os.environ.get("EXTRA", "").split()
bins = dict(a.split("=", 1) for a in sys.argv[1:])
if not bins:
    sys.exit(__doc__)
jobs = sum(1 for _ in open(jobsfile)) if jobsfile else n
base = tempfile.mkdtemp(prefix="memsweep-ab-")
res: dict[str, list[tuple[float, float, int]]] = {k: [] for k in [*bins, "xargs"]}
for r in range(reps):
    for k in [*bins, "xargs"]:
        d = f"{base}/{k}/rep{r}"
        os.makedirs(d)
        if k == "xargs":
            feed = (f"tr '\\n' '\\0' < {jobsfile} | xargs -0 -n 1 -P {j} sh -c" if jobsfile
                    else f"seq 0 {n - 1} | xargs -n 1 -P {j} true")
            argv = ["sh", "-c", feed]
        elif jobsfile:
            argv = [bins[k], "run", "-j", j, *extra, "--out", f"{d}/ms", "--jobs-file", jobsfile]
        else:
            argv = [bins[k], "run", "-j", j, "--no-history", *extra, "--out", f"{d}/ms",
                    "-p", f"i=range(0,{n})", "--", "true", "{i}"]
        t = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, XDG_CACHE_HOME=f"{d}/cache"))
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t
        res[k].append((wall / jobs * 1000, (ru.ru_utime + ru.ru_stime) / jobs * 1000, status))
shutil.rmtree(base, ignore_errors=True)
xm = statistics.median(x[0] for x in res["xargs"])
for k, v in res.items():
    wm = statistics.median(x[0] for x in v)
    cm = statistics.median(x[1] for x in v)
    bad = {x[2] for x in v} - {0}
    print(f"{k:10} wall {wm:.2f} ms/job ({wm / xm:.2f}× xargs)  all CPU {cm:.2f} ms/job  "
          f"walls {' '.join(f'{x[0]:.2f}' for x in v)}{'  FAILED ' + str(bad) if bad else ''}")
