"""A log field as the type it should be, or None.

A run's log is read by the launcher and by the database ingest, and either may meet a
line that a bug, an older version or a hand edit left malformed. A field of the wrong
type becomes None here, never an exception that stops a launcher or poisons a bulk
insert; both readers use these same rules (``engine.runs.fold``, ``db.ingest``).
"""

from __future__ import annotations

import math
from typing import Any

BIGINT_MAX = 2**63 - 1  # the database's BIGINT; a larger integer is not a step or a count


def as_float(v: Any) -> float | None:
    """NaN and inf survive (a diverged loss is information); non-numbers do not."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def as_int(v: Any) -> int | None:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or abs(v) > BIGINT_MAX:
        return None
    return v


def as_pid(v: Any) -> int | None:
    """The database column is INTEGER; an impossible pid must not fail the cast of a whole batch."""
    pid = as_int(v)
    return pid if pid is not None and 0 <= pid < 2**31 else None


def as_time(v: Any) -> float | None:
    """Unix seconds that a timestamp can hold."""
    f = as_float(v)
    return f if f is not None and math.isfinite(f) and abs(f) < 1e11 else None


def as_str(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)  # a job id written as a number
    return None


def as_lang_map(v: Any) -> dict[str, float] | None:
    if not isinstance(v, dict):
        return None
    return {str(k): f for k, x in v.items() if (f := as_float(x)) is not None}


def as_str_list(v: Any) -> list[str] | None:
    if not isinstance(v, list):
        return None
    return [str(x) for x in v]
