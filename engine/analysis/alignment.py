"""How aligned a model's languages are: embeddings, hidden states, gradients.

The paper's three lenses on cross-lingual sharing. Cloned languages have an exact
correspondence (base id i is ``tables[n, i]`` in language n), so equivalent rows,
positions and sequences can be compared one to one; real languages only have
parallel sentences, so their tokens are paired by an optimal matching instead.

Every similarity is a cosine. Because small models' representations are strongly
anisotropic (all rows share a common direction), a raw cosine means little on its
own; embedding similarities therefore come with an all-pairs control, the cosine
two *unrelated* rows have on average, computed in closed form.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.run_data import AlignmentText
from engine.losses import linear_cross_entropy

__all__ = [
    "EmbeddingSimilarity",
    "GradientSimilarity",
    "HiddenSimilarity",
    "embedding_similarity",
    "gradient_similarity",
    "gradient_similarity_cloned",
    "hidden_similarity",
    "hidden_similarity_aligned",
    "hidden_similarity_cloned",
    "hidden_similarity_parallel",
    "matched_similarity",
]

BINS_PER_DECADE = 4
_EPS = 1e-12


# --- shared helpers ----------------------------------------------------------------


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Measurements must not depend on (or change) whether the caller was training."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _map_ids(base: torch.Tensor, tables: np.ndarray, language: int, device: torch.device) -> torch.Tensor:
    """Base ids -> language ids, through the same table the training batches used."""
    table = torch.as_tensor(np.asarray(tables[language]), dtype=torch.long, device=device)
    return table[base.to(device=device, dtype=torch.long)]


def _unit_rows(w: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length in float64, so sums over many rows stay exact enough."""
    w = w.detach().to(torch.float64)
    return w / w.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def _cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Cosine of two tensors taken as flat vectors; 0 when either is zero (no direction)."""
    x, y = x.detach().flatten().to(torch.float64), y.detach().flatten().to(torch.float64)
    nx, ny = x.norm(), y.norm()
    if nx <= _EPS or ny <= _EPS:
        return 0.0
    return float((x @ y) / (nx * ny))


# --- 1. embedding similarity ---------------------------------------------------------


@dataclass
class EmbeddingSimilarity:
    """Equivalent-row cosines of one matrix between two cloned languages."""

    matrix: str  # "input" | "output"
    lang_a: str
    lang_b: str
    mean: float  # mean over non-anchor ids
    control: float  # all-pairs mean cosine (anisotropy baseline)
    n_ids: int
    n_anchors_excluded: int
    bins: list[dict] = field(default_factory=list)  # by count of the rarer copy; see _frequency_bins


def embedding_similarity(
    model,
    tables: np.ndarray,
    languages: list[str],
    a: int,
    b: int,
    counts: np.ndarray | None = None,
    anchors: np.ndarray | None = None,
) -> list[EmbeddingSimilarity]:
    """Input-embedding and output-layer similarity of languages ``a`` and ``b``.

    Anchor ids are excluded because their row is shared, so their similarity is 1 by
    construction and would only inflate the mean. Anchors are the given ``anchors``
    plus any id both tables map to the same row. ``counts`` ((N, V) base-id counts per
    language in training, see ``engine.data.cloned.token_counts``) adds the breakdown by frequency of the
    rarer copy, since a row that is rarely updated stays near its random init.
    """
    if a == b:
        raise ValueError("embedding similarity compares two different languages (a == b)")
    tables = np.asarray(tables)
    ids = _non_anchor_ids(tables, a, b, anchors)
    rarer = None if counts is None else np.minimum(np.asarray(counts)[a], np.asarray(counts)[b])[ids]
    matrices = {"input": model.tok_emb.weight, "output": model.head.weight}
    out = []
    with torch.no_grad():
        for name, weight in matrices.items():
            ua = _unit_rows(weight[torch.as_tensor(tables[a][ids], device=weight.device)])
            ub = _unit_rows(weight[torch.as_tensor(tables[b][ids], device=weight.device)])
            sims = (ua * ub).sum(dim=1)
            out.append(
                EmbeddingSimilarity(
                    matrix=name,
                    lang_a=languages[a],
                    lang_b=languages[b],
                    mean=_mean(sims),
                    control=_all_pairs_mean(ua, ub),
                    n_ids=len(ids),
                    n_anchors_excluded=tables.shape[1] - len(ids),
                    bins=[] if rarer is None else _frequency_bins(sims, ua, ub, rarer),
                )
            )
    return out


def _non_anchor_ids(tables: np.ndarray, a: int, b: int, anchors: np.ndarray | None) -> np.ndarray:
    shared = tables[a] == tables[b]
    if anchors is not None and len(anchors):
        shared[np.asarray(anchors, dtype=np.int64)] = True
    return np.flatnonzero(~shared)


def _mean(x: torch.Tensor) -> float:
    return float(x.mean()) if x.numel() else float("nan")


def _all_pairs_mean(ua: torch.Tensor, ub: torch.Tensor) -> float:
    """mean_{i,j} ua_i·ub_j (diagonal included) = mean(ua)·mean(ub): no V×V matrix needed."""
    if not len(ua):
        return float("nan")
    return float(ua.mean(dim=0) @ ub.mean(dim=0))


def _bin_index(rarer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each count (-1 for zero) and the edges, ``BINS_PER_DECADE`` per decade of log10.

    Bins are found by comparing against the edges rather than flooring a logarithm, so a
    count sitting on an edge (10, 100, ...) never lands a bin low through rounding.
    """
    top = int(np.ceil(BINS_PER_DECADE * np.log10(max(int(rarer.max(initial=1)), 1)))) + 2
    edges = 10.0 ** (np.arange(top + 1) / BINS_PER_DECADE)
    index = np.searchsorted(edges, rarer, side="right") - 1
    index[rarer <= 0] = -1
    return index, edges


