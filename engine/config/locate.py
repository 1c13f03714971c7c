"""Where a field of a TOML file is, so that every config error names file and line.

tomllib keeps no positions; ``TomlLocator`` re-reads the source's table headers and
keys. ``SpecError`` is the error of every config file xling reads, and
``describe_validation_error`` the one way a pydantic error becomes its message.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: the TUI reaches SpecError before its first frame, without pydantic
    from pydantic import ValidationError

from engine.errors import XlingError


class SpecError(XlingError, ValueError):
    """A user's mistake in experiments.toml; ``str()`` is the whole message."""


# A TOML key: bare, "basic" (with escapes) or 'literal' parts joined by dots.
_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_KEYPATH = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEYPATH})\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(rf"^\s*({_KEYPATH})\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    """The parts of a dotted key as tomllib reads them (quotes, escapes and dots inside
    quotes included), by letting tomllib read ``KEY = 0``."""
    try:
        tree = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return tuple(p.strip().strip("\"'") for p in key.split("."))
    parts = []
    while isinstance(tree, dict) and len(tree) == 1:
        ((part, tree),) = tree.items()
        parts.append(part)
    return tuple(parts)


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
            under = [n for key, n in self.lines.items() if key[: len(loc)] == loc]
            if under:  # a table written only as dotted keys (experiments.x.tokens = ...)
                return min(under)
            loc = loc[:-1]
        return None

    def at(self, loc: tuple) -> str:
        line = self.line_of(loc)
        return f"{self.source}:{line}" if line else self.source


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """' (did you mean 'lr'?)' for the closest known name, or nothing."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validation_problem(
    exc: ValidationError, known_fields: Callable[[tuple[Any, ...]], Iterable[str]] | None = None
) -> tuple[tuple[Any, ...], str]:
    """The first problem pydantic found: the key path of its field and one line for the user.

    A misspelt field comes first (it is why a required one seems missing), with the
    closest of ``known_fields(table path)`` suggested."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        return loc, f"unknown field {key!r}" + (did_you_mean(key, known_fields(loc[:-1])) if known_fields else "")
    if err["type"] == "missing":
        return loc, "required field is missing"
    return loc, err["msg"].removeprefix("Value error, ")


def describe_validation_error(
    exc: ValidationError, where: TomlLocator | None = None, prefix: tuple[Any, ...] = ()
) -> str:
    """``file:line: table.field: problem``, the field's path under ``prefix`` (its table in the file)."""
    loc, msg = validation_problem(exc)
    loc = (*prefix, *loc)
    n = len(exc.errors())
    more = f" (and {n - 1} more problem(s))" if n > 1 else ""
    field = ".".join(str(p) for p in loc)
    return f"{where.at(loc) + ': ' if where else ''}{field}: {msg}{more}"
