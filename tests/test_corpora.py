"""Per-language corpora of real-language experiments: cleaning, configuration, preparation, batches."""

from __future__ import annotations

import gzip
import json
import tomllib
from dataclasses import replace

import numpy as np
import pytest

from engine.config.locate import SpecError
from engine.config.spec import parse_experiments
from engine.data.corpora import clean_text

REAL = """\
[experiments.real]
languages = ["EN", "FR"]
model = "cpu-xxs"
tokens = 8_192
baselines = [1.0]
train = {{ batch_size = 4, context = 32 }}

[experiments.real.data]
kind = "real"
tokenizer = "{tokenizer}"
vocab_size = 128

[experiments.real.data.corpora]
EN = {{ path = "{en}", column = "body" }}
FR = {{ path = "builtin:family", family = {{ like = "far" }}, max_chars = 40_000 }}
"""


def _parse(text: str):
    return parse_experiments(tomllib.loads(text), text, "exp.toml")


def test_clean_text_normalises_but_keeps_french_spaces():
    raw = "  Caf\u0065\u0301\t\tau  lait\u00a0;\x07 ok \r\n\n\n  \nfin\ufffd  "
    assert clean_text(raw) == "Caf\u00e9 au lait\u00a0; ok\nfin"


def test_cloned_run_ids_are_unchanged():
    """Ids computed by the xling before real languages existed (tests/conftest.py TINY)."""
    from tests.conftest import TINY

    runs = _parse(TINY.format(corpus="/x/c.txt"))[0].runs
    assert [r.run_id for r in runs] == ["151c278e8a51", "ac419c23baad", "93d2ad74788c"]
    stored = runs[0].to_dict()  # spec.json: cloned runs keep exactly their original fields
    assert "corpora" not in stored["data"] and "probe" not in stored["eval"]


def test_real_spec_keeps_its_corpora():
    exp = _parse(REAL.format(tokenizer="anchored", en="/x/en.jsonl"))[0]
    data = exp.runs[0].to_dict()["data"]
    assert data["kind"] == "real" and data["tokenizer"] == "anchored"
    assert data["corpora"]["FR"]["family"] == {"like": "far"}
    other = _parse(REAL.format(tokenizer="disjoint", en="/x/en.jsonl"))[0]
    assert other.runs[0].run_id != exp.runs[0].run_id


@pytest.mark.parametrize(
    "edit, where, message",
    [
        (lambda t: t.replace("FR = {", "DE = {"), "exp.toml:13", "no corpus for 'FR'"),
        (lambda t: t.replace('kind = "real"', 'kind = "cloned"'), "exp.toml:13", "only for kind"),
        (lambda t: t.replace('tokenizer = "anchored"', 'tokenizer = "shared"'), "exp.toml:10", "tokenizer"),
        (lambda t: t.replace('path = "builtin:family", ', 'path = "fr.txt", '), "exp.toml", "family settings only"),
        (lambda t: t.replace('like = "far"', 'like = "martian"'), "exp.toml", "unknown family preset"),
        (
            lambda t: t.replace("vocab_size = 128", "vocab_size = 128\nanchors = 0.1"),
            "exp.toml:12",
            "anchors are for cloned",
        ),
        (
            lambda t: t.replace(
                "vocab_size = 128", 'vocab_size = 128\nparallel = { path = "p.tsv", columns = ["EN", "DE"] }'
            ),
            "exp.toml:12",
            "'DE' is not one",
        ),
        (
            lambda t: t.replace("baselines = [1.0]", 'baselines = [1.0]\neval = { probe = { train_language = "DE" } }'),
            "exp.toml",
            "train_language",
        ),
        (
            lambda t: t.replace("baselines = [1.0]", "baselines = [1.0]\neval = { probe = {} }"),
            "exp.toml",
            "built-in task needs the built-in corpus",
        ),
    ],
)
def test_bad_real_configs_name_file_line_and_field(edit, where, message):
    text = edit(REAL.format(tokenizer="anchored", en="/x/en.jsonl"))
    with pytest.raises(SpecError) as err:
        _parse(text)
    assert str(err.value).startswith(where) and message in str(err.value)
    assert "experiments.real" in str(err.value)


