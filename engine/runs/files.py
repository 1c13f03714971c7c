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

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: Path | str) -> Iterator[BinaryIO]:
    """A binary file to write; on a clean exit it becomes ``path``, on an error it vanishes."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


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
