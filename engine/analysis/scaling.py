"""The monolingual scaling law and token efficiency (Schäfer et al. 2024, App. B).

Per (model preset, language) the monolingual baseline runs, trained on fractions
``x = tokens / T`` of the experiment's budget ``T``, give a curve of perplexity
against tokens. A multilingual run whose language A reached ``PPL_A`` after seeing
``t_A`` tokens of A is then compared with it:

* ``MLTE(PPL)``: the tokens a monolingual model needs to reach ``PPL``;
* ``MLPE(t)``: the perplexity a monolingual model reaches on ``t`` tokens;
* ``TEff_A = MLTE(PPL_A) / t_A``: > 1 means the other languages were worth tokens of A.

Two forms of the law are offered, because the paper's does not always fit:

``form="paper"``
    ``1/PPL = c - a·x^(-b)``, fitted like the paper with ``curve_fit`` on ``1/PPL`` in
    linear space. It has an asymptote, ``PPL -> 1/c``, so a perplexity at or below
    ``1/c`` has no MLTE at all. At CPU scale it degenerated for us: when ``1/PPL`` is
    convex in ``log x`` (it often is over a short token range) the form cannot bend
    that way and the optimiser runs to ``b -> 0, a, c -> large``, i.e. a logarithm,
    with fitted perplexities off by 10-90%. We therefore start from several points,
    bound the parameters, pick the candidate with the smallest residual sum of squares
    in *log PPL* (relative error is what a reader of a perplexity table cares about),
    and say in ``warnings`` when the result sits on a bound, interpolates exactly, fits
    badly, or is beaten by the 2-parameter power law.

``form="power"``
    ``PPL = k·x^(-b)``, a straight line in log-log space fitted by least squares on
    ``log PPL``. No asymptote, so every perplexity has an MLTE. (It is *not* the paper
    form with ``c = 0``: that would make ``1/PPL`` negative; its formulas are its own.)

Answers outside the fitted token range are extrapolations and answers beyond the
asymptote are impossible; both are carried in ``Estimate.status`` and shown by
``Estimate.mark``, never silently returned as plain numbers.

A law fitted on a handful of baselines has an error of its own, which every TEff
inherits: ``bootstrap_law`` refits it to its residual-resampled baselines (all seeds)
and ``LawBootstrap`` answers MLTE, MLPE and TEff under each replicate, from which
``engine.analysis.uncertainty`` makes intervals.

scipy is imported only when fitting, so loading stored laws (``from_dict``) and
evaluating them stays light for the front ends.
"""

from __future__ import annotations

import math
import warnings as pywarnings  # the name `warnings` is ScalingLaw's field
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import XlingError

FORMS = ("paper", "power")
PARAM_NAMES: dict[str, tuple[str, ...]] = {"paper": ("a", "b", "c"), "power": ("k", "b")}
MIN_POINTS = {"paper": 3, "power": 2}
STATUSES = ("inside", "above", "below", "impossible")

B_BOUNDS = (1e-3, 5.0)
"""Exponent bounds for both forms. ``b > 0`` is what makes perplexity fall with tokens
(``b <= 0`` would make MLTE meaningless); the floor is a small positive number rather
than 0 because ``b -> 0`` is exactly the degenerate logarithmic limit, and we want the
fit to *land on a bound we can warn about* instead of drifting to 1e-5 unnoticed.
Above 5 the whole improvement would happen between two neighbouring baselines: a
step, not a scaling law; published LM exponents are ~0.05-1."""

C_BOUNDS = (0.0, 1.0)
"""``c`` is 1/PPL at infinitely many tokens. Perplexity is exp(cross-entropy) >= 1, so
``1/PPL <= 1`` and the asymptote ``1/c`` cannot lie below 1; ``c < 0`` has no meaning.
The ceiling also stops the degenerate ``a, c -> infinity`` drift: a fit that ends with
``c = 1`` (asymptotic PPL of 1) is flagged."""

A_MIN = 1e-12
"""``a > 0`` (else the law is flat and MLTE divides by zero); strictly positive so the
formulas stay finite even for a fit that collapses onto the bound."""

