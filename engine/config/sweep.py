"""Sweeps: the axes of an experiment whose points are a curve of the paper.

The paper's findings are curves along axes (PPL and TEff against the imbalance ratio,
the token budget, the model size, the share of anchor tokens, the number of
languages). ``sweep.AXIS = [values]`` in an experiment asks for one point per
combination of the axes' values; ``engine.config.spec`` turns each point into the
experiment's settings with those values and expands its schedules and seeds as usual.
This module holds what a sweep is and the small pure pieces of that expansion
(point labels, generated languages and ratio schedules), without the experiment model.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The axes in the order a point's name lists them (`ratio=90 model=cpu-xs`).
AXES = ("ratio", "languages", "anchors", "model", "tokens")


class SweepConfig(BaseModel):
    """``sweep.ratio``, ``sweep.model``, ... : the values each axis takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio: list[float] | None = Field(
        None, min_length=1, description="main language's share in % (the others split the rest evenly)"
    )
    languages: list[int] | None = Field(None, min_length=1, description="number of cloned languages")
    anchors: list[float] | None = Field(None, min_length=1, description="data.anchors: fraction of shared ids")
    model: list[str] | None = Field(None, min_length=1, description="model presets")
    tokens: list[int] | None = Field(None, min_length=1, description="token budgets T")

    @field_validator("ratio")
    @classmethod
    def _percent(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(not 0 < r <= 100 for r in v):
            raise ValueError("a ratio is the main language's share in %, in (0, 100]")
        return _unique(v)

    @field_validator("languages")
    @classmethod
    def _at_least_two(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(n < 2 for n in v):
            raise ValueError("a point needs at least 2 languages")
        return _unique(v)

    @field_validator("anchors")
    @classmethod
    def _fraction(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(not 0 <= a <= 1 for a in v):
            raise ValueError("anchors are a fraction of the ids, in [0, 1]")
        return _unique(v)

    @field_validator("model")
    @classmethod
    def _known_presets(cls, v: list[str] | None) -> list[str] | None:
        from engine.config.presets import PRESET_NAMES

        for name in v or []:
            if name not in PRESET_NAMES:
                raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
        return _unique(v)

    @field_validator("tokens")
    @classmethod
    def _positive(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(t <= 0 for t in v):
            raise ValueError("token budgets must be > 0")
        return _unique(v)

    def axes(self) -> list[str]:
        """The axes this sweep varies, in naming order."""
        return [a for a in AXES if getattr(self, a) is not None]

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the axes' values, e.g. ``{'ratio': 90.0, 'model': 'cpu-xs'}``."""
        axes = self.axes()
        return [dict(zip(axes, values, strict=True)) for values in itertools.product(*(getattr(self, a) for a in axes))]


def _unique(values: list[Any] | None) -> list[Any] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("values must be unique")
    return values


def format_value(axis: str, value: Any) -> str:
    """A value as a point's name shows it: ``90``, ``0.1``, ``cpu-xs``, ``2.5M``."""
    if axis == "tokens":
        return format_tokens(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_tokens(tokens: float) -> str:
    """Paper-style token counts ("1.2B", "350M", "12k"): in run names, reports and marks."""
    if not math.isfinite(tokens):
        return "inf"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(tokens) >= scale:
            return f"{tokens / scale:.3g}{suffix}"
    return f"{tokens:.3g}"


def point_label(point: dict[str, Any], leave_out: tuple[str, ...] = ()) -> str:
    """``ratio=90 model=cpu-xs``: the point's coordinates, in naming order."""
    return " ".join(f"{axis}={format_value(axis, v)}" for axis, v in point.items() if axis not in leave_out)


def clone_names(first: str, n: int) -> list[str]:
    """``n`` cloned languages named after the experiment's first: EN1 -> EN1 ... ENn."""
    stem = re.sub(r"\d+$", "", first) or first
    return [f"{stem}{i}" for i in range(1, n + 1)]


def ratio_mix(languages: list[str], ratio: float) -> dict[str, list[float]]:
    """One stage: the first language at ``ratio`` %, the others sharing the rest evenly."""
    rest = (100.0 - ratio) / (len(languages) - 1)
    return {lang: [float(ratio) if i == 0 else rest] for i, lang in enumerate(languages)}


def uniform_mix(languages: list[str]) -> dict[str, list[float]]:
    """One stage, every language at the same share."""
    return {lang: [100.0 / len(languages)] for lang in languages}
