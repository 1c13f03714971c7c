"""Monolingual baselines: fractions of T, absolute token counts, or "auto" (enough for the mixes)."""

from __future__ import annotations

import tomllib

import pytest

from engine.config.locate import SpecError
from engine.config.spec import parse_experiments

EXP = """\
[experiments.e]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 1_000_000
train = {{ batch_size = 8, context = 32 }}
{extra}

[[experiments.e.schedules]]
name = "50/50"
mix = {{ EN1 = [50], EN2 = [50] }}

[[experiments.e.schedules]]
name = "90/10"
mix = {{ EN1 = [90], EN2 = [10] }}
"""


def runs(extra: str):
    text = EXP.format(extra=extra)
    return parse_experiments(tomllib.loads(text), text, "/x/experiments.toml")[0].runs


def test_auto_spans_half_the_rarest_share_to_the_budget_and_comes_first():
    got = runs('baselines = "auto"')
    base = [r for r in got if r.kind == "baseline"]
    assert got[: len(base)] == base  # baselines first: their law, and so TEff, appears early
    fracs = sorted(r.fraction for r in base)
    assert fracs[0] == pytest.approx(0.05) and fracs[-1] == 1.0  # EN2 sees 10% at 90/10
    assert len(fracs) == 6  # about one per halving
    assert all(b / a < 2.2 for a, b in zip(fracs, fracs[1:], strict=False))


def test_auto_is_capped():
    base = [r for r in runs('baselines = "auto"\nmax_baselines = 3') if r.kind == "baseline"]
    assert sorted(r.fraction for r in base) == pytest.approx([0.05, 0.05**0.5, 1.0])


def test_absolute_token_counts_are_the_same_runs_as_the_fractions_they_equal():
    absolute = {r.name: r for r in runs("baseline_tokens = [500_000, 2_000_000]")}
    assert set(absolute) == {"50/50", "90/10", "mono EN1 500k", "mono EN1 2M"}
    assert absolute["mono EN1 2M"].total_tokens == pytest.approx(2_000_000, rel=0.001)  # beyond T
    fraction = {r.name: r for r in runs("baselines = [0.5]")}
    assert absolute["mono EN1 500k"].run_id == fraction["mono EN1 50%"].run_id


@pytest.mark.parametrize(
    ("extra", "wanted"),
    [
        ('baselines = "some"', ":6: experiments.e.baselines"),
        ("baseline_tokens = [0]", ":6: experiments.e.baseline_tokens: baseline token counts must be > 0"),
        ('baselines = "auto"\nmax_baselines = 1', ":7: experiments.e.max_baselines"),
    ],
)
def test_bad_baselines_are_located(extra, wanted):
    with pytest.raises(SpecError) as info:
        runs(extra)
    assert f"/x/experiments.toml{wanted}" in str(info.value)


# -- "auto" after results: a mix run's MLTE outside the law's range gets a baseline --------


def auto_experiment(cap: int):
    from engine.config.spec import Experiment

    text = EXP.format(extra=f'baselines = "auto"\nmax_baselines = {cap}').replace(
        '[[experiments.e.schedules]]\nname = "50/50"\nmix = { EN1 = [50], EN2 = [50] }\n', ""
    )
    exp: Experiment = parse_experiments(tomllib.loads(text), text, "/x/experiments.toml")[0]
    return exp


def results_with(tmp_path, exp, mlte: float | None, status: str):
    """A database where ``exp``'s mix run finished with this final MLTE in EN2 (EN1's law, 1M tokens at most)."""
    import json

    from db.store import Store

    store = Store(tmp_path / "r.duckdb")
    store.ingest()  # the schema; no run folders
    (mix,) = [r for r in exp.runs if r.kind == "mix"]
    members = [{"run_id": r.run_id, "name": r.name, "kind": r.kind, "point": None} for r in exp.runs]
    with store.connect(read_only=False, wait=5) as con:
        con.execute("INSERT INTO experiments (name, run_ids, members) VALUES ('e', ?, ?)", [[], members])
        con.execute(
            "INSERT INTO runs (run_id, experiment, name, kind, status, model, total_steps, spec) "
            "VALUES (?, 'e', ?, 'mix', 'done', 'cpu-xxs', ?, ?)",
            [mix.run_id, mix.name, mix.total_steps, json.dumps(mix.to_dict())],
        )
        con.execute(
            "INSERT INTO teff (run_id, language, step, experiment, law_key, law_language, mlte, mlte_status) "
            "VALUES (?, 'EN2', ?, 'e', 'law-1', 'EN1', ?, ?)",
            [mix.run_id, mix.total_steps, mlte, status],
        )
        con.execute(
            "INSERT INTO scaling_fits (experiment, law_key, model, language, token_min, token_max) "
            "VALUES ('e', 'law-1', 'cpu-xxs', 'EN1', 50000, 1000000)"
        )
    return store


@pytest.mark.parametrize(
    ("mlte", "status", "tokens"),
    [(3_000_000, "above", 3_750_000), (20_000, "below", 16_000), (None, "impossible", 2_000_000)],
)
def test_an_mlte_outside_the_range_gets_a_baseline_that_covers_it(tmp_path, mlte, status, tokens):
    from db.auto_baselines import add_missing_baselines

    exp = auto_experiment(cap=8)
    before = len(exp.runs)
    store = results_with(tmp_path, exp, mlte, status)
    (added,) = add_missing_baselines(store, exp)
    assert added.kind == "baseline" and added.schedule_obj().marginal_fractions()["EN1"] == 1.0
    assert added.total_tokens == pytest.approx(tokens, rel=0.02)  # whole steps of 256 tokens
    assert exp.runs[0] == added and len(exp.runs) == before + 1  # trained before the mixes
    if mlte is not None:
        lengths = [r.total_tokens for r in exp.runs if r.kind == "baseline"]
        assert min(lengths) <= mlte <= max(lengths)  # the new range holds it
    assert add_missing_baselines(store, exp) == []  # asked once


def test_an_inside_mlte_or_a_full_cap_adds_nothing(tmp_path):
    from db.auto_baselines import add_missing_baselines

    exp = auto_experiment(cap=8)
    assert add_missing_baselines(results_with(tmp_path / "a", exp, 500_000, "inside"), exp) == []
    full = auto_experiment(cap=2)  # "auto" already made its two
    assert add_missing_baselines(results_with(tmp_path / "b", full, 3_000_000, "above"), full) == []
