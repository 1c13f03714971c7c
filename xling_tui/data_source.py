"""What the dashboard, the GPU panel and the SQL screen show, fetched on worker threads.

These classes run on thread workers only; the UI thread receives the frozen
dataclasses below inside messages. The module itself imports no database or NVML
code at import time (the app's first frame must not wait for DuckDB or pydantic):
``db`` and ``engine`` are imported inside the methods that run on threads, except
``engine.runs.status``, which is plain Python.

Coalescing: ``DashboardSource.fetch`` first reads a cheap fingerprint of every run
(status, step, last event, tags) and returns None when nothing changed, so an idle
dashboard costs one small query per poll; when something changed it re-reads the
changed runs' loss sparklines only.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runs.status import RunStatus
from engine.runs.summary import RunSummary

SPARK_BINS = 24  # points in a run's loss sparkline
GPU_HISTORY = 60  # samples kept per GPU for the utilisation and memory sparklines
RECONCILE_SECONDS = 15.0  # how often the dashboard asks Slurm/Ray about queued and running cluster runs


@dataclass(frozen=True, kw_only=True)
class RunRow(RunSummary):
    """One run as the dashboard shows it: the summary, tokens, loss, where it runs, annotations."""

    tokens: int | None
    total_tokens: int | None
    loss: float | None
    host: str | None
    pid: int | None
    best_ppl: tuple[tuple[str, float], ...]
    loss_curve: tuple[float | None, ...]
    tags: tuple[str, ...] = ()
    note: str = ""
    started: float | None = None
    last_seen: float | None = None
    backend: str | None = None  # local, slurm, ray: where the launcher sent it
    job_id: str | None = None  # the scheduler's job or task id
    job_state: str | None = None  # the scheduler's word on that job when last asked (RUNNING, PENDING (Priority))
    experiments: tuple[str, ...] = ()  # every experiment that asks for this run (it trains once for all)

    def belongs_to(self, experiment: str) -> bool:
        return experiment in self.experiments or (not self.experiments and self.experiment == experiment)

    @property
    def waiting(self) -> str | None:
        """Why a queued run has not started (no CPU slot, no free GPU), as its launcher logged it."""
        return self.message if self.status == RunStatus.QUEUED else None

    @property
    def eta_seconds(self) -> float | None:
        """Tokens still to train over the latest throughput; only while running."""
        if self.status != RunStatus.RUNNING or not self.tokens_per_s or not self.total_tokens:
            return None
        return max(self.total_tokens - (self.tokens or 0), 0) / self.tokens_per_s


@dataclass(frozen=True)
class ExperimentRow:
    """An experiment from the config file, the database, or both."""

    name: str
    description: str | None
    in_config: bool
    defined_runs: int | None  # runs its current definition expands to (config only)
    runs: int = 0  # runs in the database
    done: int = 0
    running: int = 0
    failed: int = 0


@dataclass(frozen=True)
class DashboardData:
    runs: tuple[RunRow, ...]
    experiments: tuple[ExperimentRow, ...]
    config_error: str | None = None  # experiments.toml could not be read (shown, not raised)
    db_error: str | None = None  # the database could not be read this time
    fetched_at: float = 0.0


class DashboardSource:
    """Keeps what it fetched last, so each poll reads only what changed."""

    def __init__(
        self,
        config_path: Path,
        db_path: Path,
        clock: Callable[[], float] = time.time,
        ingest: bool = True,
        spark_bins: int = SPARK_BINS,
    ) -> None:
        from db.store import Store

        self.config_path = Path(config_path)
        self.store = Store(db_path)
        self.clock = clock
        self.ingest = ingest
        self.read_only: str | None = None  # why new results cannot be ingested, once tried
        self.spark_bins = spark_bins
        self._fingerprints: dict[str, tuple] = {}
        self._rows: dict[str, RunRow] = {}
        self._curves: dict[str, tuple[int | None, int, tuple[float | None, ...]]] = {}  # total, last step, bins
        self._config_key: tuple | None = None
        self._config: tuple[list[tuple[str, str | None, int]], str | None] = ([], None)
        self._last: DashboardData | None = None
        self._reconciled = float("-inf")

    def fetch(self, force: bool = False) -> DashboardData | None:
        """The current data, or None when nothing changed since the previous fetch."""
        config_changed = self._read_config()
        db_error = None
        changed_runs = False
        try:
            changed_runs = self._read_runs()
        except Exception as exc:  # noqa: BLE001 - a busy or broken database is shown, never raised
            db_error = _describe(exc)
        db_error = db_error or self.read_only
        if not (
            force
            or config_changed
            or changed_runs
            or db_error
            or self._last is None
            or (self._last.db_error and not db_error)
        ):
            return None
        runs = tuple(sorted(self._rows.values(), key=_default_order))
        self._last = DashboardData(
            runs=runs,
            experiments=self._experiments(runs),
            config_error=self._config[1],
            db_error=db_error,
            fetched_at=self.clock(),
        )
        return self._last

    # -- config ------------------------------------------------------------------------

    def _read_config(self) -> bool:
        """Re-parses experiments.toml when its size or mtime changed; True if it did."""
        try:
            st = self.config_path.stat()
            key: tuple = (st.st_mtime_ns, st.st_size)
        except OSError:
            key = ("missing",)
        if key == self._config_key:
            return False
        self._config_key = key
        from engine.config.locate import SpecError
        from engine.config.spec import load_experiments

        try:
            experiments = load_experiments(self.config_path)
            self._config = ([(e.name, e.config.description or None, len(e.runs)) for e in experiments], None)
        except SpecError as exc:
            self._config = ([], str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in the config reader must not end the dashboard
            self._config = ([], _describe(exc))
        return True

    # -- runs --------------------------------------------------------------------------

    def _read_runs(self) -> bool:
        from db import queries

        if not self.store.db_path.exists() and not self.store.root.exists():
            return False  # nothing run yet with this database; do not create it just by looking
        if self.ingest:
            self._ask_schedulers()
            self._catch_up()
        delta = queries.dashboard_delta(self.store, self._fingerprints, self._from_steps(), self.spark_bins)
        gone = set(self._fingerprints) - set(delta.fingerprints)
        for rec in delta.runs:
            rid = rec["run_id"]
            self._rows[rid] = self._merge(rec, delta.bins.get(rid, {}), delta.from_steps.get(rid, 0))
        for rid in gone:
            self._rows.pop(rid, None)
            self._curves.pop(rid, None)
        changed = bool(delta.runs or gone)
        self._fingerprints = delta.fingerprints
        return changed

    def _ask_schedulers(self) -> None:
        """Cluster runs' job states, and jobs that died silently, at most every
        RECONCILE_SECONDS (one squeue for all): runs submitted with --detach have no
        launcher following them."""
        from db.cluster_runs import reconcile_cluster_runs
        from db.store import StoreError

        if time.monotonic() - self._reconciled < RECONCILE_SECONDS:
            return
        self._reconciled = time.monotonic()
        try:
            reconcile_cluster_runs(self.store)
        except (StoreError, OSError):  # a busy database: the next poll asks again
            pass

    def _catch_up(self) -> None:
        """A database that cannot be written here is read as it is; the dashboard says so
        (``read_only``) and stops trying."""
        from db.store import StoreReadOnly

        try:
            self.store.try_ingest()
        except StoreReadOnly as exc:
            self.ingest, self.read_only = False, str(exc)

    def _from_steps(self) -> dict[str, int]:
        """Per known run, the first step of the bin its last training point fell in: the
        bins before it are complete and kept (the query starts over at 0 for a run that
        may have rewritten them, see ``db.queries._window_start``)."""
        return {
            rid: queries_bin_start(queries_loss_bin(last_step, total, self.spark_bins), total, self.spark_bins)
            for rid, (total, last_step, _curve) in self._curves.items()
        }

    def _merge(self, rec: dict[str, Any], window: dict, from_step: int) -> RunRow:
        """The run's row with its loss curve: kept bins before the window, the window's after."""
        rid, total = rec["run_id"], rec["total_steps"]
        old = self._curves.get(rid) if from_step > 0 else None
        previous = self._rows.get(rid) if from_step > 0 else None
        first = queries_loss_bin(from_step, total, self.spark_bins)
        curve = (list(old[2][:first]) if old else []) + [None] * (self.spark_bins - (first if old else 0))
        last_step = old[1] if old else 0
        tps, loss = (previous.tokens_per_s, previous.loss) if previous else (None, None)
        for b, point in window.items():
            curve[b] = point.loss
            if point.last_step >= last_step:
                last_step, tps, loss = point.last_step, point.tokens_per_s, point.last_loss
        self._curves[rid] = (total, last_step, tuple(curve))
        return _run_row(rec, curve, tps, loss)

    def _experiments(self, runs: tuple[RunRow, ...]) -> tuple[ExperimentRow, ...]:
        """Config order first (that is how the user wrote them), then those only in the database."""
        counts: dict[str, dict[str, int]] = {}
        for r in runs:
            for name in r.experiments or (r.experiment or "?",):  # a shared run counts in each
                c = counts.setdefault(name, {"runs": 0, "done": 0, "running": 0, "failed": 0})
                c["runs"] += 1
                if r.status in (RunStatus.DONE, RunStatus.RUNNING, RunStatus.FAILED):
                    c[str(r.status)] += 1
        out = []
        for name, description, n in self._config[0]:
            out.append(ExperimentRow(name, description, True, n, **counts.pop(name, {})))
        for name in sorted(counts):
            out.append(ExperimentRow(name, None, False, None, **counts[name]))
        return tuple(out)


def queries_loss_bin(step: int, total: int | None, bins: int) -> int:
    from db.queries import loss_bin

    return loss_bin(step, total, bins)


def queries_bin_start(b: int, total: int | None, bins: int) -> int:
    from db.queries import bin_start

    return bin_start(b, total, bins)


def _default_order(r: RunRow) -> tuple:
    return (r.experiment or "", r.kind != "baseline", r.started or math.inf, r.name or "", r.run_id)


def _run_row(rec: dict[str, Any], curve: list[float | None], tokens_per_s: float | None, loss: float | None) -> RunRow:
    langs, ppls = rec.get("best_languages") or [], rec.get("best_ppls") or []
    return RunRow(
        run_id=rec["run_id"],
        experiment=rec["experiment"],
        name=rec["name"],
        kind=rec["kind"],
        status=rec["status"],
        step=rec["step"],
        total_steps=rec["total_steps"],
        tokens=rec["tokens"],
        total_tokens=rec["total_tokens"],
        tokens_per_s=tokens_per_s,
        loss=loss,
        device=rec["device"],
        host=rec["host"],
        pid=rec["pid"],
        backend=rec["backend"],
        job_id=rec["job_id"],
        job_state=rec["job_state"],
        best_ppl=tuple((lang, p) for lang, p in zip(langs, ppls) if p is not None),
        loss_curve=tuple(curve),
        tags=tuple(rec["tags"] or ()),
        note=rec["note"] or "",
        message=rec["message"],
        started=rec["started"],
        last_seen=rec["last_seen"],
        experiments=tuple(rec.get("experiments") or ()),
    )


def _describe(exc: BaseException) -> str:
    """A user-facing line: our own errors carry their message; anything else names its type."""
    from xling_tui.errors import is_user_error

    if is_user_error(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# -- GPUs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSample:
    """A device snapshot plus the recent history of each GPU (index -> values, oldest first)."""

    snapshot: Any  # engine.launch.devices.DeviceSnapshot
    utilization: dict[int, tuple[float, ...]] = field(default_factory=dict)
    memory: dict[int, tuple[float, ...]] = field(default_factory=dict)  # % of total
    run_pid: dict[int, int] = field(default_factory=dict)  # GPU process pid -> the run worker it descends from


class GpuSampler:
    """Talks to NVML (or a fake) on the sampler thread; keeps a short history per GPU."""

    def __init__(self, source: Any = None, history: int = GPU_HISTORY) -> None:
        from engine.launch.devices import NvmlSource

        self.source = source if source is not None else NvmlSource()
        self._own = source is None
        self._util: dict[int, deque[float]] = {}
        self._mem: dict[int, deque[float]] = {}
        self.history = history

    def sample(self, run_pids: Collection[int] = frozenset()) -> GpuSample:
        from engine.launch.devices import is_ours, snapshot, xling_worker_pids

        snap = snapshot(self.source, our_pids=set(xling_worker_pids()) | set(run_pids))
        owners = {}
        for gpu in snap.gpus:  # a worker's children (compile, data loaders) show up on the GPU too
            for proc in gpu.processes:
                owner = next((rp for rp in run_pids if is_ours(proc.pid, {rp})), None)
                if owner is not None:
                    owners[proc.pid] = owner
        for gpu in snap.gpus:
            util = self._util.setdefault(gpu.index, deque(maxlen=self.history))
            mem = self._mem.setdefault(gpu.index, deque(maxlen=self.history))
            util.append(gpu.utilization if gpu.utilization is not None else 0.0)
            mem.append(100.0 * gpu.memory_used_mb / gpu.memory_total_mb if gpu.memory_total_mb else 0.0)
        present = {g.index for g in snap.gpus}
        return GpuSample(
            snapshot=snap,
            utilization={i: tuple(v) for i, v in self._util.items() if i in present},
            memory={i: tuple(v) for i, v in self._mem.items() if i in present},
            run_pid=owners,
        )

    def close(self) -> None:
        if self._own:
            self.source.close()


# -- SQL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlOutcome:
    """What a query of the SQL screen came to: rows, an error message, or a cancellation."""

    sql: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    truncated: bool = False
    total_rows: int = 0  # rows of the whole result (more than ``rows`` when truncated)
    error: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
