"""Cloned languages: one token stream seen through N id maps, its batches, and the run data.

Cloned languages follow the paper: language n uses ids ``id + n·V`` except for an
optional *anchor* subset, picked uniformly at random with a fixed seed, whose ids
are shared by every language. The same underlying text stream feeds every run; a
run's schedule only decides which id map each sequence goes through, so runs differ
in nothing but the language mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.run_data import AlignmentText
from engine.data.tokens import EOS_ID, TokenData
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


def token_counts(
    stream: np.ndarray,
    vocab_size: int,
    languages_per_sequence: np.ndarray,
    context: int,
    n_windows: int,
    n_languages: int | None = None,
    chunk_windows: int = 1 << 14,
    interrupt: Callable[[], None] = lambda: None,
) -> np.ndarray:
    """(N, V) int64 counts of base ids seen as inputs, per language, over a run's sequences.

    Sequence s = step·B + b (row-major over the (steps, B) schedule) reads window
    ``s % n_windows``. A run revisits each window many times, so rather than touch every
    sequence we count how often each window went through each language, then weight each
    window's tokens by that usage: one weighted bincount per language over the distinct
    windows, chunked so memory stays bounded for a memmapped stream. Exact: the float64
    weights are integers far below 2**53.
    """
    if len(stream) < n_windows * context:
        raise ValueError(f"a stream of {len(stream)} tokens has fewer than {n_windows} windows of {context}")
    langs = np.asarray(languages_per_sequence, dtype=np.int64).ravel()
    n_lang = int(n_languages if n_languages is not None else (langs.max(initial=-1) + 1))
    window = np.arange(len(langs), dtype=np.int64) % n_windows
    usage = np.bincount(langs * n_windows + window, minlength=n_lang * n_windows).reshape(n_lang, n_windows)
    counts = np.zeros((n_lang, vocab_size), dtype=np.float64)
    for start in range(0, n_windows, chunk_windows):
        interrupt()  # may raise to abandon the count (a worker's stop request)
        stop = min(start + chunk_windows, n_windows)
        tokens = np.asarray(stream[start * context : stop * context], dtype=np.int64)
        if len(tokens) and tokens.max() >= vocab_size:
            raise ValueError(f"stream holds id {tokens.max()} outside the base vocabulary of {vocab_size}")
        for n in range(n_lang):
            if usage[n, start:stop].any():
                weights = np.repeat(usage[n, start:stop].astype(np.float64), context)
                counts[n] += np.bincount(tokens, weights=weights, minlength=vocab_size)
    return np.rint(counts).astype(np.int64)


@dataclass
class ClonedLanguages:
    """A cloned-language run's data (``engine.data.run_data.RunData``): one tokenised
    corpus, language n reading it through row n of ``tables``."""

    languages: list[str]
    tokens: TokenData
    tables: np.ndarray
    n_anchors: int

    @classmethod
    def build(cls, languages: list[str], tokens: TokenData, anchors: float, anchor_seed: int) -> ClonedLanguages:
        V = tokens.vocab_size
        tables = clone_tables(V, len(languages), anchors, anchor_seed)
        return cls(list(languages), tokens, tables, len(anchor_ids(V, anchors, anchor_seed)))

    @property
    def vocab_size(self) -> int:
        return self.tokens.vocab_size * len(self.languages)

    def batches(self, labels: np.ndarray, context: int) -> Batches:
        return Batches(self.tokens.train, self.tables, labels, context)

    def test_ids(self, language: int, max_tokens: int) -> tuple[np.ndarray, int]:
        """The same test text under each language's id map."""
        stream, n_chars = self.tokens.test_prefix(max_tokens)
        return self.tables[language][stream.astype(np.int64)], n_chars

    def encode(self, language: int, texts: list[str]) -> list[np.ndarray]:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(self.tokens.tokenizer_path))
        return [self.tables[language][np.asarray(ids, dtype=np.int64)] for ids in sp.encode(texts)]

    def eos(self, language: int) -> int:
        return int(self.tables[language][EOS_ID])

    def token_data(self, language: int) -> TokenData:
        return self.tokens

    def info(self) -> dict[str, Any]:
        per_lang = {
            "vocab_size": self.tokens.vocab_size,
            "train_tokens": int(len(self.tokens.train)),
            "test_tokens": int(len(self.tokens.test)),
        }
        return {
            "mode": "cloned",
            "vocab_size": self.vocab_size,
            "n_anchors": self.n_anchors,
            "languages": {lang: per_lang for lang in self.languages},
        }

    def identical_pieces(self) -> int:
        return self.n_anchors  # clones share exactly their anchors

    def seen_id_counts(
        self, labels: np.ndarray, context: int, interrupt: Callable[[], None] = lambda: None
    ) -> np.ndarray:
        n_windows = (len(self.tokens.train) - 1) // context
        tokens, vocab = self.tokens.train, self.tokens.vocab_size
        return token_counts(tokens, vocab, labels, context, n_windows, len(self.languages), interrupt=interrupt)

    def alignment_text(self, a: int, b: int, context: int, n_sequences: int) -> AlignmentText:
        """Consecutive test windows, the same text in both languages; half of them for gradients."""
        base = self._test_windows(n_sequences, context)
        grad = base[: max(2, len(base) // 2)]
        return AlignmentText(
            hidden_a=self.tables[a][base[:, :-1]],
            hidden_b=self.tables[b][base[:, :-1]],
            gradient_a=self.tables[a][grad],
            gradient_b=self.tables[b][grad],
            same_positions=True,
        )

    def _test_windows(self, n: int, context: int) -> np.ndarray:
        """Up to ``n`` consecutive test windows of context+1 base ids."""
        stream = np.asarray(self.tokens.test, dtype=np.int64)
        n = max(1, min(n, (len(stream) - 1) // context))
        return np.stack([stream[i * context : i * context + context + 1] for i in range(n)])
