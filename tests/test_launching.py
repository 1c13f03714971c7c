"""`xling run` / `xling resume`'s shared options as one value, and the launcher they make."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.backends.base import Placement
from engine.launch.pools import ClusterPool, CpuPool
from xling_tui.cli.cluster import ClusterUsageError
from xling_tui.cli.launching import (
    BackendName,
    ClusterFlags,
    Device,
    LaunchFlags,
    LaunchPlan,
    launch_options,
    plan_launch,
)
from xling_tui.cli.main import app

runner = CliRunner()


def captured(*args: str) -> LaunchFlags:
    """The LaunchFlags a decorated command receives for these arguments (and its own option)."""
    got: list = []
    demo = typer.Typer()

    @demo.command()
    @launch_options
    def cmd(name: str = "x", *, flags: LaunchFlags) -> None:
        got.append((name, flags))

    result = runner.invoke(demo, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert got[0][0] == "n"
    return got[0][1]


def test_a_command_gets_every_shared_option_as_one_value():
    flags = captured("--name", "n", "--device", "cpu", "--max-parallel", "3", "--backend", "slurm")
    assert flags == LaunchFlags(device=Device.cpu, max_parallel=3, cluster=ClusterFlags(backend=BackendName.slurm))
    flags = captured("--name", "n", "--sbatch", "a=1", "--sbatch", "b", "--time", "90", "--detach")
    assert flags.cluster.sbatch == ["a=1", "b"] and flags.cluster.time == "90" and flags.cluster.detach
    assert flags.cluster.overrides()["sbatch"] == ["a=1", "b"] and "detach" not in flags.cluster.overrides()


def test_run_and_resume_declare_the_same_options():
    def options(command: str) -> set[str]:
        out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        return {w.strip("│ ") for w in out.split() if w.startswith("--")}

    shared = {"--device", "--max-parallel", "--gpus", "--runs-per-gpu", "--backend", "--partition", "--detach"}
    assert shared <= options("run") and shared <= options("resume")


def test_plan_checks_flags_that_do_not_fit(tmp_path):
    toml = tmp_path / "none.toml"
    with pytest.raises(ClusterUsageError, match="--detach needs --backend slurm"):
        plan_launch(toml, LaunchFlags(cluster=ClusterFlags(detach=True)))
    with pytest.raises(ClusterUsageError, match="--gpus 'a,b'"):
        plan_launch(toml, LaunchFlags(device=Device.cpu, gpus="a,b"))
    with pytest.raises(ClusterUsageError, match="--partition applies to --backend slurm or ray"):
        plan_launch(toml, LaunchFlags(device=Device.cpu, cluster=ClusterFlags(partition="gpu")))
    plan = plan_launch(toml, LaunchFlags(device=Device.cpu, gpus="0,2"))
    assert plan.device == "cpu" and plan.gpus == [0, 2] and plan.cluster is None and plan.where == "local"


def test_the_launcher_is_built_whole_with_its_pool():
    cpu = LaunchPlan(LaunchFlags(device=Device.cpu, max_parallel=2), "cpu", None, None).launcher(Path("."), None, 5)
    assert cpu.max_parallel == 2 and isinstance(cpu.pool, CpuPool) and cpu.pool.capacity == 2
    one = LaunchPlan(LaunchFlags(device=Device.cpu), "cpu", None, None).launcher(Path("."), None, 5)
    assert one.max_parallel == 1 and one.pool.capacity == 1

    class Scheduler:  # a cluster backend as plan_launch returns it
        name, poll_interval = "slurm", 1.0

    request = Placement("cpu", threads=8)
    flags = LaunchFlags(cluster=ClusterFlags(backend=BackendName.slurm, detach=True))
    cluster = LaunchPlan(flags, "cpu", None, (Scheduler(), request)).launcher(Path("."), None, 5)
    assert isinstance(cluster.pool, ClusterPool) and cluster.pool.acquire("r") is request
    assert cluster.max_parallel == 5 and cluster.detach and cluster.backend.name == "slurm"
