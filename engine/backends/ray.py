"""Runs as Ray tasks on an existing Ray cluster (``pip install 'xling[ray]'``).

Each run is one task that asks Ray for ``num_gpus`` (1 per run on GPU, 0 on CPU)
and ``num_cpus``, and starts the same ``python -m engine.worker RUN_DIR`` as a local
run on whichever node Ray picks; the run folder must be on a filesystem the nodes
share, and the worker reports through its event log as anywhere else. Ray tasks
belong to the driver that submitted them, so a Ray run lives as long as its
``xling run``: stopping the launcher stops its runs (after a checkpoint), and another
``xling`` process stops one through the run folder's stop request.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.backends.base import BackendError, JobInfo, Placement, spawn_worker
from engine.config.cluster import RaySettings
from engine.runs.layout import request_stop


def _ray():
    try:
        import ray
    except ImportError:
        raise BackendError("--backend ray needs Ray: pip install 'xling[ray]' (or pip install ray)") from None
    return ray


def run_task(run_dir: str, device: str, threads: int | None) -> int:
    """The body of the Ray task, on the node: the worker as a child process."""
    proc = spawn_worker(run_dir, Placement(device, threads=threads))
    try:
        return proc.wait()
    except BaseException:  # ray.cancel raises KeyboardInterrupt here: let the worker checkpoint
        proc.terminate()
        return proc.wait()


class RayHandle:
    pid = None

    def __init__(self, ref, run_dir: Path) -> None:
        self.ref = ref
        self.run_dir = Path(run_dir)
        self.job_id = ref.task_id().hex()
        self._code: int | None = None
        self._reason = ""

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        ray = _ray()
        ready, _ = ray.wait([self.ref], timeout=0)
        if ready:
            try:
                self._code = int(ray.get(self.ref))
            except Exception as exc:  # noqa: BLE001 - node lost, task killed: for the run's message
                self._code = -1
                self._reason = f"Ray task {self.job_id[:12]} failed ({type(exc).__name__}): {_first_sentence(exc)}"
        return self._code

    def terminate(self) -> None:
        request_stop(self.run_dir)  # the worker checkpoints and stops; the task then returns

    def kill(self) -> None:
        _ray().cancel(self.ref, force=True)

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
        return self._code

    def exit_reason(self, code: int) -> str:
        return self._reason or f"Ray task {self.job_id[:12]} ended with code {code}"


def _first_sentence(exc: BaseException) -> str:
    """Ray's errors go on for a paragraph (node ids, where to look); the run's message keeps the gist."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


class RayBackend:
    name = "ray"
    poll_interval = 0.5

    def __init__(self, settings: RaySettings, init_kwargs: dict | None = None) -> None:
        self.settings = settings
        self.init_kwargs = init_kwargs  # tests: a local cluster (num_cpus=2) instead of an address
        self._remote: Any = None  # ray.remote(run_task), made on first use

    def placement(self, device: str) -> Placement:
        return Placement(device, threads=self.settings.cpus_per_run)

    def cluster_has_gpus(self) -> bool:
        return self._connect().cluster_resources().get("GPU", 0) > 0

    def start(self, run_dir: Path, placement: Placement) -> RayHandle:
        ray = self._connect()
        if self._remote is None:
            self._remote = ray.remote(run_task)
        gpus = self.settings.gpus_per_run if placement.device == "cuda" else 0
        ref = self._remote.options(num_gpus=gpus, num_cpus=self.settings.cpus_per_run, max_retries=0).remote(
            str(run_dir), placement.device, placement.threads
        )
        return RayHandle(ref, run_dir)

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            kwargs = self.init_kwargs or {"address": self.settings.address}
            try:
                ray.init(log_to_driver=False, **kwargs)
            except Exception as exc:  # noqa: BLE001 - no cluster at that address
                raise BackendError(
                    f"cannot reach a Ray cluster at {kwargs.get('address')!r}: "
                    f"{str(exc).strip().splitlines()[0]} (start one with `ray start --head`, "
                    "or give --ray-address)"
                ) from None
        return ray


class RayJobs:
    """Ray runs seen from another xling process: they live while their launcher does.

    A task's owner is the driver that submitted it, so its state cannot be asked from
    here; the run's log (heartbeats) and its launcher's claim say whether it is alive,
    and a stop request in the run folder reaches the worker wherever it runs.
    """

    def query(self, jobs: dict[str, Path]) -> dict[str, JobInfo]:
        from engine.runs.claims import launcher_alive, log_is_fresh

        out = {}
        for job_id, run_dir in jobs.items():
            alive = launcher_alive(run_dir) or log_is_fresh(run_dir)
            out[job_id] = JobInfo("RUNNING" if alive else "LOST", alive)
        return out

    def cancel(self, job_id: str, run_dir: Path, running: bool) -> str:
        request_stop(run_dir)
        return "asked the worker to checkpoint and stop (`xling resume` continues it)"
