"""Science end to end: after `xling run` the scaling law, TEff and alignment are in DuckDB,
and `xling report` renders them in every format, with figures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from db.store import Store
from xling_tui.cli.main import app

runner = CliRunner()
SCIENCE = """\
[experiments.sci]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 24_576
baselines = [1.0, 0.5, 0.25]
scaling_law = "power"
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32, warmup = 4, log_every = 4 }}
eval = {{ context = 32, stride = 16, max_tokens = 2000, every = 0.5, alignment_sequences = 8 }}

[[experiments.sci.schedules]]
name = "50/50"
mix = {{ EN1 = [50], EN2 = [50] }}

[[experiments.sci.schedules]]
name = "90/10"
mix = {{ EN1 = [90], EN2 = [10] }}
"""


@pytest.fixture(scope="module")
def done(tmp_path_factory, tiny_corpus):
    folder = tmp_path_factory.mktemp("sci")
    toml = folder / "experiments.toml"
    toml.write_text(SCIENCE.format(corpus=tiny_corpus))
    db = folder / "sci.duckdb"
    result = runner.invoke(app, ["run", str(toml), "--db", str(db), "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Store(db)


def test_scaling_law_is_fitted_when_baselines_finish(done):
    rows = done.query("SELECT form, n_points, error, residuals FROM scaling_fits").dicts()
    assert len(rows) == 1
    assert rows[0]["form"] == "power" and rows[0]["n_points"] == 3 and rows[0]["error"] is None
    assert len(rows[0]["residuals"]) == 3


def test_teff_of_every_language_with_exact_tokens(done):
    rows = done.query("""SELECT r.name, t.language, t.tokens_seen, r.total_tokens, t.teff, t.teff_status, t.ppl
                         FROM teff t JOIN runs r USING (run_id) WHERE t.step = r.total_steps""").dicts()
    by = {(r["name"], r["language"]): r for r in rows}
    mix = by[("90/10", "EN2")]
    spec = json.loads(done.query("SELECT spec FROM runs WHERE name = '90/10'").rows[0][0])
    from engine.config.spec import RunSpec

    assert mix["tokens_seen"] == RunSpec.from_dict(spec).marginal_tokens()["EN2"]
    assert by[("90/10", "EN1")]["tokens_seen"] + mix["tokens_seen"] == mix["total_tokens"]
    # a baseline against its own law: TEff is 1 up to the fit's residual
    base = by[("mono EN1 50%", "EN1")]
    assert base["teff"] == pytest.approx(1.0, rel=0.35)
    assert all(r["teff_status"] in ("inside", "above", "below", "impossible") for r in rows)


def test_alignment_tables_filled_for_multilingual_runs_only(done):
    layers = done.query("""SELECT r.name, count(*) FROM align_hidden h JOIN runs r USING (run_id)
                           GROUP BY ALL ORDER BY 1""").rows
    assert layers == [("50/50", 2), ("90/10", 2)]  # embedding + one block (cpu-xxs)
    mats = done.query("SELECT DISTINCT matrix FROM align_embeddings ORDER BY 1").rows
    assert mats == [("input",), ("output",)]
    sims = done.query("SELECT min(similarity), max(similarity), count(DISTINCT tensor) FROM align_gradients").rows[0]
    assert -1 <= sims[0] <= sims[1] <= 1 and sims[2] >= 8


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_report_formats(done, fmt):
    result = runner.invoke(app, ["report", "sci", "--db", str(done.db_path), "--format", fmt])
    assert result.exit_code == 0, result.output
    out = result.output
    if fmt == "json":
        data = json.loads(out)
        names = [r["name"] for r in data["runs"]]
        assert {"90/10", "50/50", "mono EN1 100%"} <= set(names)
        assert [t["title"].split(" (")[0] for t in data["tables"]][:2] == [
            "Perplexity and token efficiency",
            "Hidden-state similarity per layer",
        ]
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("run,type,tokens,p(EN1),p(EN2),PPL EN1,PPL EN2,TEff EN1,TEff EN2")
    elif fmt == "markdown":
        assert "| 90/10 | multi |" in out and "scaling law" in out
    else:
        assert "Table 2 layout" in out


def test_report_figures(done, tmp_path):
    result = runner.invoke(app, ["report", "sci", "--db", str(done.db_path), "--figures", str(tmp_path)])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["embedding_similarity.png", "hidden_similarity.png", "ppl_teff_vs_ratio.png", "scaling_laws.png"]
    assert all((tmp_path / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_report_unknown_experiment(done):
    result = runner.invoke(app, ["report", "nope", "--db", str(done.db_path)])
    assert result.exit_code == 2 and "sci" in result.output


def test_an_edited_spec_leaves_its_old_runs_out_of_the_report(done, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(done.db_path.parent, folder)
    toml = folder / "experiments.toml"
    toml.write_text(
        toml.read_text()
        .replace("EN1 = [90], EN2 = [10]", "EN1 = [80], EN2 = [20]")
        .replace('name = "90/10"', 'name = "80/20"')
    )
    db = folder / "sci.duckdb"
    result = runner.invoke(app, ["run", str(toml), "--db", str(db), "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 to run" in result.output
    data = json.loads(runner.invoke(app, ["report", "sci", "--db", str(db), "--format", "json"]).output)
    names = {r["name"] for r in data["runs"]}
    assert "80/20" in names and "90/10" not in names
    store = Store(db)
    assert store.query("SELECT count(*) FROM runs WHERE name = '90/10'").rows[0][0] == 1  # kept, not reported
    teff_names = {r[0] for r in store.query("SELECT DISTINCT r.name FROM teff JOIN runs r USING (run_id)").rows}
    assert "90/10" not in teff_names and "80/20" in teff_names


def test_trained_runs_have_intervals_and_compare(done):
    """The real pipeline (trained runs, fitted law) fills the intervals: TEff from the law's
    bootstrap, one seed without a seed interval, and --compare pairs the schedules."""
    (fit,) = done.query("SELECT bootstrap FROM scaling_fits").rows[0]
    boot = json.loads(fit) if isinstance(fit, str) else fit
    assert boot["df"] == 1 and len(boot["params"]) > 150  # 3 baselines, 2 parameters
    rows = done.query("SELECT teff, teff_lo, teff_hi FROM teff WHERE teff IS NOT NULL").rows
    assert rows and all(lo <= t <= hi for t, lo, hi in rows)
    texts = dict(done.query("SELECT name || ' ' || measure || ' ' || language, text FROM summary").rows)
    assert texts["90/10 ppl EN2"].endswith(" n=1") and "[" not in texts["90/10 ppl EN2"]
    result = runner.invoke(
        app, ["report", "sci", "--db", str(done.db_path), "--compare", "90/10", "50/50", "-f", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert "TEff EN2" in result.output and "n=1: no verdict" in result.output


def _copy(done, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(done.db_path.parent, folder)
    return folder / "experiments.toml", folder / "sci.duckdb"


def _run(toml, db) -> str:
    result = runner.invoke(app, ["run", str(toml), "--db", str(db), "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _report(db, experiment: str) -> dict:
    result = runner.invoke(app, ["report", experiment, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_run_is_what_it_computes_another_or_renamed_experiment_trains_nothing(done, tmp_path):
    toml, db = _copy(done, tmp_path)
    text = toml.read_text()
    renamed = text.replace("experiments.sci", "experiments.renamed")
    toml.write_text(renamed + "\n" + renamed.replace("experiments.renamed", "experiments.again"))
    assert "0 to run, 5 finished" in _run(toml, db)
    store = Store(db)
    assert store.query("SELECT count(*) FROM runs").rows[0][0] == 5  # one folder per run, whoever asked
    members = store.query("SELECT experiment, count(*) FROM member_runs GROUP BY 1 ORDER BY 1").rows
    assert members == [("again", 5), ("renamed", 5), ("sci", 5)]  # one run, three experiments
    for name in ("renamed", "again"):
        report = _report(db, name)
        assert {"50/50", "90/10", "mono EN1 25%"} <= {r["name"] for r in report["runs"]}
    from db.queries import dashboard_delta

    delta = dashboard_delta(store, {}, {}, 8)
    assert {tuple(r["experiments"]) for r in delta.runs} == {("again", "renamed", "sci")}  # listed under each
    (mix,) = [r for r in _report(db, "again")["runs"] if r["name"] == "90/10"]
    assert mix["teff_value"]["EN2"] is not None  # the law and TEff of an experiment that trained nothing


def _make_legacy(run_dir) -> None:
    """The folder today's code made before ids hashed content: named, and logged, by ``legacy_run_id``."""
    from engine.config.spec import RunSpec, legacy_run_id

    spec_path = run_dir / "spec.json"
    spec = RunSpec.from_json(spec_path.read_text())
    old = legacy_run_id(spec)
    raw = json.loads(spec_path.read_text()) | {"run_id": old}
    spec_path.write_text(json.dumps(raw, indent=2))
    log = run_dir / "events.jsonl"
    lines = [json.loads(line) | {"run_id": old} for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps(e) + "\n" for e in lines))
    run_dir.rename(run_dir.with_name(old))


def test_run_folders_from_before_content_ids_keep_their_results(done, tmp_path):
    toml, db = _copy(done, tmp_path)
    from engine.runs.layout import runs_dir

    runs = runs_dir(db)
    new_ids = sorted(p.name for p in runs.iterdir())
    for run_dir in list(runs.iterdir()):
        _make_legacy(run_dir)
    db.unlink()  # the database is a cache: rebuilt from the folders
    assert "0 to run, 5 finished" in _run(toml, db)
    assert set(new_ids).isdisjoint(p.name for p in runs.iterdir())  # nothing new was made
    report = _report(db, "sci")
    assert {"50/50", "90/10", "mono EN1 100%"} <= {r["name"] for r in report["runs"]}
    assert Store(db).query("SELECT count(*) FROM teff WHERE teff IS NOT NULL").rows[0][0] > 0
