"""Sliding-window perplexity over one token stream (the paper's evaluation, made exhaustive).

The paper scores a test split as a single stream with windows of C tokens moving by
stride S, scoring only the last S targets of each window so that every scored token sees
at least C - S tokens of context. Its code silently drops the first C - S targets of the
stream; here the first window scores all of its targets and the final window is shifted
back to end at the stream's last target, so every target is scored exactly once and the
token count is always N - 1 (which makes losses comparable across context settings).

``window_plan`` is pure Python so the covering property can be tested without torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

Window = tuple[int, int, int]  # (start, score_from, end)


@dataclass
class EvalScore:
    """Aggregate of one stream evaluation; sums are kept so callers can pool splits."""

    loss: float
    ppl: float
    n_tokens: int
    nll_sum: float
    accuracy: float
    char_ppl: float | None


def window_plan(n_tokens: int, context: int, stride: int) -> list[Window]:
    """Windows ``(start, score_from, end)`` that score each target of the stream once.

    A window feeds ``tokens[start:end]`` and predicts ``tokens[start+1:end+1]``; it scores
    the predictions whose target index is ``>= score_from``. Full windows start at
    multiples of ``stride``; a last, back-shifted window ending at ``n_tokens - 1`` picks
    up the tail so no target is scored with less context than a regular window gives it.
    """
    _check_plan_args(n_tokens, context, stride)
    last_target = n_tokens - 1
    if last_target <= context:
        return [(0, 1, last_target)]
    plan: list[Window] = []
    scored_up_to = 0  # highest target index already scored
    start = 0
    while start + context <= last_target:
        plan.append((start, scored_up_to + 1, start + context))
        scored_up_to = start + context
        start += stride
    if scored_up_to < last_target:
        plan.append((last_target - context, scored_up_to + 1, last_target))
    return plan


def _check_plan_args(n_tokens: int, context: int, stride: int) -> None:
    """Reject settings under which the 'every target exactly once' guarantee breaks."""
    if n_tokens < 2:
        raise ValueError(f"need at least 2 tokens to score one target, got {n_tokens}")
    if context < 1:
        raise ValueError(f"context must be >= 1, got {context}")
    if not 1 <= stride <= context:
        raise ValueError(f"stride must be in [1, context={context}], got {stride}")


@torch.no_grad()
def evaluate_stream(
    model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    tokens: np.ndarray | torch.Tensor,
    context: int,
    stride: int,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    n_chars: int | None = None,
    autocast_dtype: torch.dtype | None = None,
    interrupt: Callable[[], None] = lambda: None,
) -> EvalScore:
    """Mean NLL, perplexity and top-1 accuracy of ``model`` on ``tokens``.

    ``model(idx)`` maps a (B, T) LongTensor with T <= context to (B, T, V) logits and
    must already live on ``device``. Windows of equal length share one forward pass;
    only scored positions go through a float32 log-softmax, and sums are accumulated in
    float64 so long streams do not drift. ``n_chars`` (characters of the detokenised
    stream) turns the total NLL into a tokenizer-independent per-character perplexity.
    ``interrupt()`` is called before each batch; it may raise to abandon the evaluation
    (a worker asked to stop).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_chars is not None and n_chars <= 0:
        raise ValueError(f"n_chars must be positive, got {n_chars}")
    device = torch.device(device)
    stream = _as_token_tensor(tokens).to(device)
    plan = window_plan(int(stream.numel()), context, stride)

    # Totals stay on the device so the loop never waits for a host sync per batch.
    nll_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_correct = torch.zeros((), dtype=torch.int64, device=device)
    n_scored = 0
    with _eval_mode(model):
        for batch in _batches(plan, batch_size):
            interrupt()
            batch_nll, batch_correct, batch_n = _score_batch(model, stream, batch, autocast_dtype)
            nll_sum += batch_nll
            n_correct += batch_correct
            n_scored += batch_n
    return _summarise(nll_sum.item(), int(n_correct.item()), n_scored, n_chars)


def _as_token_tensor(tokens: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Accept the numpy memmaps the data pipeline produces as well as tensors."""
    if isinstance(tokens, torch.Tensor):
        stream = tokens.detach()
    else:
        stream = torch.from_numpy(np.asarray(tokens).astype(np.int64, copy=False))
    if stream.dim() != 1:
        raise ValueError(f"tokens must be 1-D, got shape {tuple(stream.shape)}")
    return stream.long()


def _batches(plan: Sequence[Window], batch_size: int) -> list[list[Window]]:
    """Group windows of equal length so each batch is one dense (B, T) forward."""
    by_length: dict[int, list[Window]] = {}
    for window in plan:
        by_length.setdefault(window[2] - window[0], []).append(window)
    return [group[i : i + batch_size] for group in by_length.values() for i in range(0, len(group), batch_size)]


def _score_batch(
    model: Callable[[torch.Tensor], torch.Tensor],
    stream: torch.Tensor,
    batch: Sequence[Window],
    autocast_dtype: torch.dtype | None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """NLL sum (float64), correct count and scored count for windows of one length."""
    device = stream.device
    length = batch[0][2] - batch[0][0]
    starts = torch.tensor([w[0] for w in batch], device=device)
    score_from = torch.tensor([w[1] for w in batch], device=device)
    offsets = torch.arange(length, device=device)
    input_pos = starts[:, None] + offsets[None, :]
    target_pos = input_pos + 1
    scored = target_pos >= score_from[:, None]

    with _autocast(device, autocast_dtype):
        logits = model(stream[input_pos])
    if logits.shape[:2] != input_pos.shape:
        raise ValueError(
            f"model returned logits of shape {tuple(logits.shape)} for inputs "
            f"{tuple(input_pos.shape)}; expected (B, T, V)"
        )
    scored_logits = logits[scored].float()
    targets = stream[target_pos[scored]]
    log_probs = torch.log_softmax(scored_logits, dim=-1)
    target_lp = log_probs.gather(-1, targets[:, None]).squeeze(-1)
    nll = -target_lp.double().sum()
    correct = (scored_logits.argmax(dim=-1) == targets).sum()
    return nll, correct, int(targets.numel())


def _summarise(nll_sum: float, n_correct: int, n_scored: int, n_chars: int | None) -> EvalScore:
    loss = nll_sum / n_scored
    return EvalScore(
        loss=loss,
        ppl=math.exp(loss),
        n_tokens=n_scored,
        nll_sum=nll_sum,
        accuracy=n_correct / n_scored,
        char_ppl=math.exp(nll_sum / n_chars) if n_chars is not None else None,
    )


@contextmanager
def _eval_mode(model: object) -> Iterator[None]:
    """Dropout must be off while scoring, but a caller mid-training wants its mode back.

    Plain callables (no ``training`` flag) are passed through untouched.
    """
    was_training: bool | None = getattr(model, "training", None)
    if was_training is None:
        yield
        return
    model.eval()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        model.train(was_training)  # type: ignore[attr-defined]


def _autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager[object]:
    """Match the training precision in the forward only; the log-softmax stays float32."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
