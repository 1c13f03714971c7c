"""Where a worker process runs: this machine (the default), Slurm or Ray.

A backend starts ``python -m engine.worker RUN_DIR`` somewhere and returns a handle
the launcher can poll, ask to stop (the worker checkpoints and reports
``cancelled``) and kill. Everything a run measures still travels through its event
log, so a backend never needs to carry results back itself; cluster backends only
need the run folder on a filesystem the nodes share.

Cluster backends (``engine.backends_slurm``, ``engine.backends_ray``) also answer
for runs started by an earlier ``xling`` process (``JobControl``): whether their jobs
are still alive, asked for many runs at once, and how to cancel one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.pool import Placement

WORKER_LOG = "worker.log"
STOP_FILE = "stop.request"  # a worker that sees this file in its run folder checkpoints and stops


class BackendError(RuntimeError):
    """A backend refused a run (sbatch error, no Ray cluster); the message is for the user."""


class Handle(Protocol):
    pid: int | None  # a local worker's pid; None when the worker lives on another machine
    job_id: str | None  # the scheduler's id (Slurm job, Ray task); None for a local process

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...

    def exit_reason(self, code: int) -> str: ...


class Backend(Protocol):
    name: str
    poll_interval: float  # how often the launcher looks at its runs

    def start(self, run_dir: Path, placement: Placement) -> Handle: ...


@dataclass(frozen=True)
class JobInfo:
    """What the scheduler says about one job: its own word for the state, and whether
    the job may still run the worker (pending, running, requeued) or is over."""

    state: str
    alive: bool
    host: str | None = None


class JobControl(Protocol):
    def query(self, jobs: dict[str, Path]) -> dict[str, JobInfo]:
        """job id -> info for every job given (job id -> run folder), in one scheduler call."""
        ...

    def cancel(self, job_id: str, run_dir: Path, running: bool) -> str:
        """Stops one job; says what was done, for the user."""
        ...


def job_control(backend: str) -> JobControl | None:
    """The control of a cluster backend by name; None for local runs (pids on this host)."""
    if backend == "slurm":
        from engine.backends_slurm import SlurmJobs

        return SlurmJobs()
    if backend == "ray":
        from engine.backends_ray import RayJobs

        return RayJobs()
    return None


def request_stop(run_dir: Path) -> None:
    """Asks a worker anywhere that shares this folder to checkpoint and stop."""
    (Path(run_dir) / STOP_FILE).write_text(f"{time.time()}\n")


def clear_stop(run_dir: Path) -> None:
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)


def worker_command(run_dir: Path | str, placement: Placement, python: str | None = None) -> list[str]:
    """The one way every backend starts a worker."""
    cmd = [python or sys.executable, "-m", "engine.worker", str(run_dir), "--device", placement.device]
    if placement.threads:
        cmd += ["--threads", str(placement.threads)]
    return cmd


class LocalProcess:
    """A worker on this machine: Popen, with ``wait`` returning None on timeout instead of raising."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.job_id = None

    def poll(self) -> int | None:
        return self.popen.poll()

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def exit_reason(self, code: int) -> str:
        return f"worker exited with code {code}" + (f" (signal {-code})" if code < 0 else "")


class LocalBackend:
    """Each worker in its own process session, so a terminal's Ctrl-C reaches only the
    launcher, which then stops them in order; stdout/stderr go to the run's worker.log."""

    name = "local"
    poll_interval = 0.25

    def start(self, run_dir: Path, placement: Placement) -> LocalProcess:
        cmd = worker_command(run_dir, placement)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **placement.env)
        with open(Path(run_dir) / WORKER_LOG, "ab") as log:
            popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, cwd=project_root())
        return LocalProcess(popen)


def project_root() -> str:
    """Workers import ``engine`` the same way the launcher did, installed or not."""
    return str(Path(__file__).resolve().parent.parent)
