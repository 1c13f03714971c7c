"""The SQL screen's memory: queries run (history) and queries saved under a name.

Kept in one JSON file beside the database (``<db stem>.sql-history.json``), or under
``$XDG_STATE_HOME/xling`` when that folder cannot be written, so the history of a
results file travels with it and survives restarts. The file holds strings only:
nothing read from it is ever run without the user pressing ``ctrl+r``, and a file
that is not what xling wrote is set aside, never trusted. Writes are atomic (a
temporary file renamed over the old one) and merge what another xling-tui on the same
database added meanwhile, so two open SQL screens do not erase each other's history.
No textual here: the screen and the tests use it alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import XlingError

HISTORY_LIMIT = 500  # entries kept, newest last
NAME_LIMIT = 80
FORMAT = 1


class LibraryError(XlingError, ValueError):
    """A name or query the library refuses; the message says why."""


def library_path(db_path: Path) -> Path:
    """Beside the database when its folder is writable, else under $XDG_STATE_HOME/xling."""
    db_path = Path(db_path).absolute()
    beside = db_path.with_name(f"{db_path.stem}.sql-history.json")
    if os.access(beside.parent, os.W_OK):
        return beside
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "xling"
    digest = hashlib.sha256(str(db_path).encode()).hexdigest()[:12]
    return state / f"{db_path.stem}-{digest}.sql-history.json"


@dataclass
class QueryLibrary:
    """History (oldest first) and saved queries (name -> SQL) of one database.

    ``add``, ``save`` and ``forget`` change the lists at once (the UI thread calls them);
    ``persist`` merges them with the file and writes it, on whatever thread may do IO.
    """

    path: Path
    history: list[str] = field(default_factory=list)
    saved: dict[str, str] = field(default_factory=dict)
    warning: str | None = None  # why the file on disk was not used, if it was not
    _forgotten: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, path: Path) -> QueryLibrary:
        library = cls(Path(path))
        library.history, library.saved, library.warning = _read(library.path)
        return library

    def add(self, sql: str) -> None:
        """Remembers a query that was run (the same text again moves to the end)."""
        sql = sql.strip()
        if not sql:
            return
        with self._lock:
            self.history = [q for q in self.history if q != sql][-(HISTORY_LIMIT - 1) :] + [sql]

    def save(self, name: str, sql: str) -> str:
        """Keeps ``sql`` under ``name`` (replacing a query of that name); returns the name
        as kept (spaces collapsed)."""
        name = " ".join(name.split())
        if not name:
            raise LibraryError("a saved query needs a name")
        if len(name) > NAME_LIMIT or not name.isprintable():
            raise LibraryError(f"a query name is printable text of at most {NAME_LIMIT} characters")
        if not sql.strip():
            raise LibraryError("nothing to save: the query is empty")
        with self._lock:
            self.saved[name] = sql.strip()
            self._forgotten.discard(name)
        return name

    def forget(self, name: str) -> None:
        with self._lock:
            self.saved.pop(name, None)
            self._forgotten.add(name)

    def search(self, text: str) -> list[tuple[str | None, str]]:
        """(name, SQL) of saved queries, then history newest first, whose name or SQL
        contains every word of ``text`` (case-insensitive); name is None for history."""
        words = text.lower().split()

        def hit(*parts: str) -> bool:
            haystack = " ".join(parts).lower()
            return all(w in haystack for w in words)

        with self._lock:
            saved = [(n, q) for n, q in sorted(self.saved.items()) if hit(n, q)]
            return saved + [(None, q) for q in reversed(self.history) if hit(q)]

    def persist(self) -> None:
        """Merges what another xling-tui wrote meanwhile, then writes the file atomically."""
        with self._lock:
            history, saved, _ = _read(self.path)
            mine = set(self.history)
            self.history = ([q for q in history if q not in mine] + self.history)[-HISTORY_LIMIT:]
            self.saved = {k: v for k, v in saved.items() if k not in self._forgotten} | self.saved
            data = {"format": FORMAT, "history": self.history, "saved": self.saved}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _read(path: Path) -> tuple[list[str], dict[str, str], str | None]:
    """The file's history and saved queries; a file that is not ours is set aside (renamed
    ``.bad``) with a warning, never half-read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], {}, None
    except OSError as exc:
        return [], {}, f"could not read {path}: {exc.strerror}"
    try:
        data = json.loads(text)
        history, saved = data["history"], data["saved"]
        if not (
            isinstance(history, list)
            and all(isinstance(q, str) for q in history)
            and isinstance(saved, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in saved.items())
        ):
            raise TypeError("unexpected types")
    except (ValueError, KeyError, TypeError):
        bad = path.with_suffix(path.suffix + ".bad")
        try:
            os.replace(path, bad)
        except OSError:
            bad = path
        return [], {}, f"{path} was not a query history xling wrote; it was set aside as {bad.name}"
    return history[-HISTORY_LIMIT:], saved, None


class HistoryCursor:
    """↑/↓ through the history like a shell: ↑ from the query being written keeps it as a
    draft, ↓ past the newest entry brings the draft back."""

    def __init__(self, history: list[str]) -> None:
        self.history = history
        self.index: int | None = None  # None: on the draft
        self.draft = ""

    def step(self, direction: int, current: str) -> str | None:
        """The text to show after moving ``direction`` (-1 older, +1 newer), or None when
        there is nowhere to go."""
        if not self.history:
            return None
        if self.index is None:
            if direction > 0:
                return None
            self.draft = current
            self.index = len(self.history) - 1
            return self.history[self.index]
        target = self.index + direction
        if target < 0:
            return None
        if target >= len(self.history):
            self.index = None
            return self.draft
        self.index = target
        return self.history[target]

    def reset(self, history: list[str]) -> None:
        self.history, self.index, self.draft = history, None, ""
