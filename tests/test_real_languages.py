"""A tiny real-language experiment end to end: `xling data`, `xling run`, the database, `xling report`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from xling_tui.cli.main import app

runner = CliRunner()

FAMILY = """\
[experiments.family]
description = "two synthetic family languages as real corpora, anchored"
languages = ["L1", "L2"]
model = "cpu-xxs"
tokens = 12_288
baselines = [1.0]
baseline_languages = ["L1", "L2"]
train = {{ batch_size = 8, context = 32, warmup = 4, log_every = 4, checkpoint_every = 50 }}
eval = {{ context = 32, stride = 16, max_tokens = 1000, every = 0, alignment_sequences = 6, probe = {{ steps = 20, n_train = 100, n_test = 60 }} }}

[experiments.family.data]
kind = "real"
tokenizer = "{tokenizer}"
vocab_size = 128

[experiments.family.data.corpora]
L1 = {{ path = "builtin:family", max_chars = 60_000 }}
L2 = {{ path = "builtin:family", family = {{ like = "near" }}, max_chars = 60_000 }}

[[experiments.family.schedules]]
name = "90/10"
mix = {{ L1 = [90], L2 = [10] }}
"""


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    toml = folder / "experiments.toml"
    toml.write_text(FAMILY.format(tokenizer="anchored"))
    prepared = invoke("data", "prepare", str(toml))
    assert prepared.exit_code == 0, prepared.output
    db = str(folder / "results.duckdb")
    result = invoke("run", str(toml), "--db", db, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return toml, db


def _sql(db: str, query: str) -> list[dict]:
    out = invoke("sql", query, "--db", db, "--format", "json")
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_runs_land_in_the_database(finished):
    _, db = finished
    runs = _sql(db, "SELECT name, status FROM runs ORDER BY name")
    assert [(r["name"], r["status"]) for r in runs] == [
        ("90/10", "done"),
        ("mono L1 100%", "done"),
        ("mono L2 100%", "done"),
    ]
    evals = _sql(
        db,
        "SELECT r.name, e.language FROM evals e JOIN runs r USING (run_id) WHERE e.step = r.total_steps ORDER BY 1, 2",
    )
    assert [(e["name"], e["language"]) for e in evals] == [
        ("90/10", "L1"),
        ("90/10", "L2"),
        ("mono L1 100%", "L1"),
        ("mono L2 100%", "L2"),
    ]
    tok = _sql(db, "SELECT DISTINCT mode, vocab_size, n_anchors FROM tokenizers")
    assert len(tok) == 1 and tok[0]["mode"] == "anchored" and tok[0]["n_anchors"] > 0
    assert tok[0]["vocab_size"] < 2 * 128  # identical pieces merged
    probes = _sql(
        db,
        "SELECT r.name, p.train_language, p.language, p.accuracy, p.chance FROM probes p "
        "JOIN runs r USING (run_id) ORDER BY 1, 3",
    )
    assert [(p["name"], p["train_language"], p["language"]) for p in probes] == [
        ("90/10", "L1", "L1"),
        ("90/10", "L1", "L2"),
        ("mono L1 100%", "L1", "L1"),
        ("mono L2 100%", "L2", "L2"),
    ]
    assert all(0.0 <= p["accuracy"] <= 1.0 and 0.5 <= p["chance"] <= 1.0 for p in probes)
    hidden = _sql(db, "SELECT count(*) AS n FROM align_hidden")
    assert hidden[0]["n"] > 0


def test_report_shows_probe_and_anchors(finished):
    _, db = finished
    out = invoke("report", "family", "--db", db, "--format", "markdown")
    assert out.exit_code == 0, out.output
    assert "## Downstream probe" in out.output
    assert "| 90/10 | builtin:synthetic | L1 |" in out.output
    assert "tokenizer anchored: model vocabulary" in out.output and "anchors" in out.output
    as_json = json.loads(invoke("report", "family", "--db", db, "--format", "json").output)
    assert any(t["title"].startswith("Downstream probe") for t in as_json["tables"])


def test_data_info_reports_tokens_and_overlap(finished):
    toml, _ = finished
    out = invoke("data", "info", str(toml), "--json")
    assert out.exit_code == 0, out.output
    [info] = json.loads(out.output)
    assert info["mode"] == "anchored" and info["experiment"] == "family"
    assert [r["language"] for r in info["languages"]] == ["L1", "L2"]
    assert all(r["train_tokens"] > r["test_tokens"] > 0 for r in info["languages"])
    assert info["identical_pieces"] == info["n_anchors"] > 0
    table = invoke("data", "info", str(toml))
    assert table.exit_code == 0 and "anchors" in table.output


def test_data_commands_report_bad_input_in_one_line(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text(FAMILY.format(tokenizer="shared"))
    out = invoke("data", "info", str(toml))
    assert out.exit_code == 2
    assert "bad.toml:13" in out.output and "tokenizer" in out.output and "Traceback" not in out.output
    missing = tmp_path / "missing.toml"
    text = FAMILY.format(tokenizer="disjoint").replace(", probe = { steps = 20, n_train = 100, n_test = 60 }", "")
    missing.write_text(text.replace('path = "builtin:family", max_chars', f'path = "{tmp_path}/nope/*.txt", max_chars'))
    out = invoke("data", "prepare", str(missing))
    assert out.exit_code == 2 and "no file matches" in " ".join(out.output.split())


def test_a_missing_probe_file_fails_before_training(tmp_path):
    toml = tmp_path / "probe.toml"
    toml.write_text(
        FAMILY.format(tokenizer="disjoint").replace(
            "probe = {{ steps".replace("{{", "{"), 'probe = { task = "nope.tsv", steps'
        )
    )
    out = invoke("data", "prepare", str(toml))
    assert out.exit_code == 2 and "nope.tsv" in out.output and "Traceback" not in out.output
