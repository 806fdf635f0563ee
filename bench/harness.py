#!/usr/bin/env python3
"""Benchmark harness: memsweep against the tools a user would pick instead, and against the limit.

Each runner (memsweep, xargs -P, GNU parallel, task-spooler, Hydra's joblib launcher) runs one
workload inside a fresh memory cgroup (`bench-<pid>-...` under the v1 memory hierarchy) with a
hard limit; the runner and every job it starts live inside it. Per run we record the makespan
(until the cgroup holds no process), jobs done (result files the workload wrote), OOM kills (an
eventfd on the cgroup's memory.oom_control plus the oom_kill counters of the cgroup and every
child cgroup seen), the cgroup's peak usage and whether the runner died. Makespans are compared
with a lower bound and with a clairvoyant peak-reserving first-fit scheduler computed from the
workload's plan.

`bench/run` builds everything and calls `harness.py run [--smoke]`; `harness.py gen` rewrites the
checked-in workloads from their seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / "build"
WORKLOAD_BIN = BUILD / "workload"
VENV_PY = BUILD / "venv" / "bin" / "python"
# BENCH_MEMSWEEP points the harness at another binary (e.g. to check that --smoke fails on a
# runner that loses jobs).
MEMSWEEP = Path(os.environ.get("BENCH_MEMSWEEP") or ROOT / "target" / "release" / "memsweep")
# BENCH_MEMSWEEP_BASE adds the runners "base memsweep" and "base memsweep + history": another
# build (e.g. main before a change) measured in the same run, for before/after tables.
MEMSWEEP_BASE = os.environ.get("BENCH_MEMSWEEP_BASE")
CG_ROOT = Path("/sys/fs/cgroup/memory")
MIB = 1 << 20
# The workload's own footprint before it allocates (VmHWM of `workload mem=0`), added to every
# planned size so the lower bound and the clairvoyant reference see what the cgroup sees.
BASE_MIB = 1.5
POLL_S = 0.05


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- workloads


def gen_workloads() -> dict[str, list[str]]:
    """The checked-in workloads, from fixed seeds. Rerun only when changing the design on purpose."""
    out: dict[str, list[str]] = {}

    # Heterogeneous: two dozen jobs, four sizes between 100 and 700 MiB, 1-2 s holds.
    rng = random.Random(4)
    out["heterogeneous"] = [
        f"id=h{i:02d} mem={rng.choice([100, 250, 450, 700])} ramp=0.3 hold={rng.uniform(1.0, 2.0):.1f}"
        for i in range(24)
    ]

    # Spiky: two dozen small jobs (80-150 MiB); a quarter jump to 500-700 MiB (4-9x) late in
    # their hold, so a runner that packed small jobs by their early size is caught out.
    rng = random.Random(5)
    spikers = set(rng.sample(range(24), 6))
    lines = []
    for i in range(24):
        mem = rng.choice([80, 100, 120, 150])
        line = f"id=s{i:02d} mem={mem} ramp=0.2 hold={rng.uniform(0.8, 1.5):.1f}"
        if i in spikers:
            line += f" jump={rng.choice([500, 600, 700])} jump_at=0.7"
        lines.append(line)
    out["spiky"] = lines

    # "LLM eval": a slow ramp while the model and dataset load (a quarter of it computing), then a
    # long hold with almost no CPU while batches are evaluated.
    rng = random.Random(6)
    out["llm-eval"] = [
        f"id=l{i:02d} mem={rng.choice([300, 400, 500])} ramp={rng.uniform(1.5, 2.5):.1f} busy=0.25"
        f" hold={rng.uniform(2.5, 3.5):.1f}"
        for i in range(6)
    ]

    # Issue 8. Heterogeneous with a per-run output path on each command line (`out=` is added per
    # run by the harness, see PER_RUN_PATHS), as generated jobs files have: history must transfer.
    out["heterogeneous-paths"] = [l.replace("id=h", "id=p") for l in out["heterogeneous"]]
    # A parameter grid whose memory one parameter sets (model: 100/300/600 MiB; seed sets the
    # hold), interleaved: memsweep runs it as `-p seed=range(0,6) -p model=large,small,medium`.
    out["grid"] = [f"id=g-{m}-{s} model={m} seed={s} ramp=0.3"
                   for s in range(6) for m in ("large", "small", "medium")]
    # Bursts: idle at 50 MiB, then +450 MiB as fast as the machine faults pages in.
    rng = random.Random(8)
    out["burst"] = [f"id=b{i:02d} mem=50 ramp=0 hold={rng.uniform(1.0, 2.0):.1f} jump=500 "
                    f"jump_at={rng.uniform(0.2, 0.6):.2f}" for i in range(16)]
    # Not tuned on: other sizes, slower ramps, longer holds, another seed, per-run paths.
    rng = random.Random(7)
    out["untuned"] = [
        f"id=u{i:02d} mem={rng.choice([150, 350, 550])} ramp={rng.choice([0.2, 0.6, 1.0])} hold={rng.uniform(0.8, 2.5):.1f}"
        for i in range(20)
    ]

    # Spiky, not tuned on: other sizes (60-200 MiB), ramps (0.1-0.4 s) and holds (0.7-2.0 s), 5 of
    # 20 jumping to 400-650 MiB at 50-80% of their hold, another seed. A check that what helps
    # spiky is not fitted to its one jump time and ramp.
    rng = random.Random(2027)
    spikers = set(rng.sample(range(20), 5))
    lines = []
    for i in range(20):
        line = (f"id=t{i:02d} mem={rng.choice([60, 90, 120, 160, 200])} ramp={rng.choice([0.1, 0.2, 0.3, 0.4])}"
                f" hold={round(rng.uniform(0.7, 2.0), 1)}")
        if i in spikers:
            line += f" jump={rng.choice([400, 500, 650])} jump_at={rng.choice([0.5, 0.6, 0.8])}"
        lines.append(line)
    out["spiky-untuned"] = lines

    # Smoke: a tiny version of each, for CI (< 2 minutes with both runners).
    out["smoke-heterogeneous"] = [
        f"id=sh{i} mem={m} ramp=0.2 hold=0.5" for i, m in enumerate([100, 250, 450, 250, 100, 450])
    ]
    out["smoke-spiky"] = [
        "id=ss0 mem=80 ramp=0.1 hold=0.8 jump=400 jump_at=0.6",
        "id=ss1 mem=100 ramp=0.1 hold=0.6",
        "id=ss2 mem=80 ramp=0.1 hold=0.8 jump=400 jump_at=0.6",
        "id=ss3 mem=120 ramp=0.1 hold=0.6",
        "id=ss4 mem=100 ramp=0.1 hold=0.6",
        "id=ss5 mem=80 ramp=0.1 hold=0.6",
    ]
    out["smoke-llm-eval"] = [
        f"id=sl{i} mem={m} ramp=1.0 busy=0.25 hold=1.0" for i, m in enumerate([300, 250, 300, 250])
    ]
    return out


class Job:
    def __init__(self, line: str):
        self.line = line
        kv = dict(tok.split("=", 1) for tok in line.split())
        self.id = kv["id"]
        # model= and seed= as bench/workload.c reads them (a grid's parameters).
        models = {"large": 600, "medium": 300}
        self.mem = float(kv["mem"]) if "mem" in kv else float(models.get(kv.get("model", ""), 100))
        self.ramp = float(kv.get("ramp", 0))
        if "hold" in kv:
            self.hold = float(kv["hold"])
        else:
            self.hold = 1.0 + 0.2 * (int(kv.get("seed", 0)) % 4) if "seed" in kv else 0.0
        self.jump = float(kv.get("jump", 0))
        self.jump_at = float(kv.get("jump_at", 0.75))
        # The job's own measured wall time (the shortest over the runs that finished it), once known:
        # touching pages and starting the process make a job a little longer than its plan, and
        # no runner can make it shorter, so the bound and the reference use it.
        self.measured: float | None = None

    @property
    def planned(self) -> float:
        return self.ramp + self.hold

    @property
    def duration(self) -> float:
        return max(self.planned, self.measured or 0.0)

    @property
    def peak_mib(self) -> float:
        return max(self.mem, self.jump) + BASE_MIB

    @property
    def area(self) -> float:
        """MiB·s actually held over the job's life (ramp counted as a straight line)."""
        a = (self.mem / 2) * self.ramp + self.mem * self.hold + BASE_MIB * self.duration
        # The overrun is spent mostly faulting pages in, i.e. growing: count it at half the size.
        a += (self.mem / 2) * (self.duration - self.planned)
        if self.jump > self.mem:
            a += (self.jump - self.mem) * self.hold * (1 - self.jump_at)
        return a

    def command(self, results: Path | None = None) -> str:
        out = f" out={results}/{self.id}.out" if results is not None else ""
        return f"{WORKLOAD_BIN} {self.line}{out}"


