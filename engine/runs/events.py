"""What a run reports, and its durable, append-only log.

A run never talks to the database. It appends one JSON object per line to
``<run_dir>/events.jsonl``; that file is the source of truth, and ``db`` ingests it
in bulk whenever it can get the write lock. A crash loses at most a partial last
line (readers wait for a line's newline; the next writer ends a fragment, which
readers then skip as a bad line), and a resumed run appends to the same file: later
events for the same step replace earlier ones on ingest.

Every line has ``kind``, ``run_id`` and ``time`` (unix seconds). The kinds and their
fields are the dataclasses below; ``docs/architecture.md`` documents them for users.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import DiskFull
from engine.runs.layout import EVENTS_FILE
from engine.runs.status import RunStatus
from engine.runs.tail import read_new

logger = logging.getLogger(__name__)


@dataclass
class Queued:
    """In xling's queue; ``message`` says why it waits, when a launcher has tried to
    start it (no free CPU slot, no free GPU)."""

    run_id: str
    message: str | None = None
    time: float = field(default_factory=time.time)
    kind: str = "queued"


@dataclass
class Submitted:
    """The launcher handed the run to a backend; ``job_id`` is the scheduler's id
    (a Slurm job, a Ray task), None for a local process (its pid comes with ``started``)."""

    run_id: str
    backend: str
    job_id: str | None = None
    host: str | None = None  # where the launcher ran
    time: float = field(default_factory=time.time)
    kind: str = "submitted"


@dataclass
class JobState:
    """The scheduler's word on the run's job, logged when it changes ('PENDING (Priority)',
    'RUNNING', a requeue): where a cluster run stands between the worker's own events."""

    run_id: str
    job_id: str
    state: str
    node: str | None = None
    time: float = field(default_factory=time.time)
    kind: str = "job_state"


@dataclass
class Started:
    run_id: str
    device: str
    host: str
    pid: int
    total_steps: int
    total_tokens: int
    resumed_from: int | None = None
    threads: int | None = None  # torch's intra-op threads: what the CPU slot registry granted
    precision: str | None = None  # what the matmuls run in: fp32, bf16 (autocast) or fp16
    compiled: bool | None = None  # the model went through torch.compile
    time: float = field(default_factory=time.time)
    kind: str = "started"


@dataclass
class TrainMetric:
    """Mean training loss over the steps since the previous metric."""

    run_id: str
    step: int
    tokens: int
    lr: float
    loss: float
    lang_loss: dict[str, float]
    tokens_per_s: float
    time: float = field(default_factory=time.time)
    kind: str = "train"


@dataclass
class EvalResult:
    run_id: str
    step: int
    tokens: int
    language: str
    loss: float
    ppl: float
    char_ppl: float | None
    accuracy: float | None
    n_tokens: int
    time: float = field(default_factory=time.time)
    kind: str = "eval"


@dataclass
class Status:
    """A run's status changed: its worker ended it, or the launcher or a user did."""

    run_id: str
    status: RunStatus
    message: str | None = None
    step: int | None = None
    time: float = field(default_factory=time.time)
    kind: str = "status"


@dataclass
class Heartbeat:
    """Lets a launcher tell a live worker from a dead one without asking the OS."""

    run_id: str
    step: int
    pid: int
    time: float = field(default_factory=time.time)
    kind: str = "heartbeat"


@dataclass
class AlignEmbedding:
    run_id: str
    step: int
    tokens: int
    matrix: str  # "input" | "output"
    lang_a: str
    lang_b: str
    similarity: float
    control: float
    n_ids: int
    n_anchors: int
    bins: list[dict]
    time: float = field(default_factory=time.time)
    kind: str = "align_embedding"


@dataclass
class AlignHidden:
    run_id: str
    step: int
    tokens: int
    lang_a: str
    lang_b: str
    layer: int  # 0 = embedding output, k = after block k
    similarity: float
    n_sequences: int
    time: float = field(default_factory=time.time)
    kind: str = "align_hidden"


@dataclass
class AlignGradient:
    run_id: str
    step: int
    tokens: int
    lang_a: str
    lang_b: str
    tensor: str
    similarity: float
    time: float = field(default_factory=time.time)
    kind: str = "align_gradient"


@dataclass
class TokenizerInfo:
    """How the run's languages were tokenised: the model vocabulary and its anchors."""

    run_id: str
    mode: str  # cloned | disjoint | anchored | joint
    vocab_size: int  # the model's vocabulary (embedding rows)
    n_anchors: int  # ids shared by the languages (cloned: anchor ids; anchored: merged pieces)
    languages: dict[str, dict]  # language -> {vocab_size, train_tokens, test_tokens}
    time: float = field(default_factory=time.time)
    kind: str = "tokenizer"


