#!/usr/bin/env python3
"""One sweep on a real Slurm cluster, sized three ways (BENCHMARKS.md, "Slurm --mem"):

  (a) one --mem for every job, sized to the largest job (what Hydra's submitit launcher does);
  (b) doubling on OUT_OF_MEMORY from a small start (Nextflow's `memory { 256.MB * task.attempt }`);
  (c) memsweep --backend slurm, first with an empty history, then again with what it learned.

For each: the memory requested beyond what was used, summed over time (GiB·s: per attempt,
(--mem − peak) × wall; an attempt killed for memory used its whole --mem and is counted as failed),
failed attempts, and makespan. Jobs are bench/build/workload (grow to M MiB, hold, exit).

Usage: bench/slurm.py [--jobs N] [--seed S] [--hold S]
Starts a private cluster with scripts/slurm-up (root, Slurm installed by scripts/setup) unless
SLURM_CONF points at one; stops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
GIB = 1 << 30


def sh(*args: str, env: dict | None = None, check: bool = True) -> str:
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def scontrol_times(ids: list[str], env: dict) -> dict[str, float]:
    """Wall seconds (1 s resolution) of ended jobs, from the controller (MinJobAge keeps them)."""
    out = {}
    for i in ids:
        text = sh("scontrol", "-o", "show", "job", i, env=env, check=False)
        m1 = re.search(r"StartTime=(\S+)", text)
        m2 = re.search(r"EndTime=(\S+)", text)
        if m1 and m2 and "Unknown" not in (m1.group(1), m2.group(1)):
            fmt = "%Y-%m-%dT%H:%M:%S"
            out[i] = time.mktime(time.strptime(m2.group(1), fmt)) - time.mktime(
                time.strptime(m1.group(1), fmt)
            )
    return out


def attempts_from_journal(out: Path, env: dict) -> list[dict]:
    """(mem, used, wall, ok) per attempt of a memsweep sweep directory."""
    events = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    starts: dict[int, dict] = {}
    rows = []
    for e in events:
        if e["event"] == "job_start":
            starts[e["job"]] = e
        elif e["event"] in ("job_end", "job_requeue"):
            s = starts.pop(e["job"])
            ok = e["event"] == "job_end" and e["status"] == "succeeded"
            rows.append(
                dict(
                    id=s["slurm_id"],
                    mem=s["estimate_bytes"],
                    used=e.get("peak_bytes") if ok else s["estimate_bytes"],
                    wall=e.get("wall_s") if ok else None,
                    ok=ok,
                )
            )
    walls = scontrol_times([r["id"] for r in rows if r["wall"] is None], env)
    for r in rows:
        if r["wall"] is None:
            r["wall"] = walls.get(r["id"], 0.0)
    return rows


def run_memsweep(
    name: str, jobs_file: Path, work: Path, env: dict, extra: list[str]
) -> tuple[list[dict], float]:
    out = work / name
    t = time.monotonic()
    p = subprocess.run(
        [str(REPO / "target/release/memsweep"), "run", "--backend", "slurm", "--out", str(out),
         "--jobs-file", str(jobs_file), *extra],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    makespan = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"memsweep ({name}) exited {p.returncode}:\n{p.stderr[-3000:]}")
    return attempts_from_journal(out, env), makespan


def run_doubling(
    jobs: list[tuple[str, int]], work: Path, env: dict, start_mib: int
) -> tuple[list[dict], float]:
    """Every job as an array task with --mem=start; each OUT_OF_MEMORY again with twice as much."""
    results = work / "doubling-results"
    results.mkdir()
    env = dict(env, BENCH_RESULTS=str(results))
    mem = {i: start_mib for i in range(len(jobs))}
    todo = list(range(len(jobs)))
    rows = []
    t = time.monotonic()
    while todo:
        by_mem: dict[int, list[int]] = {}
        for i in todo:
            by_mem.setdefault(mem[i], []).append(i)
        live: dict[str, tuple[int, int]] = {}
        for m, idx in by_mem.items():
            lst = work / f"doubling-{len(rows)}-{m}.txt"
            lst.write_text("".join(jobs[i][0] + "\n" for i in idx))
            script = work / f"doubling-{len(rows)}-{m}.sh"
            script.write_text(
                f"#!/bin/sh\n#SBATCH --job-name=bench-doubling\n#SBATCH --array=0-{len(idx) - 1}\n"
                f"#SBATCH --mem={m}M\n#SBATCH --output=/dev/null\n"
                f'exec sh -c "$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {lst})"\n'
            )
            aid = sh("sbatch", "--parsable", str(script), env=env).strip().split(";")[0]
            for k, i in enumerate(idx):
                live[f"{aid}_{k}"] = (i, m)
        todo = []
        while live:
            time.sleep(0.5)
            listed = {}
            for line in sh("squeue", "-h", "-r", "-t", "all", "--name", "bench-doubling",
                           "-o", "%i|%T", env=env).splitlines():  # fmt: skip
                k, st = line.split("|")
                listed[k] = st
            for k in list(live):
                st = listed.get(k)
                if st in ("COMPLETED", "FAILED", "OUT_OF_MEMORY", "CANCELLED", "TIMEOUT"):
                    i, m = live.pop(k)
                    jid = jobs[i][0].split("id=")[1].split()[0]
                    res = results / f"{jid}.json"
                    if st == "COMPLETED" and res.exists():
                        r = json.loads(res.read_text())
                        rows.append(dict(id=k, mem=m * MIB, used=r["vmhwm_kb"] * 1024,
                                         wall=r["wall_s"], ok=True))  # fmt: skip
                    else:
                        rows.append(dict(id=k, mem=m * MIB, used=m * MIB, wall=None, ok=False))
                        mem[i] = m * 2
                        todo.append(i)
    makespan = time.monotonic() - t
    walls = scontrol_times([r["id"] for r in rows if r["wall"] is None], env)
    for r in rows:
        if r["wall"] is None:
            r["wall"] = walls.get(r["id"], 0.0)
    return rows, makespan


def report(name: str, rows: list[dict], makespan: float) -> dict:
    excess = sum(max(0, r["mem"] - r["used"]) * r["wall"] for r in rows) / GIB
    asked = sum(r["mem"] * r["wall"] for r in rows) / GIB
    return dict(
        method=name,
        excess_gib_s=round(excess, 1),
        asked_gib_s=round(asked, 1),
        failed_attempts=sum(1 for r in rows if not r["ok"]),
        attempts=len(rows),
        makespan_s=round(makespan, 1),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--shape", choices=["lognormal", "grid"], default="lognormal")
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    build = REPO / "bench/build"
    build.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", str(build / "workload"), str(REPO / "bench/workload.c")],
                   check=True)  # fmt: skip
    rng = random.Random(a.seed)
    if a.shape == "lognormal":
        mibs = [int(min(1500, max(64, rng.lognormvariate(5.8, 0.6)))) for _ in range(a.jobs)]
    else:
        mibs = [100 + (1100 * i) // max(1, a.jobs - 1) for i in range(a.jobs)]
    jobs = [(f"{build / 'workload'} id=j{i} mem={m} ramp=1 hold={a.hold}", m) for i, m in enumerate(mibs)]

    work = Path(tempfile.mkdtemp(prefix="memsweep-bench-slurm-"))
    os.chmod(work, 0o755)
    env = dict(os.environ)
    cluster = None
    if "SLURM_CONF" not in env:
        cluster = work / "cluster"
        up = subprocess.run([str(REPO / "scripts/slurm-up"), str(cluster)], capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"scripts/slurm-up failed: {up.stderr}")
        env["SLURM_CONF"] = str(cluster / "etc/slurm.conf")
    try:
        jobs_file = work / "jobs.txt"
        jobs_file.write_text("".join(j + "\n" for j, _ in jobs))
        res = []
        for name in ("a", "c1", "c2"):
            (work / f"res-{name}").mkdir()
        largest = max(mibs)
        # (a): one --mem, the largest job's own need (its peak + 10%, whole MiB).
        env_a = dict(env, BENCH_RESULTS=str(work / "res-a"), XDG_CACHE_HOME=str(work / "cache-a"))
        rows, ms = run_memsweep("a", jobs_file, work, env_a,
                                ["--no-history", "--mem-per-job", f"{int(largest * 1.1) + 16}M"])  # fmt: skip
        res.append(report("(a) one --mem sized to the largest", rows, ms))
        rows, ms = run_doubling(jobs, work, env, 256)
        res.append(report("(b) doubling from 256 MiB", rows, ms))
        env_c = dict(env, XDG_CACHE_HOME=str(work / "cache-c"))
        rows, ms = run_memsweep("c1", jobs_file, work, dict(env_c, BENCH_RESULTS=str(work / "res-c1")), [])
        res.append(report("(c) memsweep, first run (no history)", rows, ms))
        rows, ms = run_memsweep("c2", jobs_file, work, dict(env_c, BENCH_RESULTS=str(work / "res-c2")), [])
        res.append(report("(c) memsweep, second run (learned)", rows, ms))
    finally:
        if cluster is not None:
            subprocess.run([str(REPO / "scripts/slurm-down"), str(cluster)], capture_output=True)
    print(f"{a.jobs} jobs ({a.shape}, seed {a.seed}), peaks {min(mibs)}–{max(mibs)} MiB, "
          f"ramp 1 s + hold {a.hold} s each\n")  # fmt: skip
    print("| method | excess GiB·s | asked GiB·s | failed attempts | attempts | makespan s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in res:
        print(f"| {r['method']} | {r['excess_gib_s']} | {r['asked_gib_s']} | {r['failed_attempts']} "
              f"| {r['attempts']} | {r['makespan_s']} |")  # fmt: skip
    base = res[0]["excess_gib_s"] or 1
    print(f"\nmemsweep learned excess / (a): {res[3]['excess_gib_s'] / base:.1%}; "
          f"first-run failed attempts per 10 jobs: {10 * res[2]['failed_attempts'] / a.jobs:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
