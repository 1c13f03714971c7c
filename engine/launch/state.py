"""What the launcher knows of a run: its state folded from its log, and whether it lives.

A run's folder is the truth: its spec.json and its event log. ``RunState`` folds the
log by the same rules as the database (``engine.runs.fold``); a run on a cluster is
also asked about (one scheduler call for all of them) so that a job that died without
its worker saying so is marked failed with the scheduler's reason.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.backends.base import BackendError, JobInfo
from engine.backends.registry import job_control
from engine.config.locate import SpecError
from engine.config.spec import RunSpec
from engine.errors import XlingError
from engine.runs.claims import LIVE_SECONDS, is_worker, pid_exists
from engine.runs.coerce import as_float, as_str
from engine.runs.events import JobState, Status, append_event, read_events
from engine.runs.fold import RunFold
from engine.runs.layout import EVENTS_FILE, SPEC_FILE
from engine.runs.status import LIVE, RunStatus


@dataclass
class RunState(RunFold):
    """What the launcher knows of one run: the fold of its log (``RunFold``: status,
    step, pid, host, job, times), plus its progress figures and the scheduler's word."""

    spec: RunSpec
    run_dir: Path
    loss: float | None = None
    tokens_per_s: float | None = None
    job_info: JobInfo | None = None  # the scheduler's answer about job_id, filled by probe_jobs
    best_ppl: dict[str, float] = field(default_factory=dict)
    offset: int = 0
    skipped: bool = False

    @property
    def progress(self) -> float:
        return (self.step or 0) / max(self.spec.total_steps, 1)

    @property
    def eta_seconds(self) -> float | None:
        if not self.tokens_per_s or self.status is not RunStatus.RUNNING:
            return None
        steps_left = self.spec.total_steps - (self.step or 0)
        return steps_left * self.spec.train.batch_size * self.spec.train.context / self.tokens_per_s

    def refresh(self) -> None:
        events, self.offset = read_events(self.run_dir / EVENTS_FILE, self.offset)
        for e in events:
            self.apply(e)

    def apply(self, e: dict) -> None:
        """The fold, plus the figures the progress display shows (latest loss and speed, best PPL)."""
        super().apply(e)
        kind = e.get("kind")
        if kind in ("queued", "submitted"):  # a new job: the scheduler's word on the old one is void
            self.job_info = None
        elif kind == "train":
            if (loss := as_float(e.get("loss"))) is not None:
                self.loss = loss
            if (speed := as_float(e.get("tokens_per_s"))) is not None:
                self.tokens_per_s = speed
        elif kind == "eval" and (lang := as_str(e.get("language"))) and (ppl := as_float(e.get("ppl"))) is not None:
            self.best_ppl[lang] = min(ppl, self.best_ppl.get(lang, float("inf")))

    def quiet_for(self) -> float:
        """Seconds since the newest event of its log."""
        return time.time() - (self.last_seen or 0.0)

    @property
    def on_cluster(self) -> bool:
        """Its latest submission is a scheduler's job (Slurm, Ray), not a process of ours."""
        return self.backend not in (None, "local") and self.job_id is not None

    def is_alive(self) -> bool:
        """A run whose worker exists or may still start: a live local process, or a
        cluster job its scheduler has not finished (queued or running)."""
        if self.status not in LIVE:
            return False
        if self.on_cluster:
            if self.job_info is None:
                probe_jobs([self])
            return self.job_info is not None and self.job_info.alive
        if self.status is not RunStatus.RUNNING:
            return False
        if self.host and self.host != socket.gethostname():  # its pid means nothing here
            return self.quiet_for() < LIVE_SECONDS
        if not self.pid or not pid_exists(self.pid):
            return False
        return self.quiet_for() < LIVE_SECONDS or is_worker(self.pid, self.run_dir)

    @property
    def where(self) -> str:
        """Host and job, for people: 'node7 · slurm 1234', 'box · pid 4242'."""
        job = f"{self.backend} {self.job_id}" if self.on_cluster else (f"pid {self.pid}" if self.pid else "")
        return " · ".join(p for p in (self.host, job) if p)


