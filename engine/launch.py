"""The run queue: prepares run folders, starts worker processes, follows their logs.

The launcher never writes the database. It writes each run's folder (spec.json and
a ``queued`` event), starts ``python -m engine.worker`` per run through a backend (a
local process, a Slurm job, a Ray task; a ``submitted`` event records which), reads
the workers' event logs to follow progress, and asks the ``ResultSink`` the front end
gave it (the DuckDB store) to catch up now and then. Whatever happens to the
database, the logs keep every measurement.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from engine.backends import (WORKER_LOG, Backend, BackendError, JobInfo, LocalBackend, clear_stop, job_control,
                             request_stop)
from engine.events import SPEC_FILE, EVENTS_FILE, EventLog, Queued, Status, Submitted, read_events
from engine.pool import CpuPool, GpuPool
from engine.spec import Experiment, RunSpec

LIVE_SECONDS = 30.0  # a running run whose log is quieter than this, with no live pid, is dead


class ResultSink(Protocol):
    """Where run events end up (the store); the launcher only asks it to catch up."""

    def try_ingest(self) -> object: ...


@dataclass
class RunState:
    """What the launcher knows of one run, folded from its event log."""

    spec: RunSpec
    run_dir: Path
    status: str = "queued"
    step: int = 0
    loss: float | None = None
    tokens_per_s: float | None = None
    message: str | None = None
    pid: int | None = None
    host: str | None = None
    backend: str | None = None  # where the latest submission went (local, slurm, ray)
    job_id: str | None = None  # that submission's scheduler id
    job_info: JobInfo | None = None  # the scheduler's answer, filled by probe_jobs
    last_event: float = 0.0
    best_ppl: dict[str, float] = field(default_factory=dict)
    offset: int = 0
    skipped: bool = False

    @property
    def progress(self) -> float:
        return self.step / max(self.spec.total_steps, 1)

    @property
    def eta_seconds(self) -> float | None:
        if not self.tokens_per_s or self.status != "running":
            return None
        left = (self.spec.total_steps - self.step) * self.spec.train["batch_size"] * self.spec.train["context"]
        return left / self.tokens_per_s

    def refresh(self) -> None:
        events, self.offset = read_events(self.run_dir / EVENTS_FILE, self.offset)
        for e in events:
            self.apply(e)

    def apply(self, e: dict) -> None:
        kind = e.get("kind")
        self.last_event = max(self.last_event, e.get("time", 0.0))
        if kind == "queued":  # back in xling's queue: any earlier job is over
            self.status, self.message = "queued", None
            self.backend = self.job_id = self.job_info = None
        elif kind == "submitted":
            self.backend, self.job_id, self.job_info = e.get("backend"), e.get("job_id"), None
        elif kind == "started":
            self.status, self.pid, self.message = "running", e.get("pid"), None
            self.host = e.get("host")
            self.step = e.get("resumed_from") or 0
        elif kind == "train":
            self.step, self.loss, self.tokens_per_s = e["step"], e["loss"], e["tokens_per_s"]
        elif kind == "eval":
            lang, ppl = e["language"], e["ppl"]
            self.best_ppl[lang] = min(ppl, self.best_ppl.get(lang, float("inf")))
        elif kind == "status":
            self.status, self.message = e["status"], e.get("message")
            if e.get("step") is not None:
                self.step = e["step"]
        elif kind == "heartbeat":
            self.step = e["step"]

    @property
    def on_cluster(self) -> bool:
        """Its latest submission is a scheduler's job (Slurm, Ray), not a process of ours."""
        return self.backend not in (None, "local") and self.job_id is not None

    def is_alive(self) -> bool:
        """A run whose worker exists or may still start: a live local process, or a
        cluster job its scheduler has not finished (queued or running)."""
        if self.status not in ("queued", "running"):
            return False
        if self.on_cluster:
            if self.job_info is None:
                probe_jobs([self])
            return self.job_info is not None and self.job_info.alive
        if self.status != "running":
            return False
        if self.host and self.host != socket.gethostname():  # its pid means nothing here
            return time.time() - self.last_event < LIVE_SECONDS
        if not self.pid or not pid_exists(self.pid):
            return False
        return time.time() - self.last_event < LIVE_SECONDS or _is_worker(self.pid, self.run_dir)

    @property
    def where(self) -> str:
        """Host and job, for people: 'node7 · slurm 1234', 'box · pid 4242'."""
        job = f"{self.backend} {self.job_id}" if self.on_cluster else (f"pid {self.pid}" if self.pid else "")
        return " · ".join(p for p in (self.host, job) if p)


