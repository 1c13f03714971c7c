"""The one data interface a run trains and is measured on, whatever its languages are.

Two implementations: ``ClonedLanguages`` (``engine.data.cloned``: one text under N id
maps, the paper's setup) and ``RealLanguages`` (``engine.data.real_languages``: a
corpus and tokenizer per language, one combined vocabulary). The Trainer sees only
this protocol; ``engine.data.prepare.prepare_run_data`` picks the implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.data.tokens import TokenData


class BatchSource(Protocol):
    """Step -> (inputs, targets, language per sequence), a pure function of the step."""

    languages: np.ndarray  # (steps, batch) language index of every sequence

    @property
    def epochs(self) -> float: ...

    def get(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class AlignmentText:
    """What the alignment analyses compare between two languages, as model ids.

    ``same_positions``: the same text under two id maps (cloned languages), so token t
    of one side is token t of the other; otherwise translations of different lengths
    (real languages), compared through a matching of their tokens.
    """

    hidden_a: Sequence[np.ndarray]  # sequences for hidden-state similarity
    hidden_b: Sequence[np.ndarray]
    gradient_a: np.ndarray  # (S, context+1) rows for gradient similarity
    gradient_b: np.ndarray
    same_positions: bool


class RunData(Protocol):
    """A run's tokenised languages: batches, test text, tokenizers and alignment text."""

    @property
    def languages(self) -> list[str]: ...

    @property
    def tables(self) -> np.ndarray:
        """(languages, local ids) -> model id."""
        ...

    @property
    def vocab_size(self) -> int:
        """The model's vocabulary: every language's ids together."""
        ...

    def batches(self, labels: np.ndarray, context: int) -> BatchSource:
        """Training batches for the schedule's (steps, batch) language labels."""
        ...

    def test_ids(self, language: int, max_tokens: int) -> tuple[np.ndarray, int]:
        """Whole test lines of one language as model ids, and the characters they cover."""
        ...

    def encode(self, language: int, texts: list[str]) -> list[np.ndarray]:
        """Texts as model ids through that language's tokenizer (no EOS added)."""
        ...

    def eos(self, language: int) -> int: ...

    def token_data(self, language: int) -> TokenData:
        """The cached tokenizer and arrays a language reads (cloned languages share one)."""
        ...

    def info(self) -> dict[str, Any]:
        """mode, vocab_size, n_anchors and per-language sizes: the run's ``tokenizer`` event."""
        ...

    def identical_pieces(self) -> int:
        """Tokenizer pieces the languages have in common (what an anchored vocabulary merges)."""
        ...

    def seen_id_counts(
        self, labels: np.ndarray, context: int, interrupt: Callable[[], None] = lambda: None
    ) -> np.ndarray | None:
        """(N, V) how often each base id went in as input per language over ``labels``'
        sequences; None when languages have no equivalent ids to compare embeddings of.
        ``interrupt()`` is called between chunks and may raise (a worker's stop)."""
        ...

    def alignment_text(self, a: int, b: int, context: int, n_sequences: int) -> AlignmentText | str:
        """The text languages ``a`` and ``b`` are compared on, or why there is none."""
        ...
