"""The CLI's side of cluster backends: flags + experiments.toml -> a backend, and the
"where" of a run for the status table. Kept out of cli.py so the commands stay short."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.backends.base import Placement
from engine.config.cluster import ClusterSettings, load_cluster, parse_sbatch_options, with_flags
from engine.errors import XlingError
from engine.runs.status import LIVE

SLURM_ONLY = ("partition", "time", "account", "sbatch")


class ClusterUsageError(XlingError, ValueError):
    """Launch flags that do not fit together, the chosen backend or this machine; one line for the user."""


def cluster_backend(config: Path, backend: str, device: str, flags: dict[str, Any]) -> tuple[Any, Placement] | None:
    """The backend and the placement every run gets, or None for local runs.

    ``flags`` holds the command-line values (None when not given); ``device`` is the
    --device choice (auto, cpu, cuda). Errors: SpecError (file:line:field or --flag),
    ClusterUsageError, BackendError (no Ray cluster).
    """
    given = [k for k, v in flags.items() if v not in (None, [], {})]
    if backend == "local":
        if given:
            raise ClusterUsageError(f"--{given[0].replace('_', '-')} applies to --backend slurm or ray")
        return None
    settings = load_cluster(config) if Path(config).exists() else ClusterSettings()
    if backend == "slurm":
        return _slurm(settings, device, flags)
    misplaced = [k for k in SLURM_ONLY if k in given]
    if misplaced:
        raise ClusterUsageError(f"--{misplaced[0]} applies to --backend slurm")
    return _ray(settings, device, flags)


def _slurm(settings: ClusterSettings, device: str, flags: dict[str, Any]) -> tuple[Any, Placement]:
    from engine.backends.slurm import SlurmBackend

    slurm_flags = {k: flags.get(k) for k in ("partition", "gpus_per_run", "cpus_per_run", "time", "account")}
    slurm_flags["sbatch"] = parse_sbatch_options(flags.get("sbatch"))
    if device == "cpu":
        if (flags.get("gpus_per_run") or 0) > 0:
            raise ClusterUsageError("--device cpu with --gpus-per-run > 0: choose one")
        slurm_flags["gpus_per_run"] = 0
    settings = with_flags(settings, "slurm", slurm_flags)
    if device == "cuda" and settings.slurm.gpus_per_run == 0:
        raise ClusterUsageError(
            "--device cuda needs GPUs: give --gpus-per-run 1 (or set gpus_per_run in [cluster.slurm])"
        )
    backend = SlurmBackend(settings.slurm)
    backend.check()
    return backend, backend.placement()


def _ray(settings: ClusterSettings, device: str, flags: dict[str, Any]) -> tuple[Any, Placement]:
    from engine.backends.ray import RayBackend

    ray_flags = {
        "address": flags.get("ray_address"),
        "gpus_per_run": flags.get("gpus_per_run"),
        "cpus_per_run": flags.get("cpus_per_run"),
    }
    settings = with_flags(settings, "ray", ray_flags)
    backend = RayBackend(settings.ray)
    if device == "auto":
        device = "cuda" if settings.ray.gpus_per_run > 0 and backend.cluster_has_gpus() else "cpu"
    elif device == "cuda" and settings.ray.gpus_per_run == 0:
        raise ClusterUsageError(
            "--device cuda needs GPUs: give --gpus-per-run 1 (or set gpus_per_run in [cluster.ray])"
        )
    return backend, backend.placement(device)


def where(row: dict) -> str:
    """Host and job of a status row, on one line: 'node7 slurm 1234 RUNNING', 'box pid 4242';
    the job's state only while the run is not over."""
    backend, job_id = row.get("backend"), row.get("job_id")
    if job_id and backend not in (None, "local"):
        job = f"{backend} {job_id if len(job_id) <= 12 else job_id[:10] + '…'}"
        if row.get("job_state") and row.get("status") in LIVE:
            job = f"{job} {row['job_state']}"
    else:
        job = f"pid {row['pid']}" if row.get("pid") else ""
    return " ".join(p for p in (row.get("host") or "", job) if p)