POOR_FIT = 0.10
"""Largest |log PPL residual| (~10% in PPL) before a fit is called poor in warnings."""

RANGE_RTOL = 1e-9
"""Relative slack when asking "is this inside the fitted range?", so that the law's own
answer at the largest baseline (round-off included) counts as inside."""

DEGENERATE_SPREAD = 0.1
"""If ``b·ln(x_max/x_min)`` is below this, ``x^-b`` changes by < ~10% across the baselines:
only ``a·b`` is identified and the fit is the logarithmic limit even when no bound is hit."""

BOUND_RTOL = 1e-2
"""How close (relative) to a bound a parameter must be to count as 'at the bound'."""


class ScalingError(XlingError, ValueError):
    """A scaling law that cannot be fitted or used; ``str()`` says what to change."""


# --------------------------------------------------------------------------- estimates

Formatter = str | Callable[[float], str]


def _format(value: float, fmt: Formatter) -> str:
    return fmt(value) if callable(fmt) else fmt.format(value)


def format_tokens(tokens: float) -> str:
    """Paper-style token counts ("1.2B", "350M", "12k") for ``Estimate.mark(fmt=...)``."""
    if not math.isfinite(tokens):
        return "inf"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(tokens) >= scale:
            return f"{tokens / scale:.3g}{suffix}"
    return f"{tokens:.3g}"


@dataclass(frozen=True)
class Estimate:
    """One answer of a scaling law, with how far it can be trusted.

    ``value``: the law's answer (extrapolated when ``status`` is "above"/"below"; may
    be ``inf`` where the law diverges); ``None`` only when ``status == "impossible"``.

    ``status``: "inside" the fitted token range; "above" the largest or "below" the
    smallest fitted token count (for MLTE/TEff: the *answer* in tokens lies there; for
    MLPE: the *question's* tokens do); "impossible": the perplexity is at or below the
    paper form's asymptote ``1/c``, which no amount of monolingual data reaches.

    ``edge``: for extrapolations, the same quantity at the nearest edge of the fitted
    token range (MLTE: that token count; TEff: it divided by the run's tokens; MLPE:
    the law's PPL there).

    Mark convention (``mark``): inside -> the value ("1.23"). Extrapolated -> the edge
    value with the side on which the extrapolated value lies, ">1.2B" / "<0.85", like
    the paper's ">1B". The bound relies only on the law being monotone, which both
    forms are, whereas the extrapolated number depends on trusting the law's shape
    where no baseline was run, so it is kept in ``value`` for whoever wants it but
    never printed as if it were measured. Impossible -> "n/a (below asymptote)".
    """

    value: float | None
    status: str
    edge: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ScalingError(f"unknown estimate status {self.status!r}; one of {STATUSES}")
        if (self.value is None) != (self.status == "impossible"):
            raise ScalingError("an estimate has no value exactly when it is impossible")
        if self.extrapolated and self.edge is None:
            raise ScalingError("an extrapolated estimate needs the value at the range's edge")

    @property
    def extrapolated(self) -> bool:
        return self.status in ("above", "below")

    def mark(self, fmt: Formatter = "{:.2f}") -> str:
        """The estimate for a table cell; see the class docstring for the convention."""
        if self.value is None:
            return "n/a (below asymptote)"
        if not self.extrapolated:
            return _format(self.value, fmt)
        assert self.edge is not None
        side = ">" if self.value > self.edge else "<"
        return side + _format(self.edge, fmt)


# --------------------------------------------------------------------------- the law


