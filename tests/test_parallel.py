"""Parallel sentence pairs: reading, sampling, encoding, packing, and the real-language alignment."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.parallel import pack, parallel_texts, read_tsv_pairs
from engine.data.recipe import CorpusSource, DataRecipe, ParallelSource
from engine.errors import DataError


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "en-fr.tsv"
    rows = [f"sentence {i}\tphrase {i}" for i in range(50)] + ["sentence 3\tphrase 3", "\tvide"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_tsv_pairs_line_up_and_are_a_seeded_sample(tsv):
    pairs = read_tsv_pairs(str(tsv), ["EN", "FR"], "EN", "FR", 20)
    assert len(pairs) == 20 and len(set(pairs)) == 20  # duplicates and empty cells dropped
    assert all(a.split()[1] == b.split()[1] for a, b in pairs)  # each pair is a translation
    assert pairs == read_tsv_pairs(str(tsv), ["EN", "FR"], "EN", "FR", 20)
    assert pairs != [(f"sentence {i}", f"phrase {i}") for i in range(20)]  # not the file's (sorted) order
    reverse = read_tsv_pairs(str(tsv), ["EN", "FR"], "FR", "EN", 20)
    assert reverse == [(b, a) for a, b in pairs]


def test_tsv_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\ttwo\nonly one column\n")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 2 tab-separated columns"):
        read_tsv_pairs(str(bad), ["EN", "FR"], "EN", "FR", 5)
    with pytest.raises(DataError, match="no column for DE"):
        read_tsv_pairs(str(bad), ["EN", "FR"], "EN", "DE", 5)
    with pytest.raises(DataError, match="missing.tsv"):
        read_tsv_pairs(str(tmp_path / "missing.tsv"), ["EN", "FR"], "EN", "FR", 5)


def _family_recipe(b_corpus: str = "builtin:family") -> DataRecipe:
    sources = (
        CorpusSource("builtin:family", 128, 0.02, None, "text", True, {}),
        CorpusSource(b_corpus, 128, 0.02, None, "text", True, {"like": "mid"}),
    )
    return DataRecipe(("A", "B"), 8192, "disjoint", sources, 0.0, 0, None)


def test_family_pairs_are_translations():
    pairs = parallel_texts(ParallelSource("builtin:family", None, 30), _family_recipe(), "A", "B")
    assert len(pairs) == 30
    assert all(a != b for a, b in pairs)
    # a question in one language is a question in the other
    assert [a.endswith("?") for a, _ in pairs] == [b.endswith("?") for _, b in pairs]
    with pytest.raises(DataError, match="builtin:family"):
        parallel_texts(ParallelSource("builtin:family", None, 64), _family_recipe("x.txt"), "A", "B")


def test_pack_cuts_one_stream_into_rows():
    seqs = [np.arange(5), np.arange(5, 12), np.arange(12, 20)]
    rows = pack(seqs, 6)
    assert rows.shape == (3, 7)
    assert list(rows[1]) == list(range(6, 13))  # consecutive rows overlap by one (inputs and targets)
    assert pack([np.arange(3)], 8).shape == (1, 3)


def test_real_alignment_runs_on_parallel_pairs(tmp_path):
    """A run over two family languages emits hidden-state and gradient similarity from generated pairs."""
    import tomllib

    from engine.config.spec import parse_experiments
    from engine.runs.events import EventLog, iter_events
    from engine.train import Trainer

    text = """
[experiments.f]
languages = ["A", "B"]
model = "cpu-xxs"
tokens = 4_096
train = { batch_size = 4, context = 32, warmup = 2 }
eval = { context = 32, max_tokens = 500, every = 0, alignment_sequences = 8 }
data = { kind = "real", tokenizer = "disjoint", vocab_size = 128, corpora = { A = { path = "builtin:family", max_chars = 30_000 }, B = { path = "builtin:family", family = { like = "far" }, max_chars = 30_000 } } }
[[experiments.f.schedules]]
name = "50/50"
mix = { A = [50], B = [50] }
"""
    spec = parse_experiments(tomllib.loads(text), text, "f.toml")[0].runs[0]
    with EventLog(tmp_path) as log:
        assert Trainer(spec, tmp_path, log=lambda m: None).run(log) == "done"
    events = list(iter_events(tmp_path / "events.jsonl"))
    hidden = [e for e in events if e["kind"] == "align_hidden"]
    assert [e["layer"] for e in hidden] == list(range(len(hidden))) and len(hidden) >= 2
    assert hidden[0]["n_sequences"] == 8  # long pairs are skipped, more are drawn
    assert all(-1.0 <= e["similarity"] <= 1.0 for e in hidden)
    assert any(e["kind"] == "align_gradient" for e in events)
    assert not any(e["kind"] == "align_embedding" for e in events)  # no equivalent ids between real languages
    tok = [e for e in events if e["kind"] == "tokenizer"]
    assert tok[0]["mode"] == "disjoint" and tok[0]["n_anchors"] == 0
