"""Where a field of a TOML file is, so that every config error names file and line.

tomllib keeps no positions; ``TomlLocator`` re-reads the source's table headers and
keys. ``SpecError`` is the error of every config file xling reads.
"""

from __future__ import annotations

import re

from engine.errors import XlingError


class SpecError(XlingError, ValueError):
    """A user's mistake in experiments.toml; ``str()`` is the whole message."""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("\"'") for p in key.split("."))


class TomlLocator:
    """Maps a key path such as ('experiments', 'quick', 'train', 'lr') to its line.

    tomllib keeps no positions, so this re-reads the source's table headers and keys;
    a path it cannot place falls back to the nearest enclosing table's line.
    """

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: dict[tuple, int] = {}
        table: tuple = ()
        counts: dict[tuple, int] = {}
        for lineno, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                key = _split_key(header.group(2))
                if header.group(1) == "[[":
                    idx = counts.get(key, -1) + 1
                    counts[key] = idx
                    table = (*key, idx)
                else:
                    table = key
                self.lines.setdefault(table, lineno)
                continue
            kv = _KEY.match(line)
            if kv and not line.lstrip().startswith("#"):
                self.lines.setdefault((*table, *_split_key(kv.group(1))), lineno)
        # dotted tables written inline under a parent, e.g. experiments.x.train = {...}
        self._tables = counts

    def line_of(self, loc: tuple) -> int | None:
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None

    def at(self, loc: tuple) -> str:
        line = self.line_of(loc)
        return f"{self.source}:{line}" if line else self.source
