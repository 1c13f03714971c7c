"""Cloned languages: one token stream seen through N id maps, and its batches.

Cloned languages follow the paper: language n uses ids ``id + n·V`` except for an
optional *anchor* subset, picked uniformly at random with a fixed seed, whose ids
are shared by every language. The same underlying text stream feeds every run; a
run's schedule only decides which id map each sequence goes through, so runs differ
in nothing but the language mix.
"""

from __future__ import annotations

import numpy as np

from engine.errors import DataError


def clone_tables(vocab_size: int, n_languages: int, anchors: float = 0.0, anchor_seed: int = 0) -> np.ndarray:
    """(n_languages, V) lookup: row n maps a base id to its id in language n."""
    base = np.arange(vocab_size, dtype=np.int64)
    table = base[None, :] + vocab_size * np.arange(n_languages, dtype=np.int64)[:, None]
    ids = anchor_ids(vocab_size, anchors, anchor_seed)
    table[:, ids] = ids
    return table


def anchor_ids(vocab_size: int, anchors: float, seed: int = 0) -> np.ndarray:
    """The paper picks anchors uniformly at random with a fixed seed, not by frequency."""
    n = int(round(anchors * vocab_size))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(vocab_size, n, replace=False)).astype(np.int64)


class Batches:
    """Step -> (inputs, targets, language per sequence), deterministic from the step alone.

    Sequence ``s = step·B + b`` is the s-th window of the shared stream (wrapping
    after one pass), mapped through the id table of the language the schedule gave
    it. Resuming at a step therefore needs no data-loader state.
    """

    def __init__(self, stream: np.ndarray, tables: np.ndarray, languages: np.ndarray, context: int) -> None:
        self.stream = stream
        self.tables = tables
        self.languages = languages  # (steps, batch) language indices
        self.context = context
        self.n_windows = (len(stream) - 1) // context
        if self.n_windows < 1:
            raise DataError(f"the training stream ({len(stream)} tokens) is shorter than one sequence of {context + 1}")
        self._offsets = np.arange(context + 1)

    @property
    def epochs(self) -> float:
        steps, batch = self.languages.shape
        return steps * batch / self.n_windows

    def get(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        langs = self.languages[step]
        seq = (step * len(langs) + np.arange(len(langs))) % self.n_windows
        tokens = self.stream[seq[:, None] * self.context + self._offsets]
        mapped = self.tables[langs[:, None], tokens.astype(np.int64)]
        return mapped[:, :-1], mapped[:, 1:], langs
