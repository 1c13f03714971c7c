"""How ``xling run`` and ``xling resume`` start workers: their shared options, once.

The device and cluster options are declared once, as the fields of ``LaunchFlags`` and
``ClusterFlags``; ``launch_options`` gives a Typer command all of them and hands it one
``LaunchFlags`` value. ``plan_launch`` turns the flags into a device and a backend, and
``LaunchPlan.launcher`` builds the Launcher with its pool in one go.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from engine.backends.base import Backend, Placement
    from engine.launch.launcher import Launcher, ResultSink


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class BackendName(str, Enum):
    local = "local"
    slurm = "slurm"
    ray = "ray"


CLUSTER_PANEL = "Cluster (\\[cluster.slurm] / \\[cluster.ray] in the experiments file; flags override)"


def _cluster_option(*names: str, help: str, min: int | None = None) -> Any:
    return typer.Option(*names, help=help, min=min, show_default=False, rich_help_panel=CLUSTER_PANEL)


@dataclass(frozen=True)
class ClusterFlags:
    """Where runs train, as given on the command line (None: not given, the file's value holds)."""

    backend: Annotated[
        BackendName | None,
        _cluster_option(
            "--backend",
            help="where runs train: local processes, Slurm jobs (submitit), Ray tasks "
            "\\[default: local; resume: where the run last went]",
        ),
    ] = None
    partition: Annotated[str | None, _cluster_option(help="Slurm partition")] = None
    gpus_per_run: Annotated[
        int | None,
        _cluster_option(
            "--gpus-per-run", min=0, help="GPUs per run (Slurm job or Ray task); 0 trains on CPUs \\[default: 1]"
        ),
    ] = None
    cpus_per_run: Annotated[
        int | None, _cluster_option("--cpus-per-run", min=1, help="CPU cores per run \\[default: Slurm 8, Ray 1]")
    ] = None
    time: Annotated[
        str | None,
        _cluster_option(
            "--time",
            help="Slurm time limit per job: minutes, HH:MM:SS or D-HH:MM:SS; a run that needs longer is "
            "checkpointed and requeued \\[default: 4:00:00]",
        ),
    ] = None
    account: Annotated[str | None, _cluster_option(help="Slurm account")] = None
    sbatch: Annotated[
        list[str] | None,
        _cluster_option("--sbatch", help="extra sbatch option KEY=VALUE, e.g. constraint=a100 (repeatable)"),
    ] = None
    ray_address: Annotated[
        str | None, _cluster_option("--ray-address", help="Ray cluster to join \\[default: auto]")
    ] = None
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Slurm: submit every run and return; `xling status` follows the jobs",
            rich_help_panel=CLUSTER_PANEL,
        ),
    ] = False

    def overrides(self) -> dict[str, Any]:
        """The scheduler settings given on the command line, for ``cluster_backend``."""
        skip = {"backend", "detach"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass(frozen=True)
class LaunchFlags:
    """The options ``xling run`` and ``xling resume`` share: device, parallelism, cluster."""

    device: Annotated[Device, typer.Option(help="where to train")] = Device.auto
    max_parallel: Annotated[
        int | None,
        typer.Option(min=1, help="runs at once [default: 1 on CPU, one per GPU slot]", show_default=False),
    ] = None
    gpus: Annotated[
        str | None, typer.Option("--gpus", help="only these GPU indices, e.g. 0,2 (PCI order)", show_default=False)
    ] = None
    runs_per_gpu: Annotated[int, typer.Option("--runs-per-gpu", min=1, help="runs sharing one GPU")] = 1
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads per run at most; each run gets what the host's CPU slots grant, shared with every "
            "other xling session and less when other programs keep the cores busy [default: the cores over "
            "--max-parallel]",
            show_default=False,
        ),
    ] = None
    cluster: ClusterFlags = ClusterFlags()


