"""A tiny Hydra app for the benchmark: each job runs one line of the workload's jobs file.

Run as `python app.py --multirun hydra/launcher=joblib job=h00,h01,...` with BENCH_JOBS naming the
jobs file (one shell command per line, each starting `.../workload id=NAME ...`). The task runs the
line with subprocess, as a Hydra user wrapping a program would, and fails if the program fails.
"""

import os
import shlex
import subprocess

import hydra
from omegaconf import DictConfig


def command_for(job: str) -> str:
    with open(os.environ["BENCH_JOBS"]) as f:
        for line in f:
            if f" id={job} " in f" {line.strip()} ":
                return line.strip()
    raise KeyError(f"no line with id={job} in {os.environ['BENCH_JOBS']}")


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg: DictConfig) -> int:
    rc = subprocess.run(shlex.split(command_for(str(cfg.job)))).returncode
    if rc != 0:
        raise RuntimeError(f"job {cfg.job} exited with {rc}")
    return rc


if __name__ == "__main__":
    main()
