"""Parallel sentences of real languages, and the alignment analyses that need them.

Cloned languages compare the same text under two id maps; real languages can only
compare translations. The pairs come from a TSV (one pair per line, a column per
language, e.g. Tatoeba's ``English<TAB>French``) or, for the synthetic family, from
sentences generated at the same indices in each language. A seeded uniform sample is
used, because such files are often sorted (Tatoeba's by length).
"""

from __future__ import annotations

import numpy as np

from engine.data.recipe import FAMILY, DataRecipe, ParallelSource
from engine.data.run_data import RunData
from engine.errors import DataError


def parallel_texts(
    parallel: ParallelSource, recipe: DataRecipe, a: str, b: str, oversample: int = 1
) -> list[tuple[str, str]]:
    """Up to ``max_pairs · oversample`` (text in a, text in b) pairs, in a fixed seeded order.

    Oversampling leaves ``encode_pairs`` enough pairs to keep ``max_pairs`` that fit the context.
    """
    n = parallel.max_pairs * oversample
    if parallel.path == FAMILY:
        from engine.data.family import parallel_sentences

        sources = [recipe.source_of(lang) for lang in (a, b)]
        for lang, src in zip((a, b), sources):
            if src.corpus != FAMILY:
                raise DataError(f"parallel = builtin:family needs {lang}'s corpus to be builtin:family too")
        texts = parallel_sentences([src.family or {} for src in sources], n)
        return list(zip(*texts))
    return read_tsv_pairs(parallel.path, list(parallel.columns or recipe.languages), a, b, n)


def read_tsv_pairs(path: str, columns: list[str], a: str, b: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Distinct non-empty pairs of the columns of ``a`` and ``b``; a seeded sample of ``n``."""
    if a not in columns or b not in columns:
        raise DataError(
            f"parallel file {path}: its columns are {columns}; no column for {a if a not in columns else b}"
        )
    ia, ib = columns.index(a), columns.index(b)
    pairs, seen = [], set()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                cells = line.rstrip("\n").split("\t")
                if len(cells) < len(columns):
                    raise DataError(
                        f"{path}:{lineno}: expected {len(columns)} tab-separated columns "
                        f"({', '.join(columns)}), found {len(cells)}"
                    )
                pair = (cells[ia].strip(), cells[ib].strip())
                if all(pair) and pair not in seen:
                    seen.add(pair)
                    pairs.append(pair)
    except OSError as exc:
        raise DataError(f"parallel file {path}: {exc.strerror or exc}") from None
    if len(pairs) < 2:
        raise DataError(f"parallel file {path}: fewer than two usable pairs")
    order = np.random.default_rng(seed).permutation(len(pairs))[: min(n, len(pairs))]
    return [pairs[i] for i in order]


def encode_pairs(
    real: RunData, a: int, b: int, pairs: list[tuple[str, str]], max_len: int, limit: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Model ids of each side, each after its language's EOS (how lines start in training).

    A pair where either side would exceed ``max_len`` tokens is dropped, so both
    lists stay aligned pair by pair; at most ``limit`` pairs are kept, in order.
    """
    if not pairs:
        return [], []
    side_a = real.encode(a, [p[0] for p in pairs])
    side_b = real.encode(b, [p[1] for p in pairs])
    out_a, out_b = [], []
    for x, y in zip(side_a, side_b):
        if 0 < len(x) < max_len and 0 < len(y) < max_len:
            out_a.append(np.concatenate([[real.eos(a)], x]))
            out_b.append(np.concatenate([[real.eos(b)], y]))
            if limit is not None and len(out_a) >= limit:
                break
    return out_a, out_b


def pack(sequences: list[np.ndarray], context: int) -> np.ndarray:
    """Sentences laid end to end and cut into (S, context+1) rows: the gradient batch.

    The two languages' batches may have different row counts; gradients are compared
    per tensor, so only the text, not the shape, has to correspond.
    """
    stream = np.concatenate(sequences) if sequences else np.empty(0, dtype=np.int64)
    rows = max(1, (len(stream) - 1) // context)
    if len(stream) < context + 1:
        return stream[None, :]
    return np.stack([stream[i * context : i * context + context + 1] for i in range(rows)])
