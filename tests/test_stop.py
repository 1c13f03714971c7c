"""A stop request ends evaluation, alignment and probe loops within a batch, wherever
the worker is, and the checkpoint it leaves resumes exactly (what the step still owed
is done on resume). Nothing here times the machine: tests count the work done after
the stop; timeouts only guard against a hang."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.analysis.alignment import hidden_similarity_cloned, hidden_similarity_parallel
from engine.analysis.evaluate import evaluate_stream
from engine.analysis.probe import run_probe
from engine.config.spec import ProbeConfig, load_experiments
from engine.data.cloned import token_counts
from engine.model import GPT, preset
from engine.runs.events import EventLog, iter_events
from engine.runs.layout import CHECKPOINT_FILE, FINAL_MODEL_FILE, SPEC_FILE
from engine.train import Trainer

LANGS = [f"L{i}" for i in range(1, 9)]
MANY = """\
[experiments.many]
languages = {langs}
model = "cpu-xxs"
tokens = 4_096
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32, warmup = 2, log_every = 2, checkpoint_every = 4 }}
eval = {{ context = 32, stride = 16, max_tokens = {max_tokens}, every = 0.5 }}

[[experiments.many.schedules]]
name = "even"
mix = {{ {mix} }}
"""


def _spec(tmp_path: Path, corpus: Path, max_tokens: int = 2000):
    mix = ", ".join(f"{lang} = [12.5]" for lang in LANGS)
    path = tmp_path / "many.toml"
    path.write_text(MANY.format(langs=json.dumps(LANGS), corpus=corpus, mix=mix, max_tokens=max_tokens))
    (exp,) = load_experiments(path)
    (spec,) = exp.runs
    return spec


class StopAt(EventLog):
    """An event log that asks for a stop once the n-th event of a kind is written, as a
    signal arriving right then would; ``after`` counts the events written since."""

    def __init__(self, run_dir: Path, kind: str, n: int) -> None:
        super().__init__(run_dir)
        self.kind, self.n, self.seen, self.stop = kind, n, 0, False
        self.after: list[dict] = []

    def emit(self, event, sync: bool = False) -> None:
        super().emit(event, sync)
        if self.stop:
            self.after.append(vars(event))
        elif event.kind == self.kind:
            self.seen += 1
            self.stop = self.seen == self.n


def _events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in iter_events(run_dir / "events.jsonl") if e["kind"] == kind]


def _final(run_dir: Path, kind: str, key: tuple[str, ...]) -> dict[tuple, float]:
    """The last value logged per key (a resumed run logs some again)."""
    return {tuple(e[k] for k in key): e.get("ppl", e.get("similarity", e.get("loss"))) for e in _events(run_dir, kind)}


@pytest.fixture(scope="module")
def spec(tmp_path_factory, tiny_corpus):
    return _spec(tmp_path_factory.mktemp("spec"), tiny_corpus)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, spec) -> Path:
    """A run that never stopped, to compare with (one for the module: 8 languages cost)."""
    run_dir = tmp_path_factory.mktemp("straight")
    with EventLog(run_dir) as log:
        assert Trainer(spec, run_dir).run(log) == "done"
    return run_dir


def _same_results(a: Path, b: Path) -> None:
    for kind, key in (("train", ("step",)), ("eval", ("step", "language")), ("align_hidden", ("lang_b", "layer"))):
        x, y = _final(a, kind, key), _final(b, kind, key)
        assert x.keys() == y.keys() and x, kind
        assert list(x.values()) == pytest.approx([y[k] for k in x], rel=1e-6), kind


def test_a_stop_during_evaluation_ends_it_and_the_resume_evaluates_that_step(tmp_path, spec, straight):
    run_dir = tmp_path / "stopped"
    log = StopAt(run_dir, "eval", 2)  # the untrained model's evaluation, two languages in
    with log:
        assert Trainer(spec, run_dir).run(log, should_stop=lambda: log.stop) == "cancelled"
    assert [e["kind"] for e in log.after] == ["status"]  # no language evaluated after the stop
    state = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)
    assert (state["step"], state["todo"]) == (0, ["eval"])
    with EventLog(run_dir) as events:
        assert Trainer(spec, run_dir).run(events) == "done"
    assert {e["language"] for e in _events(run_dir, "eval") if e["step"] == 0} == set(LANGS)
    _same_results(straight, run_dir)


def test_a_stop_during_the_final_alignment_ends_it_and_the_resume_completes_it(tmp_path, spec, straight):
    run_dir = tmp_path / "stopped"
    log = StopAt(run_dir, "align_embedding", 1)
    with log:
        assert Trainer(spec, run_dir).run(log, should_stop=lambda: log.stop) == "cancelled"
    assert {e["kind"] for e in log.after} <= {"align_embedding", "status"}  # the pair's other matrix, then stop
    assert not _events(run_dir, "align_hidden") and not (run_dir / FINAL_MODEL_FILE).exists()
    state = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)
    assert (state["step"], state["todo"]) == (spec.total_steps, ["align"])
    with EventLog(run_dir) as events:
        assert Trainer(spec, run_dir).run(events) == "done"
    assert {e["lang_b"] for e in _events(run_dir, "align_gradient")} == set(LANGS[1:])
    _same_results(straight, run_dir)
    assert (run_dir / FINAL_MODEL_FILE).exists() and not (run_dir / CHECKPOINT_FILE).exists()


def test_sigterm_during_evaluation_with_many_languages_stops_the_worker_there(tmp_path, tiny_corpus):
    """A real worker process and a real signal; the work it does after the signal is counted."""
    spec = _spec(tmp_path, tiny_corpus, max_tokens=60_000)  # each language's evaluation takes a while
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / SPEC_FILE).write_text(spec.to_json())
    log = run_dir / "events.jsonl"
    cmd = [sys.executable, "-m", "engine.worker", str(run_dir), "--threads", "1"]
    with open(run_dir / "worker.log", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # a hang guard, not a measurement
        while not any(e["kind"] == "eval" for e in iter_events(log)):
            assert proc.poll() is None and time.monotonic() < deadline, (run_dir / "worker.log").read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        at_signal = len(_events(run_dir, "eval"))
        assert proc.wait(timeout=300) == 3  # cancelled
    finally:
        proc.kill()
    evals = _events(run_dir, "eval")
    assert at_signal >= 1 and len(evals) - at_signal <= 1  # at most the language under way when it came
    assert len(evals) < len(LANGS)
    assert _events(run_dir, "status")[-1]["status"] == "cancelled"
    assert torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)["todo"] == ["eval"]


# -- each long loop checks ----------------------------------------------------------------


class Stop(Exception):
    pass


def _stop_on_call(n: int):
    calls = []

    def interrupt() -> None:
        calls.append(1)
        if len(calls) == n:
            raise Stop

    return interrupt, calls


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(preset("cpu-xxs", 64, 16))


def test_evaluation_checks_between_batches(model):
    interrupt, calls = _stop_on_call(3)
    with pytest.raises(Stop):
        evaluate_stream(model, np.arange(2000) % 64, 16, 8, batch_size=4, interrupt=interrupt)
    assert len(calls) == 3


def test_alignment_loops_check_between_batches(model):
    tables = np.stack([np.arange(32), np.arange(32) + 32])
    interrupt, _ = _stop_on_call(2)
    with pytest.raises(Stop):
        hidden_similarity_cloned(model, torch.randint(0, 32, (64, 16)), tables, ["a", "b"], 0, 1, 8, interrupt)
    seqs = [torch.randint(0, 64, (10,)) for _ in range(8)]
    interrupt, _ = _stop_on_call(2)
    with pytest.raises(Stop):
        hidden_similarity_parallel(model, seqs, seqs, "a", "b", interrupt=interrupt)
    interrupt, _ = _stop_on_call(2)
    with pytest.raises(Stop):
        token_counts(
            np.arange(4096) % 32, 32, np.zeros(64, dtype=int), 16, 256, 1, chunk_windows=16, interrupt=interrupt
        )


def test_the_probe_checks_between_batches(model, tmp_path):
    rows = [f"{'ab'[i % 2] * 5}\t{i % 2}" for i in range(200)]
    (tmp_path / "task.tsv").write_text("\n".join(rows) + "\n")
    cfg = ProbeConfig(task=str(tmp_path / "task.tsv"), steps=1000, lr=1e-3, batch_size=8, n_train=100, n_test=50)
    encode = lambda n, texts: [np.array([1 + "ab".index(c) + 2 * n for c in t]) for t in texts]  # noqa: E731
    interrupt, calls = _stop_on_call(5)
    with pytest.raises(Stop):
        run_probe(model, cfg, ["L1", "L2"], encode, lambda n: 0, 16, interrupt=interrupt)
    assert len(calls) == 5
