"""The launcher's configuration, registered as ``hydra/launcher=memsweep``.

Hydra imports this module at every application start (plugin discovery), so it imports only
the config store.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class MemsweepLauncherConf:
    """Each field mirrors a ``memsweep run`` flag; null means memsweep's own default.

    Sizes are strings as memsweep reads them: ``4G``, ``512M``, ``1.5GiB`` (all binary: G = 2**30
    bytes), and for mem_per_job, reserve and job_mem_max also ``N%`` of the memory limit.
    """

    _target_: str = "hydra_plugins.hydra_memsweep_launcher.memsweep_launcher.MemsweepLauncher"

    # -j: at most this many jobs at once; null = the effective CPUs, 0 = memory is the only cap
    n_jobs: Optional[int] = None
    # --mem-per-job: expected peak of each job; null = learn it from running jobs and earlier sweeps
    mem_per_job: Optional[str] = None
    # --reserve: memory kept free for your shell and SSH; null = max(5% of the limit, 256M)
    reserve: Optional[str] = None
    # --limit: memory to plan for; null = the container's real limit (cgroup, else host RAM)
    limit: Optional[str] = None
    # --job-mem-max: hard cap per job (its own memory cgroup); a job above it is killed alone
    job_mem_max: Optional[str] = None
    # --on-pressure: pause | requeue | none; null = memsweep's default (pause)
    on_pressure: Optional[str] = None
    # --retries: attempts after the first for a job that memsweep stopped under memory pressure;
    # null = memsweep's default (3)
    retries: Optional[int] = None
    # false = --no-history: do not learn from or record to the history of earlier sweeps
    history: bool = True
    # false = --no-cgroups: measure jobs by sampling /proc instead of per-job memory cgroups
    cgroups: bool = True
    # --timeout: stop a job running longer than this (90s, 30m, 2h); null = no limit
    timeout: Optional[str] = None
    # --fail-fast: start no more jobs after the first failure
    fail_fast: bool = False
    # path of the memsweep binary; null = $MEMSWEEP_BIN, then this Python's scripts dir, then PATH
    binary: Optional[str] = None
    # --backend: local (this machine) | slurm (each job an sbatch array task with a learned --mem;
    # the sweep dir must be on a filesystem every node sees)
    backend: str = "local"
    # --slurm-arg, one per item: sbatch options such as --partition=gpu or --time=60
    slurm_args: List[str] = field(default_factory=list)


ConfigStore.instance().store(
    group="hydra/launcher",
    name="memsweep",
    node=MemsweepLauncherConf,
    provider="memsweep",
)
