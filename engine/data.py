"""Corpora -> tokenizer -> token arrays (cached) -> batches of cloned languages.

Cloned languages follow the paper: language n uses ids ``id + n·V`` except for an
optional *anchor* subset, picked uniformly at random with a fixed seed, whose ids
are shared by every language. The same underlying text stream feeds every run; a
run's schedule only decides which id map each sequence goes through, so runs differ
in nothing but the language mix.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.layout import cache_dir

DATA_VERSION = 1
EOS_ID = 2  # SentencePiece's default </s>; ends every line (paragraph) of the stream
FAMILY = "builtin:family"  # a language of the synthetic family (engine.family); its settings in data["family"]


class DataError(ValueError):
    """A corpus that cannot be read or is too small; the message says which and why."""


# --- raw text ----------------------------------------------------------------


def _synthetic_chars(budget_tokens: int) -> int:
    """Enough generated text for one pass over the budget (about 4 chars per token)."""
    return int(min(max(4.5 * budget_tokens, 400_000), 60_000_000))


def corpus_key(data: dict, budget_tokens: int) -> str:
    """Identifies the raw text without reading it where possible (builtins), else by content."""
    source = data["corpus"]
    if source == "builtin:synthetic":
        n = data.get("max_chars") or _synthetic_chars(budget_tokens)
        return f"synthetic-v1-seed0-{n}"
    if source == FAMILY:
        n = data.get("max_chars") or _synthetic_chars(budget_tokens)
        return f"family-v1-{json.dumps(data.get('family') or {}, sort_keys=True)}-{n}-clean{int(bool(data.get('clean')))}"
    if source == "builtin:pydocs":
        import sys

        return f"pydocs-{sys.version_info.major}.{sys.version_info.minor}-{data.get('max_chars')}"
    h = hashlib.sha256()
    for path in _corpus_files(source):
        h.update(path.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    h.update(str((data.get("max_chars"), data.get("text_field"))).encode())
    if data.get("clean"):
        h.update(b"clean")
    return "file-" + h.hexdigest()[:16]


def _corpus_files(source: str) -> list[str]:
    files = sorted(glob.glob(os.path.expanduser(source)))
    if not files:
        raise DataError(f"corpus {source!r}: no file matches (give a path, a glob, or one of builtin:synthetic, builtin:pydocs, builtin:family)")
    return files


def read_corpus(data: dict, budget_tokens: int) -> str:
    """The corpus's raw text; ``clean`` (set for real languages) normalises it first."""
    text = _raw_corpus(data, budget_tokens)
    if data.get("clean"):
        from engine.corpora import clean_text

        text = clean_text(text)
    return text


def _raw_corpus(data: dict, budget_tokens: int) -> str:
    source, limit = data["corpus"], data.get("max_chars")
    if source == FAMILY:
        from engine.family import family_text

        return family_text(data.get("family") or {}, limit or _synthetic_chars(budget_tokens))
    if source == "builtin:synthetic":
        from engine.synthetic import SyntheticSpec, generate_text

        return generate_text(SyntheticSpec(seed=0), limit or _synthetic_chars(budget_tokens))
    if source == "builtin:pydocs":
        import pydoc_data.topics

        text = "\n".join(pydoc_data.topics.topics.values())
    else:
        text = "\n".join(_read_file(p, data.get("text_field", "text")) for p in _corpus_files(source))
    return text[:limit] if limit else text


def _read_file(path: str, text_field: str) -> str:
    """Plain text (optionally .gz), JSONL or Parquet; DuckDB reads the structured ones."""
    lower = path.lower()
    if lower.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".parquet")):
        import duckdb

        reader = "read_parquet" if lower.endswith(".parquet") else "read_json"
        try:
            rows = duckdb.sql(f"SELECT \"{text_field}\"::VARCHAR FROM {reader}(?)", params=[path]).fetchall()
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
    train, test = [], []
    for i in range(0, len(lines), block):
        (test if (i // block) % period == period - 1 else train).extend(lines[i : i + block])
    if not test and len(train) > 1:
        cut = max(1, int(len(train) * test_fraction))
        train, test = train[:-cut], train[-cut:]
    return train, test


# --- tokenizer and token arrays ------------------------------------------------


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


def token_cache_key(data: dict, budget_tokens: int) -> str:
    """Names the cached tokenizer and arrays of one corpus; the same for every run that reads it."""
    ckey = corpus_key(data, budget_tokens)
    return hashlib.sha256(json.dumps([DATA_VERSION, ckey, data["vocab_size"], data["test_fraction"]]).encode()).hexdigest()[:16]


def prepare_tokens(data: dict, budget_tokens: int, cache: Path | None = None, log=print) -> TokenData:
    """Build or load the cached tokenizer and token arrays for ``data``."""
    cache = Path(cache or cache_dir()) / "tokens"
    cache.mkdir(parents=True, exist_ok=True)
    key = token_cache_key(data, budget_tokens)
    folder = cache / key
    if not (folder / "done").exists():
        log(f"tokenising corpus {data['corpus']} (vocab {data['vocab_size']}), cached as {folder}")
        _build(folder, data, budget_tokens)
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


def corpus_lines(data: dict, budget_tokens: int) -> tuple[list[str], list[str]]:
    """The corpus split into train and test lines; refuses a corpus too small to use."""
    text = read_corpus(data, budget_tokens)
    train_lines, test_lines = split_lines(text, data["test_fraction"])
    if len(train_lines) < 10 or not test_lines:
        raise DataError(f"corpus {data['corpus']!r} is too small: {len(train_lines)} train lines, {len(test_lines)} test lines")
    return train_lines, test_lines


def _build(folder: Path, data: dict, budget_tokens: int) -> None:
    train_lines, test_lines = corpus_lines(data, budget_tokens)
    write_tokens(folder, train_lines, test_lines, data["vocab_size"], {"corpus": data["corpus"]})


def write_tokens(folder: Path, train_lines: list[str], test_lines: list[str], vocab_size: int, info: dict,
                 tokenizer_lines: list[str] | None = None, tokenizer: Path | None = None) -> None:
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
    meta = {"vocab_size": sp.get_piece_size(), **info, "train_tokens": int(len(train)),
            "test_tokens": int(len(test)), "train_lines": len(train_lines), "test_lines": len(test_lines),
            "train_chars": sum(len(ln) + 1 for ln in train_lines)}
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
    sample = lines if len(lines) <= 200_000 else [lines[i] for i in sorted(rng.choice(len(lines), 200_000, replace=False))]
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample), model_prefix=str(prefix), vocab_size=vocab_size,
            model_type="bpe", character_coverage=0.9995, num_threads=os.cpu_count() or 1,
            unk_id=0, bos_id=1, eos_id=EOS_ID, pad_id=-1, max_sentence_length=1 << 16,
            hard_vocab_limit=False, minloglevel=2,
        )
    except RuntimeError as exc:
        raise DataError(f"cannot train a {vocab_size}-piece tokenizer on this corpus: {exc}") from None
    return spm.SentencePieceProcessor(model_file=str(prefix) + ".model")


def _encode(sp, lines: list[str], ids: list[list[int]] | None = None) -> np.ndarray:
    ids = ids if ids is not None else sp.encode(lines, num_threads=os.cpu_count() or 1)
    dtype = np.uint16 if sp.get_piece_size() < 65536 else np.uint32
    flat = np.fromiter((t for seq in ids for t in (*seq, EOS_ID)), dtype=dtype)
    return flat


# --- cloned languages ------------------------------------------------------------


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
