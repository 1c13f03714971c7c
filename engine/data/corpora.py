"""Corpora as text: reading files and built-ins, cleaning, the train/test split.

A corpus is a path or glob of .txt, .txt.gz, .jsonl or .parquet files (a text
column), or a built-in generated language (``builtin:synthetic``, a language of the
synthetic family ``builtin:family``, ``builtin:pydocs``). A real-language experiment
names one corpus per language; each is a ``CorpusSource`` (``engine.data.recipe``) that
``engine.data.tokens`` caches by content, with ``clean`` set, so that both languages
go through the same cleaning and the same deterministic train/test split.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import unicodedata

from engine.data.recipe import FAMILY, CorpusSource
from engine.errors import DataError

# ASCII whitespace runs only: French typography's no-break spaces before ; : ! ? are kept.
_ASCII_SPACE = re.compile(r"[ \t\r\f\v]+")
# C0/C1 control characters other than tab and newline, and the replacement character.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


def clean_text(text: str) -> str:
    """NFC, no control characters, single spaces, trimmed lines, no empty lines.

    NFC makes "é" one code point in every source, so identical words tokenise to
    identical pieces (which the anchored vocabulary relies on).
    """
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    lines = (_ASCII_SPACE.sub(" ", ln).strip() for ln in text.split("\n"))
    return "\n".join(ln for ln in lines if ln)


def _synthetic_chars(budget_tokens: int) -> int:
    """Enough generated text for one pass over the budget (about 4 chars per token)."""
    return int(min(max(4.5 * budget_tokens, 400_000), 60_000_000))


def corpus_key(src: CorpusSource, budget_tokens: int) -> str:
    """Identifies the raw text without reading it where possible (builtins), else by content."""
    source = src.corpus
    if source == "builtin:synthetic":
        n = src.max_chars or _synthetic_chars(budget_tokens)
        return f"synthetic-v1-seed0-{n}"
    if source == FAMILY:
        n = src.max_chars or _synthetic_chars(budget_tokens)
        return f"family-v1-{json.dumps(src.family or {}, sort_keys=True)}-{n}-clean{int(src.clean)}"
    if source == "builtin:pydocs":
        import sys

        return f"pydocs-{sys.version_info.major}.{sys.version_info.minor}-{src.max_chars}"
    h = hashlib.sha256()
    for path in _corpus_files(source):
        h.update(path.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    h.update(str((src.max_chars, src.text_field)).encode())
    if src.clean:
        h.update(b"clean")
    return "file-" + h.hexdigest()[:16]


def _corpus_files(source: str) -> list[str]:
    files = sorted(glob.glob(os.path.expanduser(source)))
    if not files:
        raise DataError(
            f"corpus {source!r}: no file matches "
            "(give a path, a glob, or one of builtin:synthetic, builtin:pydocs, builtin:family)"
        )
    return files


def read_corpus(src: CorpusSource, budget_tokens: int) -> str:
    """The corpus's raw text; ``clean`` (set for real languages) normalises it first."""
    text = _raw_corpus(src, budget_tokens)
    if src.clean:
        text = clean_text(text)
    return text


def _raw_corpus(src: CorpusSource, budget_tokens: int) -> str:
    source, limit = src.corpus, src.max_chars
    if source == FAMILY:
        from engine.data.family import family_text

        return family_text(src.family or {}, limit or _synthetic_chars(budget_tokens))
    if source == "builtin:synthetic":
        from engine.data.synthetic import SyntheticSpec, generate_text

        return generate_text(SyntheticSpec(seed=0), limit or _synthetic_chars(budget_tokens))
    if source == "builtin:pydocs":
        import pydoc_data.topics

        text = "\n".join(pydoc_data.topics.topics.values())
    else:
        text = "\n".join(_read_file(p, src.text_field) for p in _corpus_files(source))
    return text[:limit] if limit else text


def _read_file(path: str, text_field: str) -> str:
    """Plain text (optionally .gz), JSONL or Parquet; DuckDB reads the structured ones."""
    lower = path.lower()
    if lower.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".parquet")):
        import duckdb

        reader = "read_parquet" if lower.endswith(".parquet") else "read_json"
        try:
            rows = duckdb.execute(f'SELECT "{text_field}"::VARCHAR FROM {reader}(?)', [path]).fetchall()
        except duckdb.Error as exc:
            raise DataError(f"corpus file {path}: cannot read column {text_field!r}: {exc}") from None
        return "\n".join(r[0] for r in rows if r[0])
    opener = gzip.open if lower.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise DataError(f"corpus file {path}: {exc}") from None


def split_lines(text: str, test_fraction: float, block: int = 50) -> tuple[list[str], list[str]]:
    """Deterministic train/test split by blocks of lines spread over the corpus.

    Whole blocks keep test text contiguous enough for sliding-window evaluation,
    while sampling it from everywhere in the corpus rather than only its end.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    period = max(2, round(1 / test_fraction))
    train: list[str] = []
    test: list[str] = []
    for i in range(0, len(lines), block):
        (test if (i // block) % period == period - 1 else train).extend(lines[i : i + block])
    if not test and len(train) > 1:
        cut = max(1, int(len(train) * test_fraction))
        train, test = train[:-cut], train[-cut:]
    return train, test


def corpus_lines(src: CorpusSource, budget_tokens: int) -> tuple[list[str], list[str]]:
    """The corpus split into train and test lines; refuses a corpus too small to use."""
    text = read_corpus(src, budget_tokens)
    train_lines, test_lines = split_lines(text, src.test_fraction)
    if len(train_lines) < 10 or not test_lines:
        raise DataError(
            f"corpus {src.corpus!r} is too small: {len(train_lines)} train lines, {len(test_lines)} test lines"
        )
    return train_lines, test_lines
