"""The run queue: run folders, ``queued`` events, requeueing and cancelling.

``enqueue`` writes each run's folder (spec.json and a ``queued`` event) and skips
finished runs and runs whose worker lives; ``requeue`` puts failed, cancelled and
orphaned runs back; ``cancel`` asks a live worker to checkpoint and stop, or takes a
queued run out. Everything is an event in the run's own log, never a database row.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterable
from pathlib import Path

from engine.backends.registry import job_control
from engine.config.spec import Experiment, RunSpec
from engine.launch.state import RunState, load_state, reconcile
from engine.runs.claims import launcher_alive
from engine.runs.events import Queued, Status, append_event
from engine.runs.files import atomic_write
from engine.runs.layout import SPEC_FILE, clear_stop, experiment_file, request_stop
from engine.runs.status import TERMINAL, RunStatus


def write_experiment(root: Path, exp: Experiment) -> None:
    path = experiment_file(root, exp.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(exp.to_record(), indent=2, ensure_ascii=False))


def requeue(states: Iterable[RunState]) -> list[RunState]:
    """Failed, cancelled or orphaned runs back in the queue; finished and live ones untouched."""
    states = list(states)
    reconcile(states)
    out = []
    for state in states:
        if state.status is RunStatus.DONE or state.is_alive() or launcher_alive(state.run_dir):
            state.skipped = True
        else:
            if state.status is RunStatus.RUNNING:
                append_event(state.run_dir, Status(state.spec.run_id, RunStatus.FAILED, "worker died (no heartbeat)"))
            clear_stop(state.run_dir)
            append_event(state.run_dir, Queued(state.spec.run_id))
            state.refresh()
        out.append(state)
    return out


def cancel(state: RunState) -> str:
    """Asks a live worker to checkpoint and stop, or takes a queued run out of the queue."""
    if state.status in TERMINAL:
        return f"already {state.status}"
    control = job_control(state.backend)
    if state.on_cluster and control is not None and state.job_id is not None and state.is_alive():
        said = control.cancel(state.job_id, state.run_dir, running=state.status is RunStatus.RUNNING)
        if state.status is RunStatus.QUEUED:  # the job never started a worker that could say so
            append_event(state.run_dir, Status(state.spec.run_id, RunStatus.CANCELLED, f"cancelled by user ({said})"))
        return said
    if state.status is RunStatus.RUNNING and state.pid is not None and state.is_alive():
        if state.host and state.host != socket.gethostname():
            request_stop(state.run_dir)
            return f"asked the worker on {state.host} to stop (it checkpoints first; `xling resume` continues it)"
        os.kill(state.pid, signal.SIGTERM)
        return f"stopping worker {state.pid} (it checkpoints first; `xling resume` continues it)"
    append_event(state.run_dir, Status(state.spec.run_id, RunStatus.CANCELLED, "cancelled by user"))
    return "cancelled"


def unfinished(root: Path, experiments: Iterable[Experiment]) -> list[RunSpec]:
    """The runs of ``experiments`` not done yet, read from their folders without writing."""
    return [spec for exp in experiments for spec in exp.runs if load_state(root, spec).status is not RunStatus.DONE]


def enqueue(root: Path, experiments: Iterable[Experiment]) -> list[RunState]:
    """Folders and ``queued`` events for every run; finished and live runs are marked skipped."""
    states = []
    for exp in experiments:
        write_experiment(root, exp)
        for spec in exp.runs:
            state = load_state(root, spec)
            state.run_dir.mkdir(parents=True, exist_ok=True)
            if not (state.run_dir / SPEC_FILE).exists():
                atomic_write(state.run_dir / SPEC_FILE, spec.to_json())
            states.append(state)
    return requeue(states)
