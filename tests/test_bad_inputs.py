"""Bad and hostile experiments files (issue 11, items 3, 4, 5, 11, 12, 13).

Each gets one located message (file:line: field: what), exit code 2, no traceback,
and nothing queued: no run folder, no "queued" run left behind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config.locate import SpecError
from engine.config.spec import Experiment, check_inputs, load_experiments
from engine.launch.preflight import check_memory, locate_in
from engine.launch.queue import write_experiment
from xling_tui.cli.main import app

runner = CliRunner()

BASE = """\
[experiments.x]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 100_000
baselines = [1.0]
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32 }}
"""
SCHEDULE = """
[[experiments.x.schedules]]
name = "{name}"
mix = {{ EN1 = [{a}], EN2 = [{b}] }}
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "experiments.toml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        check_inputs(load_experiments(path))
    return str(info.value)


def run_cli(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def nothing_queued(db: Path) -> bool:
    """No run folder was made, so no run sits "queued" with no worker to take it."""
    runs = db.with_name(db.stem + ".runs") / "runs"
    return not runs.exists() or not any(runs.iterdir())


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# -- item 3: experiment names never become paths ------------------------------------------


@pytest.mark.parametrize(
    "name", ["../../../x", "/abs/path/victim", "a/b", "", "a\\u0000b", ".", "..", ".hidden", "a\\\\b", "line\\nbreak"]
)
def test_a_name_that_is_not_a_file_name_is_a_located_error(tmp_path, tiny_corpus, name):
    text = BASE.format(corpus=tiny_corpus).replace("[experiments.x]", f'\n[experiments."{name}"]')
    msg = error_of(write(tmp_path, text))
    assert re.match(rf"{re.escape(str(tmp_path / 'experiments.toml'))}:2: ", msg), msg
    assert "cannot be an experiment name" in msg


def test_run_with_a_hostile_name_writes_nothing_anywhere(tmp_path, tiny_corpus):
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    text = BASE.format(corpus=tiny_corpus).replace("[experiments.x]", '[experiments."../../../victim"]')
    toml = write(work, text)
    before = files_under(tmp_path)
    result = run_cli("run", str(toml), "--db", str(work / "r.duckdb"), "--device", "cpu")
    assert result.exit_code == 2 and "cannot be an experiment name" in result.output
    assert files_under(tmp_path) == before and victim.read_text() == "precious"


def test_the_queue_refuses_an_unchecked_name_too(tmp_path, tiny_corpus):
    (exp,) = load_experiments(write(tmp_path, BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10)))
    hostile = Experiment("../../escaped", exp.config, exp.source, exp.runs)
    with pytest.raises(ValueError, match="cannot be an experiment name"):
        write_experiment(tmp_path / "r.runs", hostile)
    assert not (tmp_path / "escaped.json").exists()


def test_report_figures_never_use_a_stored_name_as_a_path(tmp_path, tiny_corpus):
    """A run folder's experiments/*.json is not trusted either: its name goes into the
    database, and `xling report --figures` must not make it a folder."""
    from db.store import Store

    store = Store(tmp_path / "r.duckdb")
    folder = store.root / "experiments"
    folder.mkdir(parents=True)
    for i, name in enumerate(["ok", "../../../evil"]):
        (folder / f"e{i}.json").write_text(json.dumps({"name": name, "run_ids": []}))
    store.ingest()
    result = run_cli("report", "--db", str(store.db_path), "--figures", str(tmp_path / "figs"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path.parent.parent / "evil").exists() and not (tmp_path / "evil").exists()
    assert "cannot be an experiment name" in result.output


# -- item 4: one name, one run ----------------------------------------------------------


def test_two_schedules_with_one_name_are_a_located_error(tmp_path, tiny_corpus):
    text = (
        BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10) + SCHEDULE.format(name="s", a=50, b=50)
    )
    msg = error_of(write(tmp_path, text))
    assert "experiments.toml:14:" in msg and "schedules[1].name" in msg and "already the name of schedules[0]" in msg


