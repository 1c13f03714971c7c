"""A sweep's curves along each axis (db.sweeps) and their figures (xling report --figures)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from db.store import Store
from db.sweeps import axis_curves

POINTS = [{"ratio": r, "model": m} for r in (50.0, 90.0) for m in ("cpu-xxs", "cpu-xs")]


def ppl(point: dict, lang: str, seed: int) -> float:
    """Made-up results with a shape: the rare language suffers at 90/10, the bigger model is better."""
    share = point["ratio"] if lang == "EN1" else 100 - point["ratio"]
    return (200 - share) * (0.8 if point["model"] == "cpu-xs" else 1.0) * (1.1 if seed else 1.0)


def sweep_db(tmp_path: Path) -> Store:
    store = Store(tmp_path / "s.duckdb")
    store.ingest()
    members, runs, evals, teff = [], [], [], []
    for i, point in enumerate(POINTS):
        for seed in (0, 1):
            rid = f"r{i}s{seed}"
            name = f"ratio={point['ratio']:g} model={point['model']}"
            members.append({"run_id": rid, "name": name, "kind": "mix", "point": json.dumps(point)})
            runs.append((rid, seed))
            for lang in ("EN1", "EN2"):
                evals.append((rid, lang, ppl(point, lang, seed)))
                teff.append((rid, lang, 1.0 + seed, "above" if point["ratio"] == 90 and lang == "EN2" else "inside"))
    members.append({"run_id": "base", "name": "mono EN1 100%", "kind": "baseline", "point": '{"model": "cpu-xs"}'})
    with store.connect(read_only=False, wait=5) as con:
        con.execute("INSERT INTO experiments (name, run_ids, members) VALUES ('fig', [], ?)", [members])
        for rid, seed in [*runs, ("base", 0)]:
            kind = "baseline" if rid == "base" else "mix"
            con.execute(
                "INSERT INTO runs (run_id, experiment, name, kind, status, seed, total_steps) "
                "VALUES (?, 'fig', ?, ?, 'done', ?, 10)",
                [rid, rid, kind, seed],
            )
        con.executemany("INSERT INTO evals (run_id, step, language, ppl) VALUES (?, 10, ?, ?)", evals)
        con.executemany("INSERT INTO teff (run_id, step, language, teff, teff_status) VALUES (?, 10, ?, ?, ?)", teff)
    return store


def test_curves_along_each_axis_over_seeds(tmp_path):
    curves = axis_curves(sweep_db(tmp_path), "fig")
    assert list(curves) == ["ratio", "model"]
    ratio = {(c.series, c.language): c for c in curves["ratio"]}
    assert set(ratio) == {(f"model={m}", lang) for m in ("cpu-xxs", "cpu-xs") for lang in ("EN1", "EN2")}
    rare = ratio[("model=cpu-xxs", "EN2")]
    assert [p.x for p in rare.points] == [50.0, 90.0]
    at90 = rare.points[1]
    assert at90.ppl.mean == pytest.approx(math.sqrt(190 * 190 * 1.1))  # geometric mean of the two seeds
    assert (at90.ppl.low, at90.ppl.high) == pytest.approx((190, 209))
    assert at90.teff.extrapolated and not rare.points[0].teff.extrapolated
    models = {(c.series, c.language): c for c in curves["model"]}
    assert [p.x for p in models[("ratio=90", "EN1")].points] == ["cpu-xxs", "cpu-xs"]  # as the sweep lists them


def test_report_figures_draw_one_png_per_axis(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xling_tui.cli.sweep_figures import axis_figures

    out = tmp_path / "figs"
    out.mkdir()
    paths = axis_figures(sweep_db(tmp_path), "fig", out, plt)
    assert sorted(p.name for p in paths) == ["sweep_model.png", "sweep_ratio.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert axis_figures(sweep_db(tmp_path / "again"), "other", out, plt) == []  # no sweep, no curves


def test_sweep_points_are_ingested_from_the_experiment_file(tmp_path):
    import tomllib

    from engine.config.spec import parse_experiments
    from engine.launch.queue import write_experiment

    text = """\
[experiments.fig]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 100_000
baselines = [1.0]
train = { batch_size = 8, context = 32 }
sweep.ratio = [50, 90]
"""
    (exp,) = parse_experiments(tomllib.loads(text), text, str(tmp_path / "e.toml"))
    store = Store(tmp_path / "s.duckdb")
    write_experiment(store.root, exp)
    for spec in exp.runs:
        folder = store.root / "runs" / spec.run_id
        folder.mkdir(parents=True)
        (folder / "spec.json").write_text(spec.to_json())
    store.ingest()
    rows = store.query("SELECT name, kind, point FROM member_runs ORDER BY name").rows
    points = {name: (kind, json.loads(point) if point else None) for name, kind, point in rows}
    assert points == {
        "mono EN1 100%": ("baseline", None),  # a ratio does not change a baseline: no point
        "ratio=50": ("mix", {"ratio": 50.0}),
        "ratio=90": ("mix", {"ratio": 90.0}),
    }


def test_the_experiment_view_draws_the_declared_axes(tmp_path):
    from db.experiment_view import experiment_runs, sweeps

    store = sweep_db(tmp_path)
    found = sweeps(store, "fig", experiment_runs(store, "fig"))
    assert [s.axis for s in found] == ["ratio", "model"]  # the ratio is an axis, not a schedule that differs
    ratio = found[0]
    assert ratio.numeric and {p.value for p in ratio.points} == {50.0, 90.0}
    at = next(p for p in ratio.points if p.value == 90.0 and p.schedule == "model=cpu-xxs")
    assert sorted(at.ppl["EN2"]) == pytest.approx([190.0, 209.0])  # both seeds


def test_the_experiment_screen_draws_a_line_per_series_and_language_along_the_ratio(tmp_path):
    from db.experiment_view import experiment_runs, sweeps
    from xling_tui.screens.experiment import sweep_figure

    store = sweep_db(tmp_path)
    ratio = sweeps(store, "fig", experiment_runs(store, "fig"))[0]
    fig = sweep_figure(ratio, "ppl", ["red", "blue"])
    labelled = {s.label: (s.x, s.y) for s in fig.series if s.label}
    assert set(labelled) == {f"model={m} {lang}" for m in ("cpu-xxs", "cpu-xs") for lang in ("EN1", "EN2")}
    xs, ys = labelled["model=cpu-xxs EN2"]
    assert xs == [50.0, 90.0] and ys[1] == pytest.approx(math.sqrt(190 * 209))  # what report --figures draws