def _frequency_bins(sims: torch.Tensor, ua: torch.Tensor, ub: torch.Tensor, rarer: np.ndarray) -> list[dict]:
    """Non-empty bins in increasing count; the zero bin (never seen in one language) first.

    Each bin's control is the all-pairs mean within the bin: frequent and rare rows
    drift differently from init, so the global control would be the wrong baseline.
    """
    index, edges = _bin_index(rarer)
    bins = []
    for k in np.unique(index):
        members = torch.as_tensor(np.flatnonzero(index == k), device=sims.device)
        lo, hi = (0.0, 0.0) if k < 0 else (float(edges[k]), float(edges[k + 1]))
        bins.append(
            {
                "lo": lo,
                "hi": hi,
                "n": len(members),
                "similarity": _mean(sims[members]),
                "control": _all_pairs_mean(ua[members], ub[members]),
            }
        )
    return bins


# --- 2. hidden-state similarity ------------------------------------------------------


@dataclass
class HiddenSimilarity:
    """Cosine between two languages' residual streams, per layer."""

    lang_a: str
    lang_b: str
    per_layer: list[float]  # index 0 = embedding output, then one per block
    n_sequences: int


def _layer_states(model, idx: torch.Tensor) -> list[torch.Tensor]:
    """The embedding output, then the residual stream after each block: (B, T, d) each."""
    hidden: list[torch.Tensor] = []
    model.features(idx, hidden)
    return [model.embed(idx), *hidden]


def hidden_similarity(
    model, text: AlignmentText, lang_a: str, lang_b: str, interrupt: Callable[[], None] = lambda: None
) -> HiddenSimilarity:
    """Position by position for the same text under two id maps, else by token matching.

    ``interrupt()`` is called before each batch and may raise to abandon the loop (a
    worker's stop request)."""
    if text.same_positions:
        a, b = np.asarray(text.hidden_a), np.asarray(text.hidden_b)
        return hidden_similarity_aligned(model, a, b, lang_a, lang_b, interrupt=interrupt)
    return hidden_similarity_parallel(model, text.hidden_a, text.hidden_b, lang_a, lang_b, interrupt)


def hidden_similarity_cloned(
    model,
    base_sequences: torch.Tensor,
    tables: np.ndarray,
    languages: list[str],
    a: int,
    b: int,
    batch_size: int = 16,
    interrupt: Callable[[], None] = lambda: None,
) -> HiddenSimilarity:
    """Same text under both id maps: position t of one is position t of the other."""
    base = np.asarray(base_sequences, dtype=np.int64)
    tables = np.asarray(tables)
    return hidden_similarity_aligned(
        model, tables[a][base], tables[b][base], languages[a], languages[b], batch_size, interrupt
    )


def hidden_similarity_aligned(
    model,
    ids_a: np.ndarray,
    ids_b: np.ndarray,
    lang_a: str,
    lang_b: str,
    batch_size: int = 16,
    interrupt: Callable[[], None] = lambda: None,
) -> HiddenSimilarity:
    """(S, T) model ids of both languages whose position t corresponds.

    Per-position cosines are averaged over a sequence first, then over sequences, so
    every sequence counts equally whatever its length.
    """
    device = _device(model)
    seqs_a = torch.as_tensor(ids_a, dtype=torch.long)
    seqs_b = torch.as_tensor(ids_b, dtype=torch.long)
    totals: torch.Tensor | None = None
    with torch.no_grad(), _eval_mode(model):
        for start in range(0, len(seqs_a), batch_size):
            interrupt()
            chunk_a, chunk_b = seqs_a[start : start + batch_size], seqs_b[start : start + batch_size]
            states = _layer_states(model, torch.cat([chunk_a, chunk_b]).to(device))
            n = len(chunk_a)
            per_seq = torch.stack(
                [
                    F.cosine_similarity(s[:n].double(), s[n:].double(), dim=-1, eps=_EPS).mean(dim=1).sum()
                    for s in states
                ]
            )
            totals = per_seq if totals is None else totals + per_seq
    n_seq = len(seqs_a)
    per_layer = [float("nan")] * (len(model.blocks) + 1) if totals is None else (totals / n_seq).tolist()
    return HiddenSimilarity(lang_a, lang_b, per_layer, n_seq)


