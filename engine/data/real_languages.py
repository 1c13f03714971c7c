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

import numpy as np

from engine.data.corpora import corpus_lines, language_data
from engine.data.tokens import EOS_ID, TokenData, load_tokens, prepare_tokens, token_cache_key, write_tokens
from engine.data.vocab import Vocabulary, anchored, disjoint, joint, sentencepiece_pieces
from engine.errors import DataError
from engine.runs.layout import cache_dir

_JOINT_SAMPLE_LINES = 100_000  # per language, for the joint tokenizer


@dataclass
class RealLanguages:
    """The tokenised corpora of a real-language experiment and their shared vocabulary."""

    languages: list[str]
    tokens: list[TokenData]  # local (per-tokenizer) ids
    vocab: Vocabulary
    data: list[dict]  # engine.data.corpora's single-corpus dict per language

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def test_ids(self, language: int, max_tokens: int) -> tuple[np.ndarray, int]:
        """Whole test lines of one language as model ids, and the characters they cover."""
        stream, n_chars = self.tokens[language].test_prefix(max_tokens)
        return self.vocab.to_model(language, stream), n_chars

    def encode(self, language: int, texts: list[str]) -> list[np.ndarray]:
        """Texts as model ids through that language's tokenizer (no EOS added)."""
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(self.tokens[language].tokenizer_path))
        return [self.vocab.to_model(language, np.asarray(ids, dtype=np.int64)) for ids in sp.encode(texts)]

    def eos(self, language: int) -> int:
        return int(self.vocab.tables[language][EOS_ID])

    def info(self) -> dict:
        """Facts about the tokenisation, for the run's log and `xling data info`."""
        return {
            "mode": self.vocab.mode,
            "vocab_size": self.vocab.size,
            "n_anchors": self.vocab.n_anchors,
            "languages": {
                lang: {"vocab_size": size, "train_tokens": int(len(t.train)), "test_tokens": int(len(t.test))}
                for lang, size, t in zip(self.languages, self.vocab.sizes, self.tokens)
            },
        }


def is_real(data: dict) -> bool:
    return data.get("kind", "cloned") == "real"


def prepare_real(
    data: dict, languages: list[str], budget_tokens: int, cache: Path | None = None, log: Callable[[str], None] = print
) -> RealLanguages:
    """Build or load every language's tokenizer and arrays, then combine the vocabularies."""
    per_lang = [language_data(data, lang) for lang in languages]
    mode = data.get("tokenizer", "disjoint")
    if mode == "joint":
        tokens = _prepare_joint(per_lang, budget_tokens, Path(cache or cache_dir()) / "tokens", log)
        counts = [np.bincount(np.asarray(t.train), minlength=t.vocab_size) for t in tokens]
        vocab = joint(tokens[0].vocab_size, len(tokens), counts)
    else:
        tokens = []
        for d in per_lang:
            tokens.append(prepare_tokens(d, budget_tokens, cache=cache, log=log))
        vocab = (
            disjoint([t.vocab_size for t in tokens])
            if mode == "disjoint"
            else anchored([sentencepiece_pieces(t.tokenizer_path) for t in tokens])
        )
    return RealLanguages(list(languages), tokens, vocab, per_lang)


def _prepare_joint(per_lang: list[dict], budget_tokens: int, cache: Path, log) -> list[TokenData]:
    """One BPE trained on an equal number of lines of every language, with their summed vocabulary size."""
    size = sum(d["vocab_size"] for d in per_lang)
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
                    {"corpus": d["corpus"], "joint": True},
                    tokenizer_lines=mixed if i == 0 else None,
                    tokenizer=first,
                )
    return [load_tokens(f, f.name) for f in folders]


def prepare_run_data(data: dict, languages: list[str], budget_tokens: int, log: Callable[[str], None] = print):
    """What a run trains on: TokenData for cloned languages, RealLanguages for real ones."""
    if is_real(data):
        return prepare_real(data, languages, budget_tokens, log=log)
    return prepare_tokens(data, budget_tokens, log=log)


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


def prepare_steps(data: dict, languages: list[str], budget_tokens: int) -> list[tuple[str, Callable]]:
    """The preparation of a run's data as labelled steps (one per corpus), for progress displays.

    Running every step in order leaves everything cached, so ``prepare_run_data`` after
    them only loads. Each step takes a ``log`` callable.
    """
    if not is_real(data):
        return [
            (
                f"{data['corpus']} (vocab {data['vocab_size']}, cloned ×{len(languages)})",
                lambda log: prepare_tokens(data, budget_tokens, log=log),
            )
        ]
    if data.get("tokenizer", "disjoint") == "joint":
        return [
            (
                f"joint tokenizer for {', '.join(languages)}",
                lambda log: prepare_real(data, languages, budget_tokens, log=log),
            )
        ]
    steps = []
    for lang in languages:
        d = language_data(data, lang)
        steps.append(
            (
                f"{lang}: {d['corpus']} (vocab {d['vocab_size']})",
                lambda log, d=d: prepare_tokens(d, budget_tokens, log=log),
            )
        )
    return steps


def summarize(data: dict, languages: list[str], prepared) -> dict:
    """Sizes, tokens per language and vocabulary overlap of prepared data (TokenData or RealLanguages).

    ``identical_pieces`` counts piece strings two tokenizers have in common: what an
    anchored vocabulary merges, reported for disjoint ones too, so the choice is informed.
    """
    if isinstance(prepared, RealLanguages):
        tokens, info = prepared.tokens, prepared.info()
        mode, size, anchors = info["mode"], info["vocab_size"], info["n_anchors"]
        if mode == "joint":
            identical = anchors
        else:
            identical = anchored([sentencepiece_pieces(t.tokenizer_path) for t in tokens]).n_anchors
    else:
        from engine.data.cloned import anchor_ids

        tokens = [prepared] * len(languages)
        mode, size = "cloned", prepared.vocab_size * len(languages)
        anchors = len(anchor_ids(prepared.vocab_size, data.get("anchors", 0.0), data.get("anchor_seed", 0)))
        identical = anchors
    rows = []
    for lang, t in zip(languages, tokens):
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
    return {"mode": mode, "vocab_size": size, "n_anchors": anchors, "identical_pieces": identical, "languages": rows}