# Workloads whose command lines carry a per-run output path (and whose jobs file is written into
# each run's own directory, as a generated one would be): history must transfer across them.
PER_RUN_PATHS = {"heterogeneous-paths", "untuned"}
# Workloads memsweep runs as a parameter grid (-p) instead of a jobs file: (params, template).
GRIDS = {"grid": (["-p", "seed=range(0,6)", "-p", "model=large,small,medium"],
                  "id=g-{model}-{seed} model={model} seed={seed} ramp=0.3")}
# Workloads added for issue 8: only memsweep runs them (the peers are measured on the others).
MEMSWEEP_ONLY = {"heterogeneous-paths", "grid", "burst", "untuned", "spiky-untuned"}


def load_workload(name: str) -> list[Job]:
    path = BENCH / "workloads" / f"{name}.txt"
    jobs = []
    for raw in path.read_text().splitlines():
        raw = raw.strip()
        if raw and not raw.startswith("#"):
            jobs.append(Job(raw))
    return jobs


def clairvoyant(jobs: list[Job], capacity_mib: float) -> float:
    """Makespan of a scheduler that knows every job's peak and reserves it for the job's life,
    starting jobs in order, first-fit (a job that does not fit is skipped, later ones may start)."""
    t = 0.0
    queue = list(jobs)
    running: list[tuple[float, float]] = []  # (end time, reserved MiB)
    while queue or running:
        used = sum(r for _, r in running)
        for j in list(queue):
            if used + j.peak_mib <= capacity_mib or (not running and used == 0):
                running.append((t + j.duration, j.peak_mib))
                used += j.peak_mib
                queue.remove(j)
        if not running:
            break
        t = min(e for e, _ in running)
        running = [(e, r) for e, r in running if e > t]
    return t


def lower_bound(jobs: list[Job], capacity_mib: float, cpu_s: float, cores: int) -> dict:
    terms = {
        "memory-time": sum(j.area for j in jobs) / capacity_mib,
        "longest job": max(j.duration for j in jobs),
        "CPU time / cores": cpu_s / cores,
    }
    binding = max(terms, key=terms.get)
    return {"value": terms[binding], "binding": binding, "terms": terms}


# ---------------------------------------------------------------- cgroups


def cg_read(path: Path, name: str) -> str:
    try:
        return (path / name).read_text()
    except OSError:
        return ""


def cg_int(path: Path, name: str) -> int:
    s = cg_read(path, name).strip()
    return int(s) if s.isdigit() else 0


def oom_kill_count(path: Path) -> int:
    m = re.search(r"^oom_kill (\d+)", cg_read(path, "memory.oom_control"), re.M)
    return int(m.group(1)) if m else 0


class Cgroup:
    """A fresh v1 memory cgroup with a hard limit; removed (processes killed) by destroy()."""

    counter = 0

    def __init__(self, label: str, limit_bytes: int | None):
        Cgroup.counter += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60]
        self.path = CG_ROOT / f"bench-{os.getpid()}-{Cgroup.counter}-{safe}"
        self.path.mkdir()
        if limit_bytes is not None:
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            if (self.path / "memory.memsw.limit_in_bytes").exists():
                (self.path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
        # Every OOM at this cgroup's limit signals the eventfd, whichever child cgroup the victim
        # was in; the oom_kill counter of v1 only counts in the victim's own cgroup, which a
        # runner with per-job cgroups may already have removed when we look.
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ofd = os.open(self.path / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        (self.path / "cgroup.event_control").write_text(f"{self.efd} {self.ofd}")
        self.kills_seen: dict[str, int] = {}

    def dirs(self) -> list[Path]:
        out = []
        for dirpath, dirnames, _ in os.walk(self.path):
            out.append(Path(dirpath))
        return out

    def pids(self) -> list[int]:
        pids = []
        for d in self.dirs():
            pids += [int(p) for p in cg_read(d, "cgroup.procs").split()]
        return pids

    def sample(self) -> list[int]:
        """Pids in the subtree; also remembers the oom_kill counter of every cgroup seen."""
        pids = []
        for d in self.dirs():
            pids += [int(p) for p in cg_read(d, "cgroup.procs").split()]
            k = oom_kill_count(d)
            if k:
                key = str(d)
                self.kills_seen[key] = max(self.kills_seen.get(key, 0), k)
        return pids

    def oom_events(self) -> int:
        try:
            return os.eventfd_read(self.efd)
        except BlockingIOError:
            return 0

    def peak_bytes(self) -> int:
        return cg_int(self.path, "memory.max_usage_in_bytes")

    def kill_all(self, timeout: float = 10.0) -> int:
        """SIGKILL everything in the subtree until it is empty; returns how many pids were left."""
        left = 0
        deadline = time.time() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return left
            left = max(left, len(pids))
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.time() > deadline:
                raise RuntimeError(f"cannot empty cgroup {self.path}: pids {pids} survive SIGKILL")
            time.sleep(0.05)

    def destroy(self) -> tuple[int, int]:
        """Kill leftovers and remove the subtree; returns (leftover pids, leftover child cgroups)."""
        left = self.kill_all()
        children = [d for d in self.dirs() if d != self.path]
        for d in sorted(children, key=lambda p: len(p.parts), reverse=True) + [self.path]:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                raise RuntimeError(f"cannot remove cgroup {d}; remove it by hand: rmdir {d}")
        for fd in (self.efd, self.ofd):
            try:
                os.close(fd)
            except OSError:
                pass
        return left, len(children)


def clean_stale_cgroups() -> None:
    """Remove cgroups left by an earlier harness that was killed (its pid no longer exists)."""
    for d in CG_ROOT.glob("bench-*"):
        m = re.match(r"bench-(\d+)-", d.name)
        if not m or Path(f"/proc/{m.group(1)}").exists():
            continue
        log(f"removing stale cgroup {d}")
        cg = object.__new__(Cgroup)
        cg.path, cg.efd, cg.ofd = d, -1, -1
        cg.destroy()


# ---------------------------------------------------------------- runners


class Ctx:
    """Everything one run needs: its directory, jobs file, result directory and environment."""

    def __init__(self, run_dir: Path, jobs: list[Job], jobs_file: Path, max_mib: int, cache: Path):
        self.dir = run_dir
        self.jobs = jobs
        self.max_mib = max_mib
        self.cache = cache
        self.results = run_dir / "results"
        self.results.mkdir(parents=True)
        # One jobs file per workload, at a fixed path, as a user re-running a sweep would have:
        # memsweep groups its history by the jobs file's path.
        self.jobs_file = jobs_file
        self.grid = None
        self.env = dict(os.environ, BENCH_RESULTS=str(self.results), XDG_CACHE_HOME=str(cache))


def memsweep_argv(ctx: Ctx, extra: list[str], binary: Path | str = MEMSWEEP) -> list[str]:
    base = [str(binary), "run", "-j", "0", *extra, "--out", str(ctx.dir / "ms"), "--json"]
    if ctx.grid:
        params, template = ctx.grid
        return [*base, *params, "--", str(WORKLOAD_BIN), *template.split()]
    return [*base, "--jobs-file", str(ctx.jobs_file)]


def hydra_argv(ctx: Ctx, extra: list[str]) -> list[str]:
    return [str(VENV_PY), str(BENCH / "hydra_app" / "app.py"), "--multirun", "hydra/launcher=joblib",
            "job=" + ",".join(j.id for j in ctx.jobs), f"hydra.sweep.dir={ctx.dir / 'hydra'}", *extra]


def guard_argv(ctx: Ctx, command: list[str]) -> list[str]:
    return [str(MEMSWEEP), "guard", "--out", str(ctx.dir / "ms"), "--", *command]


RUNNERS = {
    # name: (description for the table, argv builder)
    "memsweep": ("memsweep -j 0, no hints (fresh history)", lambda c: memsweep_argv(c, [])),
    "memsweep --mem-per-job": (
        "memsweep -j 0 --mem-per-job <largest job> --no-history",
        lambda c: memsweep_argv(c, ["--mem-per-job", f"{c.max_mib}M", "--no-history"]),
    ),
    "memsweep + history": (
        "memsweep -j 0, second run with the history of the first",
        lambda c: memsweep_argv(c, []),
    ),
    "base memsweep": (f"before: memsweep {os.environ.get('BENCH_MEMSWEEP_BASE_LABEL', 'base')}, no hints",
                      lambda c: memsweep_argv(c, [], MEMSWEEP_BASE)),
    "base memsweep + history": (f"before: memsweep {os.environ.get('BENCH_MEMSWEEP_BASE_LABEL', 'base')}, with history",
                                lambda c: memsweep_argv(c, [], MEMSWEEP_BASE)),
    "xargs -P 1": ("xargs -P 1", lambda c: ["sh", "-c", f"xargs -d '\\n' -n 1 -P 1 sh -c < {c.jobs_file}"]),
    "xargs -P 4": ("xargs -P 4", lambda c: ["sh", "-c", f"xargs -d '\\n' -n 1 -P 4 sh -c < {c.jobs_file}"]),
    "xargs -P 8": ("xargs -P 8", lambda c: ["sh", "-c", f"xargs -d '\\n' -n 1 -P 8 sh -c < {c.jobs_file}"]),
    "parallel --memfree": (
        "GNU parallel -j8 --memfree <largest job>",
        lambda c: ["sh", "-c", f"parallel --will-cite -j8 --memfree {c.max_mib}M < {c.jobs_file}"],
    ),
    "parallel --memsuspend": (
        "GNU parallel -j8 --memsuspend <largest job>",
        lambda c: ["sh", "-c", f"parallel --will-cite -j8 --memsuspend {c.max_mib}M < {c.jobs_file}"],
    ),
    "tsp -S 4": ("task-spooler (tsp) -S 4", lambda c: ["bash", str(BENCH / "peers" / "tsp.sh"), str(c.jobs_file), "4"]),
    "hydra joblib": (
        "Hydra joblib launcher (default n_jobs=-1: 2 workers here)",
        lambda c: hydra_argv(c, []),
    ),
    # memsweep guard: the same unmodified commands, with memsweep watching their process trees.
    "guard + xargs -P 8": (
        "memsweep guard -- xargs -P 8",
        lambda c: guard_argv(c, ["sh", "-c", f"xargs -d '\\n' -n 1 -P 8 sh -c < {c.jobs_file}"]),
    ),
    "hydra joblib n_jobs=8": (
        "Hydra joblib launcher, n_jobs=8",
        lambda c: hydra_argv(c, ["hydra.launcher.n_jobs=8"]),
    ),
    "guard + hydra joblib n_jobs=8": (
        "memsweep guard -- Hydra joblib launcher, n_jobs=8",
        lambda c: guard_argv(c, hydra_argv(c, ["hydra.launcher.n_jobs=8"])),
    ),
}


def run_in_cgroup(label: str, argv: list[str], env: dict, cwd: Path, limit: int | None,
                  timeout: float, out: Path) -> dict:
    """Run argv in a fresh cgroup; wait until the runner exited and the cgroup is empty."""
    cg = Cgroup(label, limit)
    try:
        with open(out / "runner.out", "wb") as so, open(out / "runner.err", "wb") as se:
            # The runner joins the cgroup itself before exec, so it and all it starts are inside.
            wrapped = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cg.path / "cgroup.procs"), *argv]
            t0 = time.monotonic()
            proc = subprocess.Popen(wrapped, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=so, stderr=se)
            timed_out = False
            rc = None
            usage_area, last_t = 0.0, t0
            while True:
                time.sleep(POLL_S)
                if rc is None:
                    rc = proc.poll()
                pids = cg.sample()
                now = time.monotonic()
                usage_area += cg_int(cg.path, "memory.usage_in_bytes") * (now - last_t)
                last_t = now
                if rc is not None and not pids:
                    break
                if time.monotonic() - t0 > timeout:
                    timed_out = True
                    cg.kill_all()
                    rc = proc.wait()
                    break
            makespan = time.monotonic() - t0
        # The eventfd fires once per OOM *event* (several per kill while a victim exits), so it
        # only guarantees that a kill in a child cgroup removed before we saw it still counts.
        cg.sample()  # kills_seen covers the cgroup itself and every child cgroup seen
        counted = sum(cg.kills_seen.values())
        oom = max(counted, 1 if cg.oom_events() else 0)
        peak = cg.peak_bytes()
        left_pids, left_cgroups = cg.destroy()
        return {"makespan_s": makespan, "rc": rc, "timed_out": timed_out, "oom_kills": oom,
                "peak_bytes": peak, "mean_bytes": usage_area / makespan if makespan > 0 else 0.0, "leftover_pids": left_pids, "leftover_cgroups": left_cgroups}
    except BaseException:
        cg.destroy()
        raise


