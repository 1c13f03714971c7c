"""One model vocabulary from several languages' tokenizers: disjoint, anchored or joint.

Each real language has its own SentencePiece BPE whose ids (``local`` ids) start at
0. The model sees one id space, reached through a (N, V_max) table per language:

* disjoint: language n's ids are offset by the sizes of the languages before it, so
  no two languages ever share a row (the paper's "no shared vocabulary");
* anchored: walk each later vocabulary; a piece whose exact string already has an id
  (from an earlier language) reuses it, every other piece gets the next new id (the
  paper's anchored EN-FR vocabulary). Those reused pieces are the *anchors*;
* joint: one tokenizer trained on the mixed corpus; every language uses it as is,
  and the anchors are the pieces that occur in the training text of two or more
  languages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("disjoint", "anchored", "joint")


@dataclass
class Vocabulary:
    """How each language's local ids map into the model's vocabulary."""

    mode: str
    tables: np.ndarray  # (N, V_max) int64: local id -> model id; -1 past a language's size
    sizes: list[int]  # each language's local vocabulary size
    size: int  # the model's vocabulary (embedding rows)
    n_anchors: int  # pieces shared between languages (see the module docstring)

    def to_model(self, language: int, local_ids: np.ndarray) -> np.ndarray:
        return self.tables[language][np.asarray(local_ids, dtype=np.int64)]

    def shared_ids(self) -> np.ndarray:
        """Model ids used by two or more languages."""
        used = np.zeros(self.size, dtype=np.int64)
        for row, n in zip(self.tables, self.sizes):
            used[np.unique(row[:n])] += 1
        return np.flatnonzero(used > 1)


def _table(rows: list[np.ndarray]) -> np.ndarray:
    width = max(len(r) for r in rows)
    table = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        table[i, : len(r)] = r
    return table


def disjoint(sizes: list[int]) -> Vocabulary:
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    rows = [np.arange(n, dtype=np.int64) + off for n, off in zip(sizes, offsets)]
    return Vocabulary("disjoint", _table(rows), list(sizes), int(sum(sizes)), 0)


def anchored(pieces: list[list[str]]) -> Vocabulary:
    """The first language keeps its ids; identical pieces of later languages reuse them."""
    ids: dict[str, int] = {}
    rows, anchors = [], 0
    for vocab in pieces:
        if len(set(vocab)) != len(vocab):
            raise ValueError("a vocabulary lists the same piece twice")
        row = np.empty(len(vocab), dtype=np.int64)
        for local, piece in enumerate(vocab):
            if piece in ids:
                anchors += 1
            else:
                ids[piece] = len(ids)
            row[local] = ids[piece]
        rows.append(row)
    return Vocabulary("anchored", _table(rows), [len(p) for p in pieces], len(ids), anchors)


def joint(size: int, n_languages: int, counts: list[np.ndarray] | None = None) -> Vocabulary:
    """Every language uses the one joint tokenizer; ``counts`` (ids per language) give the anchors."""
    rows = [np.arange(size, dtype=np.int64) for _ in range(n_languages)]
    anchors = 0
    if counts is not None:
        anchors = int(((np.stack([np.asarray(c) > 0 for c in counts])).sum(axis=0) > 1).sum())
    return Vocabulary("joint", _table(rows), [size] * n_languages, size, anchors)


def sentencepiece_pieces(model_path) -> list[str]:
    """The pieces of a SentencePiece model in id order."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
