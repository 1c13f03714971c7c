"""Real languages: one tokenised corpus per language, one model vocabulary, batches.

Where cloned languages are one text stream seen through N id maps (``engine.data``),
real languages are N streams, each with its own tokenizer (or one joint tokenizer),
combined by ``engine.data.vocab``. Each language's corpus is cached on its own
(``engine.data.tokens.prepare_tokens``), so disjoint and anchored experiments on the same
corpora share their tokenizers and arrays; only the joint tokenizer is cached apart.

The schedule still decides the language of every sequence; the k-th sequence given
to language n reads the k-th window of n's stream (wrapping after one pass), so a
language's data order depends only on how many of its sequences came before, and a
run at 10% of a language reads the same text as the first 10% of a run at 100%.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.corpora import corpus_lines
from engine.data.parallel import encode_pairs, pack, parallel_texts
from engine.data.recipe import CorpusSource, DataRecipe
from engine.data.run_data import AlignmentText
from engine.data.tokens import EOS_ID, TokenData, load_tokens, prepare_tokens, token_cache_key, write_tokens
from engine.data.vocab import Vocabulary, anchored, disjoint, joint, sentencepiece_pieces
from engine.errors import DataError
from engine.runs.layout import cache_dir

_JOINT_SAMPLE_LINES = 100_000  # per language, for the joint tokenizer


@dataclass
class RealLanguages:
    """A real-language run's data (``engine.data.run_data.RunData``): the tokenised
    corpora and their shared vocabulary."""

    recipe: DataRecipe
    tokens: list[TokenData]  # local (per-tokenizer) ids
    vocab: Vocabulary

    @property
    def languages(self) -> list[str]:
        return list(self.recipe.languages)

    @property
    def tables(self) -> np.ndarray:
        return self.vocab.tables

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def batches(self, labels: np.ndarray, context: int) -> StreamBatches:
        return StreamBatches([t.train for t in self.tokens], self.tables, labels, context)

    def test_ids(self, language: int, max_tokens: int) -> tuple[np.ndarray, int]:
        """Each language's own test text."""
        stream, n_chars = self.tokens[language].test_prefix(max_tokens)
        return self.vocab.to_model(language, stream), n_chars

    def encode(self, language: int, texts: list[str]) -> list[np.ndarray]:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(self.tokens[language].tokenizer_path))
        return [self.vocab.to_model(language, np.asarray(ids, dtype=np.int64)) for ids in sp.encode(texts)]

    def eos(self, language: int) -> int:
        return int(self.vocab.tables[language][EOS_ID])

    def token_data(self, language: int) -> TokenData:
        return self.tokens[language]

    def info(self) -> dict[str, Any]:
        return {
            "mode": self.vocab.mode,
            "vocab_size": self.vocab.size,
            "n_anchors": self.vocab.n_anchors,
            "languages": {
                lang: {"vocab_size": size, "train_tokens": int(len(t.train)), "test_tokens": int(len(t.test))}
                for lang, size, t in zip(self.languages, self.vocab.sizes, self.tokens)
            },
        }

    def identical_pieces(self) -> int:
        """Piece strings the tokenizers share; reported for disjoint vocabularies too, so the choice is informed."""
        if self.vocab.mode == "joint":
            return self.vocab.n_anchors
        return anchored([sentencepiece_pieces(t.tokenizer_path) for t in self.tokens]).n_anchors

    def seen_id_counts(self, labels: np.ndarray, context: int, interrupt: Callable[[], None] = lambda: None) -> None:
        return None  # no equivalent ids: each language has its own tokenizer

    def alignment_text(self, a: int, b: int, context: int, n_sequences: int) -> AlignmentText | str:
        """Parallel sentences, each after its language's EOS; packed end to end for gradients."""
        par = self.recipe.parallel
        if par is None:
            return "no parallel sentences configured (data.parallel): hidden-state and gradient similarity skipped"
        la, lb = self.languages[a], self.languages[b]
        pairs = parallel_texts(par, self.recipe, la, lb, oversample=4)
        seqs_a, seqs_b = encode_pairs(self, a, b, pairs, context, limit=par.max_pairs)
        if not seqs_a:
            return f"no parallel pair of {la}-{lb} fits the context: alignment skipped"
        return AlignmentText(seqs_a, seqs_b, pack(seqs_a, context), pack(seqs_b, context), same_positions=False)


