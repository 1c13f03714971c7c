"""The launcher: starts queued runs through a backend, follows their logs to an end.

The launcher never writes the database. It starts ``python -m engine.worker`` per
run through a backend (a local process, a Slurm job, a Ray task; a ``submitted``
event records which), places each with a device pool, reads the workers' event logs
to follow progress, and asks the ``ResultSink`` the front end gave it (the DuckDB
store) to catch up now and then. Whatever happens to the database, the logs keep
every measurement.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.backends.base import Backend, BackendError, Handle
from engine.backends.local import LocalBackend
from engine.launch.pools import CpuPool, Pool
from engine.launch.state import RunState, note_job
from engine.runs.claims import claim, release_claim
from engine.runs.events import Queued, Status, Submitted, append_event
from engine.runs.layout import WORKER_LOG, clear_stop
from engine.runs.status import TERMINAL, RunStatus


class ResultSink(Protocol):
    """Where run events end up (the store); the launcher only asks it to catch up."""

    def try_ingest(self) -> object: ...


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    detached: int = 0  # left running on the cluster (--detach)
    interrupted: bool = False


class Launcher:
    """Runs a list of states to an end through a backend, placing each with a device pool.

    The database catches up every ``sync_every`` seconds and whenever a run ends: an
    ingest costs ~0.1 s of a core (bench/ingest.py), which a 2-core CPU box feels.
    """

    def __init__(
        self,
        root: Path,
        sink: ResultSink | None = None,
        max_parallel: int = 1,
        pool: Pool | None = None,
        backend: Backend | None = None,
        sync_every: float = 10.0,
        poll: float | None = None,
        detach: bool = False,
    ) -> None:
        self.root = Path(root)
        self.sink = sink
        self.pool = pool or CpuPool(max_parallel)
        self.max_parallel = max(1, max_parallel)
        self.backend = backend or LocalBackend()
        self.sync_every = sync_every
        self.poll = poll if poll is not None else getattr(self.backend, "poll_interval", 0.25)
        self.detach = detach  # return once every run is submitted; the cluster keeps them
        self.procs: dict[str, Handle] = {}
        self.sync_error: str | None = None
        self._said_waiting: dict[str, str] = {}  # run id -> the waiting reason last logged for it

    def our_pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.pid is not None and p.poll() is None]

    def run(self, states: list[RunState], on_update: Callable[[list[RunState]], None] = lambda s: None) -> Summary:
        """Run every non-skipped state to an end; Ctrl-C stops workers resumably."""
        queue = [s for s in states if not s.skipped]
        active: list[RunState] = []
        last_sync = 0.0
        try:
            while queue or (active and not self.detach):
                self._start_what_fits(queue, active)
                if self.detach and not queue:
                    break  # every run is with the scheduler; nothing to poll
                time.sleep(self.poll)
                finished = False
                for state in list(active):
                    state.refresh()
                    proc = self.procs[state.spec.run_id]
                    code = proc.poll()
                    if (info := getattr(proc, "info", None)) is not None:  # a cluster job's latest state
                        note_job(state, info)
                    if code is not None:
                        self._finish(state, code)
                        active.remove(state)
                        finished = True
                if finished or time.monotonic() - last_sync > self.sync_every:
                    self._sync()
                    last_sync = time.monotonic()
                on_update(states)
        except BaseException as exc:
            self.stop(active)  # a bug in the launcher must not orphan workers either
            if not isinstance(exc, KeyboardInterrupt):
                raise
            for state in queue:
                append_event(
                    state.run_dir, Status(state.spec.run_id, RunStatus.CANCELLED, "interrupted before it started")
                )
                state.refresh()
            on_update(states)
            summary = self._summary(states)
            summary.interrupted = True
            return summary
        for state in active:  # detached: the jobs outlive this process, the claims must not
            release_claim(state.run_dir)
        on_update(states)
        return self._summary(states)

    def _start_what_fits(self, queue: list[RunState], active: list[RunState]) -> None:
        while queue and len(active) < self.max_parallel:
            state = queue[0]
            state.refresh()
            if state.status in (RunStatus.CANCELLED, RunStatus.DONE):  # cancelled (or finished elsewhere) while queued
                queue.pop(0)
                continue
            if not claim(state.run_dir) or state.is_alive():  # another launcher took it since we queued it
                release_claim(state.run_dir)
                queue.pop(0)
                state.skipped = True
                continue
            placement = self.pool.acquire(state.spec.run_id, self.our_pids())
            if placement is None:
                release_claim(state.run_dir)
                self._log_waiting(state, self.pool.waiting_reason())
                return
            queue.pop(0)
            clear_stop(state.run_dir)
            try:
                handle = self.backend.start(state.run_dir, placement)
            except BackendError as exc:
                self.pool.release(state.spec.run_id)
                release_claim(state.run_dir)
                append_event(state.run_dir, Status(state.spec.run_id, RunStatus.FAILED, str(exc)))
                state.refresh()
                continue
            self.pool.started(state.spec.run_id, handle.pid)
            self.procs[state.spec.run_id] = handle
            append_event(
                state.run_dir, Submitted(state.spec.run_id, self.backend.name, handle.job_id, socket.gethostname())
            )
            state.refresh()
            active.append(state)

    def _log_waiting(self, state: RunState, reason: str | None) -> None:
        """Why a run has not started (no CPU slot, no free GPU), once per new reason: as a
        ``queued`` event with a message, so `xling status` and the dashboard show it."""
        state.message = reason
        if reason and self._said_waiting.get(state.spec.run_id) != reason:
            self._said_waiting[state.spec.run_id] = reason
            append_event(state.run_dir, Queued(state.spec.run_id, message=reason))
            state.refresh()

    def _finish(self, state: RunState, code: int) -> None:
        self.pool.release(state.spec.run_id)
        release_claim(state.run_dir)
        state.refresh()
        if state.status not in TERMINAL:  # died without reporting: killed or crashed hard
            proc = self.procs[state.spec.run_id]
            reason = proc.exit_reason(code) + f"; see {state.run_dir / WORKER_LOG}"
            try:
                append_event(state.run_dir, Status(state.spec.run_id, RunStatus.FAILED, reason))
            except OSError as exc:  # a full disk: say it here; the next command marks the dead worker
                state.status, state.message = RunStatus.FAILED, f"{reason} ({exc}; not logged)"
                return
            state.refresh()

    def stop(self, active: list[RunState], grace: float = 30.0) -> None:
        """SIGTERM lets each worker checkpoint; SIGKILL after ``grace`` seconds; no orphans."""
        for state in active:
            proc = self.procs[state.spec.run_id]
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace
        for state in active:
            proc = self.procs[state.spec.run_id]
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if code is None:
                proc.kill()
                code = proc.wait()
                assert code is not None  # without a timeout, wait returns once there is a code
            self._finish(state, code)

    def _sync(self) -> None:
        """Catching the database up is a convenience while runs go: it must never stop them."""
        if self.sink is None:
            return
        try:
            self.sink.try_ingest()
        except Exception as exc:  # noqa: BLE001 - the logs keep everything; say it once
            if not self.sync_error:
                self.sync_error = f"database not updated ({exc}); results stay in the run logs"

    @staticmethod
    def _summary(states: list[RunState]) -> Summary:
        s = Summary()
        for state in states:
            if state.skipped:
                s.skipped += 1
            elif state.status is RunStatus.DONE:
                s.done += 1
            elif state.status is RunStatus.CANCELLED:
                s.cancelled += 1
            elif state.status is RunStatus.FAILED:
                s.failed += 1
            else:  # queued or running: left with the cluster
                s.detached += 1
        return s