def test_one_mix_under_two_names_is_a_located_error_not_a_phantom_run(tmp_path, tiny_corpus):
    text = (
        BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="a", a=90, b=10) + SCHEDULE.format(name="b", a=90, b=10)
    )
    msg = error_of(write(tmp_path, text))
    assert "experiments.toml:15:" in msg and "('b') is the same run as schedules[0] ('a')" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("baselines = [1.0]", "baselines = [1.0, 0.5, 1.0]"), "baseline fraction 1 is listed twice"),
        (("baselines = [1.0]", "baselines = [1.0]\nseeds = [0, 3, 3]"), "seed 3 is listed twice"),
        (('name = "s"', 'name = "mono EN1 100%"'), "is the name of a baseline run"),
    ],
)
def test_repeated_runs_are_located_errors(tmp_path, tiny_corpus, change, expected):
    text = (BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10)).replace(*change)
    msg = error_of(write(tmp_path, text))
    assert expected in msg and re.search(r"experiments\.toml:\d+: ", msg)


# -- item 5: paths relative to the experiments file; inputs exist before queueing -------------


def test_a_relative_cloned_corpus_resolves_against_the_experiments_file(tmp_path, tiny_corpus, monkeypatch):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "en.txt").write_text(tiny_corpus.read_text())
    toml = write(project, BASE.format(corpus="data/en.txt") + SCHEDULE.format(name="s", a=90, b=10))
    monkeypatch.chdir(tmp_path)  # the user's shell is elsewhere
    (exp,) = load_experiments(toml)
    check_inputs([exp])
    assert {r.data.corpus for r in exp.runs} == {str(project / "data" / "en.txt")}


def test_a_missing_corpus_is_one_located_error_and_nothing_is_queued(tmp_path, tiny_corpus):
    toml = write(tmp_path, BASE.format(corpus="data/missing-*.txt") + SCHEDULE.format(name="s", a=90, b=10))
    msg = error_of(toml)
    assert "experiments.toml:6: experiments.x.data.corpus: no file matches" in msg
    assert str(tmp_path / "data" / "missing-*.txt") in msg
    db = tmp_path / "r.duckdb"
    result = run_cli("run", str(toml), "--db", str(db), "--device", "cpu")
    assert result.exit_code == 2 and "no file matches" in result.output and result.output.count("error:") == 1
    assert nothing_queued(db)


def test_missing_real_corpora_parallel_and_probe_files_are_located(tmp_path, tiny_corpus):
    text = f"""\
[experiments.r]
languages = ["EN", "FR"]
model = "cpu-xxs"
tokens = 100_000
baselines = [1.0]
train = {{ batch_size = 8, context = 32 }}

[experiments.r.data]
kind = "real"
vocab_size = 256
parallel = {{ path = "pairs.tsv" }}
corpora.EN = {{ path = "{tiny_corpus}" }}
corpora.FR = {{ path = "{tiny_corpus}" }}
"""
    msg = error_of(write(tmp_path, text))
    assert "experiments.toml:11: experiments.r.data.parallel.path: no such file: " in msg
    assert str(tmp_path / "pairs.tsv") in msg
    text = text.replace('path = "pairs.tsv"', f'path = "{tiny_corpus}"').replace(
        f'FR = {{ path = "{tiny_corpus}"', 'FR = { path = "fr/*.txt"'
    )
    assert "experiments.toml:13: experiments.r.data.corpora.FR.path: no file matches" in error_of(write(tmp_path, text))


# -- item 11: no tracebacks on unreadable inputs -----------------------------------------------


def test_binary_and_utf16_files_are_located_errors(tmp_path):
    msg = error_of(write(tmp_path, b"[experiments.x]\nlanguages = [\xff\xfe]\n"))
    assert msg.startswith(f"{tmp_path / 'experiments.toml'}:2: not UTF-8")
    msg = error_of(write(tmp_path, "[experiments.x]\n".encode("utf-16")))
    assert msg.startswith(f"{tmp_path / 'experiments.toml'}:1: ") and "UTF-16" in msg
    result = run_cli("run", str(tmp_path / "experiments.toml"), "--db", str(tmp_path / "r.duckdb"))
    assert result.exit_code == 2 and "UTF-16" in result.output


