"""The default backend: each worker a process on this machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

from engine.backends.base import Placement, spawn_worker


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
        return LocalProcess(spawn_worker(run_dir, placement, new_session=True))
