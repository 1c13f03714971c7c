"""Alignment measures: exact on constructed cases, sane bounds on random models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engine.analysis.alignment import (
    embedding_similarity,
    gradient_similarity,
    gradient_similarity_cloned,
    hidden_similarity_cloned,
    hidden_similarity_parallel,
    matched_similarity,
)
from engine.config.presets import preset
from engine.data.cloned import anchor_ids, clone_tables, token_counts
from engine.model import GPT

LANGS = ["EN1", "EN2"]


def make_model(V: int, N: int = 2, context: int = 16, name: str = "cpu-xxs", seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(preset(name, V * N, context))


def copy_language(model: GPT, tables: np.ndarray, src: int, dst: int) -> None:
    """Make language ``dst`` an exact copy of ``src`` in both untied matrices."""
    with torch.no_grad():
        for w in (model.tok_emb.weight, model.head.weight):
            w[torch.as_tensor(tables[dst])] = w[torch.as_tensor(tables[src])]
        model.head.bias[torch.as_tensor(tables[dst])] = model.head.bias[torch.as_tensor(tables[src])]


def perturb(model: GPT, scale: float = 0.5, seed: int = 1) -> None:
    """Fresh-init biases and LayerNorms are trivial; nudge everything so tests see real signal."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale * (p.std() if p.numel() > 1 and p.std() > 0 else 0.02))


# --- embedding similarity --------------------------------------------------------------


def test_identical_copies_have_similarity_one():
    V = 50
    tables = clone_tables(V, 2)
    model = make_model(V)
    copy_language(model, tables, 0, 1)
    for res in embedding_similarity(model, tables, LANGS, 0, 1):
        assert res.mean == pytest.approx(1.0, abs=1e-9)
        assert res.n_ids == V and res.n_anchors_excluded == 0
        assert (res.lang_a, res.lang_b) == ("EN1", "EN2")
    assert [r.matrix for r in embedding_similarity(model, tables, LANGS, 0, 1)] == ["input", "output"]


def test_independent_copies_sit_at_the_control():
    V = 2000
    model = make_model(V, context=4)
    for res in embedding_similarity(model, clone_tables(V, 2), LANGS, 0, 1):
        assert abs(res.mean - res.control) < 0.05
        assert abs(res.mean) < 0.05


def test_anchors_are_excluded_and_counted():
    V = 100
    tables = clone_tables(V, 2, anchors=0.1, anchor_seed=3)
    model = make_model(V)
    for res in embedding_similarity(model, tables, LANGS, 0, 1):
        assert res.n_anchors_excluded == 10 and res.n_ids == 90
        assert res.mean < 0.5  # shared rows (cosine 1) would drag an unexcluded mean up
    # Explicit anchors add to the shared rows; here they are the same set.
    explicit = embedding_similarity(model, tables, LANGS, 0, 1, anchors=anchor_ids(V, 0.1, 3))
    assert explicit[0].n_anchors_excluded == 10
    # Declaring anchors on a table without shared rows still excludes them.
    plain = embedding_similarity(model, clone_tables(V, 2), LANGS, 0, 1, anchors=np.array([0, 5, 7]))
    assert plain[0].n_anchors_excluded == 3 and plain[0].n_ids == V - 3


def test_same_language_is_rejected():
    with pytest.raises(ValueError):
        embedding_similarity(make_model(10), clone_tables(10, 2), LANGS, 1, 1)


def test_control_matches_brute_force_all_pairs():
    V = 20
    tables = clone_tables(V, 2, anchors=0.2)
    model = make_model(V)
    ids = np.flatnonzero(tables[0] != tables[1])
    for res, w in zip(embedding_similarity(model, tables, LANGS, 0, 1), (model.tok_emb.weight, model.head.weight)):
        wa = w.detach().double()[tables[0][ids]]
        wb = w.detach().double()[tables[1][ids]]
        cos = torch.nn.functional.cosine_similarity(wa[:, None, :], wb[None, :, :], dim=-1)
        assert res.control == pytest.approx(float(cos.mean()), abs=1e-12)
        assert res.mean == pytest.approx(float(cos.diagonal().mean()), abs=1e-12)