def matched_similarity(states_a: torch.Tensor, states_b: torch.Tensor) -> float:
    """Mean cosine over the maximum-weight one-to-one matching of A's and B's tokens.

    Parallel sentences differ in length and word order, so there is no position-wise
    correspondence; the optimal assignment pairs each token with its best counterpart
    without letting one token absorb all of the other sentence. ``min(La, Lb)`` pairs.
    """
    from scipy.optimize import linear_sum_assignment

    sim = (_unit_rows(states_a) @ _unit_rows(states_b).T).cpu().numpy()
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sim[rows, cols].mean())


def hidden_similarity_parallel(
    model,
    seqs_a: Sequence[np.ndarray | torch.Tensor],
    seqs_b: Sequence[np.ndarray | torch.Tensor],
    lang_a: str,
    lang_b: str,
    interrupt: Callable[[], None] = lambda: None,
) -> HiddenSimilarity:
    """Real languages: parallel sentences (already mapped ids, any lengths), matched per layer."""
    if len(seqs_a) != len(seqs_b):
        raise ValueError(f"parallel sentences must pair up: {len(seqs_a)} vs {len(seqs_b)}")
    device = _device(model)
    totals = np.zeros(len(model.blocks) + 1)
    with torch.no_grad(), _eval_mode(model):
        for sa, sb in zip(seqs_a, seqs_b):
            interrupt()
            states_a = _layer_states(model, torch.as_tensor(sa, dtype=torch.long, device=device).view(1, -1))
            states_b = _layer_states(model, torch.as_tensor(sb, dtype=torch.long, device=device).view(1, -1))
            totals += [matched_similarity(x[0], y[0]) for x, y in zip(states_a, states_b)]
    per_layer = (totals / len(seqs_a)).tolist() if len(seqs_a) else [float("nan")] * len(totals)
    return HiddenSimilarity(lang_a, lang_b, per_layer, len(seqs_a))


# --- 3. gradient similarity ------------------------------------------------------------


@dataclass
class GradientSimilarity:
    """Cosine between the LM-loss gradients the two languages induce, per block tensor."""

    lang_a: str
    lang_b: str
    per_tensor: dict[str, float]
    mean: float  # unweighted mean over tensors, so small tensors (biases, norms) count as much as big ones


def _block_params(model) -> list[tuple[str, torch.nn.Parameter]]:
    """Only the blocks: they are what both languages share, embeddings are per language."""
    params = [(name, p) for name, p in model.named_parameters() if name.startswith("blocks.") and p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable block parameters to compare gradients of")
    return params


def _lm_gradients(model, batch: torch.Tensor, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Gradients of the mean next-token loss, via autograd.grad so no .grad is written.

    The fused output-layer loss avoids materialising (tokens × V·N) logits, the bulk of
    the memory at real vocabulary sizes; its math equals F.cross_entropy.
    """
    batch = torch.as_tensor(batch, dtype=torch.long, device=_device(model))
    if batch.dim() != 2 or batch.shape[1] < 2:
        raise ValueError(f"expected (S, T+1) id sequences with T >= 1, got shape {tuple(batch.shape)}")
    h = model.features(batch[:, :-1]).flatten(0, 1)
    loss = linear_cross_entropy(
        h.float(), model.head.weight.float(), model.head.bias.float(), batch[:, 1:].flatten()
    ).mean()
    return torch.autograd.grad(loss, params, allow_unused=True)


def gradient_similarity(
    model, batch_a: torch.Tensor, batch_b: torch.Tensor, lang_a: str, lang_b: str
) -> GradientSimilarity:
    """Equivalent or parallel batches back-propagated separately; cosine per tensor.

    A tensor the loss does not reach (unused) gets cosine 0: neither language moves it
    in any shared direction.
    """
    named = _block_params(model)
    params = [p for _, p in named]
    with torch.enable_grad(), _eval_mode(model):
        grads_a = _lm_gradients(model, batch_a, params)
        grads_b = _lm_gradients(model, batch_b, params)
    per_tensor = {
        name: 0.0 if ga is None or gb is None else _cosine(ga, gb) for (name, _), ga, gb in zip(named, grads_a, grads_b)
    }
    return GradientSimilarity(lang_a, lang_b, per_tensor, float(np.mean(list(per_tensor.values()))))


def gradient_similarity_cloned(
    model, base_sequences: torch.Tensor, tables: np.ndarray, languages: list[str], a: int, b: int
) -> GradientSimilarity:
    """The same (S, T+1) base text mapped into both languages, so only the ids differ."""
    device = _device(model)
    base = torch.as_tensor(base_sequences, dtype=torch.long)
    return gradient_similarity(
        model, _map_ids(base, tables, a, device), _map_ids(base, tables, b, device), languages[a], languages[b]
    )
