"""Sliding-window evaluation: the plan covers each target once, the batched scorer
matches brute force on tiny causal models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.analysis.evaluate import EvalScore, evaluate_stream, window_plan

VOCAB = 13

# (N, C, S): N-1 < C, N-1 == C, S == C, S == 1, N not aligned to S, aligned tails.
PLAN_CASES = [
    (2, 1, 1),
    (2, 8, 4),
    (5, 8, 2),
    (9, 8, 2),
    (10, 8, 2),
    (10, 8, 8),
    (11, 8, 8),
    (25, 8, 8),
    (26, 8, 8),
    (30, 8, 1),
    (31, 8, 3),
    (33, 8, 3),
    (100, 16, 5),
    (129, 32, 8),
    (130, 32, 8),
    (1000, 512, 128),
    (1001, 512, 128),
    (1025, 512, 128),
    (4097, 512, 128),
]


# --------------------------------------------------------------------- window_plan


def _scored_targets(plan: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """(target index, context length) for every target each window scores."""
    out = []
    for start, score_from, end in plan:
        for target in range(max(score_from, start + 1), end + 1):
            out.append((target, target - start))
    return out


def _all_plan_cases() -> list[tuple[int, int, int]]:
    grid = [(n, c, s) for n in range(2, 40) for c in (1, 2, 3, 5, 8) for s in range(1, c + 1)]
    return PLAN_CASES + grid


def test_plan_scores_every_target_exactly_once() -> None:
    for n, c, s in _all_plan_cases():
        targets = [t for t, _ in _scored_targets(window_plan(n, c, s))]
        assert sorted(targets) == list(range(1, n)), (n, c, s)


def test_plan_gives_each_target_enough_context() -> None:
    for n, c, s in _all_plan_cases():
        for target, ctx in _scored_targets(window_plan(n, c, s)):
            assert min(target, c - s) <= ctx <= c, (n, c, s, target, ctx)


def test_plan_windows_are_never_shorter_than_needed() -> None:
    for n, c, s in _all_plan_cases():
        plan = window_plan(n, c, s)
        for start, score_from, end in plan:
            assert 0 <= start < end <= n - 1, (n, c, s)
            assert end - start == min(c, n - 1), (n, c, s)
            assert start < score_from <= end, (n, c, s)


def test_plan_regular_windows_step_by_stride() -> None:
    for n, c, s in _all_plan_cases():
        plan = window_plan(n, c, s)
        starts = [w[0] for w in plan]
        regular = starts if starts[-1] % s == 0 else starts[:-1]
        assert regular == [i * s for i in range(len(regular))], (n, c, s)
        assert plan[-1][2] == min(n - 1, plan[-1][0] + c)


def test_plan_single_window_when_stream_fits() -> None:
    assert window_plan(9, 8, 2) == [(0, 1, 8)]
    assert window_plan(5, 8, 2) == [(0, 1, 4)]
    assert window_plan(2, 8, 2) == [(0, 1, 1)]


def test_plan_paper_settings_example() -> None:
    plan = window_plan(1001, 512, 128)
    assert plan == [
        (0, 1, 512),
        (128, 513, 640),
        (256, 641, 768),
        (384, 769, 896),
        (488, 897, 1000),  # shifted back to end at the last target
    ]


@pytest.mark.parametrize("args", [(1, 8, 2), (10, 0, 1), (10, 8, 0), (10, 8, 9)])
def test_plan_rejects_bad_arguments(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        window_plan(*args)


# --------------------------------------------------------------------- tiny models


class TinyGRU(nn.Module):
    """Causal by construction: a recurrent net only sees the past."""

    def __init__(self, vocab: int = VOCAB, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.rnn(self.emb(idx))
        return self.head(hidden)


class TinyAttention(nn.Module):
    """One causal self-attention block with learned positions and dropout.

    Dropout makes the test fail unless the evaluator switches the model to eval mode;
    positions make the logits depend on where a token sits in its window.
    """

    def __init__(self, vocab: int = VOCAB, dim: int = 16, max_len: int = 64) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.drop(self.proj(att))
        return self.head(torch.tanh(x)) * 3.0


def _make(kind: str) -> nn.Module:
    torch.manual_seed(0)
    model = TinyGRU() if kind == "gru" else TinyAttention()
    return model.eval()


def _stream(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=n, dtype=np.int64)


# --------------------------------------------------------------------- brute forces


def _brute_by_windows(model: nn.Module, tokens: np.ndarray, c: int, s: int) -> tuple[float, int, int]:
    """Each window of the plan alone, unbatched, summing only its scored targets."""
    t = torch.from_numpy(tokens)
    nll, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for start, score_from, end in window_plan(len(tokens), c, s):
            logits = model(t[start:end][None])[0].float()
            lp = logits.log_softmax(-1)
            for pos in range(end - start):
                target = start + 1 + pos
                if target < score_from:
                    continue
                nll -= float(lp[pos, t[target]])
                correct += int(int(logits[pos].argmax()) == int(t[target]))
                count += 1
    return nll, correct, count


def _context_start(target: int, n: int, c: int, s: int) -> int:
    """Where target's context begins under the scheme, derived without window_plan."""
    if target <= c or n - 1 <= c:
        return 0
    last_regular = ((n - 1 - c) // s) * s
    start = math.ceil((target - c) / s) * s
    return start if start <= last_regular else n - 1 - c


def _brute_by_tokens(model: nn.Module, tokens: np.ndarray, c: int, s: int) -> tuple[float, int]:
    """Token by token: predict target j from its own context slice, last position only."""
    t = torch.from_numpy(tokens)
    nll, correct = 0.0, 0
    with torch.no_grad():
        for j in range(1, len(tokens)):
            start = _context_start(j, len(tokens), c, s)
            logits = model(t[start:j][None])[0, -1].float()
            nll -= float(logits.log_softmax(-1)[t[j]])
            correct += int(int(logits.argmax()) == int(t[j]))
    return nll, correct


# --------------------------------------------------------------------- evaluate_stream

EVAL_CASES = [(57, 16, 4), (40, 8, 8), (33, 8, 1), (17, 16, 5), (12, 16, 4), (50, 12, 5)]


@pytest.mark.parametrize("kind", ["gru", "attn"])
@pytest.mark.parametrize("n,c,s", EVAL_CASES)
def test_matches_window_brute_force(kind: str, n: int, c: int, s: int) -> None:
    model = _make(kind)
    tokens = _stream(n)
    score = evaluate_stream(model, tokens, c, s, batch_size=3)
    nll, correct, count = _brute_by_windows(model, tokens, c, s)
    assert score.n_tokens == count == n - 1
    assert score.nll_sum == pytest.approx(nll, abs=1e-5)
    assert score.loss == pytest.approx(nll / count, abs=1e-5)
    assert score.ppl == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert score.accuracy == pytest.approx(correct / count)
    assert score.char_ppl is None


@pytest.mark.parametrize("kind", ["gru", "attn"])
@pytest.mark.parametrize("n,c,s", EVAL_CASES)
def test_matches_token_by_token_brute_force(kind: str, n: int, c: int, s: int) -> None:
    model = _make(kind)
    tokens = _stream(n, seed=2)
    score = evaluate_stream(model, tokens, c, s, batch_size=4)
    nll, correct = _brute_by_tokens(model, tokens, c, s)
    assert score.nll_sum == pytest.approx(nll, abs=1e-5)
    assert score.accuracy == pytest.approx(correct / (n - 1))


@pytest.mark.parametrize("kind", ["gru", "attn"])
def test_full_context_scores_every_prefix(kind: str) -> None:
    """With C >= N every target j is predicted from all of tokens[0:j]."""
    model = _make(kind)
    tokens = _stream(30, seed=3)
    t = torch.from_numpy(tokens)
    with torch.no_grad():
        lps = [float(model(t[:j][None])[0, -1].float().log_softmax(-1)[t[j]]) for j in range(1, 30)]
    score = evaluate_stream(model, tokens, context=32, stride=8)
    assert score.nll_sum == pytest.approx(-sum(lps), abs=1e-5)
    assert score.n_tokens == 29


@pytest.mark.parametrize("kind", ["gru", "attn"])
def test_batch_size_does_not_change_result(kind: str) -> None:
    model = _make(kind)
    tokens = _stream(200, seed=4)
    scores = [evaluate_stream(model, tokens, 16, 4, batch_size=b) for b in (1, 2, 7, 64)]
    for other in scores[1:]:
        assert other.nll_sum == pytest.approx(scores[0].nll_sum, abs=1e-5)
        assert other.accuracy == scores[0].accuracy
        assert other.n_tokens == scores[0].n_tokens == 199


def test_accepts_tensor_and_numpy_alike() -> None:
    model = _make("gru")
    tokens = _stream(45, seed=5)
    a = evaluate_stream(model, tokens, 8, 3)
    b = evaluate_stream(model, torch.from_numpy(tokens), 8, 3)
    c = evaluate_stream(model, tokens.astype(np.uint16), 8, 3)
    assert a == b == c


def test_char_ppl_uses_total_nll_over_characters() -> None:
    model = _make("gru")
    score = evaluate_stream(model, _stream(40), 8, 4, n_chars=123)
    assert isinstance(score, EvalScore)
    assert score.char_ppl == pytest.approx(math.exp(score.nll_sum / 123))
    with pytest.raises(ValueError):
        evaluate_stream(model, _stream(40), 8, 4, n_chars=0)


def test_restores_training_mode_and_disables_dropout() -> None:
    model = _make("attn")
    tokens = _stream(40, seed=6)
    reference = evaluate_stream(model, tokens, 8, 2)
    model.train()
    again = evaluate_stream(model, tokens, 8, 2)
    assert model.training
    assert again.nll_sum == pytest.approx(reference.nll_sum, abs=1e-9)
    model.eval()
    evaluate_stream(model, tokens, 8, 2)
    assert not model.training


def test_autocast_stays_close_to_float32() -> None:
    model = _make("gru")
    tokens = _stream(60, seed=7)
    full = evaluate_stream(model, tokens, 16, 4)
    low = evaluate_stream(model, tokens, 16, 4, autocast_dtype=torch.bfloat16)
    assert low.n_tokens == full.n_tokens
    assert low.loss == pytest.approx(full.loss, rel=5e-2)


def test_one_forward_per_batch() -> None:
    model = _make("gru")
    calls: list[tuple[int, int]] = []
    model.register_forward_hook(lambda m, args, out: calls.append(tuple(args[0].shape)))
    evaluate_stream(model, _stream(1001 // 8), 32, 8, batch_size=5)
    plan = window_plan(1001 // 8, 32, 8)
    assert len(calls) == math.ceil(len(plan) / 5)
    assert all(t == 32 for _, t in calls)


def test_rejects_bad_inputs() -> None:
    model = _make("gru")
    with pytest.raises(ValueError):
        evaluate_stream(model, _stream(1), 8, 4)
    with pytest.raises(ValueError):
        evaluate_stream(model, _stream(20).reshape(4, 5), 8, 4)
    with pytest.raises(ValueError):
        evaluate_stream(model, _stream(20), 8, 4, batch_size=0)
