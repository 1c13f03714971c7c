"""Following a file that another process appends to: a run's event log or its worker.log.

Readers remember how far they have read and ask for what is new. A file shorter than
that offset was replaced (a run folder restored, a log rotated), so it is read again
from its start; a reader that wants only the end of a long file says how much. The
launcher, the database ingest, ``xling logs`` and the TUI's log view all read this way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Chunk:
    """Bytes of a file and where they start in it."""

    start: int
    data: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)


def read_new(path: Path | str, offset: int = 0, last: int | None = None) -> Chunk | None:
    """What ``path`` holds after ``offset`` (None: no such file). Reading from the start,
    ``last`` keeps only that many bytes from the end."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return None
    start = 0 if size < offset else offset
    if start == 0 and last is not None:
        start = max(0, size - last)
    if size == start:
        return Chunk(start, b"")
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return Chunk(start, fh.read())
    except OSError:  # removed between the stat and the open
        return None


class LogTail:
    """A follower of one file: each ``read`` returns what was appended since the last one."""

    def __init__(self, path: Path | str, last: int | None = None) -> None:
        self.path = Path(path)
        self.last = last  # on the first read (or after a replacement), only this many bytes from the end
        self.offset = 0

    def read(self) -> bytes | None:
        """New bytes (b'' when none), or None while the file does not exist."""
        chunk = read_new(self.path, self.offset, self.last)
        if chunk is None:
            return None
        self.offset = chunk.end
        return chunk.data