def probe_jobs(states: Iterable[RunState]) -> None:
    """Asks each scheduler once about all the given runs' jobs (one sacct for every Slurm run)."""
    by_backend: dict[str, list[RunState]] = {}
    for s in states:
        if s.on_cluster and s.status in ("queued", "running"):
            by_backend.setdefault(s.backend, []).append(s)
    for backend, group in by_backend.items():
        control = job_control(backend)
        try:
            infos = control.query({s.job_id: s.run_dir for s in group}) if control else {}
        except BackendError:
            infos = {}
        for s in group:  # no answer is not an answer: the job counts as alive
            s.job_info = infos.get(s.job_id, JobInfo("UNKNOWN", True))


def reconcile(states: Iterable[RunState]) -> list[RunState]:
    """Runs whose cluster job ended without the worker saying so (node failure, out of
    memory, killed at the time limit) are marked failed, with the scheduler's reason,
    as a local launcher does for a worker that died. Returns the runs it changed."""
    states = list(states)
    probe_jobs(states)
    changed = []
    for s in states:
        info = s.job_info
        if s.on_cluster and s.status in ("queued", "running") and info is not None and not info.alive:
            s.refresh()  # the worker may have reported since the scheduler was asked
            if s.status in ("queued", "running") and s.job_info is info:  # and no new submission since
                status = "cancelled" if info.state.startswith("CANCELLED") else "failed"
                why = f"{s.backend} job {s.job_id} ended ({info.state}) before the worker reported; " \
                      "`xling resume` continues from its last checkpoint"
                _append(s.run_dir, Status(s.spec.run_id, status, why))
                s.refresh()
                changed.append(s)
    return changed


def launcher_alive(run_dir: Path) -> bool:
    """Another xling process on this host holds the run."""
    return claimed_by_other(run_dir) is not None


def log_is_fresh(run_dir: Path) -> bool:
    """The run's log moved within LIVE_SECONDS (a working worker heartbeats every few seconds)."""
    try:
        return time.time() - (Path(run_dir) / EVENTS_FILE).stat().st_mtime < LIVE_SECONDS
    except OSError:
        return False


def pid_exists(pid: int) -> bool:
    """On this host; a process of another user exists too (we may not signal it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _is_worker(pid: int, run_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "engine.worker" in cmdline and str(run_dir) in cmdline


def write_experiment(root: Path, exp: Experiment) -> None:
    folder = root / "experiments"
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / f"{exp.name}.json", json.dumps(exp.to_record(), indent=2, ensure_ascii=False))


def _atomic_write(path: Path, text: str) -> None:
    """Two launchers may write the same file at once: each through its own temporary."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_state(root: Path, spec: RunSpec) -> RunState:
    state = RunState(spec, root / "runs" / spec.run_id)
    state.refresh()
    return state


def state_of(run_dir: Path) -> RunState:
    """A run's state from its folder alone (spec.json + events), for commands given a run id."""
    spec = RunSpec.from_json((Path(run_dir) / SPEC_FILE).read_text(encoding="utf-8"))
    state = RunState(spec, Path(run_dir))
    state.refresh()
    return state


def all_run_dirs(root: Path) -> list[Path]:
    folder = Path(root) / "runs"
    return sorted(p for p in folder.iterdir() if (p / SPEC_FILE).exists()) if folder.is_dir() else []


def find_runs(root: Path, ids: Iterable[str]) -> list[Path]:
    """Run folders by id or unambiguous id prefix; a LookupError says which id is wrong."""
    folder = Path(root) / "runs"
    known = all_run_dirs(root)
    found = []
    for rid in ids:
        matches = [p for p in known if p.name.startswith(rid)]
        if len(matches) != 1:
            why = "no run" if not matches else f"{len(matches)} runs"
            raise LookupError(f"{why} with id {rid!r} under {folder} (see `xling status`)")
        found.append(matches[0])
    return found


CLAIM_FILE = ".launcher"


