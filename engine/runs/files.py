"""Writing a file so that a reader sees the old contents or the new, never half of them.

Every file xling rewrites in place (a run's spec, checkpoint and model, an experiment's
record, a run's tags and note, the user's experiments.toml) goes through ``atomic_file``:
the bytes go to a temporary file beside the target (same folder, so the rename stays on
one file system) under a name no other writer can pick, are fsynced, and replace the
target with ``os.replace``. A crash, a kill or a full disk leaves the previous file (and
at worst a stray ``.*.tmp``); two processes writing the same file at once each replace
it whole.
"""

from __future__ import annotations

import glob
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: Path | str, before_replace: Callable[[], None] | None = None) -> Iterator[BinaryIO]:
    """A binary file to write; on a clean exit it becomes ``path``, on an error it vanishes.

    ``before_replace`` runs once the new bytes are safely on disk, just before they take
    ``path``'s place (a checkpoint moves the one it replaces aside there)."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as fh:  # x: a name no other writer holds; the umask applies, as for any new file
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def temp_name(path: Path) -> Path:
    """Where ``atomic_file`` writes ``path`` first: beside it, hidden, unique to this write."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def leftovers(path: Path) -> list[Path]:
    """Temporary files of writes of ``path`` that a kill cut short."""
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def atomic_write(path: Path | str, data: str | bytes) -> None:
    """``path`` holds exactly ``data`` (text as UTF-8), or its previous contents."""
    with atomic_file(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def _sync_folder(folder: Path) -> None:
    """The rename itself survives a power cut once the folder is synced (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)