def prepare_real(recipe: DataRecipe, cache: Path | None = None, log: Callable[[str], None] = print) -> RealLanguages:
    """Build or load every language's tokenizer and arrays, then combine the vocabularies."""
    sources = list(recipe.sources)
    budget_tokens = recipe.budget_tokens
    if recipe.tokenization == "joint":
        tokens = _prepare_joint(sources, budget_tokens, Path(cache or cache_dir()) / "tokens", log)
        counts = [np.bincount(np.asarray(t.train), minlength=t.vocab_size) for t in tokens]
        vocab = joint(tokens[0].vocab_size, len(tokens), counts)
    else:
        tokens = [prepare_tokens(src, budget_tokens, cache=cache, log=log) for src in sources]
        vocab = (
            disjoint([t.vocab_size for t in tokens])
            if recipe.tokenization == "disjoint"
            else anchored([sentencepiece_pieces(t.tokenizer_path) for t in tokens])
        )
    return RealLanguages(recipe, tokens, vocab)


def _prepare_joint(
    per_lang: list[CorpusSource], budget_tokens: int, cache: Path, log: Callable[[str], None]
) -> list[TokenData]:
    """One BPE trained on an equal number of lines of every language, with their summed vocabulary size."""
    size = sum(d.vocab_size for d in per_lang)
    key = hashlib.sha256(
        json.dumps(["joint", [token_cache_key(d, budget_tokens) for d in per_lang], size]).encode()
    ).hexdigest()[:16]
    folders = [cache / f"{key}-{i}" for i in range(len(per_lang))]
    if not all((f / "done").exists() for f in folders):
        log(f"training a joint tokenizer (vocab {size}) on {len(per_lang)} corpora, cached as {folders[0]}")
        lines = [corpus_lines(d, budget_tokens) for d in per_lang]
        k = min(_JOINT_SAMPLE_LINES, *(len(train) for train, _ in lines))
        rng = np.random.default_rng(0)
        mixed = [train[j] for train, _ in lines for j in sorted(rng.choice(len(train), k, replace=False))]
        for i, (folder, d, (train, test)) in enumerate(zip(folders, per_lang, lines)):
            if not (folder / "done").exists():
                first = folders[0] / "sp.model" if i else None
                write_tokens(
                    folder,
                    train,
                    test,
                    size,
                    {"corpus": d.corpus, "joint": True},
                    tokenizer_lines=mixed if i == 0 else None,
                    tokenizer=first,
                )
    return [load_tokens(f, f.name) for f in folders]


class StreamBatches:
    """Step -> (inputs, targets, language per sequence) over one stream per language.

    Like ``engine.data.cloned.Batches`` a pure function of the step, so resume needs no
    loader state: the rank of each sequence among its language's sequences is
    precomputed from the schedule's labels.
    """

    def __init__(self, streams: list[np.ndarray], tables: np.ndarray, languages: np.ndarray, context: int) -> None:
        self.streams = streams
        self.tables = tables
        self.languages = languages  # (steps, batch) language indices
        self.context = context
        self.windows = np.array([(len(s) - 1) // context for s in streams], dtype=np.int64)
        used = np.unique(languages)
        short = [int(n) for n in used if self.windows[n] < 1]
        if short:
            raise DataError(
                f"language {short[0]}'s training stream ({len(streams[short[0]])} tokens) is shorter "
                f"than one sequence of {context + 1}"
            )
        flat = languages.ravel()
        rank = np.zeros(len(flat), dtype=np.int64)
        for n in used:
            mask = flat == n
            rank[mask] = np.arange(int(mask.sum()))
        self._window = (rank % np.maximum(self.windows, 1)[flat]).reshape(languages.shape)
        self._offsets = np.arange(context + 1)

    @property
    def epochs(self) -> float:
        """Passes over the most re-read language's stream."""
        counts = np.bincount(self.languages.ravel(), minlength=len(self.streams))
        return float(max(c / max(w, 1) for c, w in zip(counts, self.windows)))

    def get(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        langs = self.languages[step]
        out = np.empty((len(langs), self.context + 1), dtype=np.int64)
        for n in np.unique(langs):
            rows = np.flatnonzero(langs == n)
            starts = self._window[step, rows] * self.context
            tokens = np.asarray(self.streams[n])[starts[:, None] + self._offsets]
            out[rows] = self.tables[n][tokens.astype(np.int64)]
        return out[:, :-1], out[:, 1:], langs
