"""Cloned-language id maps, anchors, the train/test split and deterministic batches."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.cloned import Batches, anchor_ids, clone_tables
from engine.data.corpora import split_lines
from engine.data.recipe import CorpusSource


def source(corpus, text_field: str = "text", vocab_size: int = 256) -> CorpusSource:
    """A cloned-language corpus as engine.data reads it (no cleaning, no family settings)."""
    return CorpusSource(str(corpus), vocab_size, 0.02, None, text_field, False, None)


def test_clones_offset_by_vocab_size():
    t = clone_tables(10, 3)
    assert t.shape == (3, 10)
    np.testing.assert_array_equal(t[0], np.arange(10))
    np.testing.assert_array_equal(t[2], np.arange(10) + 20)
    assert len(np.unique(t)) == 30  # no collisions without anchors


def test_anchors_are_shared_and_others_disjoint():
    V = 1000
    t = clone_tables(V, 2, anchors=0.1, anchor_seed=7)
    shared = np.flatnonzero(t[0] == t[1])
    assert len(shared) == 100
    np.testing.assert_array_equal(shared, anchor_ids(V, 0.1, 7))
    others = np.setdiff1d(np.arange(V), shared)
    assert set(t[0][others]).isdisjoint(t[1][others])
    assert t[1][others].min() >= V


def test_anchor_choice_is_seeded_uniform_not_frequency():
    a, b = anchor_ids(1000, 0.2, 0), anchor_ids(1000, 0.2, 1)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, anchor_ids(1000, 0.2, 0))
    assert a.max() > 500  # not the most frequent (lowest) ids


def test_split_is_deterministic_and_disjoint():
    text = "\n".join(f"line {i}" for i in range(5000))
    train, test = split_lines(text, 0.02)
    assert (train, test) == split_lines(text, 0.02)
    assert set(train).isdisjoint(test)
    assert len(test) == pytest.approx(100, abs=50)
    assert len(train) + len(test) == 5000


def test_batches_map_each_sequence_through_its_language():
    V, ctx = 50, 4
    stream = np.arange(41, dtype=np.uint16) % V
    tables = clone_tables(V, 2)
    langs = np.array([[0, 1], [1, 0]], dtype=np.int8)
    b = Batches(stream, tables, langs, ctx)
    x, y, lg = b.get(0)
    np.testing.assert_array_equal(x[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(x[1], np.array([4, 5, 6, 7]) + V)
    np.testing.assert_array_equal(y[1], np.array([5, 6, 7, 8]) + V)
    x2, _, _ = b.get(1)
    np.testing.assert_array_equal(x2[0], np.array([8, 9, 10, 11]) + V)
    # same step, same batch: data order is a pure function of the step
    np.testing.assert_array_equal(b.get(1)[0], x2)


def test_reads_text_gzip_jsonl_and_parquet(tmp_path):
    import gzip
    import json

    import duckdb

    from engine.data.corpora import read_corpus
    from engine.errors import DataError

    lines = [f"sentence number {i} of the corpus" for i in range(20)]
    (tmp_path / "a.txt").write_text("\n".join(lines[:10]))
    with gzip.open(tmp_path / "b.txt.gz", "wt") as fh:
        fh.write("\n".join(lines[10:]))
    assert read_corpus(source(tmp_path / "*.txt*"), 1000).splitlines() == lines
    with open(tmp_path / "c.jsonl", "w") as fh:
        for ln in lines:
            fh.write(json.dumps({"body": ln, "id": 1}) + "\n")
    assert read_corpus(source(tmp_path / "c.jsonl", text_field="body"), 1000).splitlines() == lines
    duckdb.sql(f"COPY (SELECT body FROM read_json('{tmp_path / 'c.jsonl'}')) TO '{tmp_path / 'd.parquet'}'")
    assert read_corpus(source(tmp_path / "d.parquet", text_field="body"), 1000).splitlines() == lines
    with pytest.raises(DataError, match="no file matches"):
        read_corpus(source(tmp_path / "missing*.txt"), 1000)
    with pytest.raises(DataError, match="column 'nope'"):
        read_corpus(source(tmp_path / "c.jsonl", text_field="nope"), 1000)


def test_prepare_tokens_is_cached_and_round_trips(tmp_path, tiny_corpus):
    import sentencepiece as spm

    from engine.data.tokens import EOS_ID, prepare_tokens

    data = source(tiny_corpus)
    logs = []
    a = prepare_tokens(data, 10_000, cache=tmp_path, log=logs.append)
    b = prepare_tokens(data, 10_000, cache=tmp_path, log=logs.append)
    assert len(logs) == 1  # the second call is a cache hit
    assert a.key == b.key and np.array_equal(a.train, b.train)
    assert a.train.max() < a.vocab_size and a.vocab_size <= 256
    sp = spm.SentencePieceProcessor(model_file=str(a.tokenizer_path))
    first_line = a.test[: int(np.flatnonzero(a.test == EOS_ID)[0])]
    text = tiny_corpus.read_text()
    assert sp.decode(first_line.tolist()) in text
    stream, chars = a.test_prefix(500)
    assert len(stream) <= 500 and chars > len(stream)


def test_cloned_languages_read_the_same_text_through_each_id_map(tmp_path, tiny_corpus):
    from engine.data.cloned import ClonedLanguages
    from engine.data.tokens import EOS_ID, prepare_tokens

    tokens = prepare_tokens(source(tiny_corpus), 10_000, cache=tmp_path, log=lambda m: None)
    V = tokens.vocab_size
    data = ClonedLanguages.build(["A", "B"], tokens, anchors=0.1, anchor_seed=3)
    assert data.vocab_size == 2 * V and data.info()["n_anchors"] == len(anchor_ids(V, 0.1, 3))
    assert data.eos(1) == data.tables[1][EOS_ID]

    def same_text(a: np.ndarray, b: np.ndarray) -> bool:  # B's id is A's + V, or the same anchor
        return bool(((b == a + V) | (b == a)).all()) and bool((a < V).all())

    (ids_a, chars_a), (ids_b, chars_b) = data.test_ids(0, 200), data.test_ids(1, 200)
    assert chars_a == chars_b and same_text(ids_a, ids_b)
    text = data.alignment_text(0, 1, context=16, n_sequences=4)
    assert text.same_positions and np.asarray(text.hidden_a).shape == (4, 16)
    assert same_text(np.asarray(text.hidden_a), np.asarray(text.hidden_b))
    assert text.gradient_a.shape == (2, 17) and same_text(text.gradient_a, text.gradient_b)
    labels = np.array([[0, 0], [1, 0], [1, 1]])
    counts = data.seen_id_counts(labels, 16)
    assert counts.shape == (2, V) and counts[0].sum() == counts[1].sum() == 3 * 16
