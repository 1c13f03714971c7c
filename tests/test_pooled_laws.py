"""Monolingual laws pooled by law key: every finished baseline with the key is a point, in
absolute tokens, whichever experiment (or sweep point, or budget) asked for it."""

from __future__ import annotations

import json
import tomllib

import pytest

from db.analysis import refresh
from db.store import Store
from engine.config.spec import law_key, parse_experiments

TEXT = """\
[defaults]
model = "cpu-xxs"
languages = ["EN1", "EN2"]
scaling_law = "power"
seeds = [0]
train = { batch_size = 8, context = 32 }

[experiments.budgets]
baselines = [1.0, 0.5]
sweep.tokens = [50_000, 100_000]
sweep.ratio = [90]

[experiments.other]
tokens = 100_000
baselines = [1.0, 0.2]

[[experiments.other.schedules]]
name = "50/50"
mix = { EN1 = [50], EN2 = [50] }

[experiments.bigger]
model = "cpu-xs"
tokens = 100_000
baselines = [1.0, 0.5]

[[experiments.bigger.schedules]]
name = "50/50"
mix = { EN1 = [50], EN2 = [50] }
"""


def ppl_at(tokens: float) -> float:
    return 2000.0 * tokens**-0.3  # a power law, so the fit is exact


@pytest.fixture
def results(tmp_path):
    """Every run of the three experiments finished, with a PPL on the law."""
    experiments = parse_experiments(tomllib.loads(TEXT), TEXT, str(tmp_path / "e.toml"))
    store = Store(tmp_path / "r.duckdb")
    store.ingest()
    runs = {r.run_id: r for e in experiments for r in e.runs}
    with store.connect(read_only=False, wait=5) as con:
        for exp in experiments:
            members = [{"run_id": r.run_id, "name": r.name, "kind": r.kind, "point": None} for r in exp.runs]
            config = json.dumps({"scaling_law": "power"})
            con.execute("INSERT INTO experiments (name, config, members) VALUES (?, ?, ?)", [exp.name, config, members])
        for r in runs.values():
            con.execute(
                "INSERT INTO runs (run_id, experiment, name, kind, status, model, total_steps, total_tokens, spec) "
                "VALUES (?, ?, ?, ?, 'done', ?, ?, ?, ?)",
                [r.run_id, r.experiment, r.name, r.kind, r.model, r.total_steps, r.total_tokens, r.to_json()],
            )
            for lang in r.languages:
                con.execute(
                    "INSERT INTO evals (run_id, step, language, ppl) VALUES (?, ?, ?, ?)",
                    [r.run_id, r.total_steps, lang, ppl_at(r.total_tokens)],
                )
        refresh(con)
    return store, experiments


def test_one_law_per_model_over_every_budget_and_experiment(results):
    store, experiments = results
    fits = store.query(
        "SELECT experiment, law_key, model, language, n_points, token_min, token_max, error FROM scaling_fits "
        "ORDER BY experiment"
    ).dicts()
    by_exp = {f["experiment"]: f for f in fits}
    assert set(by_exp) == {"budgets", "other", "bigger"}  # one law each: one key, one baseline language
    budgets, other, bigger = by_exp["budgets"], by_exp["other"], by_exp["bigger"]
    # budgets' own baselines: 25k, 50k (=half of 100k) and 100k; other's: 100k (the same run) and 20k
    assert budgets["law_key"] == other["law_key"] and budgets["n_points"] == other["n_points"] == 4
    assert (budgets["token_min"], budgets["token_max"]) == pytest.approx((20_000, 100_000), rel=0.02)
    assert bigger["law_key"] != budgets["law_key"] and bigger["n_points"] == 2  # another model, another law
    assert all(f["error"] is None for f in fits)


def test_teff_of_every_budget_is_read_on_the_pooled_law(results):
    store, experiments = results
    (budgets, *_) = experiments
    mixes = {r.run_id: r for r in budgets.runs if r.kind == "mix"}
    rows = store.query(
        "SELECT run_id, language, law_key, tokens_seen, ppl, mlte, teff FROM teff WHERE step = ("
        "SELECT total_steps FROM runs WHERE runs.run_id = teff.run_id)"
    ).dicts()
    mine = [r for r in rows if r["run_id"] in mixes]
    assert {mixes[r["run_id"]].point["tokens"] for r in mine} == {50_000, 100_000}
    assert {r["law_key"] for r in mine} == {law_key(next(iter(mixes.values())))}
    for r in mine:  # the made-up PPL sits on the law at the run's total tokens
        assert r["mlte"] == pytest.approx(mixes[r["run_id"]].total_tokens, rel=1e-3)


def test_law_key_ignores_length_and_who_asked(results):
    _, (budgets, other, bigger) = results
    keys = {law_key(r) for e in (budgets, other) for r in e.runs if r.kind == "baseline"}
    assert len(keys) == 1  # 20k to 100k tokens, two experiments, one law
    assert law_key(bigger.runs[0]) not in keys
