"""What a run's tokens are made of, in the data layer's own terms.

``engine.config`` validates the user's settings and fills in every default; it hands
the data layer a ``DataRecipe`` (``RunSpec.data_recipe()``). Everything in
``engine.data`` reads these frozen values instead of a dict, so each field is named
once, typed, and no default is restated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FAMILY = "builtin:family"  # a language of the synthetic family (engine.data.family)

Tokenization = Literal["cloned", "disjoint", "anchored", "joint"]


@dataclass(frozen=True)
class CorpusSource:
    """One corpus as it is read, split, tokenised and cached (``engine.data.tokens``).

    Two runs with equal sources (and budgets) share one cached tokenizer and arrays.
    """

    corpus: str  # path or glob of .txt(.gz)/.jsonl/.parquet files, or builtin:synthetic|pydocs|family
    vocab_size: int
    test_fraction: float
    max_chars: int | None  # read at most this much text
    text_field: str  # the text column of JSONL/Parquet files
    clean: bool  # NFC and whitespace cleaning: real languages, so every language is read alike
    family: dict[str, Any] | None  # builtin:family settings, e.g. {"like": "far"}


@dataclass(frozen=True)
class ParallelSource:
    """Parallel sentences of real languages: a TSV (a column per language) or builtin:family."""

    path: str
    columns: tuple[str, ...] | None  # the language of each TSV column; None: the run's languages
    max_pairs: int


@dataclass(frozen=True)
class DataRecipe:
    """A run's languages and what each is read from.

    Cloned languages (``tokenization == "cloned"``) are one corpus seen through N id
    maps, so ``sources`` holds that one corpus; real languages have one source per
    language and a tokenization that combines their vocabularies.
    """

    languages: tuple[str, ...]
    budget_tokens: int
    tokenization: Tokenization
    sources: tuple[CorpusSource, ...]
    anchors: float  # cloned: fraction of ids every language shares
    anchor_seed: int
    parallel: ParallelSource | None  # real: the pairs the alignment analyses compare

    @property
    def cloned(self) -> bool:
        return self.tokenization == "cloned"

    def source_of(self, language: str) -> CorpusSource:
        """The corpus a language is read from (cloned languages share one)."""
        return self.sources[0] if self.cloned else self.sources[self.languages.index(language)]

    def family_settings(self) -> dict[str, dict[str, Any]] | None:
        """Each real language's builtin:family settings, for the built-in probe task.

        None for cloned languages: every clone is the family's base language.
        """
        if self.cloned:
            return None
        return {lang: src.family or {} for lang, src in zip(self.languages, self.sources)}
