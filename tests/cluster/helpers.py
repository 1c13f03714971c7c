"""What the live-cluster tests share: experiment files, the same runs trained locally
for reference, waiting on a run's log, and `xling` in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from db.store import Store
from engine.backends.base import Placement
from engine.backends.local import LocalBackend
from engine.config.spec import load_experiments
from engine.data.tokens import prepare_tokens
from engine.launch.launcher import Launcher
from engine.launch.pools import ClusterPool
from engine.launch.queue import enqueue
from engine.runs.events import iter_events

ROOT = Path(__file__).resolve().parents[2]

# One run of cpu-xxs on the test corpus; {tokens} sets how long it trains, periodic
# checkpoints every {checkpoint_every} steps (100_000: none, the stop's is the only one).
LONG = """\
[experiments.long]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = {tokens}
baselines = [{fractions}]
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32, warmup = 4, log_every = 5, checkpoint_every = {checkpoint_every} }}
eval = {{ context = 32, stride = 16, max_tokens = 1000, every = 0, alignment = false }}
"""


def long_toml(path: Path, corpus: Path, tokens: int, checkpoint_every: int = 100_000, runs: int = 1) -> Path:
    fractions = ", ".join(str(1.0 - 0.001 * i) for i in range(runs))  # distinct runs of nearly one length
    path.write_text(LONG.format(tokens=tokens, corpus=corpus, checkpoint_every=checkpoint_every, fractions=fractions))
    return path


def slurm_section(**settings: object) -> str:
    """A [cluster.slurm] table: one CPU per job, no GPU, asked about every 2 s."""
    values = {"gpus_per_run": 0, "cpus_per_run": 1, "poll_s": 2, **settings}
    return "\n[cluster.slurm]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def prepare(toml: Path) -> None:
    """Tokenizers and token arrays, as `xling run` builds them before it starts anything."""
    for exp in load_experiments(toml):
        for spec in exp.runs:
            prepare_tokens(spec.data, spec.budget_tokens, log=lambda m: None)


def train_locally(toml: Path, db: Path) -> Store:
    """The same runs, one at a time on this machine with one thread each, as a Slurm job
    with one CPU trains them: the reference a cluster run must equal."""
    prepare(toml)
    store = Store(db)
    states = enqueue(store.root, load_experiments(toml))
    pool = ClusterPool(Placement("cpu", threads=1), slots=1)
    summary = Launcher(store.root, sink=store, backend=LocalBackend(), pool=pool).run(states)
    assert summary.failed == 0 and summary.cancelled == 0, summary
    store.ingest(wait=60)
    return store


def losses(store: Store) -> dict[tuple[str, int], float]:
    return {(r, s): loss for r, s, loss in store.query("SELECT run_id, step, loss FROM train_metrics").rows}


def events(run_dir: Path) -> list[dict]:
    return list(iter_events(Path(run_dir) / "events.jsonl"))


def run_dirs(db: Path) -> list[Path]:
    """The run folders beside a database (none yet: an empty list)."""
    folder = db.parent / (db.stem + ".runs") / "runs"
    return sorted(p for p in folder.glob("*") if (p / "spec.json").exists())


def wait_until(what: str, ready: Callable[[], object], timeout: float = 300, every: float = 0.5):
    """Polls ``ready`` until it returns something true; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


def trained_to(run_dir: Path, step: int) -> bool:
    return any(e["kind"] == "train" and e["step"] >= step for e in events(run_dir))


STARTED: list[subprocess.Popen] = []  # every xling started here; conftest ends what a failed test left


def xling(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`xling ARGS` in a process of its own (a launcher that must outlive a test step)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xling_tui.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    STARTED.append(proc)
    return proc


def end_leftovers() -> None:
    """Stops the xling processes a test started and did not see end (an assertion failed
    first): SIGTERM, as a user's kill, so they stop their workers; then SIGKILL."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"xling did not finish within {timeout:.0f} s:\n{out}") from None
    return proc.returncode, out


def tokens_per_second(toml: Path, scratch: Path) -> float:
    """How fast this machine trains the experiment's model with one thread now: a few
    steps of a throwaway copy of its run (the worker's own --stop-after)."""
    prepare(toml)
    store = Store(scratch / "speed.duckdb")
    (state,) = enqueue(store.root, load_experiments(toml))
    cmd = [sys.executable, "-m", "engine.worker", str(state.run_dir), "--threads", "1", "--stop-after", "60"]
    subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, timeout=300)
    rates = [e["tokens_per_s"] for e in events(state.run_dir) if e["kind"] == "train"]
    assert rates, "the speed probe trained nothing"
    return max(rates[len(rates) // 2 :])  # past the warm-up steps
