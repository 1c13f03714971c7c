"""experiments.toml validation: errors name file, line, table and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.locate import SpecError
from engine.config.spec import load_experiments

GOOD = """\
# a comment the user wrote
[defaults]
model = "cpu-xxs"

[experiments.demo]
languages = ["EN1", "EN2"]
tokens = 100_000
baselines = [1.0, 0.5]
seeds = [0, 1]

[experiments.demo.train]
batch_size = 8
context = 32
lr = 3e-3

[[experiments.demo.schedules]]
name = "50/50"
mix = { EN1 = [50], EN2 = [50] }

[[experiments.demo.schedules]]
name = "90to10"
ends = [0.5, 1.0]
mix = { EN1 = [90, 10], EN2 = [10, 90] }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_experiments(write(tmp_path, text))
    return str(info.value)


def test_expands_schedules_and_baselines_per_seed(tmp_path):
    (exp,) = load_experiments(write(tmp_path, GOOD))
    names = sorted((r.name, r.seed) for r in exp.runs)
    assert names == sorted([(n, s) for n in ("50/50", "90to10", "mono EN1 100%", "mono EN1 50%") for s in (0, 1)])
    assert exp.config.model == "cpu-xxs"  # from [defaults]
    ids = {r.run_id for r in exp.runs}
    assert len(ids) == len(exp.runs)


def test_baseline_budget_is_its_fraction(tmp_path):
    (exp,) = load_experiments(write(tmp_path, GOOD))
    full = next(r for r in exp.runs if r.name == "mono EN1 100%" and r.seed == 0)
    half = next(r for r in exp.runs if r.name == "mono EN1 50%" and r.seed == 0)
    assert full.total_tokens == pytest.approx(100_000, rel=0.01)
    assert half.total_steps == round(0.5 * 100_000 / (8 * 32))
    assert half.marginal_tokens() == {"EN1": half.total_tokens, "EN2": 0}


def test_run_ids_are_stable_and_change_with_the_spec(tmp_path):
    a = {r.name: r.run_id for r in load_experiments(write(tmp_path, GOOD))[0].runs if r.seed == 0}
    b = {r.name: r.run_id for r in load_experiments(write(tmp_path, GOOD))[0].runs if r.seed == 0}
    assert a == b
    changed = GOOD.replace("lr = 3e-3", "lr = 1e-3")
    c = {r.name: r.run_id for r in load_experiments(write(tmp_path, changed))[0].runs if r.seed == 0}
    assert set(a.values()).isdisjoint(c.values())
    renamed = GOOD.replace('name = "50/50"', 'name = "balanced"')
    d = {r.name: r.run_id for r in load_experiments(write(tmp_path, renamed))[0].runs if r.seed == 0}
    assert d["balanced"] == a["50/50"]


def test_column_not_summing_to_100_names_the_column_and_line(tmp_path):
    msg = error_of(
        tmp_path, GOOD.replace("mix = { EN1 = [90, 10], EN2 = [10, 90] }", "mix = { EN1 = [90, 10], EN2 = [10, 85] }")
    )
    assert "experiments.toml:23" in msg
    assert "stage 2" in msg and "95" in msg and "90to10" in msg


def test_wrong_type_names_line_table_and_field(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("lr = 3e-3", 'lr = "fast"'))
    assert "experiments.toml:14" in msg
    assert "experiments.demo.train.lr" in msg


def test_unknown_field_is_reported(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("batch_size = 8", "batch_sise = 8"))
    assert "experiments.toml:12" in msg and "batch_sise" in msg


def test_unknown_language_in_mix(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("mix = { EN1 = [50], EN2 = [50] }", "mix = { EN1 = [50], FR = [50] }"))
    assert "'FR'" in msg and "experiments.toml:18" in msg


def test_unknown_preset(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('model = "cpu-xxs"', 'model = "huge"'))
    assert "huge" in msg and "experiments.toml" in msg and "model" in msg


def test_missing_required_field(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("tokens = 100_000\n", ""))
    assert "tokens" in msg and "missing" in msg


def test_toml_syntax_error_has_line(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("tokens = 100_000", "tokens = = 1"))
    assert "experiments.toml" in msg and "line 7" in msg


def test_missing_file_and_unknown_experiment(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_experiments(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="no experiment named 'other'"):
        load_experiments(write(tmp_path, GOOD), only=["other"])


def test_a_schedule_name_means_one_mix(tmp_path):
    """Seeds are averaged under a name: two schedules (or a schedule and a baseline) may not share one."""
    msg = error_of(tmp_path, GOOD.replace('name = "90to10"', 'name = "50/50"'))
    assert (
        "experiments.toml:21" in msg
        and "experiments.demo.schedules[1].name" in msg
        and "already the name of schedules[0]" in msg
    )
    msg = error_of(tmp_path, GOOD.replace('name = "90to10"', 'name = "mono EN1 50%"'))
    assert "is the name of a baseline run" in msg


def test_seeds_are_unique(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("seeds = [0, 1]", "seeds = [0, 1, 0]"))
    assert "experiments.toml:9" in msg and "seed 0 is listed twice" in msg


def test_default_experiments_file_is_valid():
    exps = load_experiments(Path(__file__).parent.parent / "experiments.toml")
    names = {e.name for e in exps}
    assert {"quick", "table1"} <= names
    table1 = next(e for e in exps if e.name == "table1")
    kinds = {r.name for r in table1.runs}
    assert {"50/50", "90/10"} <= kinds
    assert sum(r.kind == "baseline" for r in table1.runs) >= 3


def test_an_experiment_table_merges_over_defaults_table_by_table():
    from engine.config.spec import merge_tables

    defaults = {"model": "cpu-xs", "train": {"lr": 1e-3, "batch_size": 8}, "seeds": [0, 1]}
    merged = merge_tables(defaults, {"train": {"lr": 3e-3}, "seeds": [2]})
    assert merged == {"model": "cpu-xs", "train": {"lr": 3e-3, "batch_size": 8}, "seeds": [2]}
    assert defaults["train"]["lr"] == 1e-3  # the defaults are not changed