def test_prepare_real_from_jsonl_and_family(tmp_path):
    from engine.data.family import family_text
    from engine.data.prepare import summarize
    from engine.data.real_languages import prepare_real

    en = tmp_path / "en.jsonl.gz"
    lines = family_text({"like": "near"}, 60_000).splitlines()
    with gzip.open(en, "wt", encoding="utf-8") as fh:
        for ln in lines:
            fh.write(json.dumps({"body": "  " + ln + "\t ", "id": 1}) + "\n")
    exp = _parse(REAL.format(tokenizer="anchored", en=en))[0]
    spec = exp.runs[0]
    real = prepare_real(spec.data_recipe(), cache=tmp_path / "cache", log=lambda m: None)
    assert real.vocab.mode == "anchored" and real.vocab.n_anchors > 0
    assert real.vocab.size == sum(real.vocab.sizes) - real.vocab.n_anchors
    for i in range(2):  # every language's ids live inside the model vocabulary
        ids, n_chars = real.test_ids(i, 500)
        assert ids.min() >= 0 and ids.max() < real.vocab.size and n_chars > 0
    again = prepare_real(spec.data_recipe(), cache=tmp_path / "cache", log=lambda m: pytest.fail("should be cached"))
    assert np.array_equal(again.tokens[0].train, real.tokens[0].train)
    info = summarize(real)
    assert [r["language"] for r in info["languages"]] == ["EN", "FR"]
    assert info["identical_pieces"] == real.vocab.n_anchors

    joint = replace(spec.data_recipe(), tokenization="joint")
    shared = prepare_real(joint, cache=tmp_path / "cache", log=lambda m: None)
    assert shared.vocab.mode == "joint" and shared.vocab.size <= 256
    assert shared.tokens[0].tokenizer_path.read_bytes() == shared.tokens[1].tokenizer_path.read_bytes()


def test_stream_batches_draw_each_language_from_its_own_stream():
    from engine.data.real_languages import StreamBatches
    from engine.data.vocab import disjoint

    streams = [np.arange(100, dtype=np.uint16) % 10, np.arange(60, dtype=np.uint16) % 7]
    vocab = disjoint([10, 7])
    labels = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 1]])
    batches = StreamBatches(streams, vocab.tables, labels, context=4)
    x, y, langs = batches.get(1)
    assert (langs == labels[1]).all()
    assert x[0].min() >= 10 and x[2].max() < 10  # FR ids offset past EN's 10
    # the k-th sequence of a language reads that language's k-th window
    assert list(x[0]) == [10 + v % 7 for v in range(4, 8)]  # FR's 2nd sequence
    assert list(x[1]) == [10 + v % 7 for v in range(8, 12)]  # FR's 3rd
    assert list(x[2]) == [v % 10 for v in range(8, 12)]  # EN's 3rd
    assert np.array_equal(batches.get(1)[0], x)  # a pure function of the step
    assert (y[:, :-1] == x[:, 1:]).all()


def test_real_languages_without_parallel_sentences_say_why_alignment_is_skipped(tmp_path):
    from engine.data.family import family_text
    from engine.data.real_languages import prepare_real

    en = tmp_path / "en.jsonl"
    en.write_text("".join(json.dumps({"body": ln}) + "\n" for ln in family_text({}, 40_000).splitlines()))
    spec = _parse(REAL.format(tokenizer="disjoint", en=en))[0].runs[0]
    real = prepare_real(spec.data_recipe(), cache=tmp_path / "cache", log=lambda m: None)
    assert real.seen_id_counts(np.zeros((2, 4), dtype=np.int64), 32) is None  # no equivalent ids
    assert "no parallel sentences configured" in real.alignment_text(0, 1, 32, 8)
