"""A run's state folded from its log: the one set of rules both readers of a log use.

The launcher (``engine.launch.state.RunState``) folds a run's events to decide what to
start, wait for or mark failed; the database ingest (``db.ingest``) folds them into the
run's row. Both apply ``RunFold.apply`` to each complete line in log order, so they
cannot disagree; the ingest starts from the state it stored last time, so a log read in
one go or in many pieces folds to the same state.

The rules, event by event:

- ``queued``: back in xling's own queue, so any earlier scheduler job is over: status
  queued, finish time, backend, job id and job state cleared; its message (why it
  waits: no free CPU slot or GPU) becomes the run's. The first one's time is kept
  (re-queueing keeps the queue order).
- ``submitted``: where the launcher sent the run; backend and job id are both set (a
  local process has no job id, so a local submission clears a cluster one); the job's
  state is ``SUBMITTED`` until the scheduler is first asked about it (none without a job).
- ``job_state``: the scheduler's word on the job (``PENDING (Priority)``, ``RUNNING``),
  kept only when it is about the run's current job.
- ``started``: running; device, host and pid of the worker; the step it resumes from
  (0 for a fresh start, which also forgets a failed attempt's token count). The first
  one's time is kept (a resumed run keeps its start).
- ``status``: the status it names, its message, and the step if given. A terminal
  status sets the finish time, any other clears it. A status that is not one of
  ``RunStatus`` is ignored: a log never stores a status xling does not know. (Slurm's
  requeue writes ``status: queued``: the job is the same, so backend, job id and job
  state stay.)
- ``train``, ``heartbeat``: the step (and tokens, or the pid).
- any event: its time moves ``last_seen`` forward.

A field of the wrong type counts as absent (``engine.runs.coerce``), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.runs.coerce import as_int, as_pid, as_str, as_time
from engine.runs.status import RunStatus


def _or(new: Any, old: Any) -> Any:
    return old if new is None else new


@dataclass(kw_only=True)
class RunFold:
    """What a run's log says about it so far; every field None until an event says it."""

    status: RunStatus | None = None  # None: no status-carrying event yet (the run is being queued)
    message: str | None = None  # of the latest status change (a failed run's error)
    step: int | None = None  # latest step reported (train, heartbeat, status, or the resume point)
    tokens: int | None = None  # training tokens seen so far
    device: str | None = None  # the latest worker's
    host: str | None = None  # where the latest worker runs
    pid: int | None = None  # the latest worker's process id on that host
    backend: str | None = None  # where the latest submission went: local, slurm, ray
    job_id: str | None = None  # that submission's scheduler id (Slurm job, Ray task)
    job_state: str | None = None  # the scheduler's word on that job when last logged (SUBMITTED, RUNNING, ...)
    total_steps: int | None = None  # as the worker computed them
    total_tokens: int | None = None
    queued: float | None = None  # unix time of the first queued event
    started: float | None = None  # of the first started event
    finished: float | None = None  # of the terminal status; None unless the status is terminal
    last_seen: float | None = None  # of the newest event of any kind

    def apply(self, ev: dict[str, Any]) -> None:
        """Folds one event (a parsed log line) into the state."""
        t = as_time(ev.get("time"))
        if t is not None:
            self.last_seen = t if self.last_seen is None else max(self.last_seen, t)
        kind = ev.get("kind")
        if kind == "queued":
            self._queued(as_str(ev.get("message")), t)
        elif kind == "submitted":
            self.backend, self.job_id = as_str(ev.get("backend")), as_str(ev.get("job_id"))
            self.job_state = None if self.job_id is None else "SUBMITTED"
        elif kind == "job_state":
            if self.job_id is not None and as_str(ev.get("job_id")) == self.job_id:
                self.job_state = _or(as_str(ev.get("state")), self.job_state)
        elif kind == "started":
            self._started(ev, t)
        elif kind == "status":
            self._status(ev, t)
        elif kind == "train":
            self.step = _or(as_int(ev.get("step")), self.step)
            self.tokens = _or(as_int(ev.get("tokens")), self.tokens)
        elif kind == "heartbeat":
            self.step = _or(as_int(ev.get("step")), self.step)
            self.pid = _or(as_pid(ev.get("pid")), self.pid)

    def _set_status(self, status: RunStatus, message: str | None, t: float | None) -> None:
        self.status, self.message = status, message
        self.finished = t if status.terminal else None

    def _queued(self, message: str | None, t: float | None) -> None:
        self._set_status(RunStatus.QUEUED, message, t)
        self.queued = _or(self.queued, t)
        self.backend = self.job_id = self.job_state = None

    def _started(self, ev: dict[str, Any], t: float | None) -> None:
        self._set_status(RunStatus.RUNNING, None, t)
        self.started = _or(self.started, t)
        self.device = _or(as_str(ev.get("device")), self.device)
        self.host = _or(as_str(ev.get("host")), self.host)
        self.pid = _or(as_pid(ev.get("pid")), self.pid)
        self.total_steps = _or(as_int(ev.get("total_steps")), self.total_steps)
        self.total_tokens = _or(as_int(ev.get("total_tokens")), self.total_tokens)
        resumed = as_int(ev.get("resumed_from"))
        self.step = 0 if resumed is None else resumed
        if resumed is None:
            self.tokens = 0  # a fresh start forgets a failed attempt's progress

    def _status(self, ev: dict[str, Any], t: float | None) -> None:
        status = RunStatus.parse(ev.get("status"))
        if status is None:
            return
        self._set_status(status, as_str(ev.get("message")), t)
        self.step = _or(as_int(ev.get("step")), self.step)
