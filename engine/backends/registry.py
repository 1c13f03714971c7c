"""Cluster backends by name, for runs started by an earlier ``xling`` process.

A run's log records which backend took it (a ``submitted`` event); whoever later
asks whether its job lives, or cancels it, finds the backend's control here. Local
runs have none: their pid on this host answers.
"""

from __future__ import annotations

from engine.backends.base import JobControl


def job_control(backend: str | None) -> JobControl | None:
    """The control of a cluster backend by name; None for local runs (pids on this host)."""
    if backend == "slurm":
        from engine.backends.slurm_jobs import SlurmJobs

        return SlurmJobs()
    if backend == "ray":
        from engine.backends.ray import RayJobs

        return RayJobs()
    return None
