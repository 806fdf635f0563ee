"""Hydra launcher that runs a multirun's jobs through ``memsweep run``: as many at once as the
container's memory allows, each job measured, paused or requeued under pressure instead of being
OOM-killed. Select it with ``hydra/launcher=memsweep``."""

__version__ = "0.1.0"