def test_a_toml_syntax_error_gets_its_line(tmp_path, tiny_corpus):
    msg = error_of(write(tmp_path, BASE.format(corpus=tiny_corpus).replace("tokens = 100_000", "tokens = = 1")))
    assert msg.startswith(f"{tmp_path / 'experiments.toml'}:4: not valid TOML")


@pytest.mark.parametrize("kind", ["folder", "not duckdb", "another program's duckdb"])
def test_a_db_that_is_not_a_results_database_is_exit_2_for_every_command(tmp_path, tiny_toml, kind):
    import duckdb

    db = tmp_path / "odd.duckdb"
    if kind == "folder":
        db.mkdir()
    elif kind == "not duckdb":
        db.write_text("hello")
    else:
        con = duckdb.connect(str(db))
        con.execute("CREATE TABLE theirs (a INT)")
        con.close()
    for args in (["sql", "SELECT 1"], ["status"], ["report"], ["run", str(tiny_toml), "--device", "cpu"]):
        result = run_cli(*args, "--db", str(db))
        assert result.exit_code == 2, (args, result.output)
        assert str(db) in result.output.replace("\n", "")
    assert nothing_queued(db)


def test_empty_sql_is_exit_2(tmp_path):
    from db.store import Store

    Store(tmp_path / "r.duckdb").ingest()
    result = run_cli("sql", "", "--db", str(tmp_path / "r.duckdb"))
    assert result.exit_code == 2 and "no SQL statement" in result.output


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"experiment": "x"}', '{"run_id": 5}'])
def test_a_damaged_spec_json_on_resume_is_exit_2_naming_the_file(tmp_path, damage):
    run = tmp_path / "r.runs" / "runs" / "abc123"
    run.mkdir(parents=True)
    (run / "spec.json").write_text(damage)
    result = run_cli("resume", "abc123", "--db", str(tmp_path / "r.duckdb"), "--device", "cpu")
    assert result.exit_code == 2 and str(run / "spec.json") in result.output.replace("\n", "")
    failed = run_cli("resume", "--failed", "--db", str(tmp_path / "r.duckdb"), "--device", "cpu")
    assert failed.exit_code == 0 and "skipped" in failed.output  # one damaged folder does not stop the rest


# -- item 12: values that cannot work are refused before queueing ----------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("tokens = 100_000", "tokens = 1e15"), "experiments.x.tokens"),
        (("batch_size = 8", "batch_size = 1e9"), "experiments.x.train.batch_size"),
        (("context = 32", "context = 1e8"), "experiments.x.train.context"),
    ],
)
def test_sizes_beyond_memory_are_refused_naming_the_field(tmp_path, tiny_corpus, change, field):
    text = (BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10)).replace(*change)
    if "tokens = 1e15" not in text:  # a budget of many such batches, so only memory is in the way
        text = text.replace("tokens = 100_000", "tokens = 1e12")
    toml = write(tmp_path, text)
    db = tmp_path / "r.duckdb"
    result = run_cli("run", str(toml), "--db", str(db), "--device", "cpu")
    assert result.exit_code == 2, result.output
    assert re.search(rf"experiments\.toml:\d+: {re.escape(field)}: .* cannot fit in memory", result.output)
    assert nothing_queued(db)


def test_memory_is_checked_against_the_machine_given(tmp_path, tiny_corpus):
    exps = load_experiments(write(tmp_path, BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10)))
    specs = [r for e in exps for r in e.runs]
    check_memory(specs, locate_in(exps), host_bytes=2**30)  # a tiny model fits in 1 GiB
    with pytest.raises(SpecError, match="cannot fit in memory"):
        check_memory(specs, locate_in(exps), host_bytes=2**10)
    with pytest.raises(SpecError, match="cannot fit on the GPU"):
        check_memory(specs, locate_in(exps), host_bytes=2**40, device_bytes=2**10)


