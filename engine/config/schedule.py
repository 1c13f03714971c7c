"""Language-mix schedules: which share of training sequences each language gets, when.

A schedule is a grid with one row per language and one column per stage. Stage ``s``
covers the fraction of training from ``ends[s-1]`` (0 for the first) to ``ends[s]``;
each cell is the percentage of that stage's *sequences* in that language, so every
column sums to 100. This covers every condition of Schäfer et al. (2024): constant
mixes (50/50, 90/10), curricula that swap the main language half-way (90%↘10%) and
multi-stage or many-language variants.

The paper's token-efficiency metric divides by the tokens a run actually saw per
language, so the realisation is exact rather than sampled: each stage holds a fixed
number of sequences per language (largest-remainder rounding), and only their order
is random. ``sequence_counts`` can therefore be computed arithmetically and always
equals the counts of the array ``sequence_languages`` produces.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from numbers import Real
from typing import Any

import numpy as np

from engine.errors import XlingError

SUM_TOLERANCE = 1e-6
"""How far (in percentage points) a column may miss 100: wide enough for 9 × 5.5555…%."""


class ScheduleError(XlingError, ValueError):
    """A schedule that cannot be realised; the message names the offending cell/stage."""


# --------------------------------------------------------------------------- formatting


def _num(value: float) -> str:
    """Enough digits to show *why* a sum is off (99.9999 must not print as 100)."""
    return f"{value:.10g}"


def _pct_label(value: float) -> str:
    """Short, paper-style percentage: whole numbers bare, otherwise at most 2 decimals."""
    rounded = round(value, 2)
    if rounded == int(rounded):
        return f"{int(rounded)}%"
    return f"{rounded:.2f}".rstrip("0").rstrip(".") + "%"


def _end_label(end: float) -> str:
    return _pct_label(end * 100)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


# --------------------------------------------------------------------------- validation


def _check_languages(languages: tuple[Any, ...]) -> None:
    if not languages:
        raise ScheduleError("a schedule needs at least one language")
    seen: set[str] = set()
    for i, name in enumerate(languages, start=1):
        if not isinstance(name, str) or not name.strip():
            raise ScheduleError(f"language {i} has an empty or non-string name ({name!r})")
        if name in seen:
            raise ScheduleError(f"language {name!r} appears more than once")
        seen.add(name)


def _check_ends(ends: tuple[Any, ...]) -> None:
    if not ends:
        raise ScheduleError("a schedule needs at least one stage (ends is empty)")
    previous = 0.0
    for s, end in enumerate(ends, start=1):
        if not _is_number(end) or not math.isfinite(end):
            raise ScheduleError(f"stage {s} ends at {end!r}, not a finite number")
        if not 0.0 < end <= 1.0:
            raise ScheduleError(f"stage {s} ends at {_num(end)}; stage ends are fractions of training in (0, 1]")
        if end <= previous:
            raise ScheduleError(
                f"stage ends must be strictly increasing: stage {s} ends at "
                f"{_end_label(end)} but stage {s - 1} already ends at {_end_label(previous)}"
            )
        previous = end
    if ends[-1] != 1.0:
        raise ScheduleError(
            f"the last stage (stage {len(ends)}) ends at {_num(ends[-1])}; it must end at 1.0 (100% of training)"
        )


def _check_shape(languages: tuple[str, ...], ends: tuple[float, ...], percents: tuple) -> None:
    if len(percents) != len(languages):
        raise ScheduleError(f"percents has {len(percents)} rows but there are {len(languages)} languages")
    for name, row in zip(languages, percents):
        if len(row) != len(ends):
            raise ScheduleError(f"{name} has {len(row)} cells but there are {len(ends)} stages (ends {list(ends)})")


def _check_cells(languages: tuple[str, ...], percents: tuple) -> None:
    for name, row in zip(languages, percents):
        for s, cell in enumerate(row, start=1):
            if not _is_number(cell):
                raise ScheduleError(f"{name} in stage {s} is {cell!r}, not a number")
            if not math.isfinite(cell):
                raise ScheduleError(f"{name} in stage {s} is {cell}, not a finite number")
            if cell < 0:
                raise ScheduleError(f"{name} in stage {s} is {_num(cell)}%; shares cannot be negative")


def _check_column_sums(languages: tuple[str, ...], ends: tuple[float, ...], percents: tuple) -> None:
    for s, end in enumerate(ends):
        column = [row[s] for row in percents]
        total = math.fsum(column)
        if abs(total - 100.0) <= SUM_TOLERANCE:
            continue
        terms = " + ".join(f"{n} {_num(c)}%" for n, c in zip(languages, column) if c != 0)
        raise ScheduleError(
            f"stage {s + 1} (ends at {_end_label(end)}) sums to {_num(total)}% ({terms or 'all 0%'}), not 100%"
        )


# --------------------------------------------------------------------------- rounding


def _largest_remainder(weights: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` sequences in proportion to ``weights`` so the parts sum to ``n`` exactly.

    Every part is within 1 of its exact quota. Leftover units go to the largest
    fractional parts; equal fractions favour the earlier language (stable order), and a
    zero-weight language never receives one, so a 0% cell really means none.
    """
    counts = np.zeros(len(weights), dtype=np.int64)
    if n == 0:
        return counts
    quotas = weights * n / weights.sum()
    floors = np.floor(quotas)
    fractions = quotas - floors
    # Float noise can leave an integral quota a hair below its value; snap it so the
    # remainder order reflects real fractions, not rounding error.
    eps = max(1e-9, n * 1e-14)
    near_next = fractions > 1.0 - eps
    floors[near_next] += 1
    fractions[near_next | (fractions < eps)] = 0.0
    counts[:] = floors.astype(np.int64)
    remainder = n - int(counts.sum())
    if remainder < 0 or remainder > int(np.count_nonzero(weights)):
        raise AssertionError(f"largest-remainder rounding went wrong: remainder {remainder}")
    if remainder:
        index = np.arange(len(weights))
        order = np.lexsort((index, -np.round(fractions, 9), weights == 0))
        counts[order[:remainder]] += 1
    return counts


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    """A language-by-stage grid of percentages; construct freely, ``validate`` to check.

    Construction does not validate, so an editor can hold a half-finished grid and
    show ``validate``'s message; ``from_mix``/``from_dict``/``monolingual`` validate,
    and every computing method validates before it trusts the grid.
    """

    languages: tuple[str, ...]
    ends: tuple[float, ...]
    percents: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        # Lists from JSON or callers become tuples so schedules hash and compare by value.
        object.__setattr__(self, "languages", tuple(self.languages))
        object.__setattr__(self, "ends", tuple(self.ends))
        object.__setattr__(self, "percents", tuple(tuple(row) for row in self.percents))

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_mix(cls, mix: Mapping[str, Sequence[float]], ends: Sequence[float] | None = None) -> Schedule:
        """Build from ``{language: [percent per stage]}``, the way experiments are written.

        Without ``ends`` the stages split training equally, which is what a list of
        percentages most naturally means.
        """
        if not mix:
            raise ScheduleError("a schedule needs at least one language")
        rows = {name: list(values) for name, values in mix.items()}
        if ends is None:
            lengths = {len(values) for values in rows.values()}
            if len(lengths) != 1:
                detail = ", ".join(f"{n} has {len(v)}" for n, v in rows.items())
                raise ScheduleError(f"languages have different numbers of stages ({detail})")
            stages = lengths.pop()
            ends = [(s + 1) / stages for s in range(stages)]
        schedule = cls(tuple(rows), tuple(ends), tuple(tuple(v) for v in rows.values()))
        schedule.validate()
        return schedule

    @classmethod
    def monolingual(cls, languages: Sequence[str], language: str) -> Schedule:
        """All training in ``language``; the others stay listed so indices line up."""
        languages = tuple(languages)
        if language not in languages:
            raise ScheduleError(f"{language!r} is not one of the languages {list(languages)}")
        percents = tuple((100.0,) if name == language else (0.0,) for name in languages)
        schedule = cls(languages, (1.0,), percents)
        schedule.validate()
        return schedule

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        """Inverse of ``to_dict``; validates, since the dict may come from a hand-edited file."""
        missing = [key for key in ("languages", "ends", "percents") if key not in data]
        if missing:
            raise ScheduleError(f"schedule dict is missing {', '.join(missing)}")
        schedule = cls(
            tuple(data["languages"]),
            tuple(data["ends"]),
            tuple(tuple(row) for row in data["percents"]),
        )
        schedule.validate()
        return schedule

    def to_dict(self) -> dict[str, Any]:
        return {
            "languages": list(self.languages),
            "ends": [float(e) for e in self.ends],
            "percents": [[float(c) for c in row] for row in self.percents],
        }

    # ---------------------------------------------------------------- checking

    def validate(self) -> None:
        """Raise ``ScheduleError`` describing the first problem found, structure first."""
        _check_languages(self.languages)
        _check_ends(self.ends)
        _check_shape(self.languages, self.ends, self.percents)
        _check_cells(self.languages, self.percents)
        _check_column_sums(self.languages, self.ends, self.percents)

    @cached_property
    def _weights(self) -> np.ndarray:
        """(languages, stages) float matrix, validated once per instance.

        Columns are used as weights relative to their own sum, so a column that is
        within tolerance of 100 still yields probabilities summing to 1.
        """
        self.validate()
        return np.asarray(self.percents, dtype=np.float64).reshape(len(self.languages), len(self.ends))

    @property
    def num_stages(self) -> int:
        return len(self.ends)

    def index(self, lang: str) -> int:
        try:
            return self.languages.index(lang)
        except ValueError:
            raise ScheduleError(f"{lang!r} is not one of the languages {list(self.languages)}") from None

    # ---------------------------------------------------------------- steps

    def stage_bounds(self, total_steps: int) -> list[tuple[int, int]]:
        """``[start, end)`` steps of each stage; stage ``s`` ends at ``round(ends[s] * total_steps)``.

        A stage shorter than half a step rounds to empty, which is allowed: it simply
        contributes no sequences.
        """
        _check_positive("total_steps", total_steps, allow_zero=True)
        _ = self._weights  # validates
        bounds: list[tuple[int, int]] = []
        start = 0
        for s, end in enumerate(self.ends):
            stop = total_steps if s == len(self.ends) - 1 else round(end * total_steps)
            stop = max(start, min(stop, total_steps))
            bounds.append((start, stop))
            start = stop
        return bounds

    def stage_of(self, step: int, total_steps: int) -> int:
        """Index of the stage that contains ``step`` (empty stages never contain one)."""
        _check_positive("total_steps", total_steps)
        if not 0 <= step < total_steps:
            raise ValueError(f"step {step} is outside [0, {total_steps})")
        stops = [stop for _, stop in self.stage_bounds(total_steps)]
        return bisect.bisect_right(stops, step)

    def probs(self, step: int, total_steps: int) -> tuple[float, ...]:
        """Probability of each language for a sequence at ``step``."""
        column = self._weights[:, self.stage_of(step, total_steps)]
        return tuple(float(p) for p in column / column.sum())

    # ---------------------------------------------------------------- exact counts

    def stage_sequence_counts(self, total_steps: int, batch_size: int) -> np.ndarray:
        """(languages, stages) int64 matrix of sequences per language per stage.

        This is the single definition of the rounding: ``sequence_counts`` sums it and
        ``sequence_languages`` shuffles exactly these labels, so the two cannot drift.
        """
        _check_positive("batch_size", batch_size)
        weights = self._weights
        counts = np.zeros(weights.shape, dtype=np.int64)
        for s, (start, stop) in enumerate(self.stage_bounds(total_steps)):
            counts[:, s] = _largest_remainder(weights[:, s], (stop - start) * batch_size)
        return counts

    def sequence_counts(self, total_steps: int, batch_size: int) -> list[int]:
        """Exact sequences per language over the run, without building the array."""
        counts = self.stage_sequence_counts(total_steps, batch_size).sum(axis=1)
        return [int(c) for c in counts]

    def marginal_tokens(self, total_steps: int, batch_size: int, seq_len: int) -> dict[str, int]:
        """Tokens per language the run will see: what token efficiency divides by."""
        _check_positive("seq_len", seq_len)
        counts = self.sequence_counts(total_steps, batch_size)
        return {name: count * seq_len for name, count in zip(self.languages, counts)}

    def marginal_fractions(self) -> dict[str, float]:
        """Share of training per language in the continuous limit (no step rounding)."""
        weights = self._weights
        lengths = np.diff(np.concatenate(([0.0], np.asarray(self.ends, dtype=np.float64))))
        shares = (weights / weights.sum(axis=0)) @ lengths
        return {name: float(share) for name, share in zip(self.languages, shares)}

    def sequence_languages(self, total_steps: int, batch_size: int, seed: int) -> np.ndarray:
        """Language index of every sequence, shape ``(total_steps, batch_size)``.

        Each stage's labels are exactly ``stage_sequence_counts`` and are shuffled with
        their own generator seeded by ``[seed, stage]``, so changing one stage (or the
        length of another) leaves the other stages' orders reproducible.
        """
        _check_positive("seed", seed, allow_zero=True)
        dtype = np.int8 if len(self.languages) <= np.iinfo(np.int8).max else np.int16
        if len(self.languages) > np.iinfo(np.int16).max:
            raise ScheduleError(f"too many languages ({len(self.languages)}) for int16 labels")
        counts = self.stage_sequence_counts(total_steps, batch_size)
        labels = np.arange(len(self.languages), dtype=dtype)
        out = np.empty((total_steps, batch_size), dtype=dtype)
        for s, (start, stop) in enumerate(self.stage_bounds(total_steps)):
            if stop == start:
                continue
            stage = np.repeat(labels, counts[:, s])
            np.random.default_rng([int(seed), s]).shuffle(stage)
            out[start:stop] = stage.reshape(stop - start, batch_size)
        return out

    # ---------------------------------------------------------------- display

    def label(self, lang: str) -> str:
        """Paper-style description of one language's share, e.g. ``90%↘10%``.

        Consecutive equal stages collapse, since a reader cares about the changes.
        """
        _ = self._weights  # validates
        row = self.percents[self.index(lang)]
        values: list[float] = []
        for value in row:
            if not values or abs(value - values[-1]) > SUM_TOLERANCE:
                values.append(float(value))
        parts = [_pct_label(values[0])]
        for prev, value in zip(values, values[1:]):
            parts.append(("↗" if value > prev else "↘") + _pct_label(value))
        return "".join(parts)

    def labels(self) -> dict[str, str]:
        return {name: self.label(name) for name in self.languages}

    def share_label(self, lang: str) -> str:
        """``label`` for a language the run trains on, ``—`` for one it never sees (a
        monolingual baseline's other languages): how tables write a run's shares."""
        return self.label(lang) if any(self.percents[self.index(lang)]) else "—"
