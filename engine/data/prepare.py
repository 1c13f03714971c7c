"""A run's data from its recipe: built or loaded from the cache, step by step, summarised.

The one place that tells cloned from real languages: ``prepare_run_data`` returns the
``RunData`` implementation the recipe asks for; everything after it uses the protocol.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.data.cloned import ClonedLanguages
from engine.data.real_languages import prepare_real
from engine.data.recipe import CorpusSource, DataRecipe
from engine.data.run_data import RunData
from engine.data.tokens import prepare_tokens

Log = Callable[[str], None]


def prepare_run_data(recipe: DataRecipe, cache: Path | None = None, log: Log = print) -> RunData:
    """What a run trains on: cloned languages over one corpus, or real languages."""
    if recipe.cloned:
        tokens = prepare_tokens(recipe.sources[0], recipe.budget_tokens, cache=cache, log=log)
        return ClonedLanguages.build(list(recipe.languages), tokens, recipe.anchors, recipe.anchor_seed)
    return prepare_real(recipe, cache=cache, log=log)


def prepare_steps(recipe: DataRecipe) -> list[tuple[str, Callable[[Log], object]]]:
    """The preparation of a run's data as labelled steps (one per corpus), for progress displays.

    Running every step in order leaves everything cached, so ``prepare_run_data`` after
    them only loads. Each step takes a ``log`` callable.
    """
    budget = recipe.budget_tokens
    if recipe.cloned:
        src = recipe.sources[0]
        label = f"{src.corpus} (vocab {src.vocab_size}, cloned ×{len(recipe.languages)})"
        return [(label, functools.partial(_tokens_step, src, budget))]
    if recipe.tokenization == "joint":
        return [(f"joint tokenizer for {', '.join(recipe.languages)}", lambda log: prepare_real(recipe, log=log))]
    return [
        (f"{lang}: {src.corpus} (vocab {src.vocab_size})", functools.partial(_tokens_step, src, budget))
        for lang, src in zip(recipe.languages, recipe.sources)
    ]


def _tokens_step(src: CorpusSource, budget: int, log: Log) -> object:
    return prepare_tokens(src, budget, log=log)


def summarize(prepared: RunData) -> dict[str, Any]:
    """Sizes, tokens per language and vocabulary overlap of prepared data.

    ``identical_pieces`` counts piece strings two tokenizers have in common: what an
    anchored vocabulary merges, reported for disjoint ones too, so the choice is informed.
    """
    info = prepared.info()
    rows = []
    for i, lang in enumerate(prepared.languages):
        t = prepared.token_data(i)
        meta = json.loads((t.tokenizer_path.parent / "meta.json").read_text())
        chars = meta.get("train_chars")
        rows.append(
            {
                "language": lang,
                "corpus": meta.get("corpus"),
                "vocab_size": t.vocab_size,
                "train_tokens": int(len(t.train)),
                "test_tokens": int(len(t.test)),
                "train_lines": meta.get("train_lines"),
                "test_lines": meta.get("test_lines"),
                "chars_per_token": chars / max(1, len(t.train)) if chars else None,
                "cache": str(t.tokenizer_path.parent),
            }
        )
    return {
        "mode": info["mode"],
        "vocab_size": info["vocab_size"],
        "n_anchors": info["n_anchors"],
        "identical_pieces": prepared.identical_pieces(),
        "languages": rows,
    }
