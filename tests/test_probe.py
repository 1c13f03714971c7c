"""The zero-shot downstream probe: fine-tune in L1, score in every language."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.analysis.probe import run_probe, task_examples
from engine.config.spec import ProbeConfig
from engine.errors import DataError
from engine.model import GPT, preset

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _char_encoder(offset: int):
    """Cloned character 'languages': letter k is id 1 + k + n·offset in language n (0 is EOS)."""
    return lambda n, texts: [np.array([1 + LETTERS.index(c) + n * offset for c in t]) for t in texts]


@pytest.fixture
def separable_tsv(tmp_path):
    """Label = which half of the alphabet the *first* letter is from: the last token must look back."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(600):
        word = "".join(rng.choice(list(LETTERS), 6))
        rows.append(f"{word}\t{'early' if word[0] < 'n' else 'late'}")
    path = tmp_path / "task.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_probe_learns_a_separable_task_in_l1(separable_tsv):
    torch.manual_seed(0)
    model = GPT(preset("cpu-xxs", 1 + 2 * 26, 16))
    cfg = ProbeConfig(task=str(separable_tsv), steps=150, lr=3e-3, batch_size=32, n_train=400, n_test=150)
    scores = run_probe(model, cfg, ["L1", "L2"], _char_encoder(26), lambda n: 0, 16, seed=0)
    by_lang = {s.language: s for s in scores}
    assert set(by_lang) == {"L1", "L2"}
    l1 = by_lang["L1"]
    assert l1.train_language == "L1" and l1.n_examples == 150
    assert 0.4 < l1.chance < 0.65
    assert l1.accuracy >= 0.9 and l1.train_accuracy >= 0.9
    # L2's letters were never fine-tuned (untrained embeddings): its score is reported, whatever it is
    assert 0.0 <= by_lang["L2"].accuracy <= 1.0


def test_probe_leaves_the_language_model_untouched(separable_tsv):
    model = GPT(preset("cpu-xxs", 1 + 2 * 26, 16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = ProbeConfig(task=str(separable_tsv), steps=3, lr=1e-2, batch_size=8, n_train=20, n_test=10)
    run_probe(model, cfg, ["L1", "L2"], _char_encoder(26), lambda n: 0, 16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_builtin_task_is_parallel_and_labelled():
    raw = task_examples("builtin:synthetic", ["A", "B"], {"A": {}, "B": {"like": "far"}}, 50)
    assert [y for _, y in raw["A"]] == [y for _, y in raw["B"]]
    assert {y for _, y in raw["A"]} == {"0", "1"}


def test_bad_task_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine\tyes\nno label here\n")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected text<TAB>label"):
        task_examples(str(bad), ["A"], None, 10)
    one = tmp_path / "one.tsv"
    one.write_text("a\tyes\nb\tyes\n")
    with pytest.raises(DataError, match="two distinct labels"):
        task_examples(str(one), ["A"], None, 10)


def test_a_cloned_run_probes_every_trained_language(tmp_path):
    """Cloned languages on the built-in corpus: the built-in task through each clone's id map."""
    import tomllib

    from engine.config.spec import parse_experiments
    from engine.runs.events import EventLog, iter_events
    from engine.train import Trainer

    text = """
[experiments.c]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 4_096
data = { corpus = "builtin:synthetic", vocab_size = 128, max_chars = 60_000 }
train = { batch_size = 4, context = 32, warmup = 2 }
eval = { context = 32, max_tokens = 500, every = 0, alignment = false, probe = { steps = 5, n_train = 40, n_test = 30 } }
[[experiments.c.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }
"""
    spec = parse_experiments(tomllib.loads(text), text, "c.toml")[0].runs[0]
    with EventLog(tmp_path) as log:
        assert Trainer(spec, tmp_path, log=lambda m: None).run(log) == "done"
    probes = [e for e in iter_events(tmp_path / "events.jsonl") if e["kind"] == "probe"]
    assert [(p["train_language"], p["language"]) for p in probes] == [("EN1", "EN1"), ("EN1", "EN2")]
    assert all(p["n_examples"] == 30 and p["task"] == "builtin:synthetic" for p in probes)
    tok = [e for e in iter_events(tmp_path / "events.jsonl") if e["kind"] == "tokenizer"]
    assert tok[0]["mode"] == "cloned" and tok[0]["vocab_size"] == 2 * tok[0]["languages"]["EN1"]["vocab_size"]
