"""What the TUI's buttons do to runs: launch, cancel, resume, delete, annotate.

Launches are headless ``xling run`` / ``xling resume`` processes in their own
session, with their output in a log file beside the database: a run started from
the TUI keeps going when the TUI quits (or its SSH connection drops), exactly as if
it had been started from a shell, and the dashboard follows it through the database
like any other run. Nothing here imports textual or torch, so these functions are
tested (and usable) without a screen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from engine.backends.base import spawn_logged
from engine.errors import XlingError
from engine.launch.queue import cancel
from engine.launch.state import UnknownRun, find_runs, state_of
from engine.runs import layout
from engine.runs.claims import launcher_alive
from engine.runs.files import atomic_write
from engine.runs.layout import ANNOTATIONS_FILE  # <run_dir>/annotations.json: the user's tags and note
from engine.runs.status import LIVE

LAUNCH_LOGS = "launches"  # <db>.runs/launches/<time>-<what>.log


class ActionError(XlingError):
    """A user-facing refusal (unknown run, live run, bad tag); the message is shown as is."""


def launch_log_path(db_path: Path, what: str, now: float | None = None) -> Path:
    """One log per launch, named by UTC time and what was launched, so launches never mix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in what) or "all"
    folder = layout.artefacts_root(Path(db_path).absolute()) / LAUNCH_LOGS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}-{safe}.log"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{safe}-{n}.log"
    return path


class LoggedProcess(subprocess.Popen[bytes]):
    """A detached xling process and the file its output goes to (where the user reads what it said)."""

    log_path: Path


def _spawn(args: list[str], db_path: Path, what: str) -> LoggedProcess:
    """A detached ``python -m xling_tui.cli ...``: own session, no terminal, output to a file."""
    cmd = [sys.executable, "-m", "xling_tui.cli", *args, "--db", str(Path(db_path).absolute())]
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1", TERM="dumb")
    try:
        log_path = launch_log_path(db_path, what)
        log_path.write_text("$ " + " ".join(cmd) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ActionError(f"cannot write a launch log beside {db_path}: {exc.strerror or exc}") from None
    proc = cast(LoggedProcess, spawn_logged(cmd, log_path, env, new_session=True, process=LoggedProcess))
    proc.log_path = log_path
    return proc


def launch_experiment(
    config_path: Path, db_path: Path, experiment: str | None = None, device: str = "auto"
) -> LoggedProcess:
    """``xling run CONFIG [-e EXPERIMENT] --device DEVICE --db DB`` in the background.

    The returned process carries ``log_path``. Validation errors of the config end up in
    that log and in the exit code (2); callers that want them up front validate first
    (``engine.config.spec.load_experiments``).
    """
    args = ["run", str(Path(config_path).absolute()), "--device", device]
    if experiment:
        args += ["-e", experiment]
    return _spawn(args, db_path, experiment or "all")


def resume_runs(db_path: Path, run_ids: list[str], device: str = "auto") -> LoggedProcess:
    """``xling resume IDS`` in the background: failed or cancelled runs continue from their checkpoint."""
    if not run_ids:
        raise ActionError("no runs selected to resume")
    _run_dirs(db_path, run_ids)  # unknown ids are refused here, not in a log nobody reads
    return _spawn(["resume", *run_ids, "--device", device], db_path, "resume")


def _run_dirs(db_path: Path, run_ids: list[str]) -> list[Path]:
    try:
        return find_runs(layout.artefacts_root(Path(db_path).absolute()), run_ids)
    except UnknownRun as exc:
        raise ActionError(str(exc)) from None


def cancel_runs(db_path: Path, run_ids: list[str]) -> list[str]:
    """Stops each run as ``xling cancel`` does; returns one line per run saying what happened."""
    messages = []
    for run_dir in _run_dirs(db_path, run_ids):
        state = state_of(run_dir)
        messages.append(f"{state.spec.name} ({run_dir.name[:8]}): {cancel(state)}")
    return messages


def delete_run(db_path: Path, run_id: str) -> str:
    """Removes a run's folder (log, checkpoints, model, annotations); the next ingest drops its rows.

    A run whose worker is alive is refused: cancel it first, or its worker would keep
    writing into a folder that no longer exists.
    """
    (run_dir,) = _run_dirs(db_path, [run_id])
    state = state_of(run_dir)
    if state.status in LIVE and (state.is_alive() or launcher_alive(run_dir)):
        raise ActionError(f"{state.spec.name} ({run_dir.name[:8]}) is {state.status}: cancel it before deleting")
    try:
        shutil.rmtree(run_dir)
    except OSError as exc:
        raise ActionError(f"cannot delete {run_dir}: {exc.strerror or exc}") from None
    return f"deleted {state.spec.name} ({run_dir.name[:8]}) and its artefacts"


# -- tags and notes ----------------------------------------------------------------


@dataclass
class Annotations:
    """The user's tags and note on a run. Kept in the run folder, which is the source of
    truth the database is rebuilt from, so they survive ``Store.rebuild()`` and go with a
    deleted run; ingest copies them into ``runs.tags`` / ``runs.note`` for SQL."""

    tags: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> str:
        return json.dumps({"tags": self.tags, "note": self.note}, ensure_ascii=False, indent=1)


def parse_tags(text: str) -> list[str]:
    """'good, baseline  fast' -> ['good', 'baseline', 'fast']: commas or spaces, no repeats, order kept."""
    tags: list[str] = []
    for part in text.replace(",", " ").split():
        if part not in tags:
            tags.append(part)
    return tags


def read_annotations(run_dir: Path) -> Annotations:
    try:
        data = json.loads((Path(run_dir) / ANNOTATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Annotations()
    if not isinstance(data, dict):
        return Annotations()
    tags = data.get("tags")
    note = data.get("note")
    return Annotations(
        tags=[str(t) for t in tags] if isinstance(tags, list) else [], note=note if isinstance(note, str) else ""
    )


def write_annotations(
    db_path: Path, run_id: str, tags: list[str] | None = None, note: str | None = None
) -> Annotations:
    """Replaces the given parts (None keeps what is there); written atomically."""
    (run_dir,) = _run_dirs(db_path, [run_id])
    current = read_annotations(run_dir)
    if tags is not None:
        current.tags = list(tags)
    if note is not None:
        current.note = note.strip()
    try:
        atomic_write(run_dir / ANNOTATIONS_FILE, current.to_json())
    except OSError as exc:
        raise ActionError(f"cannot save the tags and note in {run_dir}: {exc.strerror or exc}") from None
    return current