def one_run(runner: str, workload: str, jobs: list[Job], rep: int, limit: int, cache: Path,
            outdir: Path, timeout: float) -> dict:
    run_dir = outdir / workload / re.sub(r"[^A-Za-z0-9]+", "_", runner).strip("_") / f"rep{rep}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    max_mib = int(max(j.peak_mib for j in jobs) + 0.999)
    if workload in PER_RUN_PATHS:
        jobs_file = run_dir / "jobs.txt"
        text = "".join(j.command(run_dir / "results") + "\n" for j in jobs)
    else:
        jobs_file = outdir / "jobs" / f"{workload}.txt"
        jobs_file.parent.mkdir(exist_ok=True)
        text = "".join(j.command() + "\n" for j in jobs)
    if not jobs_file.exists() or jobs_file.read_text() != text:
        jobs_file.write_text(text)
    ctx = Ctx(run_dir, jobs, jobs_file, max_mib, cache)
    ctx.grid = GRIDS.get(workload)
    env = dict(ctx.env)
    if runner.startswith("tsp"):
        env.update(TS_SOCKET=str(run_dir / "ts.sock"), TMPDIR=str(run_dir / "tmp"), TS_SLOTS="4")
        (run_dir / "tmp").mkdir()
    if "hydra" in runner:
        env["BENCH_JOBS"] = str(ctx.jobs_file)
    argv = RUNNERS[runner][1](ctx)
    r = run_in_cgroup(f"{workload}-{runner}", argv, env, run_dir, limit, timeout, run_dir)
    done = {p.stem: json.loads(p.read_text()) for p in ctx.results.glob("*.json")}
    r.update(runner=runner, workload=workload, rep=rep, jobs=len(jobs),
             done=sum(1 for j in jobs if j.id in done),
             job_cpu_s=sum(d["cpu_s"] for d in done.values()),
             vmhwm_kb={k: d["vmhwm_kb"] for k, d in done.items()},
             job_wall_s={k: d["wall_s"] for k, d in done.items()})
    # A runner "died" if it was killed by a signal (the OOM killer's SIGKILL), or for task-spooler
    # if its server vanished (tsp.sh exits 3).
    # If the bench cgroup never held the biggest finished job, the jobs ran outside it (a runner
    # that put its per-job cgroups elsewhere): the run says nothing about the limit.
    biggest = max(r["vmhwm_kb"].values(), default=0) * 1024
    r["escaped"] = biggest > 64 * MIB and r["peak_bytes"] < 0.8 * biggest
    if r["escaped"]:
        log(f"WARNING: {runner} on {workload}: the cgroup peaked at {r['peak_bytes'] / MIB:.0f} MiB but a job "
            f"reached {biggest / MIB:.0f} MiB: jobs ran outside the benchmark cgroup")
    r["runner_died"] = (r["rc"] is not None and r["rc"] < 0 and not r["timed_out"]) or (
        runner.startswith("tsp") and r["rc"] == 3)
    summary = run_dir / "ms" / "summary.json"
    if "memsweep" in runner or runner.startswith("guard"):
        if summary.exists():
            s = json.loads(summary.read_text())
            sw = s.get("sweep") or s  # sweep totals: under "sweep", or at the top level
            r["memsweep"] = {k: sw.get(k) for k in ("makespan_s", "peak_working_set_bytes", "oom_kills",
                                                    "requeues", "pauses", "false_pauses", "budget_bytes",
                                                    "accounting")}
            r["memsweep_jobs"] = [
                {k: j.get(k) for k in ("command", "status", "attempts", "peak_bytes", "peak_source", "wall_s")}
                for j in s.get("jobs", [])
            ]
            r["oom_kills"] = max(r["oom_kills"], int(sw.get("oom_kills") or 0))
            r["memsweep"].update(pause_stats(run_dir / "runner.out"))
            r["memsweep"]["requeued_out"] = sum(1 for j in s.get("jobs", []) if j.get("status") == "requeued-out")
        else:
            r["memsweep"] = None
    (run_dir / "result.json").write_text(json.dumps(r, indent=1))
    extra = ""
    if r.get("memsweep"):
        extra = (f" requeues={r['memsweep'].get('requeues')} pauses={r['memsweep'].get('pauses')}"
                 f" false={r['memsweep'].get('false_pauses')}")
    log(f"{workload:>20} | {runner:<24} rep{rep}: {r['makespan_s']:6.1f}s done {r['done']}/{len(jobs)} "
        f"oom={r['oom_kills']} peak={r['peak_bytes'] / MIB:.0f}MiB rc={r['rc']}"
        f"{' TIMEOUT' if r['timed_out'] else ''}{' DIED' if r['runner_died'] else ''}{extra}")
    return r


