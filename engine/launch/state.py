"""What the launcher knows of a run: its state folded from its log, and whether it lives.

A run's folder is the truth: its spec.json and its event log. ``RunState`` folds the
log for progress and status; a run on a cluster is also asked about (one scheduler
call for all of them) so that a job that died without its worker saying so is marked
failed with the scheduler's reason.
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
from engine.runs.claims import LIVE_SECONDS, _is_worker, pid_exists
from engine.runs.events import JobState, Status, append_event, read_events
from engine.runs.layout import EVENTS_FILE, SPEC_FILE


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
    job_state: str | None = None  # the scheduler's word on that job when last logged (job_state events)
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
        left = (self.spec.total_steps - self.step) * self.spec.train.batch_size * self.spec.train.context
        return left / self.tokens_per_s

    def refresh(self) -> None:
        events, self.offset = read_events(self.run_dir / EVENTS_FILE, self.offset)
        for e in events:
            self.apply(e)

    def apply(self, e: dict) -> None:
        kind = e.get("kind")
        self.last_event = max(self.last_event, e.get("time", 0.0))
        if kind == "queued":  # back in xling's queue (a message: why it waits); any earlier job is over
            self.status, self.message = "queued", e.get("message")
            self.backend = self.job_id = self.job_info = self.job_state = None
        elif kind == "submitted":
            self.backend, self.job_id, self.job_info = e.get("backend"), e.get("job_id"), None
            self.job_state = None
        elif kind == "job_state" and e.get("job_id") == self.job_id:
            self.job_state = e.get("state")
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
    """Asks each scheduler once about all the given runs' jobs (one squeue for every Slurm
    run) and logs what changed (``job_state`` events)."""
    by_backend: dict[str, dict[str, RunState]] = {}
    for s in states:
        if s.backend and s.job_id and s.on_cluster and s.status in ("queued", "running"):
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
        if s.on_cluster and s.status in ("queued", "running") and info is not None and not info.alive:
            s.refresh()  # the worker may have reported since the scheduler was asked
            if s.status in ("queued", "running") and s.job_info is info:  # and no new submission since
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


def _verdict(s: RunState, info: JobInfo) -> tuple[str, str]:
    """Status and message of a run whose job ended, or will never start, without its worker's word."""
    resume = "`xling resume` continues from its last checkpoint"
    if info.never_starts:
        return "failed", f"{s.backend} job {s.job_id} would never start: {info.explained}; removed it from the queue"
    # Taken out of the queue before a worker started: cancelled. A worker killed without its
    # checkpoint-and-report (scancel --signal=KILL, a node lost, out of memory): failed.
    status = "cancelled" if info.state == "CANCELLED" and s.status == "queued" else "failed"
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
