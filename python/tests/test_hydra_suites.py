"""Hydra's own launcher test suites, run against hydra/launcher=memsweep (each job really goes
through the memsweep binary and a worker process)."""

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from pytest import fixture, mark

from hydra_plugins.hydra_memsweep_launcher.memsweep_launcher import MemsweepLauncher


def test_discovery() -> None:
    # Hydra finds the plugin through the hydra_plugins namespace package of the installed wheel.
    assert MemsweepLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@mark.parametrize(
    "launcher_name, overrides",
    [
        ("memsweep", []),
        # every flag the launcher passes, as memsweep accepts it; /proc sampling, no cgroups
        (
            "memsweep",
            [
                "hydra.launcher.n_jobs=0",
                "hydra.launcher.mem_per_job=200M",
                "hydra.launcher.reserve=10%",
                "hydra.launcher.limit=8G",
                "hydra.launcher.on_pressure=requeue",
                "hydra.launcher.retries=1",
                "hydra.launcher.history=false",
                "hydra.launcher.cgroups=false",
            ],
        ),
    ],
)
class TestMemsweepLauncher(LauncherTestSuite):
    pass


@mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {},
            [
                "-m",
                "hydra/job_logging=hydra_debug",
                "hydra/job_logging=disabled",
                "hydra/launcher=memsweep",
            ],
        )
    ],
)
class TestMemsweepLauncherIntegration(IntegrationTestSuite):
    pass


@fixture
def on_slurm(slurm_cluster: str) -> str:
    return slurm_cluster


@mark.usefixtures("on_slurm")
@mark.parametrize(
    "launcher_name, overrides",
    [("memsweep", ["hydra.launcher.backend=slurm", "hydra.launcher.slurm_args=['--time=5']"])],
)
class TestMemsweepLauncherOnSlurm(LauncherTestSuite):
    """The same suite with every job an sbatch array task on a real (private) Slurm cluster."""


@mark.usefixtures("on_slurm")
@mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {},
            [
                "-m",
                "hydra/job_logging=hydra_debug",
                "hydra/job_logging=disabled",
                "hydra/launcher=memsweep",
                "hydra.launcher.backend=slurm",
            ],
        )
    ],
)
class TestMemsweepLauncherIntegrationOnSlurm(IntegrationTestSuite):
    pass
