"""A tiny Hydra app standing in for a training or evaluation run: it holds `mem_mib` MiB for
`seconds` seconds, writes result.json into its Hydra output dir and returns a made-up loss.

    python -m my_app --multirun hydra/launcher=memsweep seed=0,1,2,3 mem_mib=300
    python -m my_app --config-name=math-c3 --multirun hydra/launcher=memsweep trajectory.eval.limit=5

(run from this directory). Used by the Python tests and the docs.
"""

import json
import logging
import os
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def memory_cgroup() -> str:
    """This process's memory cgroup (v1 memory line, else the v2 line), "" off Linux."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = [line.strip().split(":", 2) for line in f]
    except OSError:
        return ""
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            return path
    return next((path for hid, _, path in lines if hid == "0"), "")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    if cfg.fail:
        raise ValueError(f"seed={cfg.seed}: failing on purpose (fail=true)")
    chunks = []
    for _ in range(cfg.mem_mib // 16):
        chunks.append(b"x" * (16 << 20))  # bytes multiplication touches every page
    rest = cfg.mem_mib % 16
    if rest:
        chunks.append(b"x" * (rest << 20))
    time.sleep(cfg.seconds * cfg.trajectory.eval.limit / 10)
    loss = round(1.0 / (1 + cfg.seed + cfg.trajectory.eval.limit), 4)
    hc = HydraConfig.get()
    out = hc.runtime.output_dir
    with open(os.path.join(out, "result.json"), "w") as f:
        result = {
            "seed": cfg.seed,
            "mem_mib": cfg.mem_mib,
            "loss": loss,
            "pid": os.getpid(),
        }
        json.dump({**result, "memory_cgroup": memory_cgroup()}, f)
    log.info(
        "job %s: seed=%s mem=%sMiB loss=%s", hc.job.num, cfg.seed, cfg.mem_mib, loss
    )
    return loss


if __name__ == "__main__":
    main()
