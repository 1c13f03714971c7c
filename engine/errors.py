"""The one base of every error whose message is for the user, not a bug.

Front ends catch ``XlingError`` in one place each: the CLI prints the message and
exits 2, the TUI shows it as a notification. Anything else is a bug and keeps its
traceback. Each subsystem defines its own subclass next to the code that raises it.
"""

from __future__ import annotations

import errno


class XlingError(Exception):
    """A problem the user can fix; ``str()`` is the whole message (file, line, field where known)."""


class DataError(XlingError, ValueError):
    """A corpus that cannot be read or is too small; the message says which and why."""


class DiskFull(XlingError, OSError):
    """A write found no space left; whatever it was writing was removed, not left partial.
    Still an OSError (ENOSPC), for code that handles any failed write."""

    def __init__(self, path: object) -> None:
        super().__init__(f"no space left on {path}")
        self.errno = errno.ENOSPC
        self.path = path


class CheckpointError(XlingError):
    """A checkpoint that cannot be used: refused (not plain data) or damaged with no intact
    fallback. The message names the file and what to do."""