def _option_parameters(cls: type) -> list[inspect.Parameter]:
    """A keyword parameter per field declared as a Typer option (``Annotated[..., typer.Option]``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
        for f in fields(cls)
        if typing.get_origin(hints[f.name]) is Annotated and f.default is not MISSING
    ]


def launch_options(command: Callable[..., None]) -> Callable[..., None]:
    """Gives a Typer command every option of ``LaunchFlags`` and ``ClusterFlags``; the command
    receives them as one keyword argument, ``flags: LaunchFlags``.

    Typer reads a command's options from its signature: the wrapper's is the command's
    own parameters followed by the flags' fields, so each option is declared once.
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "flags"]
    launch, cluster = _option_parameters(LaunchFlags), _option_parameters(ClusterFlags)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        cluster_flags = ClusterFlags(**{p.name: kwargs.pop(p.name) for p in cluster})
        flags = LaunchFlags(**{p.name: kwargs.pop(p.name) for p in launch}, cluster=cluster_flags)
        command(**kwargs, flags=flags)

    wrapper.__signature__ = inspect.Signature(own + launch + cluster)  # type: ignore[attr-defined]
    return wrapper


@dataclass(frozen=True)
class LaunchPlan:
    """The flags resolved: the device workers train on and, for a cluster, its backend."""

    flags: LaunchFlags
    device: str  # "cpu" or "cuda"
    gpus: list[int] | None  # --gpus, parsed
    cluster: tuple[Backend, Placement] | None  # None: local processes

    @property
    def where(self) -> str:
        return self.cluster[0].name if self.cluster else "local"

    def launcher(self, root: Path, sink: ResultSink, n_runs: int) -> Launcher:
        """A Launcher with the pool this plan asks for: the scheduler's slots, free GPUs or CPU slots."""
        from engine.launch.launcher import Launcher
        from engine.launch.pools import ClusterPool, CpuPool, GpuPool

        cap = self.flags.max_parallel
        if self.cluster:
            backend, placement = self.cluster
            slots = cap or max(1, n_runs)
            detach = self.flags.cluster.detach
            pool = ClusterPool(placement, slots)
            return Launcher(root, sink=sink, max_parallel=slots, pool=pool, backend=backend, detach=detach)
        if self.device == "cuda":
            gpus = GpuPool(self.gpus, self.flags.runs_per_gpu)
            return Launcher(root, sink=sink, max_parallel=cap or gpus.capacity, pool=gpus)
        return Launcher(root, sink=sink, max_parallel=cap or 1, pool=CpuPool(cap or 1, self.flags.threads))


def plan_launch(config: Path, flags: LaunchFlags) -> LaunchPlan:
    """Resolve the flags against the experiments file's [cluster] and this machine.

    Errors: ClusterUsageError (flags that do not fit), SpecError (a bad [cluster] value or
    flag), BackendError (no Ray cluster, no sbatch).
    """
    from xling_tui.cli.cluster import ClusterUsageError, cluster_backend

    name = (flags.cluster.backend or BackendName.local).value
    if flags.cluster.detach and name != "slurm":
        raise ClusterUsageError("--detach needs --backend slurm (Ray runs live as long as their xling run)")
    cluster = cluster_backend(config, name, flags.device.value, flags.cluster.overrides())
    device = cluster[1].device if cluster else _local_device(flags.device)
    return LaunchPlan(flags, device, _parse_gpus(flags.gpus), cluster)


def _local_device(device: Device) -> str:
    if device == Device.cpu:
        return "cpu"
    from engine.launch.devices import cuda_device_count
    from xling_tui.cli.cluster import ClusterUsageError

    n = cuda_device_count()
    if device == Device.cuda and n == 0:
        raise ClusterUsageError("--device cuda: no CUDA GPU is visible (NVML found none); use --device cpu")
    return "cuda" if n > 0 else "cpu"


def _parse_gpus(gpus: str | None) -> list[int] | None:
    from xling_tui.cli.cluster import ClusterUsageError

    if gpus is None:
        return None
    try:
        return [int(g) for g in gpus.split(",") if g.strip()]
    except ValueError:
        raise ClusterUsageError(f"--gpus {gpus!r}: give GPU indices separated by commas, e.g. 0,2") from None