def pause_stats(events_path: Path) -> dict:
    """Paused job-seconds and job-seconds (each attempt from its start to its end or requeue)
    from memsweep's --json event stream."""
    paused, job_s = 0.0, 0.0
    pause_at: dict[int, float] = {}
    start_at: dict[int, float] = {}
    try:
        lines = events_path.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        ev, job, t = e.get("event"), e.get("job"), e.get("t")
        if ev == "job_start":
            start_at[job] = t
        elif ev == "job_pause":
            pause_at[job] = t
        elif ev in ("job_resume", "job_end", "job_requeue"):
            if job in pause_at:
                paused += t - pause_at.pop(job)
            if ev != "job_resume" and job in start_at:
                job_s += t - start_at.pop(job)
    return {"paused_job_s": paused, "job_s": job_s}


# ---------------------------------------------------------------- overhead and accuracy


def proc_self_stats(pid: int) -> tuple[int, float] | None:
    """(VmHWM bytes, own user+system CPU seconds) of a live process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    fields = stat.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(m.group(1)) * 1024 if m else 0, (int(fields[11]) + int(fields[12])) / tick)


def timed(argv: list[str], env: dict, cwd: Path, limit: int | None, label: str,
          cap_s: float | None = None) -> dict:
    """Run in a fresh (unlimited unless `limit`) cgroup; poll the runner's own VmHWM and CPU.
    After `cap_s` seconds the runner gets SIGINT (Ctrl-C) and the run counts as stopped."""
    cg = Cgroup(label, limit)
    try:
        wrapped = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cg.path / "cgroup.procs"), *argv]
        t0 = time.monotonic()
        with open(cwd / "stderr.txt", "wb") as se:
            proc = subprocess.Popen(wrapped, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=se)
        hwm, cpu = 0, 0.0
        stopped_at = None
        while proc.poll() is None:
            s = proc_self_stats(proc.pid)
            if s:
                hwm, cpu = max(hwm, s[0]), max(cpu, s[1])
            if cap_s is not None and stopped_at is None and time.monotonic() - t0 > cap_s:
                stopped_at = time.monotonic() - t0
                proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
        wall = time.monotonic() - t0
        while cg.pids():
            time.sleep(0.01)
        wall_empty = time.monotonic() - t0
        cg.destroy()
        return {"wall_s": wall, "wall_empty_s": wall_empty, "rc": proc.returncode, "hwm_bytes": hwm, "cpu_s": cpu,
                "stopped_at_s": stopped_at}
    except BaseException:
        cg.destroy()
        raise


def overhead_runs(outdir: Path, reps: int, n: int = 1000, others: dict[str, Path] | None = None) -> dict:
    """ms per trivial job for memsweep (and each of `others`: label -> another memsweep binary, run
    in the same repetitions), xargs -P 2 and GNU parallel."""
    base = outdir / "overhead"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    seq = " ".join(str(i) for i in range(n))

    def ms(binary: Path, extra: list[str]):
        return lambda d: [str(binary), "run", "-j", "2", "--no-history", *extra, "--out", str(d / "ms"),
                          "-p", f"i=range(0,{n})", "--", "true", "{i}"]
    tools = {
        "memsweep -j 2": ms(MEMSWEEP, []),
        "memsweep -j 2 --no-cgroups": ms(MEMSWEEP, ["--no-cgroups"]),
        **{f"{label} -j 2": ms(b, []) for label, b in (others or {}).items()},
        **{f"{label} -j 2 --no-cgroups": ms(b, ["--no-cgroups"]) for label, b in (others or {}).items()},
        "xargs -P 2": lambda d: ["sh", "-c", f"printf '%s\\n' {seq} | xargs -n 1 -P 2 true"],
        "GNU parallel -j2": lambda d: ["sh", "-c", f"printf '%s\\n' {seq} | parallel --will-cite -j2 true {{}}"],
    }
    res: dict[str, list[dict]] = {t: [] for t in tools}
    for rep in range(reps):
        for t, build in tools.items():
            d = base / re.sub(r"[^A-Za-z0-9]+", "_", t) / f"rep{rep}"
            d.mkdir(parents=True)
            env = dict(os.environ, XDG_CACHE_HOME=str(d / "cache"))
            r = timed(build(d), env, d, None, f"overhead-{t}")
            r["ms_per_job"] = r["wall_empty_s"] / n * 1000
            res[t].append(r)
            log(f"overhead {t:<28} rep{rep}: {r['ms_per_job']:.2f} ms/job rc={r['rc']}")
    return res


def footprint_runs(outdir: Path, sizes: list[int], cap_s: float, binary: Path | None = None,
                   label: str = "memsweep") -> list[dict]:
    """memsweep's own peak RSS and CPU time with N `true` jobs queued, -j 1. A run still going
    after `cap_s` is stopped with Ctrl-C (SIGINT), to keep bench/run within its time."""
    out = []
    for n in sizes:
        d = outdir / "footprint" / re.sub(r"[^A-Za-z0-9]+", "_", label) / str(n)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        env = dict(os.environ, XDG_CACHE_HOME=str(d / "cache"))
        argv = [str(binary or MEMSWEEP), "run", "-j", "1", "--no-history", "--out", str(d / "ms"),
                "-p", f"i=range(0,{n})", "--", "true", "{i}"]
        r = timed(argv, env, d, None, f"footprint-{n}", cap_s=cap_s)
        r["queued"] = n
        r["label"] = label
        r["done"] = None
        summary = d / "ms" / "summary.json"
        if summary.exists():
            sm = json.loads(summary.read_text())
            r["done"] = sum(1 for j in sm.get("jobs", []) if j.get("status") == "succeeded")
        out.append(r)
        log(f"footprint {n} jobs: VmHWM {r['hwm_bytes'] / MIB:.1f} MiB, CPU {r['cpu_s']:.2f}s, wall {r['wall_s']:.1f}s "
            f"rc={r['rc']} done={r['done']}{' (stopped by SIGINT at the cap)' if r['stopped_at_s'] else ''}")
    return out


def accuracy_rows(runs: list[dict], interval: float | None) -> list[dict]:
    rows = []
    for r in runs:
        for j in r.get("memsweep_jobs") or []:
            m = re.search(r"\bid=(\S+)", j.get("command") or "")
            if not m or m.group(1) not in r["vmhwm_kb"] or not j.get("peak_bytes"):
                continue
            hwm = r["vmhwm_kb"][m.group(1)] * 1024
            if j.get("status") != "succeeded" or (j.get("attempts") or 1) > 1:
                continue  # a requeued job's peak may come from an earlier attempt
            rows.append({"id": m.group(1), "workload": r["workload"], "vmhwm": hwm, "peak": j["peak_bytes"],
                         "source": j.get("peak_source"), "err": (j["peak_bytes"] - hwm) / hwm,
                         "interval": interval})
    return rows


# ---------------------------------------------------------------- reporting


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=1, unit=""):
    return "–" if x is None else f"{x:.{nd}f}{unit}"


def machine_info() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) * 1024
    def ver(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.splitlines()[0].strip()
        except Exception:
            return "unavailable"
    rev = ver(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem / (1 << 30), "kernel": platform.release(),
            "os": ver(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "parallel": ver(["parallel", "--version"]), "tsp": ver(["tsp", "-V"]),
            "xargs": ver(["xargs", "--version"]), "memsweep": f"{ver([str(MEMSWEEP), '--version'])} (git {rev})",
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load1": os.getloadavg()[0]}


def write_report(data: dict, path: Path) -> None:
    m = data["machine"]
    L = []
    A = L.append
    A("# Benchmarks\n")
    A("memsweep against the tools a user would pick instead, on one machine in one run, and against "
      "the physical limit. Generated by `bench/run`; do not edit by hand (the analysis comes from "
      "`bench/analysis.md`).\n")
    A("Reproduce (as root, on a machine with a writable cgroup-v1 memory hierarchy):\n")
    A("```\nbench/run            # everything, writes this file (about %d minutes here)\n"
      "bench/run --smoke    # the CI check: tiny workloads, memsweep and xargs, no file written\n```\n"
      % max(1, round(data["elapsed_s"] / 60)))
    A("## Machine\n")
    load = m.get("load1")
    load_s = f"load average {load:.1f} when it ended" if load is not None else "load not recorded"
    A(f"- {m['cpu']}, {m['cores']} cores ({load_s}), {m['mem_gib']:.1f} GiB RAM, no swap")
    A(f"- {m['os']}, kernel {m['kernel']}, cgroup v1 memory controller")
    A(f"- {m['memsweep']}; {m['parallel']}; {m['tsp']}; {m['xargs']}; Python {m['python']}, hydra-core 1.3.8, "
      "hydra-joblib-launcher 1.2.0")
    A(f"- Run {m['date']}, bench/run took {data['elapsed_s'] / 60:.1f} min; "
      f"median of {data['reps']} repetitions per runner unless the *reps* column says otherwise "
      "(the slow near-sequential baselines run fewer: xargs -P 1, Hydra's 2 workers, and memsweep --mem-per-job "
      "<largest job>, which fits one job at a time in its budget).\n")
    A("## Method\n")
    A(f"Each run gets a fresh memory cgroup limited to **{data['limit_mib']:.0f} MiB** (memory and memory+swap); "
      "the runner and every job it starts run inside. Makespan runs from the runner's start until the "
      "cgroup holds no process. *Done* = result files written by the workload (it writes one only after "
      "finishing). *OOM kills* = OOM events at the cgroup's limit (eventfd on `memory.oom_control`), or the "
      "`oom_kill` counters of the cgroup and of every child cgroup seen, whichever is larger. *Peak* = "
      "`memory.max_usage_in_bytes`; *mean* = the cgroup's usage averaged over the makespan (sampled every 50 ms). *Died* = the runner was killed by a signal (task-spooler: its server vanished).\n")
    A("The workload program (`bench/workload.c`) grows to its size in 20 steps a second over its ramp, "
      "touching every page, holds mostly asleep, optionally jumps to a second size late in the hold, and writes "
      "its own VmHWM and wall time. Lower bound = max(Σ ∫memᵢ(t)dt / limit, longest job, Σ job CPU / cores), "
      "using each job's planned memory over time (ramps counted as they grow) and its measured wall time "
      "(the shortest over the runs that finished it). Clairvoyant = a simulated scheduler that "
      "knows every job's peak and duration, reserves it for the job's whole life in the same limit and starts jobs in order, "
      "first-fit; it ignores start-up costs, so real runners pay those on top. Both use the full cgroup limit; "
      "memsweep keeps its default reserve (max(5%, 256 MiB)) out of its budget, so it schedules in "
      f"{budget_mib(data['limit_mib']):.0f} MiB.\n")
    for wl in data["workloads"]:
        w = data["workload_info"][wl]
        A(f"## Workload: {wl}\n")
        A(f"`bench/workloads/{wl}.txt`: {w['n']} jobs, peaks {w['min_peak']:.0f}–{w['max_peak']:.0f} MiB, "
          f"durations {w['min_t']:.1f}–{w['max_t']:.1f} s, Σ peak = {w['sum_peak']:.0f} MiB, "
          f"Σ durations {w['seq_t']:.1f} s (each job's shortest measured wall time; {w['planned_seq_t']:.1f} s planned), "
          f"job CPU {w['cpu_s']:.1f} s. {w['desc']}\n")
        lb = w["lb"]
        A(f"Lower bound **{lb['value']:.1f} s** ({lb['binding']}; terms: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in lb["terms"].items())
          + f"). Clairvoyant peak-reserving first-fit: **{w['clair']:.1f} s** ({w['clair'] / lb['value']:.2f}× the bound). "
          f"The same reference inside memsweep's {w['budget_mib']:.0f} MiB budget, largest first: "
          f"{w['clair_budget_lpt']:.1f} s ({w['clair_budget_lpt'] / lb['value']:.2f}× the bound).\n")
        A("| runner | makespan s | × bound | × clairvoyant | × in-budget ref | jobs done | OOM kills | peak MiB | mean MiB | runner died | memsweep requeues / pauses (false ones) / paused job-s (% of job-s) | reps |")
        A("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
        for runner in data["runners"]:
            rs = [r for r in data["runs"] if r["workload"] == wl and r["runner"] == runner]
            if not rs:
                continue
            ms = med([r["makespan_s"] for r in rs])
            done = [r["done"] for r in rs]
            ooms = [r["oom_kills"] for r in rs]
            died = sum(1 for r in rs if r["runner_died"])
            tos = sum(1 for r in rs if r["timed_out"])
            rq = "–"
            if "memsweep" in runner or runner.startswith("guard"):
                sums = [r.get("memsweep") or {} for r in rs]
                rq = f"{med([s.get('requeues') for s in sums]) if any(s.get('requeues') is not None for s in sums) else '–'} / " \
                     f"{med([s.get('pauses') for s in sums]) if any(s.get('pauses') is not None for s in sums) else '–'}" \
                     f"{' (' + format(med([s.get('false_pauses') for s in sums]), 'g') + ' false)' if any(s.get('false_pauses') for s in sums) else ''}"
                ps = [s.get("paused_job_s") for s in sums if s.get("job_s")]
                pct = [s["paused_job_s"] / s["job_s"] * 100 for s in sums if s.get("job_s")]
                if ps:
                    rq += f" / {med(ps):.1f} s ({med(pct):.1f}%)"
                rqo = sum(s.get("requeued_out") or 0 for s in sums)
                if rqo:
                    rq += f", {rqo} requeued-out"
            done_s = f"{min(done)}/{w['n']}" if min(done) == max(done) else f"{min(done)}–{max(done)}/{w['n']}"
            oom_s = f"{med(ooms):g}" + (f" ({min(ooms)}–{max(ooms)})" if min(ooms) != max(ooms) else "")
            died_s = ("no" if not died else f"yes ({died}/{len(rs)})") + (f", {tos} timed out" if tos else "")
            lost = "†" if min(done) < w["n"] else ""
            means = [r.get("mean_bytes") for r in rs if r.get("mean_bytes") is not None]
            mean_s = f"{med(means) / MIB:.0f}" if means else "–"
            A(f"| {data['runner_desc'][runner]} | {ms:.1f}{lost} | {ms / lb['value']:.2f}{lost} | {ms / w['clair']:.2f}{lost} | "
              f"{ms / w['clair_budget_lpt']:.2f}{lost} | {done_s} | "
              f"{oom_s} | {med([r['peak_bytes'] for r in rs]) / MIB:.0f} | {mean_s} | {died_s} | {rq} | {len(rs)} |")
        A("")
    A("† The runner lost jobs (killed by the OOM killer and never rerun), so its makespan covers less work "
      "and is not comparable with the bound.\n")
    L.extend(guard_section(data))
    if data.get("overhead"):
        A("## Overhead: 1000 trivial jobs (`true`)\n")
        A("Wall time until the cgroup is empty, divided by 1000 (median of %d). memsweep runs `-p i=range(0,1000) -- true {i}` "
          "(argv, no shell; per-job cgroups unless `--no-cgroups`); xargs and GNU parallel read 1000 lines.\n" % data["reps"])
        A("| runner | ms per job | × xargs |")
        A("|---|---:|---:|")
        x = med([r["ms_per_job"] for r in data["overhead"]["xargs -P 2"]])
        for t, rs in data["overhead"].items():
            v = med([r["ms_per_job"] for r in rs])
            bad = [r["rc"] for r in rs if r["rc"] != 0]
            A(f"| {t} | {v:.2f} | {v / x:.2f} |" + (f" exit codes {bad}" if bad else ""))
        A("")
    if data.get("footprint"):
        A("## memsweep's own footprint with N queued jobs (`-j 1`, jobs are `true`)\n")
        A("VmHWM and own CPU time (utime+stime, children excluded) of the memsweep process, polled from "
          "`/proc/<pid>/status` and `/proc/<pid>/stat` every 20 ms until it exits.\n")
        A(f"A run still going after {data.get('footprint_cap', 30):g} s is stopped with Ctrl-C (SIGINT) to keep "
          "bench/run within its time; its RSS is then the peak while all of its jobs were queued or done, and "
          "CPU per job is over the jobs it finished.\n")
        A("| queued jobs | jobs finished | peak RSS (VmHWM) MiB | CPU s | CPU ms per finished job | wall s | exit |")
        A("|---:|---:|---:|---:|---:|---:|---:|")
        for r in data["footprint"]:
            done = r.get("done")
            per = f"{r['cpu_s'] / done * 1000:.2f}" if done else "–"
            stop = " (stopped)" if r.get("stopped_at_s") else ""
            A(f"| {r['queued']} | {done if done is not None else '–'}{stop} | {r['hwm_bytes'] / MIB:.1f} | {r['cpu_s']:.2f} | "
              f"{per} | {r['wall_s']:.1f} | {r['rc']} |")
        A("")
    if data.get("accuracy"):
        A("## Accuracy: memsweep's recorded peak vs the job's own VmHWM\n")
        A("Jobs of at least 100 MiB that succeeded on their first attempt. Error = (recorded − VmHWM) / VmHWM. "
          "In cgroup mode the peak is the job cgroup's `max_usage_in_bytes` (it also counts the job's `sh`, "
          "page cache and kernel memory); in `--no-cgroups` mode memsweep samples the job's process tree from /proc.\n")
        A("| mode | jobs | median error | mean \\|error\\| | max \\|error\\| | within ±5% | peak source |")
        A("|---|---:|---:|---:|---:|---:|---|")
        for mode, rows in data["accuracy"].items():
            rows = [r for r in rows if r["vmhwm"] >= 100 * MIB]
            if not rows:
                A(f"| {mode} | 0 | – | – | – | – | – |")
                continue
            errs = [r["err"] for r in rows]
            within = sum(1 for e in errs if abs(e) <= 0.05)
            srcs = sorted({str(r["source"]) for r in rows})
            A(f"| {mode} | {len(rows)} | {statistics.median(errs) * 100:+.1f}% | "
              f"{statistics.mean(abs(e) for e in errs) * 100:.1f}% | {max(abs(e) for e in errs) * 100:.1f}% | "
              f"{within}/{len(rows)} | {', '.join(srcs)} |")
        A("")
    A("## Targets (issue 8)\n")
    A("| target | measured | met? |")
    A("|---|---|---|")
    for t in data["targets"]:
        A(f"| {t['target']} | {t['measured']} | {'met' if t['met'] else '**missed**' if t['met'] is False else 'n/a'} |")
    A("")
    analysis = BENCH / "analysis.md"
    if analysis.exists():
        A(analysis.read_text().strip() + "\n")
    path.write_text("\n".join(L))


def guard_section(data: dict) -> list[str]:
    """The `memsweep guard` table: the same unmodified commands with and without the guard."""
    L: list[str] = []
    A = L.append
    guard_rows = ["memsweep", "xargs -P 8", "guard + xargs -P 8", "hydra joblib", "hydra joblib n_jobs=8",
                  "guard + hydra joblib n_jobs=8"]
    if any(r["runner"].startswith("guard") for r in data["runs"]):
        A("## When memsweep is not the launcher: `memsweep guard`\n")
        A("The same unmodified commands with and without `memsweep guard -- CMD` in front (guard runs in the same "
          "cgroup, default reserve, so its budget is the one above), next to `memsweep run`. Reference = the "
          "clairvoyant peak-reserving scheduler inside that budget (largest first); target for guard + xargs -P 8 "
          "on heterogeneous: ≤ 1.5×.\n")
        A("| workload | runner | jobs done | OOM kills | makespan s | × reference in budget | guard pauses | reps |")
        A("|---|---|---:|---:|---:|---:|---:|---:|")
        for wl in data["workloads"]:
            w = data["workload_info"][wl]
            for runner in guard_rows:
                rs = [r for r in data["runs"] if r["workload"] == wl and r["runner"] == runner]
                if not rs:
                    continue
                done = [r["done"] for r in rs]
                ms = med([r["makespan_s"] for r in rs])
                lost = "†" if min(done) < w["n"] else ""
                done_s = f"{min(done)}/{w['n']}" if min(done) == max(done) else f"{min(done)}–{max(done)}/{w['n']}"
                pauses = "–"
                if runner.startswith("guard"):
                    ps = [(r.get("memsweep") or {}).get("pauses") for r in rs]
                    pauses = f"{med([p for p in ps if p is not None]):g}" if any(p is not None for p in ps) else "–"
                A(f"| {wl} | {data['runner_desc'][runner]} | {done_s} | {med([r['oom_kills'] for r in rs]):g} | "
                  f"{ms:.1f}{lost} | {ms / w['clair_budget_lpt']:.2f}{lost} | {pauses} | {len(rs)} |")
        A("")
    return L


def splice_guard_section(data: dict, path: Path, argv: list[str]) -> None:
    """Write only the guard section into an existing BENCHMARKS.md (`--guard-section`), leaving the
    full run's tables as they are; the section says when and how it was measured."""
    sec = guard_section(data)
    if not sec:
        return
    m = machine_info()
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    busy = (": other work ran alongside, so absolute times are inflated; compare rows within this table"
            if load > cores else "")
    sec.insert(1, f"Measured {m['date']} with `python3 bench/harness.py {' '.join(shlex.quote(a) for a in argv)}` "
               f"({m['memsweep']}; load average {load:.1f} on {cores} cores when it ended{busy}).\n")
    text = path.read_text()
    head = "## When memsweep is not the launcher"
    start = text.find(head)
    if start < 0:
        start = text.find("## Overhead")
        end = start
    else:
        nxt = text.find("\n## ", start + len(head))
        end = len(text) if nxt < 0 else nxt + 1
    if start < 0:
        start = end = len(text)
    path.write_text(text[:start] + "\n".join(sec) + "\n" + text[end:])