def test_frequency_bins_partition_the_ids():
    V = 200
    tables = clone_tables(V, 2, anchors=0.05)
    model = make_model(V)
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5000, size=(2, V))
    counts[0, :20] = 0
    counts[:, 20:23] = [[10, 100, 1000], [10, 100, 1000]]  # counts exactly on bin edges
    ids = np.flatnonzero(tables[0] != tables[1])
    rarer = np.minimum(counts[0], counts[1])[ids]
    for res in embedding_similarity(model, tables, LANGS, 0, 1, counts=counts):
        assert sum(b["n"] for b in res.bins) == res.n_ids
        zero = [b for b in res.bins if b["hi"] == 0]
        assert len(zero) == 1 and zero[0]["lo"] == 0 and zero[0]["n"] == int((rarer == 0).sum())
        assert res.bins[0] is zero[0]
        for b in res.bins[1:]:
            assert b["n"] == int(((rarer >= b["lo"]) & (rarer < b["hi"])).sum())
            assert b["hi"] / b["lo"] == pytest.approx(10**0.25)
            assert -1 <= b["similarity"] <= 1 and -1 <= b["control"] <= 1
        edge = [b for b in res.bins if b["lo"] == pytest.approx(10.0)]
        assert edge and edge[0]["lo"] <= 10 < edge[0]["hi"]
        # n-weighted bin means recover the overall mean
        assert sum(b["n"] * b["similarity"] for b in res.bins) / res.n_ids == pytest.approx(res.mean)
    assert embedding_similarity(model, tables, LANGS, 0, 1)[0].bins == []


def test_bin_control_matches_brute_force():
    V = 30
    tables = clone_tables(V, 2)
    model = make_model(V)
    counts = np.where(np.arange(V) < 12, 0, 5)[None, :].repeat(2, axis=0)
    res = embedding_similarity(model, tables, LANGS, 0, 1, counts=counts)[0]
    w = model.tok_emb.weight.detach().double()
    for members, b in ((np.arange(12), res.bins[0]), (np.arange(12, V), res.bins[1])):
        wa, wb = w[tables[0][members]], w[tables[1][members]]
        cos = torch.nn.functional.cosine_similarity(wa[:, None, :], wb[None, :, :], dim=-1)
        assert b["control"] == pytest.approx(float(cos.mean()), abs=1e-12)
        assert b["n"] == len(members)


# --- token counts -------------------------------------------------------------------------


def brute_token_counts(stream, V, langs, context, n_windows, N):
    counts = np.zeros((N, V), dtype=np.int64)
    for s, lang in enumerate(langs.ravel()):
        w = s % n_windows
        for tok in stream[w * context : w * context + context]:
            counts[lang, tok] += 1
    return counts


@pytest.mark.parametrize("chunk", [1, 3, 1 << 14])
def test_token_counts_exact(chunk):
    rng = np.random.default_rng(1)
    V, context = 13, 5
    stream = rng.integers(0, V, size=40).astype(np.uint16)
    n_windows = (len(stream) - 1) // context
    langs = rng.integers(0, 3, size=(6, 4))
    got = token_counts(stream, V, langs, context, n_windows, n_languages=3, chunk_windows=chunk)
    assert got.dtype == np.int64 and got.shape == (3, V)
    np.testing.assert_array_equal(got, brute_token_counts(stream, V, langs, context, n_windows, 3))
    assert got.sum() == langs.size * context


def test_token_counts_infers_languages_and_checks_ids():
    stream = np.arange(12) % 4
    langs = np.array([[0, 1], [1, 1]])
    assert token_counts(stream, 4, langs, 3, 3).shape == (2, 4)
    with pytest.raises(ValueError):
        token_counts(stream, 3, langs, 3, 3)


# --- hidden-state similarity ----------------------------------------------------------------


def test_hidden_similarity_one_for_identical_copies():
    V, T = 40, 8
    tables = clone_tables(V, 2)
    model = make_model(V, name="cpu-xs")
    perturb(model)
    copy_language(model, tables, 0, 1)
    base = torch.randint(0, V, (5, T), generator=torch.Generator().manual_seed(0))
    res = hidden_similarity_cloned(model, base, tables, LANGS, 0, 1, batch_size=2)
    assert len(res.per_layer) == len(model.blocks) + 1 == 3
    assert res.n_sequences == 5
    assert res.per_layer == pytest.approx([1.0] * 3, abs=1e-6)


def test_hidden_similarity_bounded_and_same_language_is_one():
    V, T = 40, 8
    tables = clone_tables(V, 2)
    model = make_model(V, name="cpu-xs")
    perturb(model)
    model.train()
    base = torch.randint(0, V, (4, T), generator=torch.Generator().manual_seed(0))
    res = hidden_similarity_cloned(model, base, tables, LANGS, 0, 1)
    assert all(-1 <= x <= 1 for x in res.per_layer)
    assert res.per_layer[-1] < 0.999
    assert hidden_similarity_cloned(model, base, tables, LANGS, 1, 1).per_layer == pytest.approx([1.0] * 3, abs=1e-6)
    assert model.training


