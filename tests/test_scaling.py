"""Tests for engine.analysis.scaling: recovery, inverses, flags, the degenerate case, storage."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis.scaling import Estimate, ScalingError, ScalingLaw, fit_scaling_law, format_tokens

T = 1.2e9
A, B, C = 0.02, 0.5, 0.1  # 1/PPL = C - A·x^-B: PPL 94 at x=0.05, 12.5 at x=1, asymptote 10
FRACTIONS = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0])

# Baselines we measured at CPU scale: fraction of T -> PPL.
MEASURED_X = [1.0, 0.5, 0.25, 0.1]
MEASURED_PPL = [109.0, 180.0, 350.0, 602.0]


def paper_ppl(x: np.ndarray, a: float = A, b: float = B, c: float = C) -> np.ndarray:
    return 1.0 / (c - a * x ** (-b))


@pytest.fixture(scope="module")
def law() -> ScalingLaw:
    return fit_scaling_law(FRACTIONS * T, paper_ppl(FRACTIONS), budget=T)


# ----------------------------------------------------------------------------- fitting


def test_paper_form_recovers_exact_parameters(law: ScalingLaw) -> None:
    assert law.form == "paper"
    assert law.params == pytest.approx({"a": A, "b": B, "c": C}, rel=1e-4)
    assert max(abs(r) for r in law.residuals) < 1e-6
    assert law.warnings == ()
    assert law.asymptote() == pytest.approx(1 / C, rel=1e-4)
    assert law.token_range == (0.05 * T, 2.0 * T)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_form_recovers_parameters_under_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.repeat(FRACTIONS, 2)  # two seeds per token count, both used
    ppl = paper_ppl(x) * np.exp(rng.normal(0, 0.01, x.size))
    fit = fit_scaling_law(x * T, ppl, budget=T)
    assert len(fit.tokens) == x.size
    assert fit.params["b"] == pytest.approx(B, rel=0.1)
    assert fit.params["c"] == pytest.approx(C, rel=0.05)
    assert fit.params["a"] == pytest.approx(A, rel=0.15)
    assert max(abs(r) for r in fit.residuals) < 0.05


def test_power_form_recovers_k_and_b() -> None:
    k, b = 110.0, 0.75
    x = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
    fit = fit_scaling_law(x * T, k * x**-b, budget=T, form="power")
    assert fit.params == pytest.approx({"k": k, "b": b}, rel=1e-9)
    assert fit.asymptote() is None
    noisy = k * x**-b * np.exp(np.random.default_rng(0).normal(0, 0.01, x.size))
    fit = fit_scaling_law(x * T, noisy, budget=T, form="power")
    assert fit.params["k"] == pytest.approx(k, rel=0.05)
    assert fit.params["b"] == pytest.approx(b, rel=0.05)


def test_budget_defaults_to_largest_token_count() -> None:
    fit = fit_scaling_law([1e6, 2e6, 4e6], [30.0, 20.0, 14.0], form="power")
    assert fit.budget == 4e6


def test_measured_points_degenerate_naive_fit_but_not_ours() -> None:
    from scipy.optimize import curve_fit

    x, ppl = np.array(MEASURED_X), np.array(MEASURED_PPL)
    naive, _ = curve_fit(lambda x, a, b, c: c - a * x ** (-b), x, 1 / ppl, p0=[0.01, 0.5, 0.01], maxfev=20_000)
    assert naive[1] < 0.01  # the trouble this module exists for: b -> 0

    power = fit_scaling_law(x * 1e8, ppl, budget=1e8, form="power")
    assert max(abs(r) for r in power.residuals) < 0.15
    assert 0.5 < power.params["b"] < 1.0

    paper = fit_scaling_law(x * 1e8, ppl, budget=1e8, form="paper")
    assert len(paper.residuals) == 4
    fits_comparably = max(abs(r) for r in paper.residuals) < 0.15
    assert fits_comparably or any("degenerate" in w for w in paper.warnings)
    assert fits_comparably or any("form='power'" in w for w in paper.warnings)


def test_exact_interpolation_is_warned() -> None:
    fit = fit_scaling_law(np.array([0.1, 0.5, 1.0]) * T, paper_ppl(np.array([0.1, 0.5, 1.0])), budget=T)
    assert any("3 distinct token counts for 3 parameters" in w for w in fit.warnings)


@pytest.mark.parametrize(
    "form, tokens, got",
    [("paper", [1e6, 2e6, 2e6], 2), ("paper", [1e6], 1), ("power", [1e6, 1e6], 1)],
)
def test_too_few_token_counts(form: str, tokens: list[float], got: int) -> None:
    need = {"paper": 3, "power": 2}[form]
    message = (
        f"the scaling law ({form} form) needs at least {need} monolingual runs with different token "
        f"counts; got {got} (add baselines = [...] fractions to the experiment)"
    )
    with pytest.raises(ScalingError) as info:
        fit_scaling_law(tokens, [20.0] * len(tokens), form=form)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "tokens, ppl, form",
    [
        ([1, 2, 3], [10, 9], "paper"),
        ([1, -2, 3], [10, 9, 8], "paper"),
        ([1, 2, 3], [10, 0.5, 8], "paper"),
        ([1, 2, 3], [10, 9, 8], "cubic"),
        ([1, 2, math.nan], [10, 9, 8], "power"),
    ],
)
def test_bad_input_is_rejected(tokens: list[float], ppl: list[float], form: str) -> None:
    with pytest.raises(ScalingError):
        fit_scaling_law(tokens, ppl, form=form)


# ----------------------------------------------------------------------------- estimates


def test_round_trip_inside_range(law: ScalingLaw) -> None:
    for t in np.geomspace(0.05 * T, 2 * T, 7):
        ppl = law.mlpe(t)
        assert ppl.status == "inside"
        tokens = law.mlte(ppl.value)
        assert tokens.status == "inside"
        assert tokens.value == pytest.approx(t, rel=1e-6)


def test_monolingual_run_has_token_efficiency_one(law: ScalingLaw) -> None:
    t = 0.6 * T
    teff = law.teff(float(paper_ppl(np.array(0.6))), t)
    assert teff.status == "inside"
    assert teff.value == pytest.approx(1.0, rel=1e-6)
    assert teff.mark() == "1.00"


def test_extrapolations_are_flagged(law: ScalingLaw) -> None:
    lo, hi = law.token_range
    above = law.mlte(10.5)  # better than any baseline, still above the asymptote 10
    assert above.status == "above" and above.value > hi and above.edge == hi
    assert above.mark(format_tokens) == ">2.4B"
    below = law.mlte(200.0)  # worse than the smallest baseline
    assert below.status == "below" and below.value < lo
    assert below.mark(format_tokens) == "<60M"
    teff = law.teff(10.5, hi)
    assert teff.status == "above" and teff.mark() == ">1.00"

    ppl = law.mlpe(4 * T)
    assert ppl.status == "above" and ppl.value < ppl.edge
    assert ppl.mark() == f"<{law.mlpe(hi).value:.2f}"
    tiny = law.mlpe(0.001 * T)  # the paper form diverges there: 1/PPL <= 0
    assert tiny.status == "below" and tiny.value == math.inf
    assert tiny.mark().startswith(">")


@pytest.mark.parametrize("ppl", [None, 9.0, 1.0])
def test_at_or_below_asymptote_is_impossible(law: ScalingLaw, ppl: float | None) -> None:
    ppl = law.asymptote() if ppl is None else ppl  # exactly at the asymptote: infinitely many tokens
    for estimate in (law.mlte(ppl), law.teff(ppl, T)):
        assert estimate.status == "impossible" and estimate.value is None
        assert estimate.mark() == "n/a (below asymptote)"


def test_power_form_estimates() -> None:
    fit = fit_scaling_law([1e8, 2e8, 4e8], [40.0, 30.0, 22.5], budget=4e8, form="power")
    assert fit.mlte(1.01).status == "above"  # no asymptote: always possible
    assert fit.mlte(30.0).value == pytest.approx(2e8, rel=1e-9)
    assert fit.mlpe(2e8).value == pytest.approx(30.0, rel=1e-9)


def test_estimate_consistency_is_enforced() -> None:
    with pytest.raises(ScalingError):
        Estimate(None, "inside")
    with pytest.raises(ScalingError):
        Estimate(1.0, "impossible")
    with pytest.raises(ScalingError):
        Estimate(1.0, "above")  # no edge
    with pytest.raises(ScalingError):
        Estimate(1.0, "maybe")
    assert Estimate(1.2345, "inside").mark("{:.1f}") == "1.2"


def test_curve(law: ScalingLaw) -> None:
    points = law.curve(n=10)
    assert len(points) == 10
    assert points[0][0] == pytest.approx(0.05 * T) and points[-1][0] == pytest.approx(2 * T)
    assert all(p1 > p2 for (_, p1), (_, p2) in zip(points, points[1:]))
    assert len(law.curve(n=10, lo=1e-4 * T, hi=T)) < 10  # diverging part left out


# ----------------------------------------------------------------------------- storage


def test_to_dict_round_trip(law: ScalingLaw) -> None:
    stored = json.loads(json.dumps(law.to_dict()))
    assert ScalingLaw.from_dict(stored) == law
    degenerate = fit_scaling_law(np.array(MEASURED_X) * 1e8, MEASURED_PPL, budget=1e8)
    assert ScalingLaw.from_dict(json.loads(json.dumps(degenerate.to_dict()))) == degenerate


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(ScalingError):
        ScalingLaw.from_dict({"form": "paper"})
    with pytest.raises(ScalingError):
        ScalingLaw.from_dict({**fit_scaling_law([1, 2], [9, 5], form="power").to_dict(), "form": "paper"})


# ----------------------------------------------------------------------------- properties


@st.composite
def laws(draw: st.DrawFn) -> ScalingLaw:
    """A valid law with its own points: every baseline has 1 <= PPL < inf."""
    budget = draw(st.floats(1e5, 1e11))
    lo = draw(st.floats(0.01, 0.5))
    hi = lo * draw(st.floats(2.0, 100.0))
    x = np.geomspace(lo, hi, 5)
    b = draw(st.floats(0.05, 3.0))
    if draw(st.booleans()):
        k = draw(st.floats(2.0, 1e4))
        params, ppl = {"k": k, "b": b}, k * x**-b
        if np.any(ppl < 1):
            ppl = ppl / ppl.min()
            params["k"] = float(ppl[0] * x[0] ** b)
        form = "power"
    else:
        c = draw(st.floats(1e-3, 0.9))
        a = c * lo**b * draw(st.floats(0.05, 0.95))  # 1/PPL > 0 at the smallest baseline
        params, ppl, form = {"a": a, "b": b, "c": c}, paper_ppl(x, a, b, c), "paper"
    n = len(x)
    return ScalingLaw(form, params, budget, tuple(x * budget), tuple(map(float, ppl)), (0.0,) * n)


@settings(max_examples=60, deadline=None)
@given(laws(), st.floats(0.0, 1.0))
def test_random_laws_round_trip(law: ScalingLaw, where: float) -> None:
    lo, hi = law.token_range
    t = lo * (hi / lo) ** where
    ppl = law.mlpe(t)
    assert ppl.status == "inside" and math.isfinite(ppl.value)
    back = law.mlte(ppl.value)
    assert back.status == "inside"
    assert back.value == pytest.approx(t, rel=1e-6)
    assert law.teff(ppl.value, t).value == pytest.approx(1.0, rel=1e-6)
    assert ScalingLaw.from_dict(json.loads(json.dumps(law.to_dict()))) == law


@settings(max_examples=15, deadline=None)
@given(laws())
def test_random_laws_are_refitted(law: ScalingLaw) -> None:
    """Fitting a law's own exact points reproduces its perplexities, in either form."""
    fit = fit_scaling_law(law.tokens, law.ppl, budget=law.budget, form=law.form)
    assert max(abs(r) for r in fit.residuals) < 1e-3
    for t in law.tokens:
        assert fit.mlpe(t).value == pytest.approx(law.mlpe(t).value, rel=1e-3)