def targets(data: dict) -> list[dict]:
    out = []

    def runs(wl, runner):
        return [r for r in data["runs"] if r["workload"] == wl and r["runner"] == runner]

    ms_runners = [r for r in data["runners"] if r.startswith("memsweep")]
    for wl in data["workloads"]:
        rs = [r for r in data["runs"] if r["workload"] == wl and r["runner"] in ms_runners]
        if not rs:
            continue
        n = data["workload_info"][wl]["n"]
        lost = sum(n - r["done"] for r in rs)
        ooms = sum(r["oom_kills"] for r in rs)
        died = sum(1 for r in rs if r["runner_died"] or r["timed_out"])
        out.append({"target": f"{wl}: memsweep finishes every job, 0 OOM kills, runner never dies (all {len(rs)} memsweep runs)",
                    "measured": f"{lost} jobs lost, {ooms} OOM kills, {died} runner deaths/timeouts",
                    "met": lost == 0 and ooms == 0 and died == 0})
    info = data["workload_info"]

    def ratio(wl, runner, ref):
        rs = runs(wl, runner)
        if not rs or wl not in info:
            return None
        den = {"lb": info[wl]["lb"]["value"], "clair": info[wl]["clair"], "budget": info[wl]["clair_budget_lpt"]}[ref]
        return med([r["makespan_s"] for r in rs]) / den

    for wl, runner, ref, lim, label in [
        ("heterogeneous", "memsweep", "budget", 1.15, "heterogeneous, no hints: ≤ 1.15× in-budget reference"),
        ("heterogeneous", "memsweep + history", "budget", 1.0, "heterogeneous, with history: ≤ 1.0× in-budget reference"),
        ("heterogeneous-paths", "memsweep + history", "budget", 1.0,
         "heterogeneous, command lines changed, with history: ≤ 1.0× in-budget reference"),
        ("spiky", "memsweep + history", "budget", 0.85, "spiky, with history: ≤ 0.85× in-budget reference"),
        ("grid", "memsweep", "budget", 1.0, "parameter grid, no hints: ≤ 1.0× in-budget reference"),
    ]:
        v = ratio(wl, runner, ref)
        if v is not None:
            out.append({"target": label, "measured": f"{v:.2f}×", "met": v <= lim})
    ms_runs = [r for r in data["runs"] if r["runner"].startswith("memsweep") and r.get("memsweep")]
    if ms_runs:
        paused = sum(r["memsweep"].get("paused_job_s") or 0 for r in ms_runs)
        job_s = sum(r["memsweep"].get("job_s") or 0 for r in ms_runs)
        worst = max(((r["memsweep"].get("paused_job_s") or 0) / r["memsweep"]["job_s"], r["workload"], r["runner"])
                    for r in ms_runs if r["memsweep"].get("job_s"))
        out.append({"target": "paused job-seconds ≤ 5% of job-seconds (every memsweep run)",
                    "measured": f"{paused / job_s * 100:.1f}% over all runs; worst run {worst[0] * 100:.1f}% ({worst[1]}, {worst[2]})"
                    if job_s else "–", "met": bool(job_s) and worst[0] <= 0.05})
        rqo = sum(r["memsweep"].get("requeued_out") or 0 for r in ms_runs)
        out.append({"target": "no job requeued-out (every memsweep run)", "measured": f"{rqo}", "met": rqo == 0})
    for wl in data["workloads"]:
        g = [r for r in data["runs"] if r["workload"] == wl and r["runner"].startswith("guard")]
        if g:
            n = info[wl]["n"]
            lost = sum(n - r["done"] for r in g)
            ooms = sum(r["oom_kills"] for r in g)
            out.append({"target": f"{wl}: memsweep guard finishes every job, 0 OOM kills (all {len(g)} guard runs)",
                        "measured": f"{lost} jobs lost, {ooms} OOM kills", "met": lost == 0 and ooms == 0})
    gx = runs("heterogeneous", "guard + xargs -P 8")
    if gx and "heterogeneous" in info:
        ref = info["heterogeneous"]["clair_budget_lpt"]
        v = med([r["makespan_s"] for r in gx]) / ref
        out.append({"target": "heterogeneous: guard + xargs -P 8 ≤ 1.5× the peak-reserving reference in the budget",
                    "measured": f"{v:.2f}× ({ref:.1f} s)", "met": v <= 1.5})
    oh = data.get("overhead")
    if oh:
        m = med([r["ms_per_job"] for r in oh["memsweep -j 2"]])
        x = med([r["ms_per_job"] for r in oh["xargs -P 2"]])
        out.append({"target": "overhead ≤ 1 ms per trivial job", "measured": f"{m:.2f} ms", "met": m <= 1.0})
        out.append({"target": "overhead ≤ 2× xargs -P 2", "measured": f"{m / x:.2f}× ({x:.2f} ms)", "met": m <= 2 * x})
    for r in data.get("footprint") or []:
        if r["queued"] == 10000:
            out.append({"target": "memsweep RSS ≤ 10 MiB with 10 000 queued jobs",
                        "measured": f"{r['hwm_bytes'] / MIB:.1f} MiB", "met": r["hwm_bytes"] <= 10 * MIB})
    acc = (data.get("accuracy") or {}).get("cgroup mode")
    if acc is not None:
        rows = [r for r in acc if r["vmhwm"] >= 100 * MIB]
        bad = sum(1 for r in rows if abs(r["err"]) > 0.05)
        out.append({"target": "cgroup mode: peaks within 5% of VmHWM (jobs ≥ 100 MiB)",
                    "measured": f"{len(rows) - bad}/{len(rows)} within", "met": bool(rows) and bad == 0})
    return out