def _pow(base: float, exponent: float) -> float:
    """``base ** exponent`` that overflows to inf instead of raising: a steep law asked
    far outside its range answers "astronomically many tokens", not a traceback."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ScalingError(f"{name} must be a positive finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class ScalingLaw:
    """A fitted monolingual scaling law; see the module docstring for the two forms.

    ``tokens``/``ppl`` are the fitted points (input order, repeats kept), ``residuals``
    are ``log(PPL_fit) - log(PPL_observed)`` per point, so a reader can always see how
    well the law describes the baselines it claims to summarise.
    """

    form: str
    params: dict[str, float]
    budget: float
    tokens: tuple[float, ...]
    ppl: tuple[float, ...]
    residuals: tuple[float, ...]
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ScalingError(f"unknown scaling-law form {self.form!r}; use one of {FORMS}")
        names = PARAM_NAMES[self.form]
        if set(self.params) != set(names):
            raise ScalingError(f"the {self.form} form has parameters {names}, got {tuple(self.params)}")
        _positive("budget", self.budget)
        if not self.tokens or not (len(self.tokens) == len(self.ppl) == len(self.residuals)):
            raise ScalingError("tokens, ppl and residuals must be non-empty and of equal length")

    # -- evaluation ---------------------------------------------------------------

    @property
    def token_range(self) -> tuple[float, float]:
        return (min(self.tokens), max(self.tokens))

    def asymptote(self) -> float | None:
        """The lowest perplexity the law allows (1/c), or None where it has none."""
        if self.form == "power":
            return None
        c = self.params["c"]
        return 1.0 / c if c > 0 else math.inf

    def _ppl_at(self, tokens: float) -> float:
        """The law's PPL at ``tokens`` (inf where the paper form's 1/PPL is <= 0)."""
        x = tokens / self.budget
        p = self.params
        if self.form == "power":
            return p["k"] * _pow(x, -p["b"])
        inverse = p["c"] - p["a"] * _pow(x, -p["b"])
        return 1.0 / inverse if inverse > 0 else math.inf

    def _tokens_for(self, ppl: float) -> float | None:
        """Inverse of ``_ppl_at``; None when the paper form never gets that low."""
        p = self.params
        if self.form == "power":
            return self.budget * _pow(ppl / p["k"], -1.0 / p["b"])
        gap = p["c"] - 1.0 / ppl
        if gap <= 0:
            return None
        return self.budget * _pow(gap / p["a"], -1.0 / p["b"])

    def _side(self, tokens: float) -> str:
        lo, hi = self.token_range
        if tokens > hi * (1 + RANGE_RTOL):
            return "above"
        if tokens < lo * (1 - RANGE_RTOL):
            return "below"
        return "inside"

    def _edge_tokens(self, side: str) -> float | None:
        lo, hi = self.token_range
        return {"above": hi, "below": lo}.get(side)

    def mlpe(self, tokens: float) -> Estimate:
        """Monolingual-equivalent perplexity: the PPL a monolingual run reaches on ``tokens``."""
        tokens = _positive("tokens", tokens)
        side = self._side(tokens)
        edge = self._edge_tokens(side)
        return Estimate(self._ppl_at(tokens), side, None if edge is None else self._ppl_at(edge))

    def mlte(self, ppl: float) -> Estimate:
        """Monolingual token equivalent: the tokens a monolingual run needs to reach ``ppl``."""
        ppl = _positive("ppl", ppl)
        tokens = self._tokens_for(ppl)
        if tokens is None:
            return Estimate(None, "impossible")
        side = self._side(tokens)
        return Estimate(tokens, side, self._edge_tokens(side))

    def teff(self, ppl: float, tokens: float) -> Estimate:
        """Token efficiency MLTE(ppl)/tokens of a run that saw ``tokens`` of the language;
        trusted exactly as far as the MLTE it divides."""
        tokens = _positive("tokens", tokens)
        equivalent = self.mlte(ppl)
        if equivalent.value is None:
            return equivalent
        edge = None if equivalent.edge is None else equivalent.edge / tokens
        return Estimate(equivalent.value / tokens, equivalent.status, edge)

    def curve(self, n: int = 50, lo: float | None = None, hi: float | None = None) -> list[tuple[float, float]]:
        """``(tokens, ppl)`` on ``n`` log-spaced token counts, the fitted range by default.

        Points where the paper form diverges (1/PPL <= 0, tiny token counts) are left
        out rather than plotted as inf."""
        if n < 2:
            raise ScalingError(f"a curve needs at least 2 points, got {n}")
        low, high = self.token_range
        low = _positive("lo", low if lo is None else lo)
        high = _positive("hi", high if hi is None else hi)
        points = [(float(t), self._ppl_at(float(t))) for t in np.geomspace(low, high, n)]
        return [(t, p) for t, p in points if math.isfinite(p)]

    # -- storage -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (for DuckDB JSON columns); ``from_dict`` inverts it."""
        return {
            "form": self.form,
            "params": {name: float(self.params[name]) for name in PARAM_NAMES[self.form]},
            "budget": float(self.budget),
            "tokens": [float(t) for t in self.tokens],
            "ppl": [float(p) for p in self.ppl],
            "residuals": [float(r) for r in self.residuals],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScalingLaw:
        try:
            return cls(
                form=str(d["form"]),
                params={str(k): float(v) for k, v in d["params"].items()},
                budget=float(d["budget"]),
                tokens=tuple(float(t) for t in d["tokens"]),
                ppl=tuple(float(p) for p in d["ppl"]),
                residuals=tuple(float(r) for r in d["residuals"]),
                warnings=tuple(str(w) for w in d.get("warnings", ())),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ScalingError(f"not a stored scaling law ({exc!r}): {dict(d)!r}") from exc


# --------------------------------------------------------------------------- fitting


def _validate_points(tokens: Sequence[float], ppl: Sequence[float], form: str) -> tuple[np.ndarray, np.ndarray]:
    if form not in FORMS:
        raise ScalingError(f"unknown scaling-law form {form!r}; use one of {FORMS}")
    t = np.asarray(tokens, dtype=float).ravel()
    p = np.asarray(ppl, dtype=float).ravel()
    if t.shape != p.shape:
        raise ScalingError(f"got {t.size} token counts but {p.size} perplexities")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ScalingError(f"token counts must be positive and finite, got {t.tolist()}")
    if not (np.all(np.isfinite(p)) and np.all(p >= 1)):
        raise ScalingError(f"perplexities must be finite and >= 1 (exp of a cross-entropy), got {p.tolist()}")
    distinct = np.unique(t).size
    need = MIN_POINTS[form]
    if distinct < need:
        raise ScalingError(
            f"the scaling law ({form} form) needs at least {need} monolingual runs with different "
            f"token counts; got {distinct} (add baselines = [...] fractions to the experiment)"
        )
    return t, p


def _paper_ppl(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    inverse = c - a * x ** (-b)
    with np.errstate(divide="ignore"):
        return np.where(inverse > 0, 1.0 / np.where(inverse > 0, inverse, 1.0), np.inf)


def _log_rss(fitted: np.ndarray, ppl: np.ndarray) -> float:
    if not np.all(np.isfinite(fitted)):
        return math.inf
    return float(np.sum((np.log(fitted) - np.log(ppl)) ** 2))


def _power_params(x: np.ndarray, ppl: np.ndarray) -> tuple[float, float, bool]:
    """Least squares of ``log PPL = log k - b log x`` with ``b`` kept in ``B_BOUNDS``.

    The objective is a convex quadratic in ``(log k, b)``, so if the free optimum's ``b``
    is out of bounds the constrained optimum has ``b`` on the bound and ``log k`` refitted;
    returns ``(k, b, clipped)``."""
    u, v = np.log(x), np.log(ppl)
    slope, intercept = np.polyfit(u, v, 1)
    b = -float(slope)
    clipped = not (B_BOUNDS[0] <= b <= B_BOUNDS[1])
    if clipped:
        b = min(max(b, B_BOUNDS[0]), B_BOUNDS[1])
        intercept = float(np.mean(v + b * u))
    return math.exp(intercept), b, clipped


def _projection_start(x: np.ndarray, y: np.ndarray, b: float) -> tuple[float, tuple[float, float, float]] | None:
    """For fixed ``b`` the paper form is linear in ``(c, a)``; solve it exactly.

    Scanning ``b`` this way (variable projection) finds the basin of the linear-space
    optimum without any guess, which is what a single-start ``curve_fit`` lacks.
    Returns ``(linear rss, (a, b, c))`` or None when the solution breaks the bounds."""
    z = x ** (-b)
    design = np.column_stack([np.ones_like(z), -z])
    (c, a), *_ = np.linalg.lstsq(design, y, rcond=None)
    if not (a > A_MIN and C_BOUNDS[0] < c < C_BOUNDS[1]):
        return None
    return float(np.sum((y - (c - a * z)) ** 2)), (float(a), b, float(c))


def _loglog_start(x: np.ndarray, ppl: np.ndarray) -> tuple[float, float, float]:
    """A paper-form start matched to the pure power law at the data's geometric centre
    ``x0``: same level and slope of 1/PPL there, exponent ``b`` = the power law's, which
    forces ``a·x0^(-b) = y0`` and ``c = 2·y0`` (asymptote at half the central PPL)."""
    k, b, _ = _power_params(x, ppl)
    x0 = float(np.exp(np.mean(np.log(x))))
    y0 = 1.0 / (k * x0 ** (-b))
    return y0 * x0**b, b, min(2 * y0, 0.999)


def _paper_starts(x: np.ndarray, y: np.ndarray, ppl: np.ndarray) -> list[tuple[float, float, float]]:
    scanned = [s for b in np.geomspace(B_BOUNDS[0], B_BOUNDS[1], 40) if (s := _projection_start(x, y, float(b)))]
    scanned.sort(key=lambda s: s[0])
    starts = [params for _, params in scanned[:3]]
    starts.append(_loglog_start(x, ppl))
    starts.append((0.5 * float(np.max(y)), 0.5, min(1.5 * float(np.max(y)), 0.999)))
    return starts


def _inside(value: float, low: float, high: float) -> float:
    """curve_fit rejects starts on or outside the bounds; nudge them just inside."""
    span = (high - low) if math.isfinite(high) else abs(value) + 1.0
    return min(max(value, low + 1e-6 * span), high - 1e-6 * span if math.isfinite(high) else math.inf)


def _fit_paper_params(x: np.ndarray, ppl: np.ndarray) -> tuple[float, float, float]:
    """Multi-start bounded ``curve_fit`` on 1/PPL (the paper's objective), best by log RSS.

    1/PPL is rescaled to a maximum of 1 during the fit so that the solver's tolerances
    mean the same for a PPL of 20 as for one of 2000."""
    from scipy.optimize import OptimizeWarning, curve_fit

    y = 1.0 / ppl
    scale = float(np.max(y))
    lower = (A_MIN / scale, B_BOUNDS[0], C_BOUNDS[0] / scale)
    upper = (math.inf, B_BOUNDS[1], C_BOUNDS[1] / scale)

    def model(xs: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return c - a * xs ** (-b)

    best: tuple[float, tuple[float, float, float]] | None = None
    for a0, b0, c0 in _paper_starts(x, y, ppl):
        p0 = [_inside(v, lo, hi) for v, lo, hi in zip((a0 / scale, b0, c0 / scale), lower, upper)]
        try:
            with pywarnings.catch_warnings():  # we never use the covariance it complains about
                pywarnings.simplefilter("ignore", OptimizeWarning)
                popt, _ = curve_fit(model, x, y / scale, p0=p0, bounds=(lower, upper), method="trf", maxfev=20_000)
        except (RuntimeError, ValueError):
            continue
        params = (float(popt[0]) * scale, float(popt[1]), float(popt[2]) * scale)
        rss = _log_rss(_paper_ppl(x, *params), ppl)
        if best is None or rss < best[0]:
            best = (rss, params)
    if best is None or not math.isfinite(best[0]):
        raise ScalingError(
            "the paper-form scaling law could not be fitted to these baselines "
            f"(tokens/T = {x.tolist()}, PPL = {ppl.tolist()}); try form='power'"
        )
    return best[1]


def _near(value: float, bound: float) -> bool:
    return abs(value - bound) <= BOUND_RTOL * max(abs(bound), 1e-12)


def _paper_warnings(params: dict[str, float], residuals: np.ndarray, x: np.ndarray, ppl: np.ndarray) -> list[str]:
    """Bound hits and degeneracy, each with what it means for this form, and whether the
    simpler power law would have done better (a 3-parameter law that loses to a
    2-parameter one is describing its bounds, not the data)."""
    a, b, c = params["a"], params["b"], params["c"]
    notes = []
    spread = b * math.log(float(np.max(x)) / float(np.min(x)))
    if _near(b, B_BOUNDS[0]) or spread < DEGENERATE_SPREAD:
        notes.append(
            f"degenerate fit (a={a:.3g}, b={b:.3g}, c={c:.3g}): x^-b hardly varies over the baselines, so "
            "the law has collapsed towards a logarithm and a, c and the asymptote 1/c mean nothing; "
            "this happens when 1/PPL is convex in log tokens, which c - a·x^-b cannot follow; "
            "consider form='power'"
        )
    if _near(c, C_BOUNDS[1]):
        notes.append(
            f"c={c:.3g} is at its upper bound {C_BOUNDS[1]} (asymptotic PPL 1): the optimiser wanted an "
            "asymptote below any possible perplexity, so a, c and MLTE near the asymptote are not trustworthy"
        )
    if _near(b, B_BOUNDS[1]):
        notes.append(f"b={b:.3g} is at its upper bound {B_BOUNDS[1]}: the curve is a step, not a power law")
    if c <= C_BOUNDS[0] + 1e-12:
        notes.append("c is at its lower bound 0: the law has no usable asymptote")
    if _near(a, A_MIN):
        notes.append("a is at its lower bound: the law is flat, perplexity does not depend on tokens")
    k, b_power, _ = _power_params(x, ppl)
    power_rss = float(np.sum((np.log(k) - b_power * np.log(x) - np.log(ppl)) ** 2))
    if float(np.max(np.abs(residuals))) > 0.02 and float(np.sum(residuals**2)) > power_rss:
        notes.append(
            "the 2-parameter power law fits these baselines better in log PPL "
            f"(RSS {power_rss:.3g} vs {float(np.sum(residuals**2)):.3g}); consider form='power'"
        )
    return notes


def _common_warnings(form: str, residuals: np.ndarray, distinct: int) -> list[str]:
    notes = []
    n_params = len(PARAM_NAMES[form])
    if distinct == n_params:
        notes.append(
            f"{distinct} distinct token counts for {n_params} parameters: the law passes through "
            "them exactly and the residuals say nothing about its quality (4+ baselines recommended)"
        )
    worst = float(np.max(np.abs(residuals)))
    if worst > POOR_FIT:
        notes.append(
            f"poor fit: the worst baseline is off by {math.expm1(worst):.0%} in PPL (|log residual| {worst:.3f})"
        )
    return notes


def fit_scaling_law(
    tokens: Sequence[float],
    ppl: Sequence[float],
    budget: float | None = None,
    form: str = "paper",
) -> ScalingLaw:
    """Fit the monolingual scaling law of one (model preset, language).

    ``tokens``/``ppl``: one entry per baseline run; several seeds at the same token count
    are all used (they weigh that count more, as they should). ``budget``: the
    experiment's token budget T (x = tokens/T); defaults to the largest token count.
    Raises ScalingError with what to add when there are too few distinct token counts.
    """
    t, p = _validate_points(tokens, ppl, form)
    budget = float(np.max(t)) if budget is None else _positive("budget", budget)
    x = t / budget
    notes: list[str] = []
    if form == "power":
        k, b, clipped = _power_params(x, p)
        params = {"k": k, "b": b}
        fitted = k * x ** (-b)
        if clipped:
            notes.append(f"b clipped to {b:.3g} (bounds {B_BOUNDS}): perplexity barely or never falls with tokens")
    else:
        a, b, c = _fit_paper_params(x, p)
        params = {"a": a, "b": b, "c": c}
        fitted = _paper_ppl(x, a, b, c)
    residuals = np.log(fitted) - np.log(p)
    if form == "paper":
        notes.extend(_paper_warnings(params, residuals, x, p))
    notes.extend(_common_warnings(form, residuals, int(np.unique(t).size)))
    return ScalingLaw(
        form=form,
        params=params,
        budget=budget,
        tokens=tuple(float(v) for v in t),
        ppl=tuple(float(v) for v in p),
        residuals=tuple(float(r) for r in residuals),
        warnings=tuple(notes),
    )


# --------------------------------------------------------------------------- the law's error

BOOTSTRAP_REPLICATES = 200
"""Enough for a standard error to ~5% (what an interval needs); all replicates are refitted
at once with numpy, in milliseconds, so every refresh of the results can afford them."""

PAPER_B_GRID = 400
"""Exponents scanned per paper-form refit (log-spaced over ``B_BOUNDS``, then refined by a
parabola): ~2% apart, far finer than the spread of b between replicates."""


def _params_matrix(form: str, params: Sequence[Mapping[str, float]] | np.ndarray) -> np.ndarray:
    if isinstance(params, np.ndarray):
        return params.reshape(-1, len(PARAM_NAMES[form]))
    return np.array([[p[name] for name in PARAM_NAMES[form]] for p in params], dtype=float).reshape(
        -1, len(PARAM_NAMES[form])
    )


def _ppl_many(form: str, P: np.ndarray, budget: float, tokens: float) -> np.ndarray:
    """The PPL each law (a row of ``P``) gives at ``tokens``; inf where it diverges."""
    x = tokens / budget
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if form == "power":
            return P[:, 0] * x ** (-P[:, 1])
        inverse = P[:, 2] - P[:, 0] * x ** (-P[:, 1])
        return np.where(inverse > 0, 1.0 / np.where(inverse > 0, inverse, 1.0), np.inf)


def _tokens_many(form: str, P: np.ndarray, budget: float, ppl: float) -> np.ndarray:
    """The tokens each law needs for ``ppl``; inf where it never gets there (the asymptote)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if form == "power":
            return budget * (ppl / P[:, 0]) ** (-1.0 / P[:, 1])
        gap = P[:, 2] - 1.0 / ppl
        out = budget * (np.where(gap > 0, gap, 1.0) / P[:, 0]) ** (-1.0 / P[:, 1])
        return np.where(gap > 0, out, np.inf)


@dataclass(frozen=True)
class LawBootstrap:
    """The law refitted to its own baselines, resampled: its error, as replicate laws.

    Residual bootstrap (the baselines' token counts are chosen, not random, so they are
    kept): each replicate adds the fit's log-PPL residuals, drawn with replacement over
    every baseline run, seeds included, to the fitted curve and refits. Residuals are
    scaled by ``sqrt(n / (n - p))`` so their spread is that of the runs' noise, not of a
    fit that has already used ``p`` degrees of freedom to follow them; ``df = n - p`` is
    what an interval's t quantile needs (4 runs and 2 parameters: t = 4.3, not 1.96).

    It depends only on the points a law is fitted on (not on an experiment), so a law
    pooled from several experiments gets its error the same way. ``df == 0`` (as many
    runs as parameters: the law passes through them) means the error is unknown.
    """

    form: str
    budget: float
    params: tuple[tuple[float, ...], ...]  # one row per replicate, in PARAM_NAMES order
    df: int
    tried: int

    @property
    def matrix(self) -> np.ndarray:
        return _params_matrix(self.form, np.asarray(self.params, dtype=float))

    def mlpe(self, tokens: float) -> np.ndarray:
        """Each replicate law's PPL at ``tokens``."""
        return _ppl_many(self.form, self.matrix, self.budget, _positive("tokens", tokens))

    def mlte(self, ppl: float) -> np.ndarray:
        """Each replicate law's tokens for ``ppl`` (inf where it is below that law's asymptote)."""
        return _tokens_many(self.form, self.matrix, self.budget, _positive("ppl", ppl))

    def teff(self, ppl: float, tokens: float) -> np.ndarray:
        """Each replicate law's TEff for a run that reached ``ppl`` on ``tokens``."""
        return self.mlte(ppl) / _positive("tokens", tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "budget": float(self.budget),
            "params": [list(row) for row in self.params],
            "df": int(self.df),
            "tried": int(self.tried),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LawBootstrap:
        try:
            return cls(
                form=str(d["form"]),
                budget=float(d["budget"]),
                params=tuple(tuple(float(v) for v in row) for row in d["params"]),
                df=int(d["df"]),
                tried=int(d["tried"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScalingError(f"not a stored law bootstrap ({exc!r})") from exc


def bootstrap_law(law: ScalingLaw, replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> LawBootstrap:
    """``replicates`` refits of ``law`` to its residual-resampled points (see LawBootstrap).

    Seeded, so the same baselines always give the same interval. Refits that fail are
    left out (``tried`` says how many were attempted)."""
    n, p = len(law.tokens), len(PARAM_NAMES[law.form])
    df = n - p
    if df <= 0:
        return LawBootstrap(law.form, law.budget, (), 0, 0)
    t = np.asarray(law.tokens, dtype=float)
    fitted = np.log(np.asarray(law.ppl, dtype=float)) + np.asarray(law.residuals, dtype=float)
    noise = -np.asarray(law.residuals, dtype=float)
    noise = (noise - noise.mean()) * math.sqrt(n / df)
    rng = np.random.default_rng(seed)
    draws = np.maximum(np.exp(fitted + noise[rng.integers(0, n, (replicates, n))]), 1.0)
    x = t / law.budget
    rows = _power_params_many(x, draws) if law.form == "power" else _paper_params_many(x, draws)
    return LawBootstrap(law.form, law.budget, tuple(tuple(float(v) for v in r) for r in rows), df, replicates)


def _power_params_many(x: np.ndarray, ppl: np.ndarray) -> list[tuple[float, float]]:
    """``_power_params`` for many point sets at once (rows of ``ppl``), same bounds on b."""
    u = np.log(x)
    v = np.log(ppl)
    du = u - u.mean()
    slope = (v - v.mean(axis=1, keepdims=True)) @ du / float(du @ du)
    b = np.clip(-slope, *B_BOUNDS)
    intercept = np.mean(v + b[:, None] * u, axis=1)
    return [(math.exp(k), float(bb)) for k, bb in zip(intercept, b)]


def _paper_projection(x: np.ndarray, y: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``y`` (1/PPL) and its own exponent ``b``: the least-squares ``(a, c)``
    of ``y = c - a·x^-b`` and its residual sum of squares (inf where a or c leave bounds)."""
    z = x[None, :] ** (-b[:, None])
    n = x.size
    sz, szz = z.sum(axis=1), (z * z).sum(axis=1)
    sy, szy, syy = y.sum(axis=1), (z * y).sum(axis=1), (y * y).sum(axis=1)
    det = n * szz - sz**2
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (sy * szz - sz * szy) / det
        a = (sz * sy - n * szy) / det
    rss = syy - c * sy + a * szy
    ok = (a > A_MIN) & (c > C_BOUNDS[0]) & (c < C_BOUNDS[1]) & np.isfinite(rss)
    return a, c, np.where(ok, rss, np.inf)


def _paper_params_many(x: np.ndarray, ppl: np.ndarray) -> list[tuple[float, float, float]]:
    """The paper form's least-squares fit on 1/PPL for many point sets (rows of ``ppl``).

    For a fixed exponent the form is linear in ``(a, c)`` (variable projection, as
    ``_projection_start`` uses), so every replicate is solved on one grid of exponents
    at once and refined by a parabola through the best grid point and its neighbours:
    the same objective as the point fit's ``curve_fit``, without one solver call per
    replicate. Rows with no admissible fit are left out."""
    y = 1.0 / ppl
    grid = np.geomspace(B_BOUNDS[0], B_BOUNDS[1], PAPER_B_GRID)
    rss = np.stack([_paper_projection(x, y, np.full(len(y), g))[2] for g in grid], axis=1)  # (R, G)
    best = np.argmin(rss, axis=1)
    rows = np.arange(len(y))
    ok = np.isfinite(rss[rows, best])
    log_grid = np.log(grid)
    log_b = log_grid[best]
    inner = ok & (best > 0) & (best < PAPER_B_GRID - 1)
    i = np.where(inner, best, 1)
    left, mid, right = rss[rows, i - 1], rss[rows, i], rss[rows, i + 1]
    step = log_grid[1] - log_grid[0]
    with np.errstate(divide="ignore", invalid="ignore"):  # inf neighbours: no refinement there
        curvature = left - 2 * mid + right
        usable = inner & np.isfinite(left) & np.isfinite(right) & (curvature > 0)
        shift = np.where(usable, 0.5 * (left - right) / curvature, 0.0)
    b = np.exp(log_b + np.clip(shift, -1, 1) * step)
    a, c, refined = _paper_projection(x, y, b)
    keep = ok & np.isfinite(refined)
    return [(float(a[k]), float(b[k]), float(c[k])) for k in np.flatnonzero(keep)]
