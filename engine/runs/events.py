"""What a run reports, and its durable, append-only log.

A run never talks to the database. It appends one JSON object per line to
``<run_dir>/events.jsonl``; that file is the source of truth, and ``db`` ingests it
in bulk whenever it can get the write lock. A crash loses at most a partial last
line (readers ignore a line without its newline), and a resumed run appends to the
same file: later events for the same step replace earlier ones on ingest.

Every line has ``kind``, ``run_id`` and ``time`` (unix seconds). The kinds and their
fields are the dataclasses below; ``docs/architecture.md`` documents them for users.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.runs.layout import EVENTS_FILE
from engine.runs.status import RunStatus
from engine.runs.tail import read_new


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
    """Appends events to one run's log; fsyncs status changes so they survive a crash."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")

    def emit(self, event: Event, sync: bool = False) -> None:
        self._fh.write(json.dumps(asdict(event), separators=(",", ":")) + "\n")
        self._fh.flush()
        if sync or isinstance(event, (Status, Started, Queued, Submitted)):
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete events after ``offset`` and the offset just past the last complete line
    (a log shorter than ``offset`` was replaced: it is read from its start)."""
    chunk = read_new(path, offset)
    if chunk is None:
        return [], offset
    end = chunk.data.rfind(b"\n")
    if end < 0:
        return [], chunk.start
    events = []
    for line in chunk.data[: end + 1].splitlines():
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn write from a killed process; the next line is intact
    return events, chunk.start + end + 1


def iter_events(path: Path) -> Iterator[dict[str, Any]]:
    events, _ = read_events(path)
    yield from events


def append_event(run_dir: Path, event: Event) -> None:
    """One event into a run's log, for whoever is not the run's worker (launcher, CLI, backends)."""
    with EventLog(run_dir) as log:
        log.emit(event)