@dataclass
class ProbeResult:
    """Zero-shot downstream probe: fine-tuned in train_language, scored in language."""

    run_id: str
    step: int
    tokens: int
    task: str
    train_language: str
    language: str
    accuracy: float
    chance: float
    n_examples: int
    train_accuracy: float
    time: float = field(default_factory=time.time)
    kind: str = "probe"


Event = (
    Queued
    | Submitted
    | JobState
    | Started
    | TrainMetric
    | EvalResult
    | Status
    | Heartbeat
    | AlignEmbedding
    | AlignHidden
    | AlignGradient
    | TokenizerInfo
    | ProbeResult
)


class EventLog:
    """Appends events to one run's log, a whole line per ``write``; fsyncs status changes.

    A write cut short (a crash, a full disk) leaves a fragment without its newline; the
    next line written, by this or any other process, starts on a line of its own, so a
    fragment never swallows a later event: readers skip it as one bad line.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._torn = not _ends_a_line(self._fd)

    def emit(self, event: Event, sync: bool = False) -> None:
        line = (json.dumps(asdict(event), separators=(",", ":")) + "\n").encode("utf-8")
        self._write(b"\n" + line if self._torn else line)
        if self._fd is not None and (sync or isinstance(event, (Status, Started, Queued, Submitted))):
            os.fsync(self._fd)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._torn = True  # at worst one blank line more
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(self.path) from exc
            raise
        self._torn = False

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass  # what could be written is written; a failed status write already said why
            finally:
                os.close(fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_a_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


@dataclass(frozen=True)
class BadLine:
    """A complete line of a log that is not an event; skipped, counted and reported."""

    path: Path
    line: int  # 1-based
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: skipped a line that is {self.why}"


_reported: set[tuple[Path, int]] = set()  # one warning per bad line per process
WARN_LINES = 5  # bad lines named one by one per read; the rest are counted


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """An event, or why the line is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not valid JSON (a write cut short by a crash or a full disk?)"
    if not isinstance(event, dict):
        return None, f"JSON but not an object ({text.strip()[:40]})"
    if event.get("kind") == "status" and RunStatus.parse(event.get("status")) is None:
        return None, f"a status event with an unknown status {event.get('status')!r}"
    return event, None


def _line_number(path: Path, offset: int) -> int:
    """Lines before ``offset``; read only when a bad line needs naming."""
    lines, done = 0, 0
    with open(path, "rb") as fh:
        while done < offset:
            chunk = fh.read(min(1 << 20, offset - done))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            done += len(chunk)
    return lines


def read_events(path: Path, offset: int = 0, skipped: list[BadLine] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Complete events after ``offset`` and the offset just past the last complete line
    (a log shorter than ``offset`` was replaced: it is read from its start).

    A complete line that is not an event (not UTF-8, not JSON, not an object, a status
    xling does not know) is skipped, added to ``skipped`` and logged as a warning naming
    the file and line, once per process; the lines after it are read as usual.
    """
    path = Path(path)
    chunk = read_new(path, offset)
    if chunk is None:
        return [], offset
    end = chunk.data.rfind(b"\n")
    if end < 0:
        return [], chunk.start
    events: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    for i, raw in enumerate(chunk.data[: end + 1].split(b"\n")[:-1]):
        if raw.strip():
            event, why = _parse(raw)
            if event is not None:
                events.append(event)
            else:
                bad.append((i, why or "not an event"))
    if bad:
        first = _line_number(path, chunk.start) + 1
        found = [BadLine(path, first + i, why) for i, why in bad]
        _report(found)
        if skipped is not None:
            skipped.extend(found)
    return events, chunk.start + end + 1


def _report(found: list[BadLine]) -> None:
    """A warning per bad line, the first few of a read: a binary file must not flood a terminal."""
    new = [bad for bad in found if (bad.path, bad.line) not in _reported]
    _reported.update((bad.path, bad.line) for bad in new)
    for bad in new[:WARN_LINES]:
        logger.warning("%s", bad)
    if len(new) > WARN_LINES:
        rest = new[WARN_LINES:]
        logger.warning(
            "%s: %d more lines that are not events skipped (lines %d to %d)",
            rest[0].path,
            len(rest),
            rest[0].line,
            rest[-1].line,
        )


def iter_events(path: Path) -> Iterator[dict[str, Any]]:
    events, _ = read_events(path)
    yield from events


def append_event(run_dir: Path, event: Event) -> None:
    """One event into a run's log, for whoever is not the run's worker (launcher, CLI, backends)."""
    with EventLog(run_dir) as log:
        log.emit(event)
