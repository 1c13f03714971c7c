"""Where a worker process runs. The local backend is the default; cluster backends
(Slurm through submitit, Ray) implement the same two-method contract.

A backend starts ``python -m engine.worker RUN_DIR`` somewhere and returns a handle
the launcher can poll, ask to stop (the worker checkpoints and reports
``cancelled``) and kill. Everything a run measures still travels through its event
log, so a backend never needs to carry results back itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from engine.pool import Placement

WORKER_LOG = "worker.log"


class Handle(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...


class Backend(Protocol):
    name: str

    def start(self, run_dir: Path, placement: Placement) -> Handle: ...


class LocalProcess:
    """A worker on this machine: Popen, with ``wait`` returning None on timeout instead of raising."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pid = popen.pid

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


class LocalBackend:
    """Each worker in its own process session, so a terminal's Ctrl-C reaches only the
    launcher, which then stops them in order; stdout/stderr go to the run's worker.log."""

    name = "local"

    def start(self, run_dir: Path, placement: Placement) -> LocalProcess:
        cmd = [sys.executable, "-m", "engine.worker", str(run_dir), "--device", placement.device]
        if placement.threads:
            cmd += ["--threads", str(placement.threads)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **placement.env)
        with open(Path(run_dir) / WORKER_LOG, "ab") as log:
            popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, cwd=_project_root())
        return LocalProcess(popen)


def _project_root() -> str:
    """Workers import ``engine`` the same way the launcher did, installed or not."""
    return str(Path(__file__).resolve().parent.parent)
