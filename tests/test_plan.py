"""`xling plan`: runs asked for vs trained, the tokens and time sharing saves."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config.plan import Throughput, plan
from engine.config.spec import load_experiments, parse_experiments
from xling_tui.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

TWO = """\
[defaults]
model = "cpu-xxs"
languages = ["EN1", "EN2"]
tokens = 100_000
baselines = [1.0, 0.5]
train = { batch_size = 8, context = 32 }

[experiments.table]
[[experiments.table.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }

[experiments.ratios]
sweep.ratio = [50, 90, 99]
"""


def parse(text: str):
    return parse_experiments(tomllib.loads(text), text, "/x/experiments.toml")


def test_runs_asked_for_twice_are_trained_once_and_counted_as_saved():
    table, ratios = plan(parse(TWO))
    assert (table.asked, table.shared) == (3, 0)  # 90/10 and two baselines
    # three points, each asking for the two baselines: 3 x (1 + 2) = 9; the baselines of
    # the second and third point, and ratio=90 with both table baselines, were asked for before
    assert (ratios.asked, ratios.shared) == (9, 4 + 3)
    mix = next(r for r in parse(TWO)[0].runs if r.kind == "mix")
    assert ratios.tokens == 2 * mix.total_tokens  # only ratio=50 and ratio=99 train
    baselines = sum(r.total_tokens for r in parse(TWO)[0].runs if r.kind == "baseline")
    assert ratios.saved_tokens == 3 * baselines + mix.total_tokens  # each point's baselines, and ratio=90


def test_times_from_measurements_else_from_a_throughput_scaled_by_flops():
    (table, _) = plan(parse(TWO), rate=Throughput("cpu-xxs", 10_000))
    runs = parse(TWO)[0].runs
    assert table.seconds == pytest.approx(sum(r.total_tokens for r in runs) / 10_000)
    measured = {runs[0].run_id: 1.0}
    (with_one, _) = plan(parse(TWO), durations=measured, finished=measured, rate=Throughput("cpu-xxs", 10_000))
    assert with_one.measured == 1 and with_one.done == 1
    assert with_one.seconds == pytest.approx(1.0 + sum(r.total_tokens for r in runs[1:]) / 10_000)
    (unknown, _) = plan(parse(TWO), durations=measured)
    assert unknown.seconds is None  # two runs have neither a measurement nor a rate
    bigger = Throughput("cpu-xs", 10_000).seconds(parse(TWO.replace("cpu-xxs", "cpu-s"))[0].runs[0])
    assert bigger > runs[0].total_tokens / 10_000  # cpu-s costs more per token than cpu-xs


def test_the_paper_examples_load_and_share_runs():
    for name in ("examples/paper_cpu.toml", "examples/paper.toml"):
        rows = plan(load_experiments(ROOT / name))
        assert sum(r.shared for r in rows) > 0, name


def test_plan_command_prints_the_totals(tmp_path):
    toml = tmp_path / "experiments.toml"
    toml.write_text(TWO)
    db = tmp_path / "none.duckdb"
    out = runner.invoke(app, ["plan", str(toml), "--db", str(db), "--tokens-per-s", "cpu-xxs=10000"])
    assert out.exit_code == 0, out.output
    assert "12 runs asked for, 5 trained (0 already done): 7 shared runs save" in " ".join(out.output.split())
    js = runner.invoke(app, ["plan", str(toml), "--db", str(db), "--json"])
    *_, totals = [json.loads(chunk) for chunk in _json_objects(js.output)]
    assert totals["asked"] == 12 and totals["trained"] == 5 and totals["seconds"] is None
    bad = runner.invoke(app, ["plan", str(toml), "--db", str(db), "--tokens-per-s", "huge=3"])
    assert bad.exit_code == 2 and "PRESET=N" in bad.output
    assert not db.exists()  # planning never creates a database


def _json_objects(text: str) -> list[str]:
    decoder, i, out = json.JSONDecoder(), 0, []
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, end = decoder.raw_decode(text, i)
        out.append(json.dumps(obj))
        i = end
    return out


def test_the_paper_examples_name_files_that_exist():
    from engine.config.spec import check_inputs

    if not (ROOT.parent / "shared" / "corpora").is_dir():
        pytest.skip("../shared/corpora (the English novels paper.toml reads) is not beside this checkout")
    for name in ("examples/paper_cpu.toml", "examples/paper.toml"):
        check_inputs(load_experiments(ROOT / name))  # a SpecError names the missing file
