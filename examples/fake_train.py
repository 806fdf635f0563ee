#!/usr/bin/env python3
"""A stand-in for a training run: loads "data" (allocates and touches memory), "trains"
(sleeps), writes a result. Used by the Quickstart demo and the README examples."""

import argparse
import json
import os
import time

p = argparse.ArgumentParser()
p.add_argument("--mem-mib", type=int, default=100, help="memory to hold (MiB)")
p.add_argument("--seconds", type=float, default=1.0, help="how long to hold it")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--lr", type=float, default=0.1, help="recorded in the result")
p.add_argument("--data", default="", help="recorded in the result")
a = p.parse_args()

chunks = []
for _ in range(a.mem_mib // 16):
    chunks.append(b"x" * (16 << 20))  # bytes multiplication writes every page
    time.sleep(0.01)
time.sleep(a.seconds)
loss = round(1.0 / (1 + a.seed + a.mem_mib / 100), 4)
out = os.environ.get("MEMSWEEP_JOB_DIR", ".")
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump({"mem_mib": a.mem_mib, "seed": a.seed, "lr": a.lr, "data": a.data, "loss": loss}, f)
print(f"mem={a.mem_mib}MiB seed={a.seed} loss={loss}")
