"""A corpus's tokenizer and token arrays, built once and cached by content.

Every run that reads the same corpus with the same vocabulary size shares one
SentencePiece BPE model and one set of token arrays in ``$XLING_CACHE/tokens/<key>``;
they are written to a temporary folder and renamed, so a crash never leaves half a
cache, and two workers that build the same one at once both end up with a whole one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.corpora import corpus_key, corpus_lines
from engine.data.recipe import CorpusSource
from engine.errors import DataError
from engine.runs.layout import cache_dir

DATA_VERSION = 1
EOS_ID = 2  # SentencePiece's default </s>; ends every line (paragraph) of the stream


@dataclass
class TokenData:
    """One corpus tokenised: the train stream (memmapped) and the test stream by line."""

    train: np.ndarray
    test: np.ndarray
    test_line_ends: np.ndarray  # cumulative token count at the end of each test line
    test_line_chars: np.ndarray  # cumulative characters (line + its newline)
    vocab_size: int
    tokenizer_path: Path
    key: str

    def test_prefix(self, max_tokens: int) -> tuple[np.ndarray, int]:
        """Whole test lines up to ``max_tokens`` tokens, and the characters they cover."""
        n_lines = int(np.searchsorted(self.test_line_ends, max_tokens, side="right"))
        n_lines = max(n_lines, 1)
        end = int(self.test_line_ends[n_lines - 1])
        return self.test[: min(end, max_tokens)], int(self.test_line_chars[n_lines - 1])


def token_cache_key(src: CorpusSource, budget_tokens: int) -> str:
    """Names the cached tokenizer and arrays of one corpus; the same for every run that reads it."""
    blob = json.dumps([DATA_VERSION, corpus_key(src, budget_tokens), src.vocab_size, src.test_fraction])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare_tokens(
    src: CorpusSource, budget_tokens: int, cache: Path | None = None, log: Callable[[str], None] = print
) -> TokenData:
    """Build or load the cached tokenizer and token arrays of one corpus."""
    cache = Path(cache or cache_dir()) / "tokens"
    cache.mkdir(parents=True, exist_ok=True)
    key = token_cache_key(src, budget_tokens)
    folder = cache / key
    if not (folder / "done").exists():
        log(f"tokenising corpus {src.corpus} (vocab {src.vocab_size}), cached as {folder}")
        _build(folder, src, budget_tokens)
    return load_tokens(folder, key)


def load_tokens(folder: Path, key: str) -> TokenData:
    """A finished cache folder (see ``write_tokens``) as TokenData; the train stream memmapped."""
    meta = json.loads((folder / "meta.json").read_text())
    return TokenData(
        train=np.load(folder / "train.npy", mmap_mode="r"),
        test=np.load(folder / "test.npy"),
        test_line_ends=np.load(folder / "test_line_ends.npy"),
        test_line_chars=np.load(folder / "test_line_chars.npy"),
        vocab_size=meta["vocab_size"],
        tokenizer_path=folder / "sp.model",
        key=key,
    )


def _build(folder: Path, src: CorpusSource, budget_tokens: int) -> None:
    train_lines, test_lines = corpus_lines(src, budget_tokens)
    write_tokens(folder, train_lines, test_lines, src.vocab_size, {"corpus": src.corpus})


def write_tokens(
    folder: Path,
    train_lines: list[str],
    test_lines: list[str],
    vocab_size: int,
    info: dict,
    tokenizer_lines: list[str] | None = None,
    tokenizer: Path | None = None,
) -> None:
    """Train a tokenizer (on ``tokenizer_lines`` or the train lines) or reuse the model file
    ``tokenizer``, encode, and cache atomically.

    Writes into a temporary folder and renames it, so a crash leaves no half cache.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    if tokenizer is not None:
        import shutil

        import sentencepiece as spm

        shutil.copyfile(tokenizer, tmp / "sp.model")
        sp = spm.SentencePieceProcessor(model_file=str(tmp / "sp.model"))
    else:
        sp = _train_tokenizer(tokenizer_lines if tokenizer_lines is not None else train_lines, vocab_size, tmp / "sp")
    train = _encode(sp, train_lines)
    test_ids = sp.encode(test_lines, num_threads=os.cpu_count() or 1)
    test = _encode(sp, test_lines, test_ids)
    np.save(tmp / "train.npy", train)
    np.save(tmp / "test.npy", test)
    np.save(tmp / "test_line_ends.npy", np.cumsum([len(ids) + 1 for ids in test_ids]))
    np.save(tmp / "test_line_chars.npy", np.cumsum([len(ln) + 1 for ln in test_lines]))
    meta = {
        "vocab_size": sp.get_piece_size(),
        **info,
        "train_tokens": int(len(train)),
        "test_tokens": int(len(test)),
        "train_lines": len(train_lines),
        "test_lines": len(test_lines),
        "train_chars": sum(len(ln) + 1 for ln in train_lines),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    (tmp / "done").touch()
    try:
        os.replace(tmp, folder)
    except OSError:  # another worker built it first; theirs is as good as ours
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _train_tokenizer(lines: list[str], vocab_size: int, prefix: Path):
    import sentencepiece as spm

    rng = np.random.default_rng(0)
    sample = (
        lines if len(lines) <= 200_000 else [lines[i] for i in sorted(rng.choice(len(lines), 200_000, replace=False))]
    )
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample),
            model_prefix=str(prefix),
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=0.9995,
            num_threads=os.cpu_count() or 1,
            unk_id=0,
            bos_id=1,
            eos_id=EOS_ID,
            pad_id=-1,
            max_sentence_length=1 << 16,
            hard_vocab_limit=False,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise DataError(f"cannot train a {vocab_size}-piece tokenizer on this corpus: {exc}") from None
    return spm.SentencePieceProcessor(model_file=str(prefix) + ".model")


def _encode(sp, lines: list[str], ids: list[list[int]] | None = None) -> np.ndarray:
    ids = ids if ids is not None else sp.encode(lines, num_threads=os.cpu_count() or 1)
    dtype = np.uint16 if sp.get_piece_size() < 65536 else np.uint32
    flat = np.fromiter((t for seq in ids for t in (*seq, EOS_ID)), dtype=dtype)
    return flat
