"""Sweeps in experiments.toml: points, names, counts, shared runs and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.locate import SpecError
from engine.config.spec import load_experiments
from engine.config.sweep import format_tokens

HEAD = """\
[defaults]
model = "cpu-xxs"
seeds = [0, 1]

[defaults.train]
batch_size = 8
context = 32
"""

RATIO_MODEL = (
    HEAD
    + """
[experiments.imbalance]
languages = ["EN1", "EN2"]
tokens = 100_000
baselines = [1.0, 0.5]
sweep.ratio = [50, 90, 99]
sweep.model = ["cpu-xxs", "cpu-xs"]
"""
)


def load(tmp_path: Path, text: str):
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return load_experiments(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_ratio_and_model_axes_name_every_point_and_share_the_baselines(tmp_path):
    (exp,) = load(tmp_path, RATIO_MODEL)
    mixes = [r for r in exp.runs if r.kind == "mix"]
    baselines = [r for r in exp.runs if r.kind == "baseline"]
    assert len(mixes) == 3 * 2 * 2  # ratios x models x seeds
    assert len(baselines) == 2 * 2 * 2  # models x fractions x seeds: not once per ratio
    assert len({r.run_id for r in exp.runs}) == len(exp.runs)
    names = {r.name for r in mixes}
    assert "ratio=90 model=cpu-xs" in names and len(names) == 6
    assert {r.name for r in baselines} == {
        f"model={m} mono EN1 {f}" for m in ("cpu-xxs", "cpu-xs") for f in ("100%", "50%")
    }
    run = next(r for r in mixes if r.name == "ratio=90 model=cpu-xs")
    assert run.model == "cpu-xs" and run.point == {"ratio": 90.0, "model": "cpu-xs"}
    assert run.schedule_obj().marginal_fractions() == pytest.approx({"EN1": 0.9, "EN2": 0.1})


def test_languages_axis_clones_that_many_languages_uniform_or_with_a_main_share(tmp_path):
    text = (
        HEAD
        + """
[experiments.many]
languages = ["EN1", "EN2"]
tokens = 100_000
seeds = [0]
sweep.languages = [2, 10]

[experiments.main50]
languages = ["EN1", "EN2"]
tokens = 100_000
seeds = [0]
sweep.languages = [10]
sweep.ratio = [50]
"""
    )
    uniform, main = load(tmp_path, text)
    ten = next(r for r in uniform.runs if r.point == {"languages": 10})
    assert ten.languages == [f"EN{i}" for i in range(1, 11)]
    assert ten.name == "languages=10 uniform"
    assert ten.schedule_obj().marginal_fractions() == pytest.approx({f"EN{i}": 0.1 for i in range(1, 11)})
    (run,) = main.runs
    shares = run.schedule_obj().marginal_fractions()
    assert run.name == "ratio=50 languages=10"
    assert shares["EN1"] == pytest.approx(0.5) and shares["EN7"] == pytest.approx(0.5 / 9)


def test_tokens_axis_gives_each_point_its_budget_and_one_corpus_for_all(tmp_path):
    text = (
        HEAD
        + """
[experiments.budgets]
languages = ["EN1", "EN2"]
baselines = [1.0, 0.5]
seeds = [0]
sweep.tokens = [50_000, 100_000]

[[experiments.budgets.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }
"""
    )
    (exp,) = load(tmp_path, text)
    assert exp.config.tokens == 100_000  # the largest budget, when `tokens` is left out
    by_name = {r.name: r for r in exp.runs}
    # half of 100k is all of 50k: one run, named after the point that asked for it first
    assert set(by_name) == {
        "tokens=50k 90/10",
        "tokens=100k 90/10",
        "tokens=50k mono EN1 100%",
        "tokens=50k mono EN1 50%",
        "tokens=100k mono EN1 100%",
    }
    assert by_name["tokens=50k 90/10"].total_tokens == pytest.approx(50_000, rel=0.01)
    assert by_name["tokens=100k 90/10"].total_tokens == pytest.approx(100_000, rel=0.01)
    # every point reads the same text, sized for the largest budget, so their PPLs compare
    assert {r.data_recipe().budget_tokens for r in exp.runs} == {100_000}


def test_anchors_axis_sets_the_shared_ids(tmp_path):
    text = (
        HEAD
        + """
[experiments.anchored]
languages = ["EN1", "EN2"]
tokens = 100_000
seeds = [0]
sweep.anchors = [0, 0.1, 0.5]
sweep.ratio = [90]
"""
    )
    (exp,) = load(tmp_path, text)
    assert [(r.name, r.data.anchors) for r in exp.runs] == [
        ("ratio=90 anchors=0", 0.0),
        ("ratio=90 anchors=0.1", 0.1),
        ("ratio=90 anchors=0.5", 0.5),
    ]


def test_a_plain_experiment_keeps_its_spec_json_fields(tmp_path):
    (exp,) = load(tmp_path, RATIO_MODEL.replace("sweep.model", "# sweep.model").replace("sweep.ratio", "# x"))
    assert exp.runs and exp.config.sweep is None
    assert all("point" not in r.to_dict() and "data_tokens" not in r.to_dict() for r in exp.runs)


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        ("sweep.ratio = [50, 150]", ":13: experiments.imbalance.sweep.ratio"),
        ('sweep.model = ["cpu-xs", "huge"]', "unknown model preset 'huge'"),
        ("sweep.tokens = [0]", ":13: experiments.imbalance.sweep.tokens"),
        ("sweep.anchors = [1.5]", "in [0, 1]"),
        ("sweep.languages = [1]", "at least 2 languages"),
        ("sweep.ratio = [90, 90]", "values must be unique"),
        ("sweep.colour = [1]", "unknown field 'colour'"),
    ],
)
def test_bad_axes_name_file_line_and_field(tmp_path, line, wanted):
    text = (
        HEAD
        + f"""
[experiments.imbalance]
languages = ["EN1", "EN2"]
tokens = 100_000
baselines = [1.0]
{line}
"""
    )
    message = error_of(tmp_path, text)
    assert "experiments.toml:" in message and wanted in message
    assert "sweep" in message


def test_a_ratio_sweep_with_schedules_of_its_own_is_refused_at_the_axis(tmp_path):
    text = (
        RATIO_MODEL
        + """
[[experiments.imbalance.schedules]]
name = "50/50"
mix = { EN1 = [50], EN2 = [50] }
"""
    )
    message = error_of(tmp_path, text)
    assert "experiments.toml:13: experiments.imbalance.sweep.ratio" in message
    assert "makes the schedules" in message


def test_cloning_axes_are_refused_for_real_languages(tmp_path):
    text = (
        HEAD
        + """
[experiments.real]
languages = ["L1", "L2"]
tokens = 100_000
baselines = [1.0]
sweep.languages = [2, 4]

[experiments.real.data]
kind = "real"
corpora = { L1 = { path = "builtin:family" }, L2 = { path = "builtin:family" } }
"""
    )
    message = error_of(tmp_path, text)
    assert "experiments.toml:13: experiments.real.sweep.languages" in message and "cloned" in message


def test_token_counts_in_names():
    assert [format_tokens(n) for n in (999, 120_000, 2_500_000, 1_200_000_000)] == ["999", "120k", "2.5M", "1.2B"]
