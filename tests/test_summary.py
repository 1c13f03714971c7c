"""Results over seeds, end to end through the database: the `summary` table, the report's
cells, the TEff intervals in `teff`, and `xling report --compare`, on run folders with
three seeds (tests/tui/fixture_db.py's synthetic runs: no training)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from db.paired import paired_comparison
from db.store import Store
from db.summary import experiment_summary
from tests.tui.fixture_db import TEFF, build_fixture_db
from xling_tui.cli.main import app
from xling_tui.report import build_comparison, build_report

runner = CliRunner()

SEEDS_CONFIG = """\
[defaults]
model = "cpu-xs"
seeds = [0, 1, 2]
scaling_law = "power"

[defaults.train]
batch_size = 32
context = 128
log_every = 10

[defaults.eval]
every = 0.5

[experiments.seeds]
languages = ["EN1", "EN2"]
tokens = 2_457_600
baselines = [1.0, 0.5, 0.25, 0.1]

[[experiments.seeds.schedules]]
name = "50/50"
mix = { EN1 = [50], EN2 = [50] }

[[experiments.seeds.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return Store(build_fixture_db(tmp_path_factory.mktemp("seeds"), SEEDS_CONFIG, "seeds", probes=True))


def rows(store: Store, sql: str) -> list[dict]:
    return store.query(sql).dicts()


def test_summary_table_has_a_row_per_schedule_language_and_measure(store):
    got = rows(store, "SELECT name, measure, language, detail, n, mean, lo, hi, seeds, scale FROM summary")
    keys = {(r["name"], r["measure"], r["language"], r["detail"]) for r in got}
    assert len(keys) == len(got)  # one row per key
    assert {("90/10", "ppl", "EN2", ""), ("90/10", "teff", "EN2", ""), ("mono EN1 10%", "ppl", "EN1", "")} <= keys
    assert ("50/50", "embedding_similarity", "EN1–EN2", "input") in keys
    assert ("50/50", "hidden_similarity", "EN1–EN2", "2") in keys
    assert ("90/10", "gradient_similarity", "EN1–EN2", "mean") in keys
    assert ("90/10", "probe_accuracy", "EN2", "builtin:synthetic (fine-tuned in EN1)") in keys
    for r in got:
        assert r["n"] == 3 and r["seeds"] == [0, 1, 2]
        assert r["lo"] <= r["mean"] <= r["hi"]
        assert r["scale"] == ("log" if r["measure"] in ("ppl", "teff") else "linear")


def test_ppl_is_the_geometric_mean_with_a_log_t_interval(store):
    (r,) = rows(store, "SELECT * FROM summary WHERE name = '90/10' AND measure = 'ppl' AND language = 'EN2'")
    values = r["seed_values"]
    assert r["mean"] == pytest.approx(math.exp(sum(map(math.log, values)) / 3))
    logs = [math.log(v) for v in values]
    sd = math.sqrt(sum((x - sum(logs) / 3) ** 2 for x in logs) / 2)
    assert math.log(r["hi"] / r["mean"]) == pytest.approx(4.302653 * sd / math.sqrt(3), rel=1e-5)  # t(2)
    assert r["text"] == f"{r['mean']:.1f} [{r['lo']:.1f}, {r['hi']:.1f}] n=3"
    assert r["method"] == "t, log scale"


def test_teff_interval_includes_the_law_error(store):
    (r,) = rows(store, "SELECT * FROM summary WHERE name = '90/10' AND measure = 'teff' AND language = 'EN2'")
    assert r["method"] == "t, log scale + law bootstrap"
    assert r["mean"] == pytest.approx(TEFF["90/10"]["EN2"], rel=0.1)
    assert r["lo"] < TEFF["90/10"]["EN2"] < r["hi"]
    logs = [math.log(v) for v in r["seed_values"]]
    seed_se = math.sqrt(sum((x - sum(logs) / 3) ** 2 for x in logs) / 2) / math.sqrt(3)
    # the law's error adds to the seeds' (its degrees of freedom may lower the t quantile below t(2))
    assert math.log(r["hi"] / r["mean"]) > 1.96 * seed_se


def test_every_teff_row_has_the_law_interval(store):
    got = rows(
        store, "SELECT teff, teff_lo, teff_hi, mlte, mlte_lo, mlte_hi, mlpe, mlpe_lo, mlpe_hi, law_wide FROM teff"
    )
    assert got
    for r in got:
        assert r["teff_lo"] < r["teff"] < r["teff_hi"]
        assert r["mlte_lo"] < r["mlte"] < r["mlte_hi"]
        assert r["mlpe_lo"] < r["mlpe"] < r["mlpe_hi"]
        assert r["law_wide"] == (r["teff_hi"] / r["teff_lo"] > 2)
    fit = rows(store, "SELECT bootstrap FROM scaling_fits")[0]["bootstrap"]
    boot = json.loads(fit) if isinstance(fit, str) else fit
    assert boot["df"] == 12 - 2 and len(boot["params"]) == 200


def test_report_cells_are_the_summary_tables(store):
    """A notebook reading `summary` gets the same numbers the report prints."""
    report = build_report(store, "seeds")
    table = {(r.name, r.measure, r.language, r.detail): r.text for r in experiment_summary(store, "seeds")}
    stored = {
        (r["name"], r["measure"], r["language"], r["detail"]): r["text"] for r in rows(store, "SELECT * FROM summary")
    }
    assert table == stored
    main = report.tables[0]
    by_name = {row[0]: dict(zip(main.columns, row)) for row in main.rows}
    assert by_name["90/10"]["PPL EN2"] == stored[("90/10", "ppl", "EN2", "")]
    assert by_name["90/10"]["TEff EN2"] == stored[("90/10", "teff", "EN2", "")]
    assert by_name["90/10"]["TEff EN2"].endswith(" n=3") and "[" in by_name["90/10"]["TEff EN2"]
    hidden = next(t for t in report.tables if t.title.startswith("Hidden-state"))
    assert hidden.rows[0][2] == stored[(hidden.rows[0][0], "hidden_similarity", "EN1–EN2", "0")]
    run = next(r for r in report.runs if r.name == "90/10")
    assert run.ppl_interval["EN2"][0] < run.ppl["EN2"] < run.ppl_interval["EN2"][1]
    assert any("95% interval" in n for n in report.notes)
    probe = next(t for t in report.tables if t.title.startswith("Downstream probe"))
    assert probe.columns == ["run", "task", "fine-tuned in", "acc EN1", "acc EN2", "chance"]
    row = next(r for r in probe.rows if r[0] == "90/10")
    assert row[1:3] == ["builtin:synthetic", "EN1"]
    assert row[4] == stored[("90/10", "probe_accuracy", "EN2", "builtin:synthetic (fine-tuned in EN1)")]


def test_paired_comparison_resolves_a_shared_seed_effect(store):
    cmp = paired_comparison(store, "seeds", "90/10", "50/50")
    by = {(r.measure, r.language, r.detail): r for r in cmp.rows}
    teff = by[("teff", "EN2", "")]
    assert teff.verdict == "better" and teff.n == 3 and teff.lo > 0
    assert math.exp(teff.mean) == pytest.approx(TEFF["90/10"]["EN2"] / TEFF["50/50"]["EN2"], rel=0.1)
    assert by[("ppl", "EN2", "")].verdict == "worse"  # 10% of the data: higher PPL than at 50%
    assert by[("ppl", "EN1", "")].verdict == "better"
    assert by[("gradient_similarity", "EN1–EN2", "mean")].verdict == "higher"
    assert by[("embedding_similarity", "EN1–EN2", "input")].verdict == "higher"
    assert by[("probe_accuracy", "EN2", "builtin:synthetic (fine-tuned in EN1)")].verdict == "better"
    assert [r.measure for r in cmp.rows][:4] == ["ppl", "ppl", "teff", "teff"]
    assert not cmp.notes


def test_paired_comparison_says_when_it_cannot_tell():
    """Seeds that disagree: no verdict at n=3, and how many seeds would settle it."""
    from db.paired import compare_observations, needed_text
    from db.summary import Observation

    a = [Observation("A", "mix", s, "ppl", "EN2", "", v) for s, v in enumerate([200.0, 260.0, 215.0])]
    b = [Observation("B", "mix", s, "ppl", "EN2", "", v) for s, v in enumerate([230.0, 235.0, 250.0])]
    (row,) = compare_observations("x", a + b, {}, "A", "B").rows
    assert row.verdict == "not distinguishable at n=3" and row.lo < 0 < row.hi
    assert row.seeds_needed is not None and row.seeds_needed > 3
    assert needed_text(row) == str(row.seeds_needed)
    assert row.a == "223.6 [159.7, 313.1] n=3"  # geometric mean, t(2) on log values


def test_report_compare_cli(store):
    db = str(store.db_path)
    result = runner.invoke(app, ["report", "seeds", "--db", db, "--compare", "90/10", "50/50", "-f", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| TEff EN2 |" in result.output and "| better |" in result.output
    as_json = json.loads(
        runner.invoke(app, ["report", "seeds", "--db", db, "--compare", "90/10", "50/50", "-f", "json"]).output
    )
    assert as_json["comparison"]["a"] == "90/10" and as_json["comparison"]["rows"]
    csv = runner.invoke(app, ["report", "seeds", "--db", db, "--compare", "90/10", "50/50", "-f", "csv"]).output
    assert csv.splitlines()[0] == "measure,90/10,50/50,A vs B (95%),verdict,seeds to resolve"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seeds", "--compare", "90/10", "70/30"], "no finished schedule named '70/30'"),
        (["seeds", "--compare", "90/10", "90/10"], "two different schedules"),
        (["--compare", "90/10", "50/50"], "needs the experiment"),
    ],
)
def test_report_compare_bad_names_exit_2(store, args, message):
    result = runner.invoke(app, ["report", *args, "--db", str(store.db_path)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_one_seed_compares_without_a_verdict(tmp_path):
    store = Store(build_fixture_db(tmp_path))
    cmp = build_comparison(store, "table1", "90/10", "50/50").comparison
    assert cmp is not None and all(r.n == 1 and r.verdict == "n=1: no verdict" for r in cmp.rows)


def test_status_shows_schedules_over_seeds(store, tmp_path):
    result = runner.invoke(app, ["status", "--db", str(store.db_path)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "over seeds" in result.output
    (r,) = rows(store, "SELECT text FROM summary WHERE name = '90/10' AND measure = 'teff' AND language = 'EN2'")
    assert f"EN2 {r['text']}" in result.output
    one_seed = runner.invoke(app, ["status", "--db", str(build_fixture_db(tmp_path))], env={"COLUMNS": "160"})
    assert one_seed.exit_code == 0 and "over seeds" not in one_seed.output  # the run table says it all


def test_a_failing_summary_keeps_the_laws_and_teff(tmp_path, monkeypatch):
    import db.summary

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a summary")

    monkeypatch.setattr(db.summary, "summarise_observations", broken)
    store = Store(build_fixture_db(tmp_path))
    assert store.query("SELECT count(*) FROM teff").rows[0][0] > 0
    assert store.query("SELECT count(*) FROM scaling_fits WHERE error IS NULL").rows[0][0] == 1
    assert store.query("SELECT count(*) FROM summary").rows[0][0] == 0


def _teff(seed: int, value: float | None, status: str, mark: str | None = None):
    from db.summary import Observation

    return Observation("90/10", "mix", seed, "teff", "EN2", "", value, status=status, mark=mark)


def test_extrapolated_and_impossible_teff_keep_their_marks_over_seeds():
    from db.summary import summarise_group

    above = summarise_group(
        "x", [_teff(0, 2.0, "inside"), _teff(1, 2.4, "above", ">2.40"), _teff(2, 2.2, "inside")], {}
    )
    assert above.text.startswith(">") and above.n == 3 and ">" in above.flags
    below = summarise_group("x", [_teff(0, 0.5, "below", "<0.50"), _teff(1, 0.6, "inside")], {})
    assert below.text.startswith("<") and below.flags == "<"
    # a seed below the law's asymptote has no TEff: left out of the mean, and the cell says so
    impossible = summarise_group(
        "x", [_teff(0, 1.5, "inside"), _teff(1, None, "impossible"), _teff(2, 1.7, "inside")], {}
    )
    assert impossible.n == 2 and impossible.text.endswith("*") and "*" in impossible.flags
    one = summarise_group("x", [_teff(0, 2.4, "above", ">2.40")], {})
    assert one.text == ">2.40 n=1"  # a single extrapolated run keeps the paper's mark
    plain = summarise_group("x", [_teff(0, 2.0, "inside"), _teff(1, 2.1, "inside")], {})
    assert plain.flags == "" and plain.text[0].isdigit()