def probe_jobs(states: Iterable[RunState]) -> None:
    """Asks each scheduler once about all the given runs' jobs (one squeue for every Slurm
    run) and logs what changed (``job_state`` events)."""
    by_backend: dict[str, dict[str, RunState]] = {}
    for s in states:
        if s.backend and s.job_id and s.on_cluster and s.status in LIVE:
            by_backend.setdefault(s.backend, {})[s.job_id] = s
    for backend, group in by_backend.items():
        control = job_control(backend)
        try:
            infos = control.query({job: s.run_dir for job, s in group.items()}) if control else {}
        except BackendError:
            infos = {}
        for job, s in group.items():
            if job in infos:
                note_job(s, infos[job])
            s.job_info = infos.get(job, NO_ANSWER)  # no answer is not an answer: the job counts as alive


NO_ANSWER = JobInfo("UNKNOWN", True, reason="the scheduler did not answer")


def note_job(state: RunState, info: JobInfo) -> None:
    """Logs the scheduler's word on the run's job when it differs from the last one logged."""
    if state.job_id is None or info.label == state.job_state:
        return
    append_event(state.run_dir, JobState(state.spec.run_id, state.job_id, info.label, info.host))
    state.refresh()


def reconcile(states: Iterable[RunState]) -> list[RunState]:
    """Runs whose cluster job ended without the worker saying so (node failure, out of
    memory, killed at the time limit, forgotten by the scheduler) are marked failed with
    the scheduler's reason, as a local launcher does for a worker that died; a job the
    scheduler will never start is taken out of its queue and its run failed. Returns
    the runs it changed."""
    states = list(states)
    probe_jobs(states)
    changed = []
    for s in states:
        info = s.job_info
        if s.on_cluster and s.status in LIVE and info is not None and not info.alive:
            s.refresh()  # the worker may have reported since the scheduler was asked
            if s.status in LIVE and s.job_info is info:  # and no new submission since
                if info.never_starts:
                    _remove(s)
                append_event(s.run_dir, Status(s.spec.run_id, *_verdict(s, info)))
                s.refresh()
                changed.append(s)
    return changed


def _remove(s: RunState) -> None:
    control = job_control(s.backend or "local")
    try:
        if control is not None and s.job_id:
            control.cancel(s.job_id, s.run_dir, running=False)
    except BackendError:
        pass  # still marked failed; the next look tries again only if it is resubmitted


def _verdict(s: RunState, info: JobInfo) -> tuple[RunStatus, str]:
    """Status and message of a run whose job ended, or will never start, without its worker's word."""
    resume = "`xling resume` continues from its last checkpoint"
    if info.never_starts:
        return (
            RunStatus.FAILED,
            f"{s.backend} job {s.job_id} would never start: {info.explained}; removed it from the queue",
        )
    # Taken out of the queue before a worker started: cancelled. A worker killed without its
    # checkpoint-and-report (scancel --signal=KILL, a node lost, out of memory): failed.
    queued = info.state == "CANCELLED" and s.status is RunStatus.QUEUED
    status = RunStatus.CANCELLED if queued else RunStatus.FAILED
    return status, f"{s.backend} job {s.job_id} ended ({info.explained}) before the worker reported; {resume}"


def load_state(root: Path, spec: RunSpec) -> RunState:
    state = RunState(spec, root / "runs" / spec.run_id)
    state.refresh()
    return state


def state_of(run_dir: Path) -> RunState:
    """A run's state from its folder alone (spec.json + events), for commands given a run id.
    A spec.json that cannot be read back is a SpecError naming the file."""
    path = Path(run_dir) / SPEC_FILE
    try:
        spec = RunSpec.from_json(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else exc
        raise SpecError(
            f"{path}: damaged run spec ({why}); the run cannot be resumed: delete its folder, "
            "and `xling run` on its experiments file starts it afresh"
        ) from None
    state = RunState(spec, Path(run_dir))
    state.refresh()
    return state


def all_run_dirs(root: Path) -> list[Path]:
    folder = Path(root) / "runs"
    return sorted(p for p in folder.iterdir() if (p / SPEC_FILE).exists()) if folder.is_dir() else []


class UnknownRun(XlingError, LookupError):
    """A run id (or prefix) that names no run, or more than one."""


def find_runs(root: Path, ids: Iterable[str]) -> list[Path]:
    """Run folders by id or unambiguous id prefix; ``UnknownRun`` says which id is wrong."""
    folder = Path(root) / "runs"
    known = all_run_dirs(root)
    found = []
    for rid in ids:
        matches = [p for p in known if p.name.startswith(rid)]
        if len(matches) != 1:
            why = "no run" if not matches else f"{len(matches)} runs"
            raise UnknownRun(f"{why} with id {rid!r} under {folder} (see `xling status`)")
        found.append(matches[0])
    return found