# ---------------------------------------------------------------- main


def workload_info(name: str, jobs: list[Job], limit_mib: float, cpu_s: float, cores: int, desc: str) -> dict:
    return {"n": len(jobs), "min_peak": min(j.peak_mib for j in jobs), "max_peak": max(j.peak_mib for j in jobs),
            "sum_peak": sum(j.peak_mib for j in jobs), "min_t": min(j.duration for j in jobs),
            "max_t": max(j.duration for j in jobs), "seq_t": sum(j.duration for j in jobs), "cpu_s": cpu_s,
            "planned_seq_t": sum(j.planned for j in jobs),
            "lb": lower_bound(jobs, limit_mib, cpu_s, cores), "clair": clairvoyant(jobs, limit_mib), "desc": desc,
            # The same reference inside memsweep's default budget (limit - max(5%, 256 MiB)), largest
            # peak first: what peak reservation alone can reach in the memory memsweep allows itself.
            "budget_mib": budget_mib(limit_mib),
            "clair_budget_lpt": clairvoyant(sorted(jobs, key=lambda j: -j.peak_mib), budget_mib(limit_mib))}


def budget_mib(limit_mib: float) -> float:
    return limit_mib - max(0.05 * limit_mib, 256)


def workload_infos(data: dict) -> dict:
    """Per workload: sizes, the lower bound and the clairvoyant reference, from the plan and the
    measured job times and CPU of `data["runs"]`."""
    info = {}
    runs = data["runs"]
    for wl in data["workloads"]:
        jobs = load_workload(wl)
        wl_runs = [r for r in runs if r["workload"] == wl]
        for j in jobs:
            walls = [r["job_wall_s"][j.id] for r in wl_runs if j.id in r.get("job_wall_s", {})]
            j.measured = min(walls) if walls else None
        complete = [r["job_cpu_s"] for r in wl_runs if r["done"] == len(jobs)]
        info[wl] = workload_info(wl, jobs, data["limit_mib"], med(complete) or 0.0, os.cpu_count() or 1,
                                 DESCS.get(wl.replace("smoke-", ""), ""))
    return info