def claimed_by_other(run_dir: Path) -> int | None:
    """The pid of another live launcher on this host that owns this run, if any."""
    try:
        pid = int((Path(run_dir) / CLAIM_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid == os.getpid() or not pid_exists(pid):
        return None
    return pid


def claim(run_dir: Path) -> bool:
    """Atomically marks this launcher as the run's owner; a dead owner's claim is taken over.

    Two `xling run` sessions on one experiment queue the same runs; the claim is what
    stops both from starting the same one.
    """
    path = Path(run_dir) / CLAIM_FILE
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if claimed_by_other(run_dir) is not None:
                return False
            path.unlink(missing_ok=True)  # stale: its launcher is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        return True
    return False


def release_claim(run_dir: Path) -> None:
    if claimed_by_other(run_dir) is None:
        (Path(run_dir) / CLAIM_FILE).unlink(missing_ok=True)


def requeue(states: Iterable[RunState]) -> list[RunState]:
    """Failed, cancelled or orphaned runs back in the queue; finished and live ones untouched."""
    states = list(states)
    reconcile(states)
    out = []
    for state in states:
        if state.status == "done" or state.is_alive() or claimed_by_other(state.run_dir):
            state.skipped = True
        else:
            if state.status == "running":
                _append(state.run_dir, Status(state.spec.run_id, "failed", "worker died (no heartbeat)"))
            clear_stop(state.run_dir)
            _append(state.run_dir, Queued(state.spec.run_id))
            state.refresh()
        out.append(state)
    return out


def cancel(state: RunState) -> str:
    """Asks a live worker to checkpoint and stop, or takes a queued run out of the queue."""
    if state.status in ("done", "failed", "cancelled"):
        return f"already {state.status}"
    if state.on_cluster and state.is_alive():
        said = job_control(state.backend).cancel(state.job_id, state.run_dir, running=state.status == "running")
        if state.status == "queued":  # the job never started a worker that could say so
            _append(state.run_dir, Status(state.spec.run_id, "cancelled", f"cancelled by user ({said})"))
        return said
    if state.status == "running" and state.is_alive():
        if state.host and state.host != socket.gethostname():
            request_stop(state.run_dir)
            return f"asked the worker on {state.host} to stop (it checkpoints first; `xling resume` continues it)"
        os.kill(state.pid, signal.SIGTERM)
        return f"stopping worker {state.pid} (it checkpoints first; `xling resume` continues it)"
    _append(state.run_dir, Status(state.spec.run_id, "cancelled", "cancelled by user"))
    return "cancelled"


def enqueue(root: Path, experiments: Iterable[Experiment]) -> list[RunState]:
    """Folders and ``queued`` events for every run; finished and live runs are marked skipped."""
    states = []
    for exp in experiments:
        write_experiment(root, exp)
        for spec in exp.runs:
            state = load_state(root, spec)
            state.run_dir.mkdir(parents=True, exist_ok=True)
            if not (state.run_dir / SPEC_FILE).exists():
                _atomic_write(state.run_dir / SPEC_FILE, spec.to_json())
            states.append(state)
    return requeue(states)


def _append(run_dir: Path, event) -> None:
    with EventLog(run_dir) as log:
        log.emit(event)


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

    def __init__(self, root: Path, sink: ResultSink | None = None, max_parallel: int = 1,
                 pool: CpuPool | GpuPool | None = None, backend: Backend | None = None,
                 sync_every: float = 10.0, poll: float | None = None, detach: bool = False) -> None:
        self.root = Path(root)
        self.sink = sink
        self.pool = pool or CpuPool(max_parallel)
        self.max_parallel = max(1, max_parallel)
        self.backend = backend or LocalBackend()
        self.sync_every = sync_every
        self.poll = poll if poll is not None else getattr(self.backend, "poll_interval", 0.25)
        self.detach = detach  # return once every run is submitted; the cluster keeps them
        self.procs: dict[str, object] = {}
        self.sync_error: str | None = None

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
                    code = self.procs[state.spec.run_id].poll()
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
                _append(state.run_dir, Status(state.spec.run_id, "cancelled", "interrupted before it started"))
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
            if state.status in ("cancelled", "done"):  # cancelled (or finished elsewhere) while queued
                queue.pop(0)
                continue
            if not claim(state.run_dir) or state.is_alive():  # another launcher took it since we queued it
                release_claim(state.run_dir)
                queue.pop(0)
                state.skipped = True
                continue
            placement = self.pool.acquire(state.spec.run_id)
            if placement is None:
                release_claim(state.run_dir)
                state.message = self.pool.waiting_reason()
                return
            queue.pop(0)
            clear_stop(state.run_dir)
            try:
                handle = self.backend.start(state.run_dir, placement)
            except BackendError as exc:
                self.pool.release(state.spec.run_id)
                release_claim(state.run_dir)
                _append(state.run_dir, Status(state.spec.run_id, "failed", str(exc)))
                state.refresh()
                continue
            self.procs[state.spec.run_id] = handle
            _append(state.run_dir, Submitted(state.spec.run_id, self.backend.name, handle.job_id, socket.gethostname()))
            state.refresh()
            active.append(state)

    def _finish(self, state: RunState, code: int) -> None:
        self.pool.release(state.spec.run_id)
        release_claim(state.run_dir)
        state.refresh()
        if state.status in ("queued", "running"):  # died without reporting: killed or crashed hard
            proc = self.procs[state.spec.run_id]
            reason = proc.exit_reason(code)
            _append(state.run_dir, Status(state.spec.run_id, "failed", reason + f"; see {state.run_dir / WORKER_LOG}"))
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
            elif state.status in ("queued", "running"):
                s.detached += 1
            elif state.status == "done":
                s.done += 1
            elif state.status == "cancelled":
                s.cancelled += 1
            else:
                s.failed += 1
        return s
