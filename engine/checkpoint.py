"""A run's checkpoints and final model on disk: plain data only, written whole or not at all.

Why plain data: a run folder may come from anyone (a shared results folder, an archive,
a copied experiment), and unpickling runs whatever code the file names. So a
checkpoint holds only tensors, plain containers (dict, list, tuple), strings, numbers,
booleans and None (RNG states are tensors), and it is loaded with
``torch.load(weights_only=True)``, which refuses anything else without running it.

Why two files: the newest checkpoint is written under a temporary name, flushed to
disk, and only then renamed into place (``engine.runs.files.atomic_file``), the one it replaces becoming
``checkpoint.prev.pt``. A crash, a kill or a full disk mid-write leaves the last good
checkpoint untouched, and a newest one damaged later (a truncated copy, a bad disk)
falls back to the previous one. A write that finds no space says so, by path, and
leaves no partial file behind.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import CheckpointError, DiskFull
from engine.runs.files import atomic_file, leftovers
from engine.runs.layout import CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE

REQUIRED = ("step", "model", "opt", "acc", "torch_rng")  # what Trainer.load_checkpoint reads
_PLAIN_LEAVES = (torch.Tensor, str, int, float, bool, type(None))


@dataclass
class Loaded:
    """A checkpoint that loaded, from which file, and what was wrong with newer ones."""

    state: dict[str, Any]
    path: Path
    damaged: list[str]  # "path: why" of newer checkpoints that could not be used (and were removed)


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raises TypeError naming the first value ``weights_only`` loading would refuse: a bug
    found when the checkpoint is written, not when a resume cannot read it."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; checkpoints hold plain data only")
            check_plain(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
    elif not isinstance(obj, _PLAIN_LEAVES):
        raise TypeError(f"{where} is a {type(obj).__name__}; checkpoints hold plain data only")


def _write(obj: Any, target: Path, before_replace: Callable[[], None] | None = None) -> None:
    """``torch.save`` through ``atomic_file``: on any failure nothing partial is left, and a
    full disk is reported as DiskFull naming ``target`` (the file the user knows)."""
    try:
        with atomic_file(target, before_replace) as fh:  # a file object: a full disk surfaces as OSError(ENOSPC)
            torch.save(obj, fh)
    except BaseException as exc:
        if _no_space(exc):
            raise DiskFull(target) from exc
        raise


def _no_space(exc: BaseException | None) -> bool:
    """torch reports its writer's failure as a RuntimeError whose context is the OSError."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def save_whole(obj: Any, path: Path) -> None:
    """Readers see the old file or the complete new one, never a partial one (the final model)."""
    _write(obj, Path(path))


def save(run_dir: Path, state: dict[str, Any]) -> None:
    """The newest checkpoint, complete on disk before the one it replaces becomes the fallback."""
    check_plain(state)
    current, previous = Path(run_dir) / CHECKPOINT_FILE, Path(run_dir) / PREVIOUS_CHECKPOINT_FILE

    def keep_previous() -> None:
        if current.exists():
            os.replace(current, previous)

    _write(state, current, keep_previous)


def load(run_dir: Path, device: str, run_id: str) -> Loaded | None:
    """The newest checkpoint that loads, or None when the run has none (a fresh start).

    A damaged newest file is removed (so it never becomes the fallback) and named in
    ``Loaded.damaged``; one holding anything but plain data is refused outright.
    """
    run_dir = Path(run_dir)
    candidates = [p for p in (run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE) if p.exists()]
    damaged: list[str] = []
    for path in candidates:
        try:
            state = _load_one(path, device, run_id)
        except _Damaged as why:
            damaged.append(f"{path}: {why}")
            continue
        for bad in candidates[: candidates.index(path)]:
            bad.unlink(missing_ok=True)
        return Loaded(state, path, damaged)
    if damaged:
        raise CheckpointError(
            "cannot resume: " + "; ".join(damaged) + ". Delete the damaged file(s) to restart this run "
            "from step 0 (its logged results stay), or put back an intact copy and resume again."
        )
    return None


class _Damaged(Exception):
    """A checkpoint file that cannot be used; str() says why."""


def _load_one(path: Path, device: str, run_id: str) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL (\S+)", str(exc))  # torch: "Unsupported global: GLOBAL builtins.open ..."
        if named:  # a reference to a function or class: what a pickle calls when it loads
            raise CheckpointError(
                f"refusing to load {path}: it names {named.group(1)}, and a checkpoint holds only tensors, "
                "containers and numbers (xling never writes such a file, and did not run it). If you did not "
                "put it there, delete it; `xling resume` then falls back to an earlier checkpoint or restarts."
            ) from None
        raise _Damaged("corrupt (not a file torch.save wrote)") from None
    except (RuntimeError, EOFError, ValueError) as exc:  # an OSError (no permission) is not damage: it propagates
        raise _Damaged(f"truncated or corrupt ({_first_sentence(exc)})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise _Damaged("not an xling checkpoint (fields missing)")
    if state.get("run_id") not in (None, run_id):
        raise _Damaged(f"it belongs to run {state.get('run_id')!r}")
    return state


def _first_sentence(exc: BaseException) -> str:
    """torch's messages go on for a paragraph; the first sentence says what broke."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.split(". ")[0].rstrip(".")


def remove(run_dir: Path) -> None:
    """Once the final model is written, checkpoints (and leftovers of a killed save) go."""
    for name in (CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE):
        path = Path(run_dir) / name
        path.unlink(missing_ok=True)
        for stray in leftovers(path):
            stray.unlink(missing_ok=True)