DESCS = {
    "heterogeneous": "Four sizes (100/250/450/700 MiB), 0.3 s ramp, 1–2 s holds.",
    "spiky": "Small jobs (80–150 MiB), 0.8–1.5 s holds; 6 of 24 jump to 500–700 MiB at 70% of their hold.",
    "llm-eval": "1.5–2.5 s ramp (a quarter of it computing, like loading and tokenising), then a 2.5–3.5 s hold asleep; 300–500 MiB.",
    "heterogeneous-paths": "The heterogeneous jobs with a per-run output path (`out=<run dir>/results/<id>.out`) on each "
                           "command line and the jobs file written into each run's directory: the history run sees "
                           "other command lines and another jobs file. memsweep only.",
    "grid": "`-p seed=range(0,6) -p model=large,small,medium`: memory set by model (100/300/600 MiB), hold by seed "
            "(1.0–1.6 s), 0.3 s ramp, interleaved; no hints. memsweep only.",
    "burst": "Idle at 50 MiB, then +450 MiB with no ramp (as fast as the machine faults pages in, ~0.4 ms per MiB "
             "here: ~0.2 s) at 20–60% of a 1–2 s hold. memsweep only.",
    "spiky-untuned": "Not used while tuning: small jobs (60–200 MiB), 0.1–0.4 s ramps, 0.7–2.0 s holds; 5 of 20 jump to "
                     "400–650 MiB at 50–80% of their hold; another seed. memsweep only.",
    "untuned": "Not used while tuning: 150/350/550 MiB, 0.2/0.6/1.0 s ramps, 0.8–2.5 s holds, another seed, per-run "
               "output paths. memsweep only.",
}