def test_a_context_longer_than_the_corpus_is_refused_before_queueing(tmp_path, tiny_corpus):
    text = (BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10)).replace(
        "context = 32", "context = 400_000"
    )
    toml = write(tmp_path, text.replace("tokens = 100_000", "tokens = 40_000_000"))
    db = tmp_path / "r.duckdb"
    result = run_cli("run", str(toml), "--db", str(db), "--device", "cpu")
    out = result.output
    assert result.exit_code == 2 and "experiments.toml:7: experiments.x.train.context: context 400000" in out, out
    assert "longer than the training text" in out
    assert nothing_queued(db)


def test_a_data_error_leaves_no_run_queued(tmp_path):
    (tmp_path / "tiny.txt").write_text("too small\n")
    toml = write(tmp_path, BASE.format(corpus="tiny.txt") + SCHEDULE.format(name="s", a=90, b=10))
    db = tmp_path / "r.duckdb"
    result = run_cli("run", str(toml), "--db", str(db), "--device", "cpu")
    assert result.exit_code == 2 and "experiments.toml:6: experiments.x.data.corpus:" in result.output
    assert nothing_queued(db)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("tokens = 100_000", "tokens = 2_000"),
            "experiments.toml:4: experiments.x.tokens: 's' would train",
        ),
        (("baselines = [1.0]", "baselines = [5.0]"), "experiments.toml:5: experiments.x.baselines: baseline fractions"),
        (("baselines = [1.0]", "baselines = [1.0, 0.001]"), "at least 10 steps: give tokens ≥ 2,560,000"),
        (("baselines = [1.0]", "baselines = [1.0]\nseeds = [-1]"), "experiments.x.seeds: seeds are integers"),
        (("batch_size = 8", "batch_size = 1e9"), "experiments.toml:7: experiments.x.train.batch_size: one batch"),
        (("context = 32", "context = 1e8"), "experiments.toml:7: experiments.x.train.context: one batch"),
    ],
)
def test_budgets_and_fractions_that_cannot_work_are_located(tmp_path, tiny_corpus, change, expected):
    text = (BASE.format(corpus=tiny_corpus) + SCHEDULE.format(name="s", a=90, b=10)).replace(*change)
    assert expected in error_of(write(tmp_path, text))


# -- item 13: messages --------------------------------------------------------------------


def test_bracketed_text_survives_in_messages(tmp_path):
    empty = write(tmp_path, "# nothing yet\n")
    result = run_cli("run", str(empty), "--db", str(tmp_path / "r.duckdb"))
    assert result.exit_code == 2 and "[experiments.NAME]" in result.output
    typo = write(tmp_path, '[experiment.x]\nlanguages = ["EN1"]\n')
    result = run_cli("run", str(typo), "--db", str(tmp_path / "r.duckdb"))
    out = result.output
    assert "experiments.toml:1:" in out and "'experiment' (did you mean 'experiments'?)" in out
    assert "[defaults], [experiments.NAME] and [cluster.slurm|ray]" in out


def test_a_misspelt_required_field_is_named_with_a_suggestion(tmp_path, tiny_corpus):
    msg = error_of(write(tmp_path, BASE.format(corpus=tiny_corpus).replace("tokens = ", "tokns = ")))
    assert "experiments.toml:4: experiments.x.tokns: unknown field 'tokns' (did you mean 'tokens'?)" in msg


def test_a_typo_in_defaults_is_reported_at_its_own_line(tmp_path, tiny_corpus):
    text = '[defaults]\nseeds = [0]\nmodle = "cpu-xs"\n\n' + BASE.format(corpus=tiny_corpus)
    msg = error_of(write(tmp_path, text))
    assert "experiments.toml:3: defaults.modle: unknown field 'modle' (did you mean 'model'?)" in msg
    nested = "[defaults.train]\nwarmup = 4\nbatch_sise = 4\n\n" + BASE.format(corpus=tiny_corpus)
    msg = error_of(write(tmp_path, nested))
    assert (
        "experiments.toml:3: defaults.train.batch_sise: unknown field 'batch_sise' (did you mean 'batch_size'?)" in msg
    )
    bad_value = "[defaults]\nseeds = [0]\nscaling_law = 'cubic'\n\n" + BASE.format(corpus=tiny_corpus)
    assert "experiments.toml:3: defaults.scaling_law: " in error_of(write(tmp_path, bad_value))
