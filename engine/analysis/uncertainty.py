"""How sure a number is: intervals over seeds, a second error source folded in, paired differences.

A result of xling is rarely one number. Seeds of one configuration differ by chance
(at CPU scale ~15% in perplexity), and a TEff also inherits the error of the
monolingual law it is read from. This module turns per-seed values into the answers a
report shows, with pure numpy/scipy so the database, the CLI and the TUI share them.

Methods, chosen deliberately (docs/database.md says the same for users):

* **Across seeds** (``summarise``): a Student-t interval of the mean. Perplexity, TEff
  and MLTE are ratios (a run twice as good halves them), so they are summarised on the
  *log* scale: the centre is the geometric mean and the interval is ``exp(mean(log v)
  ± t·s/√n)``, never negative and symmetric in ratio. Similarities and accuracies are
  differences of bounded quantities, summarised on the linear scale and clipped to
  their range. With 2-5 seeds a bootstrap has too few points to resample; the t
  interval is exact for normal errors and, as the simulations in
  ``tests/test_uncertainty.py`` check, covers 95% for log-normal seed noise.
* **A second source of error** (``Spread``): a TEff's law is fitted once and shared by
  every seed, so its error does not shrink with seeds. It arrives as a standard error on
  the same scale (from the law's bootstrap, ``engine.analysis.scaling.bootstrap_law``)
  with its degrees of freedom; the two are added in variance and the t quantile uses
  the Welch-Satterthwaite degrees of freedom of the sum.
* **Paired by seed** (``paired_difference``): runs with the same seed share their data
  order and initialisation, so schedule A is compared with schedule B seed by seed:
  the interval is the t interval of the per-seed differences (on the log scale a ratio,
  shown as a % change), which removes the shared seed effect from the noise.
* **One seed**: no spread can be estimated, so the value is shown with ``n=1`` and no
  seed interval; a law's error, when there is one, is still shown (it is known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

LEVEL = 0.95
"""Every interval xling shows is a 95% interval."""

POWER = 0.80
"""``seeds_needed`` asks for the seeds that resolve a difference with this probability
(the usual sample-size convention), not the 50% at which it would just touch zero."""

WIDE = 2.0
"""An interval on the log scale whose ends differ by more than this factor cannot say
whether an effect is there at all (a TEff of 1.5 [0.9, 2.5] could be a loss or a gain):
it is flagged, not dropped."""

MAX_SEEDS = 1000
"""``seeds_needed`` gives up beyond this: such a difference is practically invisible."""

Scale = Literal["log", "linear"]


def t_quantile(df: float, level: float = LEVEL) -> float:
    """Two-sided Student-t critical value; the normal one for infinite df."""
    from scipy.stats import norm, t

    q = 0.5 + level / 2
    return float(norm.ppf(q)) if not math.isfinite(df) else float(t.ppf(q, df))


def _forward(values: np.ndarray, scale: Scale) -> np.ndarray:
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(values)
    return values


def _back(value: float, scale: Scale) -> float:
    return math.exp(value) if scale == "log" else value


def robust_se(replicates: Sequence[float] | np.ndarray) -> float:
    """A standard error from bootstrap replicates: half their central 68% range.

    It equals the standard deviation for a normal spread and ignores a few wild
    replicates (a refit that ran to a bound). Non-finite replicates (a law under which a
    perplexity is unreachable) count as infinitely far: when more than 16% are, the
    error is infinite and the interval unbounded, as it should be."""
    v = np.asarray(replicates, dtype=float).ravel()
    if v.size < 2:
        return math.inf
    v = np.sort(np.where(np.isfinite(v), v, np.inf))  # infinities last
    if not math.isfinite(v[math.ceil(0.84 * (v.size - 1))]):
        return math.inf
    finite = v[: math.ceil(0.84 * (v.size - 1)) + 1]  # every element the two quantiles touch
    lo, hi = (float(np.interp(q * (v.size - 1), np.arange(finite.size), finite)) for q in (0.16, 0.84))
    return (hi - lo) / 2


@dataclass(frozen=True)
class Spread:
    """An error that does not come from the seeds (the law's), on the analysis scale.

    ``se``: standard error (may be inf: unbounded); ``df``: its degrees of freedom
    (for a law: fitted points minus parameters)."""

    se: float
    df: float

    @classmethod
    def from_replicates(cls, replicates: Sequence[float] | np.ndarray, df: float) -> Spread:
        return cls(robust_se(replicates), df)


def replicate_spread(replicates: Sequence[Sequence[float]] | np.ndarray, df: float, scale: Scale = "log") -> Spread:
    """The law's error in a mean over seeds: ``replicates[b, i]`` is seed ``i``'s value
    under replicate law ``b``; the spread is that of the per-replicate means.

    A law's error is shared by every seed, so it does not average out over them; for a
    paired difference pass ``A / B`` replicate ratios (log scale), in which the part of
    the law's error the two schedules share cancels."""
    g = _forward(np.asarray(replicates, dtype=float), scale)
    with np.errstate(invalid="ignore"):
        means = g.mean(axis=1) if g.ndim == 2 else g
    return Spread.from_replicates(means, df)


def _combine(seed_se: float | None, seed_df: float, extra: Spread | None) -> tuple[float, float] | None:
    """(se, df) of a seed error plus an independent extra error (Welch-Satterthwaite)."""
    parts = [(seed_se, seed_df)] if seed_se is not None else []
    if extra is not None:
        if extra.df <= 0:
            return None  # the extra error exists but is unknown (a law through its points)
        parts.append((extra.se, extra.df))
    if not parts:
        return None
    if any(not math.isfinite(se) for se, _ in parts):
        return math.inf, 1.0
    var = sum(se**2 for se, _ in parts)
    if var == 0:
        return 0.0, math.inf
    denominator = sum(se**4 / df for se, df in parts if se > 0)
    return math.sqrt(var), (var**2 / denominator if denominator > 0 else math.inf)


@dataclass(frozen=True)
class Summary:
    """A measure over seeds: centre, 95% interval (None when it cannot be estimated), n.

    ``mean`` is on the natural scale: the geometric mean for ``scale == "log"``."""

    mean: float
    lo: float | None
    hi: float | None
    n: int
    scale: Scale

    @property
    def has_interval(self) -> bool:
        return self.lo is not None and self.hi is not None

    @property
    def wide(self) -> bool:
        """True when a log-scale interval spans more than ``WIDE``: too weak to answer."""
        if self.scale != "log" or not self.has_interval:
            return False
        assert self.lo is not None and self.hi is not None
        return self.lo <= 0 or not math.isfinite(self.hi) or self.hi / self.lo > WIDE

    def text(self, digits: int = 2, mark: str = "") -> str:
        """``2.08 [1.71, 2.53] n=3``; ``2.08 n=1`` without an interval; ``!`` after a wide one.

        ``mark`` goes before the number (">" extrapolated, "<" below the range)."""
        body = f"{mark}{_num(self.mean, digits)}"
        if self.has_interval:
            assert self.lo is not None and self.hi is not None
            body += f" [{_num(self.lo, digits)}, {_num(self.hi, digits)}]" + ("!" if self.wide else "")
        elif self.n >= 2:
            body += " [?]"  # seeds enough, but another error (the law's) is unknown
        return f"{body} n={self.n}"


def _num(v: float, digits: int) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def summarise(
    values: Sequence[float],
    scale: Scale = "linear",
    extra: Spread | None = None,
    bounds: tuple[float, float] | None = None,
    level: float = LEVEL,
) -> Summary:
    """The seeds' mean with a t interval (see the module docstring), ``extra`` folded in.

    ``bounds`` clips a linear interval to the measure's range (a cosine cannot exceed 1).
    One value gives no seed interval; with ``extra`` it still gets that error's."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        raise ValueError("a summary needs at least one value")
    if scale == "log" and np.any(v <= 0):
        raise ValueError(f"log-scale values must be positive, got {v.tolist()}")
    g = _forward(v, scale)
    centre = float(np.mean(g))
    n = int(v.size)
    if not np.all(np.isfinite(g)):  # a law asked far outside its range answers "infinitely many tokens"
        return Summary(_back(centre, scale), None, None, n, scale)
    seed_se = float(np.std(g, ddof=1) / math.sqrt(n)) if n >= 2 else None
    combined = _combine(seed_se, n - 1, extra)
    if combined is None:
        return Summary(_back(centre, scale), None, None, n, scale)
    se, df = combined
    half = t_quantile(df, level) * se if se > 0 else 0.0
    lo, hi = _back(centre - half, scale), _back(centre + half, scale)
    if bounds is not None and scale == "linear":
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Summary(_back(centre, scale), lo, hi, n, scale)


def law_interval(
    point: float | None, replicates: Sequence[float] | np.ndarray, df: float, level: float = LEVEL
) -> tuple[float | None, float | None]:
    """A positive quantity read from a fitted law (MLTE, MLPE, TEff), with the law's error:
    ``exp(log point ± t_df · se)``, se from the bootstrap replicates (log scale).

    Returns ``(lo, hi)``, or ``(None, None)`` when the law's error is unknown (as many
    points as parameters, ``df <= 0``) or the point is not a positive number."""
    if df <= 0 or point is None or not (point > 0 and math.isfinite(point)):
        return None, None
    se = robust_se(_forward(np.asarray(replicates, dtype=float), "log"))
    if not math.isfinite(se):
        return 0.0, math.inf
    half = t_quantile(df, level) * se
    centre = math.log(point)
    return math.exp(centre - half), math.exp(centre + half)


# --------------------------------------------------------------------------- paired


@dataclass(frozen=True)
class PairedDifference:
    """A minus B, seed by seed, on the analysis scale (log: ``log(A/B)``).

    ``lo``/``hi`` is the 95% interval (None when it cannot be estimated: one pair and no
    other error); ``sd`` the spread of the per-seed differences; ``seeds_needed`` the
    number of seeds that would resolve the observed difference at the observed spread
    (None when none would: no difference, or an extra error larger than it)."""

    mean: float
    lo: float | None
    hi: float | None
    n: int
    scale: Scale
    sd: float | None
    seeds_needed: int | None

    @property
    def resolved(self) -> bool:
        """The interval excludes zero: A and B differ at this number of seeds."""
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)

    def direction(self) -> int:
        """+1 when A is resolved higher than B, -1 lower, 0 not distinguishable."""
        if not self.resolved:
            return 0
        return 1 if self.mean > 0 else -1

    def text(self, digits: int = 2) -> str:
        """``-12.3% [-20.1%, -3.5%]`` on the log scale, ``+0.120 [+0.050, +0.190]`` on the linear one."""
        if self.scale == "log":
            cell = _percent(self.mean)
            if self.lo is not None and self.hi is not None:
                cell += f" [{_percent(self.lo)}, {_percent(self.hi)}]"
            return cell
        cell = f"{self.mean:+.{digits}f}"
        if self.lo is not None and self.hi is not None:
            cell += f" [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"
        return cell


def _percent(log_ratio: float) -> str:
    if not math.isfinite(log_ratio):
        return "+inf%" if log_ratio > 0 else "-100%"
    return f"{math.expm1(log_ratio) * 100:+.1f}%"


def paired_difference(
    a: Mapping[int, float],
    b: Mapping[int, float],
    scale: Scale = "linear",
    extra: Spread | None = None,
    level: float = LEVEL,
) -> PairedDifference:
    """A minus B over the seeds both have (``{seed: value}``), with a t interval.

    ``extra`` is an error the pairing does not remove, already on the difference's
    scale (a TEff difference's share of the law's error). Raises ValueError without a
    common seed: unpaired runs are not compared here."""
    seeds = sorted(s for s in a if s in b and a[s] is not None and b[s] is not None)
    if not seeds:
        raise ValueError("no seed in common: a paired comparison needs runs with the same seeds")
    av = _forward(np.asarray([a[s] for s in seeds], dtype=float), scale)
    bv = _forward(np.asarray([b[s] for s in seeds], dtype=float), scale)
    d = av - bv
    n = int(d.size)
    mean = float(np.mean(d))
    sd = float(np.std(d, ddof=1)) if n >= 2 and np.all(np.isfinite(d)) else None
    combined = _combine(sd / math.sqrt(n) if sd is not None else None, n - 1, extra)
    lo = hi = None
    if combined is not None and sd is not None:  # one pair: no spread, no verdict
        se, df = combined
        half = t_quantile(df, level) * se if se > 0 else 0.0
        lo, hi = mean - half, mean + half
    return PairedDifference(mean, lo, hi, n, scale, sd, seeds_needed(mean, sd, extra, level))


def seeds_needed(mean: float, sd: float | None, extra: Spread | None = None, level: float = LEVEL) -> int | None:
    """Seeds at which a paired difference ``mean`` with per-seed spread ``sd`` is resolved
    with probability ``POWER`` (``√n·|mean| / se ≥ t_level + t_power``), the extra
    error held as it is. None when no number of seeds would do (or nothing is known)."""
    if sd is None or not math.isfinite(mean) or mean == 0:
        return None
    if extra is not None and not (extra.df > 0 and math.isfinite(extra.se)):
        return None

    def enough(n: int) -> bool:
        combined = _combine(sd / math.sqrt(n), n - 1, extra)
        assert combined is not None
        se, df = combined
        return se == 0 or abs(mean) >= (t_quantile(df, level) + t_quantile(df, 2 * POWER - 1)) * se

    if not enough(MAX_SEEDS):
        return None
    lo, hi = 2, MAX_SEEDS  # more seeds never hurt: the first n that is enough, by bisection
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return lo
