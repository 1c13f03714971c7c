"""Per-language corpora of real-language experiments: which text, cleaned how.

A real-language experiment names one corpus per language (a path or glob of .txt,
.txt.gz, .jsonl or .parquet files with a text column, or a language of the built-in
synthetic family). Each becomes the ``data`` dict that ``engine.data`` caches by
content, with ``clean`` set, so that both languages go through the same cleaning and
the same deterministic train/test split (``engine.data.split_lines``).
"""

from __future__ import annotations

import re
import unicodedata

from engine.data import FAMILY

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


def language_data(data: dict, language: str) -> dict:
    """The single-corpus ``data`` dict (engine.data's form) for one language of a real experiment."""
    corpus = data["corpora"][language]
    out = {
        "corpus": corpus["path"],
        "vocab_size": corpus.get("vocab_size") or data["vocab_size"],
        "test_fraction": data["test_fraction"],
        "max_chars": corpus.get("max_chars"),
        "text_field": corpus.get("column", "text"),
        "clean": True,
    }
    if corpus["path"] == FAMILY:
        out["family"] = corpus.get("family") or {}
    return out