def test_parallel_identical_sentences_are_one():
    V = 40
    model = make_model(V)
    perturb(model)
    gen = torch.Generator().manual_seed(2)
    seqs = [torch.randint(0, V, (n,), generator=gen) for n in (3, 7, 5)]
    res = hidden_similarity_parallel(model, seqs, seqs, "en", "de")
    assert res.n_sequences == 3 and len(res.per_layer) == 2
    assert res.per_layer == pytest.approx([1.0, 1.0], abs=1e-6)
    other = hidden_similarity_parallel(model, seqs, [s[:-1] + V for s in seqs[:2]] + [seqs[2]], "en", "de")
    assert all(-1 <= x <= 1 for x in other.per_layer)
    with pytest.raises(ValueError):
        hidden_similarity_parallel(model, seqs, seqs[:2], "en", "de")


def test_matching_uses_the_optimal_assignment():
    # states_a = e1..e3, so the cosine matrix is built column by column from states_b.
    sim = np.array([[0.6, 0.5, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.1]])
    states_a = torch.eye(3, 4, dtype=torch.float64)
    slack = np.sqrt(1 - (sim**2).sum(axis=0))
    states_b = torch.tensor(np.vstack([sim, slack]).T)
    # greedy / position-wise pairing gives (0.6 + 0 + 0.1) / 3; the optimum swaps rows 0 and 1
    assert matched_similarity(states_a, states_b) == pytest.approx(1.1 / 3)
    best = max(sum(sim[i, p[i]] for i in range(3)) for p in itertools.permutations(range(3))) / 3
    assert matched_similarity(states_a, states_b) == pytest.approx(best)
    # unequal lengths: min(La, Lb) pairs
    assert matched_similarity(states_a[:2], states_b) == pytest.approx((0.5 + 0.5) / 2)


# --- gradient similarity ----------------------------------------------------------------------


def grad_setup():
    V, T = 30, 8
    tables = clone_tables(V, 2, anchors=0.1)
    model = make_model(V, name="cpu-xs")
    perturb(model)
    base = torch.randint(0, V, (3, T + 1), generator=torch.Generator().manual_seed(4))
    return model, tables, base


def test_gradient_similarity_symmetric_and_bounded():
    model, tables, base = grad_setup()
    ab = gradient_similarity_cloned(model, base, tables, LANGS, 0, 1)
    ba = gradient_similarity_cloned(model, base, tables, LANGS, 1, 0)
    assert (ab.lang_a, ab.lang_b, ba.lang_a) == ("EN1", "EN2", "EN2")
    assert ab.per_tensor.keys() == ba.per_tensor.keys()
    assert "blocks.0.attn.qkv.weight" in ab.per_tensor
    assert all(k.startswith("blocks.") for k in ab.per_tensor)
    for k in ab.per_tensor:
        assert ab.per_tensor[k] == pytest.approx(ba.per_tensor[k], abs=1e-9)
        assert -1 - 1e-9 <= ab.per_tensor[k] <= 1 + 1e-9
    assert ab.mean == pytest.approx(float(np.mean(list(ab.per_tensor.values()))))
    assert ab.mean < 0.9999


def test_gradient_similarity_one_for_identical_sequences():
    model, tables, base = grad_setup()
    batch = torch.as_tensor(tables[0])[base]
    res = gradient_similarity(model, batch, batch.clone(), "EN1", "EN1")
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in res.per_tensor.values())
    assert res.mean == pytest.approx(1.0, abs=1e-6)


def test_gradient_similarity_leaves_grads_and_mode_alone():
    model, tables, base = grad_setup()
    marker = torch.full_like(model.blocks[0].attn.qkv.weight, 3.0)
    model.blocks[0].attn.qkv.weight.grad = marker.clone()
    for training in (True, False):
        model.train(training)
        gradient_similarity_cloned(model, base, tables, LANGS, 0, 1)
        assert model.training is training
    assert torch.equal(model.blocks[0].attn.qkv.weight.grad, marker)
    assert all(p.grad is None for n, p in model.named_parameters() if n != "blocks.0.attn.qkv.weight")
    with torch.no_grad():  # works from inside a caller's no_grad block too
        assert -1 <= gradient_similarity_cloned(model, base, tables, LANGS, 0, 1).mean <= 1