def cmd_run(args) -> int:
    t_start = time.monotonic()
    if not os.access(CG_ROOT / "cgroup.procs", os.W_OK):
        print(f"bench: {CG_ROOT} is not writable; the benchmark needs root and a cgroup-v1 memory hierarchy", file=sys.stderr)
        return 2
    needs = [WORKLOAD_BIN]
    if args.smoke or not args.runners or any(r.startswith(("memsweep", "guard")) for r in args.runners):
        needs.append(MEMSWEEP)
    for p in needs:
        if not p.exists():
            print(f"bench: {p} is missing; run bench/run, which builds it", file=sys.stderr)
            return 2
    clean_stale_cgroups()
    outdir = BENCH / "out" / ("smoke" if args.smoke else "full")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    if args.limit_mib is None:
        args.limit_mib = 1024.0 if args.smoke else 1536.0
    limit = int(args.limit_mib * MIB)
    if args.smoke:
        workloads = ["smoke-heterogeneous", "smoke-spiky", "smoke-llm-eval"]
        runners = ["memsweep", "xargs -P 4"]
        reps = 1
    else:
        workloads = args.workloads or ["heterogeneous", "spiky", "llm-eval", "heterogeneous-paths", "grid", "burst",
                                       "untuned", "spiky-untuned"]
        runners = args.runners or list(RUNNERS)
        reps = args.reps
    runs: list[dict] = []
    cache_root = outdir / "cache"
    for wl in workloads:
        jobs = load_workload(wl)
        timeout = max(60.0, 3 * sum(j.duration for j in jobs))
        for rep in range(reps):
            # A fresh history per repetition; the "+ history" run reuses the one the first run left.
            cache = cache_root / wl / f"rep{rep}"
            for runner in runners:
                if runner == "xargs -P 1" and rep >= args.seq_reps:
                    continue
                if "hydra" in runner and rep >= args.hydra_reps:
                    continue
                if runner == "memsweep --mem-per-job" and rep >= args.mpj_reps:
                    continue
                if runner == "memsweep + history" and "memsweep" not in runners:
                    continue
                if wl in MEMSWEEP_ONLY and ("memsweep" not in runner or "mem-per-job" in runner):
                    continue
                if runner == "base memsweep + history" and "base memsweep" not in runners:
                    continue
                if runner.startswith("base") and not MEMSWEEP_BASE:
                    continue
                if runner in ("memsweep", "memsweep + history"):
                    c = cache
                elif runner in ("base memsweep", "base memsweep + history"):
                    c = cache_root / "base" / wl / f"rep{rep}"
                else:
                    c = cache_root / "none" / wl / runner / str(rep)
                runs.append(one_run(runner, wl, jobs, rep, limit, c, outdir, timeout))
    data = {"runs": runs, "workloads": workloads, "runners": runners, "reps": reps, "limit_mib": args.limit_mib,
            "footprint_cap": args.footprint_cap,
            "runner_desc": {k: v[0] for k, v in RUNNERS.items()}}
    data["workload_info"] = workload_infos(data)
    if args.smoke:
        failures = []
        for r in runs:
            if r["runner"].startswith("memsweep"):
                if r["done"] != r["jobs"]:
                    failures.append(f"{r['workload']}: memsweep finished {r['done']}/{r['jobs']} jobs")
                if r["oom_kills"]:
                    failures.append(f"{r['workload']}: {r['oom_kills']} OOM kills under memsweep")
                if r["runner_died"] or r["timed_out"]:
                    failures.append(f"{r['workload']}: memsweep died or timed out (rc {r['rc']})")
                if r["escaped"]:
                    failures.append(f"{r['workload']}: memsweep's jobs ran outside the benchmark cgroup")
                if r["leftover_pids"]:
                    failures.append(f"{r['workload']}: memsweep exited but left {r['leftover_pids']} processes running")
                if r["leftover_cgroups"]:
                    log(f"warning: {r['workload']}: memsweep left {r['leftover_cgroups']} empty child cgroups behind")
            if r["workload"] != "smoke-llm-eval" and r["done"] == 0:
                failures.append(f"{r['workload']}: {r['runner']} finished no job; the workload or harness is broken")
        left = [str(d) for d in CG_ROOT.glob(f"bench-{os.getpid()}-*")]
        if left:
            failures.append(f"cgroups left behind: {left}")
        (outdir / "smoke.json").write_text(json.dumps(data, indent=1))
        log(f"smoke run took {time.monotonic() - t_start:.0f}s")
        if failures:
            for f in failures:
                print(f"bench --smoke: FAIL: {f}", file=sys.stderr)
            return 1
        print("bench --smoke: ok (memsweep finished every job with no OOM kill)", file=sys.stderr)
        return 0
    if not args.skip_extra:
        data["overhead"] = overhead_runs(outdir, reps)
        data["footprint"] = footprint_runs(outdir, [1000, 10000], args.footprint_cap)
        # Accuracy: cgroup mode from the no-hints memsweep runs above; /proc mode from extra runs.
        cg_runs = [r for r in runs if r["runner"] == "memsweep"]
        proc_runs = []
        for wl in [w for w in workloads if w in ("heterogeneous", "spiky")]:
            jobs = load_workload(wl)
            run_dir = outdir / wl / "memsweep_no_cgroups"
            shutil.rmtree(run_dir, ignore_errors=True)
            RUNNERS["memsweep --no-cgroups"] = (
                "memsweep --no-cgroups", lambda c: memsweep_argv(c, ["--no-cgroups", "--no-history",
                                                                     "--sample-interval", str(args.sample_interval)]))
            proc_runs.append(one_run("memsweep --no-cgroups", wl, jobs, 0, limit, cache_root / "nocg" / wl,
                                     outdir, max(60.0, 3 * sum(j.duration for j in jobs))))
        data["accuracy"] = {"cgroup mode": accuracy_rows(cg_runs, None),
                            f"--no-cgroups, sampling every {args.sample_interval:g} s": accuracy_rows(proc_runs, args.sample_interval)}
        data["proc_runs"] = proc_runs
    data["elapsed_s"] = time.monotonic() - t_start
    data["machine"] = machine_info()
    data["targets"] = targets(data)
    (outdir / "results.json").write_text(json.dumps(data, indent=1, default=str))
    if args.guard_section:
        splice_guard_section(data, ROOT / "BENCHMARKS.md", sys.argv[1:])
        log(f"wrote the guard section of {ROOT / 'BENCHMARKS.md'}")
    elif args.write:
        write_report(data, ROOT / "BENCHMARKS.md")
        log(f"wrote {ROOT / 'BENCHMARKS.md'}")
    log(f"bench/run took {data['elapsed_s'] / 60:.1f} min")
    left = [str(d) for d in CG_ROOT.glob(f"bench-{os.getpid()}-*")]
    if left:
        print(f"bench: cgroups left behind (remove with rmdir): {left}", file=sys.stderr)
        return 1
    return 0


def cmd_overhead(args) -> int:
    """Overhead and footprint only, memsweep against other builds of it in the same run (for
    before/after numbers); prints a table, writes nothing else."""
    others = {}
    for spec in args.compare or []:
        label, _, path = spec.partition("=")
        others[label] = Path(path)
    outdir = BENCH / "out" / "overhead"
    oh = overhead_runs(outdir, args.reps, args.jobs, others) if args.reps else {}
    x = med([r["ms_per_job"] for r in oh.get("xargs -P 2", [])])
    if oh:
        print(f"\n{args.jobs} trivial jobs, median of {args.reps} (reps interleaved):")
        print("| runner | ms per job | × xargs | runs |\n|---|---:|---:|---|")
    for t, rs in oh.items():
        m = med([r["ms_per_job"] for r in rs])
        each = ", ".join(f"{r['ms_per_job']:.2f}" for r in rs)
        print(f"| {t} | {m:.2f} | {m / x:.2f} | {each} |")
    if args.footprint:
        print("\n| build | queued jobs | jobs finished | peak RSS (VmHWM) MiB | CPU s | wall s | exit |\n|---|---:|---:|---:|---:|---:|---:|")
        for label, b in [("memsweep", MEMSWEEP), *others.items()]:
            for r in footprint_runs(outdir, args.footprint, args.footprint_cap, b, label):
                print(f"| {label} | {r['queued']} | {r['done']} | {r['hwm_bytes'] / MIB:.1f} | {r['cpu_s']:.2f} | "
                      f"{r['wall_s']:.1f} | {r['rc']} |")
    return 0


def cmd_report(args) -> int:
    data = json.loads((BENCH / "out" / "full" / "results.json").read_text())
    data["workload_info"] = workload_infos(data)
    data["targets"] = targets(data)
    write_report(data, ROOT / "BENCHMARKS.md")
    return 0


def cmd_gen(args) -> int:
    d = BENCH / "workloads"
    d.mkdir(exist_ok=True)
    for name, lines in gen_workloads().items():
        (d / f"{name}.txt").write_text(
            f"# {name}: generated by `bench/harness.py gen` (fixed seeds); one job per line, the workload's arguments\n"
            + "".join(l + "\n" for l in lines))
    for name in gen_workloads():
        jobs = load_workload(name)
        lb = lower_bound(jobs, 1536, 0, 2)
        print(f"{name}: {len(jobs)} jobs, seq {sum(j.duration for j in jobs):.1f}s, "
              f"LB {lb['value']:.1f}s ({lb['binding']}), clairvoyant {clairvoyant(jobs, 1536):.1f}s")
    return 0


def on_sigterm(signum, frame):
    # Unwind like Ctrl-C, so the run in progress kills its processes and removes its cgroup.
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmark (bench/run calls this)")
    r.add_argument("--smoke", action="store_true", help="tiny workloads, memsweep + xargs; fail on a lost job or OOM kill")
    r.add_argument("--reps", type=int, default=3)
    r.add_argument("--seq-reps", type=int, default=1, help="repetitions of the slow xargs -P 1 baseline")
    r.add_argument("--hydra-reps", type=int, default=1, help="repetitions of the slow Hydra joblib baseline (2 workers)")
    r.add_argument("--mpj-reps", type=int, default=1,
                   help="repetitions of memsweep --mem-per-job <largest job> (one job at a time here, so slow)")
    r.add_argument("--footprint-cap", type=float, default=45.0,
                   help="seconds before a footprint run (1 000 / 10 000 queued `true` jobs) is stopped with Ctrl-C")
    r.add_argument("--limit-mib", type=float, help="the cgroup's limit (default 1536; 1024 with --smoke)")
    r.add_argument("--sample-interval", type=float, default=0.2)
    r.add_argument("--workloads", nargs="*")
    r.add_argument("--runners", nargs="*", choices=list(RUNNERS))
    r.add_argument("--skip-extra", action="store_true", help="skip overhead, footprint and accuracy runs")
    r.add_argument("--no-write", dest="write", action="store_false", help="do not rewrite BENCHMARKS.md")
    r.add_argument("--guard-section", action="store_true",
                   help="write only the `memsweep guard` section of BENCHMARKS.md from this run")
    o = sub.add_parser("overhead", help="overhead and footprint only, optionally against other memsweep builds")
    o.add_argument("--reps", type=int, default=3)
    o.add_argument("--jobs", type=int, default=1000)
    o.add_argument("--compare", nargs="*", metavar="LABEL=BINARY", help="other memsweep binaries to run alongside")
    o.add_argument("--footprint", type=int, nargs="*", metavar="N", help="also measure RSS with N queued jobs")
    o.add_argument("--footprint-cap", type=float, default=600.0)
    sub.add_parser("gen", help="rewrite bench/workloads/*.txt from their seeds")
    sub.add_parser("report", help="rewrite BENCHMARKS.md from bench/out/full/results.json")
    args = ap.parse_args()
    return {"run": cmd_run, "gen": cmd_gen, "report": cmd_report, "overhead": cmd_overhead}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
