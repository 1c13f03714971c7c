"""Where a worker process runs: this machine (the default), Slurm or Ray.

A backend starts ``python -m engine.worker RUN_DIR`` somewhere and returns a handle
the launcher can poll, ask to stop (the worker checkpoints and reports
``cancelled``) and kill. Everything a run measures still travels through its event
log, so a backend never needs to carry results back itself; cluster backends only
need the run folder on a filesystem the nodes share.

Cluster backends (``engine.backends.slurm``, ``engine.backends.ray``) also answer
for runs started by an earlier ``xling`` process (``JobControl``): whether their jobs
are still alive, asked for many runs at once, and how to cancel one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.errors import XlingError
from engine.runs.layout import WORKER_LOG


class BackendError(XlingError, RuntimeError):
    """A backend refused a run (sbatch error, no Ray cluster); the message is for the user."""


class Handle(Protocol):
    @property
    def pid(self) -> int | None:
        """A local worker's pid; None when the worker lives on another machine."""
        ...

    @property
    def job_id(self) -> str | None:
        """The scheduler's id (Slurm job, Ray task); None for a local process."""
        ...

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
    the job may still run the worker (pending, running, requeued) or is over.

    ``never_starts``: pending for a reason no waiting clears (over a partition's time
    limit); such a job is not alive, and whoever sees it takes it out of the queue."""

    state: str
    alive: bool
    host: str | None = None
    reason: str | None = None  # why it waits or ended, in the scheduler's words (squeue's %r)
    never_starts: bool = False
    meaning: str | None = None  # the reason in plain words, where the scheduler's are cryptic

    @property
    def explained(self) -> str:
        """'PENDING (PartitionTimeLimit: its time limit is over the partition's MaxTime)'."""
        why = ": ".join(p for p in (self.reason, self.meaning) if p)
        return f"{self.state} ({why})" if why else self.state

    @property
    def label(self) -> str:
        """'PENDING (Priority)', 'RUNNING': the state as people read it in squeue."""
        return f"{self.state} ({self.reason})" if self.reason and self.state != "RUNNING" else self.state


class JobControl(Protocol):
    def query(self, jobs: dict[str, Path]) -> dict[str, JobInfo]:
        """job id -> info for every job given (job id -> run folder), in one scheduler call."""
        ...

    def cancel(self, job_id: str, run_dir: Path, running: bool) -> str:
        """Stops one job (a running one after its worker checkpointed); says what was done, for the user."""
        ...


def worker_command(run_dir: Path | str, placement: Placement, python: str | None = None) -> list[str]:
    """The one way every backend starts a worker."""
    cmd = [python or sys.executable, "-m", "engine.worker", str(run_dir), "--device", placement.device]
    if placement.threads:
        cmd += ["--threads", str(placement.threads)]
    return cmd


def spawn_logged(
    cmd: list[str],
    log_path: Path,
    env: dict[str, str],
    cwd: str | None = None,
    new_session: bool = False,
    pass_fds: tuple[int, ...] = (),
    process: type[subprocess.Popen[bytes]] = subprocess.Popen,
) -> subprocess.Popen[bytes]:
    """``cmd`` with its stdout and stderr appended to ``log_path`` and no stdin: a process
    that must never wait on, or print into, the terminal of whoever started it.
    ``process`` is the Popen class to start it with (a subclass that carries more)."""
    with open(log_path, "ab") as log:
        return process(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=new_session,
            pass_fds=pass_fds,
        )


def spawn_worker(run_dir: Path | str, placement: Placement, new_session: bool = False) -> subprocess.Popen[bytes]:
    """The worker of one run, its output in the run's worker.log: how every backend starts
    one (locally; in a Slurm job; in a Ray task). ``new_session`` keeps a terminal's
    Ctrl-C from reaching it, so its launcher can stop it in order. The placement's locked
    CPU slots (``fds``) go with it and are held for as long as it lives."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **placement.env)
    cmd = worker_command(run_dir, placement)
    log = Path(run_dir) / WORKER_LOG
    return spawn_logged(cmd, log, env, cwd=project_root(), new_session=new_session, pass_fds=placement.fds)


def project_root() -> str:
    """Workers import ``engine`` the same way the launcher did, installed or not."""
    return str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Placement:
    device: str  # what the worker passes to torch: "cpu" or "cuda"
    env: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    gpu: int | None = None
    fds: tuple[int, ...] = ()  # locked CPU slots the worker inherits and holds for its life (local only)

    @property
    def label(self) -> str:
        return "cpu" if self.gpu is None else f"cuda:{self.gpu}"
