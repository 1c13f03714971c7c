"""The results store: bulk ingest from run folders, and DuckDB's one-writer lock.

Run folders are written with the real ``engine.runs.events.EventLog``; the lock tests use
separate processes because DuckDB's lock is per process, which is the case that
matters (a worker, the TUI and a user's duckdb shell are separate processes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db import queries
from db.store import SCHEMA_VERSION, TABLES, QueryError, Store, StoreBusy, StoreError
from engine.runs.events import EvalResult, EventLog, Heartbeat, Queued, Started, Status, TrainMetric
from engine.runs.layout import EVENTS_FILE, SPEC_FILE
from engine.runs.status import RunStatus

T0 = 1_700_000_000.0
DATA_TABLES = ("experiments", "runs", "train_metrics", "evals", "ingest_state")


# -- helpers -------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "results.duckdb")


def make_run(store: Store, run_id: str, experiment: str = "exp", **spec: Any) -> Path:
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    full = {
        "run_id": run_id,
        "experiment": experiment,
        "name": run_id,
        "kind": "mix",
        "seed": 0,
        "model": "tiny",
        "languages": ["EN1", "EN2"],
        "total_steps": 100,
        "total_tokens": 10_000,
        "mix": {"EN1": 0.9, "EN2": 0.1},
    }
    full.update(spec)
    (run_dir / SPEC_FILE).write_text(json.dumps(full))
    return run_dir


def train(run_id: str, step: int, loss: float | None = None) -> TrainMetric:
    loss = 5.0 - step / 100 if loss is None else loss
    return TrainMetric(
        run_id, step, step * 100, 1e-3, loss, {"EN1": loss - 0.1, "EN2": loss + 0.1}, 1e4, time=T0 + step
    )


def evaluation(run_id: str, step: int, language: str, ppl: float) -> EvalResult:
    return EvalResult(run_id, step, step * 100, language, 4.0, ppl, 3.0, 0.3, 1000, time=T0 + step + 0.5)


def count(store: Store, table: str) -> int:
    return store.query(f"SELECT count(*) FROM {table}").rows[0][0]


def counts(store: Store) -> dict[str, int]:
    return {t: count(store, t) for t in DATA_TABLES}


def dump(store: Store) -> dict[str, list[tuple]]:
    """Every data table in a canonical order, to compare two databases (one connection: fast)."""
    with store.connect(read_only=True, wait=10) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in DATA_TABLES}


def run_row(store: Store, run_id: str) -> dict[str, Any]:
    return store.query("SELECT * FROM runs WHERE run_id = ?", [run_id]).dicts()[0]


HOLD_LOCK = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "con.close()\n"
)


@contextmanager
def write_lock_held(db_path: Path, seconds: float) -> Iterator[None]:
    """Another process holding the file read-write, like a user's `duckdb results.duckdb`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.wait(timeout=30)


# -- schema ----------------------------------------------------------------------------


def test_schema_is_created_with_its_version(store: Store) -> None:
    stats = store.ingest()
    assert stats.events == 0 and store.db_path.exists()
    tables = store.query("SELECT table_name, comment FROM duckdb_tables() ORDER BY table_name").rows
    assert {t for t, _ in tables} == set(TABLES)
    assert all(comment for _, comment in tables)
    assert store.query("SELECT version FROM schema_version").rows == [(SCHEMA_VERSION,)]
    types = dict(
        store.query("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'train_metrics'").rows
    )
    assert types["lang_loss"] == "MAP(VARCHAR, DOUBLE)" and types["time"] == "TIMESTAMP"


def test_query_creates_a_missing_database(store: Store) -> None:
    assert store.query("SELECT count(*) FROM runs").rows == [(0,)]
    assert store.db_path.exists()


def test_a_database_from_a_newer_xling_is_refused(store: Store) -> None:
    store.ingest()
    with duckdb.connect(str(store.db_path)) as con:
        con.execute("UPDATE schema_version SET version = ?", [SCHEMA_VERSION + 1])
    for attempt in (store.ingest, lambda: store.query("SELECT 1")):
        with pytest.raises(StoreError, match="newer xling") as err:
            attempt()
        assert str(store.db_path) in str(err.value)


def test_a_database_from_an_older_xling_is_rebuilt(store: Store) -> None:
    make_run(store, "r1")
    with EventLog(store.run_dir("r1")) as log:
        log.emit(train("r1", 10))
    store.ingest()
    with duckdb.connect(str(store.db_path)) as con:
        con.execute("UPDATE schema_version SET version = 0")
        con.execute("DELETE FROM train_metrics")
    assert store.query("SELECT step FROM train_metrics").rows == [(10,)]
    assert store.query("SELECT version FROM schema_version").rows == [(SCHEMA_VERSION,)]


def test_a_foreign_database_is_refused(store: Store) -> None:
    with duckdb.connect(str(store.db_path)) as con:
        con.execute("CREATE TABLE something_else (x INTEGER)")
    with pytest.raises(StoreError, match="not an xling results database"):
        store.ingest()


# -- ingest ----------------------------------------------------------------------------


def test_ingest_is_idempotent(store: Store) -> None:
    make_run(store, "r1")
    with EventLog(store.run_dir("r1")) as log:
        log.emit(Queued("r1"))
        for step in range(0, 50, 10):
            log.emit(train("r1", step))
        log.emit(evaluation("r1", 40, "EN1", 100.0))
    first = store.ingest()
    assert (first.runs, first.events, first.train_rows, first.eval_rows) == (1, 7, 5, 1)
    before = dump(store)
    second = store.ingest()
    assert (second.runs, second.events, second.train_rows, second.eval_rows) == (0, 0, 0, 0)
    assert dump(store) == before


def test_incremental_ingest_adds_only_the_new_lines(store: Store) -> None:
    make_run(store, "r1")
    log = EventLog(store.run_dir("r1"))
    for step in range(3):
        log.emit(train("r1", step))
    assert store.ingest().train_rows == 3
    for step in range(3, 5):
        log.emit(train("r1", step))
    log.close()
    stats = store.ingest()
    assert (stats.events, stats.train_rows) == (2, 2)
    assert count(store, "train_metrics") == 5
    size = (store.run_dir("r1") / EVENTS_FILE).stat().st_size
    assert store.query("SELECT byte_offset FROM ingest_state").rows == [(size,)]


def test_a_partial_last_line_waits_until_it_is_complete(store: Store) -> None:
    make_run(store, "r1")
    with EventLog(store.run_dir("r1")) as log:
        log.emit(train("r1", 1))
    path = store.run_dir("r1") / EVENTS_FILE
    complete = path.stat().st_size
    line = json.dumps(asdict(train("r1", 2))) + "\n"
    with open(path, "a") as fh:
        fh.write(line[:25])
    assert store.ingest().train_rows == 1
    assert store.query("SELECT byte_offset FROM ingest_state").rows == [(complete,)]
    with open(path, "a") as fh:
        fh.write(line[25:])
    assert store.ingest().train_rows == 1
    assert store.query("SELECT step FROM train_metrics ORDER BY step").rows == [(1,), (2,)]


def test_run_folders_without_events_yet(store: Store) -> None:
    make_run(store, "spec_only")
    make_run(store, "empty_log")
    (store.run_dir("empty_log") / EVENTS_FILE).touch()
    store.run_dir("bare").mkdir(parents=True)  # a launcher is still creating it
    stats = store.ingest()
    assert (stats.runs, stats.events) == (2, 0)
    assert store.query("SELECT run_id, status FROM runs ORDER BY run_id").rows == [
        ("empty_log", None),
        ("spec_only", None),
    ]
    assert store.ingest().runs == 0
    assert {r["status"] for r in queries.run_status(store).dicts()} == {"queued"}


def test_malformed_lines_and_fields_do_not_block_ingest(store: Store) -> None:
    make_run(store, "r1")
    lines = [
        asdict(train("r1", 1)),
        {"kind": "train", "run_id": "r1", "step": "one", "loss": 1.0},  # no usable step: skipped
        {"kind": "eval", "run_id": "r1", "step": 1, "ppl": 5.0},  # no language: skipped
        {"kind": "heartbeat", "run_id": "r1", "step": 2, "pid": 2**40, "time": float("nan")},
        {**asdict(train("r1", 3)), "loss": float("nan"), "lang_loss": {"EN1": "x", "EN\ud800": 1.0}},
        asdict(Status("r1", "failed", message="bad byte \ud800 here")),
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (store.run_dir("r1") / EVENTS_FILE).write_text('{"kind": "tra\n' + text)  # a torn write first
    stats = store.ingest()
    assert (stats.events, stats.train_rows, stats.eval_rows) == (6, 2, 0)
    rows = store.query("SELECT step, isnan(loss), map_keys(lang_loss) FROM train_metrics ORDER BY step").rows
    assert rows == [(1, False, ["EN1", "EN2"]), (3, True, ["EN?"])]
    row = run_row(store, "r1")
    assert (row["status"], row["message"], row["pid"], row["step"]) == ("failed", "bad byte ? here", None, 3)


def test_a_resumed_run_replaces_repeated_steps(store: Store) -> None:
    for run_id, split in (("together", False), ("apart", True)):
        make_run(store, run_id)
        with EventLog(store.run_dir(run_id)) as log:
            log.emit(Started(run_id, "cpu", "h", 1, 100, 10_000, time=T0))
            for step in range(0, 60, 10):
                log.emit(train(run_id, step, loss=9.0))
            log.emit(evaluation(run_id, 40, "EN1", 500.0))
            if split:
                store.ingest()
            log.emit(Started(run_id, "cpu", "h", 2, 100, 10_000, resumed_from=20, time=T0 + 100))
            for step in range(30, 60, 10):
                log.emit(train(run_id, step, loss=1.0))
            log.emit(evaluation(run_id, 40, "EN1", 50.0))
    store.ingest()
    for run_id in ("together", "apart"):
        losses = store.query("SELECT step, loss FROM train_metrics WHERE run_id = ? ORDER BY step", [run_id]).rows
        assert losses == [(0, 9.0), (10, 9.0), (20, 9.0), (30, 1.0), (40, 1.0), (50, 1.0)]
        assert store.query("SELECT ppl FROM evals WHERE run_id = ?", [run_id]).rows == [(50.0,)]
        row = run_row(store, run_id)
        assert (row["step"], row["pid"], row["tokens"]) == (50, 2, 5000)


def test_status_follows_the_last_status_event(store: Store) -> None:
    make_run(store, "r1", total_steps=999)
    log = EventLog(store.run_dir("r1"))

    def state() -> tuple:
        store.ingest()
        row = run_row(store, "r1")
        return row["status"], row["message"], row["finished"] is not None, row["step"]

    log.emit(Queued("r1", time=T0))
    assert state() == ("queued", None, False, None)
    log.emit(Started("r1", "cuda:0", "gpu1", 42, 100, 10_000, time=T0 + 1))
    log.emit(train("r1", 10))
    assert state() == ("running", None, False, 10)
    log.emit(Heartbeat("r1", 15, 42, time=T0 + 20))
    log.emit(Status("r1", "failed", message="CUDA out of memory", step=15, time=T0 + 30))
    assert state() == ("failed", "CUDA out of memory", True, 15)
    log.emit(Started("r1", "cuda:1", "gpu2", 43, 100, 10_000, resumed_from=10, time=T0 + 40))
    assert state() == ("running", None, False, 10)
    log.emit(Status("r1", "done", step=100, time=T0 + 50))
    log.close()
    assert state() == ("done", None, True, 100)
    row = run_row(store, "r1")
    assert (row["device"], row["host"], row["total_steps"]) == ("cuda:1", "gpu2", 100)
    assert (row["started"] - row["queued"]).total_seconds() == pytest.approx(1.0)
    assert (row["finished"] - row["started"]).total_seconds() == pytest.approx(49.0)
    assert row["languages"] == ["EN1", "EN2"] and json.loads(row["spec"])["mix"]["EN2"] == 0.1
    assert queries.finished_run_ids(store) == {"r1"}


def test_experiments_are_ingested_and_changes_picked_up(store: Store) -> None:
    exp_dir = store.root / "experiments"
    exp_dir.mkdir(parents=True)
    exp = {"name": "imbalance", "description": "90/10", "source": "exp/imbalance.toml", "config": {"steps": 100}}
    (exp_dir / "imbalance.json").write_text(json.dumps(exp))
    assert store.ingest().experiments == 1
    assert store.ingest().experiments == 0
    exp["config"] = {"steps": 200}
    (exp_dir / "imbalance.json").write_text(json.dumps(exp))
    assert store.ingest().experiments == 1
    assert store.query("SELECT name, config->>'$.steps' FROM experiments").rows == [("imbalance", "200")]


def test_rebuilding_from_the_folder_gives_the_same_tables(store: Store) -> None:
    exp_dir = store.root / "experiments"
    exp_dir.mkdir(parents=True)
    (exp_dir / "e.json").write_text(json.dumps({"name": "e", "description": "d", "source": "e.toml", "config": {}}))
    for i, run_id in enumerate(("a", "b", "c")):
        make_run(store, run_id, experiment="e", seed=i)
        with EventLog(store.run_dir(run_id)) as log:
            log.emit(Queued(run_id, time=T0 + i))
            log.emit(Started(run_id, "cpu", "h", 10 + i, 100, 10_000, time=T0 + 10))
            for step in range(0, 30, 10):
                log.emit(train(run_id, step))
                log.emit(evaluation(run_id, step, "EN1", 100.0 - step))
                store.ingest()
            log.emit(Status(run_id, "done", step=30, time=T0 + 60))
    store.ingest()
    before = dump(store)
    store.db_path.unlink()
    store.ingest()
    assert dump(store) == before
    store.rebuild()
    assert dump(store) == before


def test_deleted_run_folders_are_pruned_but_a_lone_copy_keeps_its_rows(store: Store, tmp_path: Path) -> None:
    for run_id in ("keep", "drop"):
        make_run(store, run_id)
        with EventLog(store.run_dir(run_id)) as log:
            log.emit(train(run_id, 1))
    store.ingest()
    shutil.rmtree(store.run_dir("drop"))
    assert store.ingest().removed == 1
    assert store.query("SELECT DISTINCT run_id FROM train_metrics").rows == [("keep",)]
    copy = Store(tmp_path / "elsewhere" / "copy.duckdb")
    copy.db_path.parent.mkdir()
    shutil.copy(store.db_path, copy.db_path)
    assert copy.ingest().removed == 0
    assert count(copy, "runs") == 1


_event = st.one_of(
    st.builds(lambda s, l: asdict(train("r", s, loss=l)), st.integers(0, 6), st.floats(0, 10)),
    st.builds(
        lambda s, lang, p: asdict(evaluation("r", s, lang, p)),
        st.integers(0, 6),
        st.sampled_from(["EN1", "EN2"]),
        st.floats(1, 1e3),
    ),
    st.builds(
        lambda s, m: asdict(Status("r", s, message=m)),
        st.sampled_from(list(RunStatus)),
        st.one_of(st.none(), st.text(max_size=5)),
    ),
    st.builds(
        lambda r: asdict(Started("r", "cpu", "h", 1, 10, 100, resumed_from=r)), st.one_of(st.none(), st.integers(0, 6))
    ),
    st.builds(lambda s: asdict(Heartbeat("r", s, 7)), st.integers(0, 6)),
    st.just(asdict(Queued("r"))),
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, min_size=1, max_size=25), cuts=st.lists(st.floats(0, 1), max_size=3))
def test_ingesting_in_any_pieces_equals_ingesting_at_once(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict], cuts: list[float]
) -> None:
    store = Store(tmp_path_factory.mktemp("pieces") / "results.duckdb")
    make_run(store, "r")
    data = "".join(json.dumps(ev) + "\n" for ev in events).encode()
    with open(store.run_dir("r") / EVENTS_FILE, "ab") as fh:
        done = 0
        for cut in sorted(int(c * len(data)) for c in cuts) + [len(data)]:
            fh.write(data[done:cut])
            fh.flush()
            done = cut
            store.ingest()
    pieces = dump(store)
    store.rebuild()
    assert dump(store) == pieces


# -- queries ---------------------------------------------------------------------------


def test_query_is_read_only_and_reports_sql_errors_plainly(store: Store) -> None:
    store.ingest()
    with pytest.raises(QueryError, match="(?i)syntax error") as err:
        store.query("SELEC * FROM runs")
    assert "Traceback" not in str(err.value) and err.value.__cause__ is None
    with pytest.raises(QueryError, match="(?i)read-only"):
        store.query("INSERT INTO runs (run_id) VALUES ('x')")
    with pytest.raises(QueryError, match="no_such_table"):
        store.query("SELECT * FROM no_such_table")
    result = store.query("SELECT * FROM range(10) t(i)", max_rows=3)
    assert (result.columns, result.rows, result.truncated) == (["i"], [(0,), (1,), (2,)], True)


def test_map_column_is_usable_in_sql(store: Store) -> None:
    make_run(store, "r1")
    with EventLog(store.run_dir("r1")) as log:
        log.emit(train("r1", 10, loss=2.0))
    store.ingest()
    rows = store.query("SELECT lang_loss['EN1'], lang_loss['EN2'], map_keys(lang_loss) FROM train_metrics").rows
    assert rows == [(pytest.approx(1.9), pytest.approx(2.1), ["EN1", "EN2"])]


def test_named_queries(store: Store) -> None:
    for i, (exp, run_id) in enumerate((("b", "b1"), ("a", "a2"), ("a", "a1"))):
        make_run(store, run_id, experiment=exp)
        with EventLog(store.run_dir(run_id)) as log:
            log.emit(Queued(run_id, time=T0 + 10 - i))
            log.emit(Started(run_id, "cuda:0", "h", 1, 100, 10_000, time=T0 + 20))
            log.emit(train(run_id, 25))
            log.emit(evaluation(run_id, 10, "EN1", 112.34))
            log.emit(evaluation(run_id, 20, "EN1", 130.0))
            log.emit(evaluation(run_id, 20, "EN2", 240.06))
    (store.run_dir("b1") / EVENTS_FILE).open("a").write(json.dumps(asdict(Status("b1", "done", step=100))) + "\n")
    store.ingest()
    status = queries.run_status(store)
    assert [r["run_id"] for r in status.dicts()] == ["a1", "a2", "b1"]
    first = status.dicts()[0]
    assert first["best_ppl"] == "EN1 112.3 · EN2 240.1"
    assert (first["status"], first["progress"], first["device"]) == ("running", 0.25, "cuda:0")
    assert status.dicts()[2]["progress"] == 1.0
    assert queries.run_status(store, "b").column("run_id") == ["b1"]
    assert queries.finished_run_ids(store) == {"b1"}
    latest = queries.latest_evals(store, ["a1"])
    assert [(r["language"], r["step"]) for r in latest.dicts()] == [("EN1", 20), ("EN2", 20)]
    assert len(queries.latest_evals(store)) == 6 and len(queries.latest_evals(store, [])) == 0
    assert queries.train_curve(store, "a1").column("step") == [25]
    assert len(queries.eval_curve(store, "a1")) == 3


# -- concurrency -----------------------------------------------------------------------


def test_query_and_ingest_wait_for_another_writer(store: Store) -> None:
    make_run(store, "r1")
    with EventLog(store.run_dir("r1")) as log:
        log.emit(train("r1", 1))
    store.ingest()
    with write_lock_held(store.db_path, 1.5):
        start = time.monotonic()
        assert store.query("SELECT count(*) FROM train_metrics", wait=20).rows == [(1,)]
        assert time.monotonic() - start > 1.0
    with EventLog(store.run_dir("r1")) as log:
        log.emit(train("r1", 2))
    with write_lock_held(store.db_path, 1.5):
        start = time.monotonic()
        assert store.ingest(wait=20).train_rows == 1
        assert time.monotonic() - start > 1.0


def test_a_short_wait_gives_up_and_loses_nothing(store: Store) -> None:
    make_run(store, "r1")
    store.ingest()
    with EventLog(store.run_dir("r1")) as log:
        log.emit(train("r1", 1))
    with write_lock_held(store.db_path, 1.5):
        with pytest.raises(StoreBusy, match="PID") as err:
            store.query("SELECT 1", wait=0.2)
        assert str(store.db_path) in str(err.value)
        with pytest.raises(StoreBusy):
            store.ingest(wait=0.1)
        start = time.monotonic()
        assert store.try_ingest() is None
        assert time.monotonic() - start < 1.0
    assert store.ingest().train_rows == 1


STEPS_PER_WORKER = 30

# A training worker as its own process (plain python, no pytest import: fast to start):
# it logs as it goes and ingests every few steps, as `xling run` does.
APPEND_AND_INGEST = """
import json, sys
from db.store import Store
from engine.runs.events import EventLog, EvalResult, Queued, Status, TrainMetric
db_path, run_id, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(db_path)
run_dir = store.run_dir(run_id)
run_dir.mkdir(parents=True)
(run_dir / "spec.json").write_text(json.dumps({"run_id": run_id, "experiment": "exp", "total_steps": steps}))
ingested = 0
with EventLog(run_dir) as log:
    log.emit(Queued(run_id))
    for step in range(steps):
        log.emit(TrainMetric(run_id, step, step * 100, 1e-3, 2.0, {"EN1": 2.0}, 1e4))
        if step % 5 == 4:
            log.emit(EvalResult(run_id, step, step * 100, "EN1", 2.0, 7.4, None, None, 100))
            ingested += store.ingest(wait=60).events
    log.emit(Status(run_id, "done"))
print(ingested + store.ingest(wait=60).events)
"""


def test_concurrent_appenders_and_ingesters_take_every_event_exactly_once(store: Store) -> None:
    run_ids = [f"w{i}" for i in range(4)]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_AND_INGEST, str(store.db_path), r, str(STEPS_PER_WORKER)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for r in run_ids
    ]
    ingested = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        ingested.append(int(out))
    ingested.append(store.ingest().events)
    per_run = 1 + STEPS_PER_WORKER + STEPS_PER_WORKER // 5 + 1
    assert sum(ingested) == per_run * len(run_ids)  # no line ingested twice, none missed
    assert count(store, "train_metrics") == STEPS_PER_WORKER * len(run_ids)
    assert count(store, "evals") == STEPS_PER_WORKER // 5 * len(run_ids)
    assert queries.finished_run_ids(store) == set(run_ids)
    offsets = dict(store.query("SELECT run_id, byte_offset FROM ingest_state").rows)
    assert offsets == {r: os.path.getsize(store.run_dir(r) / EVENTS_FILE) for r in run_ids}


def test_threads_of_one_process_take_turns(store: Store) -> None:
    make_run(store, "r1")
    store.ingest()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                store.ingest() if i % 2 else store.query("SELECT count(*) FROM runs")
        except BaseException as e:  # surfaced below; a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_failing_analysis_never_loses_an_ingest(tmp_path, monkeypatch):
    """Derived tables are recomputed later; the measurements must land regardless."""
    import db.analysis

    def broken(con, experiments):
        con.execute("SELECT no_such_column FROM runs")

    monkeypatch.setattr(db.analysis, "refresh", broken)
    store = Store(tmp_path / "a.duckdb")
    run_dir = store.run_dir("r1")
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps({"run_id": "r1", "experiment": "e", "name": "n", "kind": "mix"}))
    with EventLog(run_dir) as log:
        log.emit(TrainMetric("r1", step=1, tokens=10, lr=0.1, loss=2.0, lang_loss={"A": 2.0}, tokens_per_s=1.0))
        log.emit(Status("r1", "done", step=1))
    store.ingest()
    assert store.query("SELECT status FROM runs").rows == [("done",)]
    assert store.query("SELECT count(*) FROM train_metrics").rows == [(1,)]


def test_launcher_survives_a_broken_database():
    from engine.launch.launcher import Launcher

    class Broken:
        def try_ingest(self):
            raise StoreError("ingest into x.duckdb failed: disk full")

    launcher = Launcher(Path("."), sink=Broken())
    launcher._sync()
    launcher._sync()
    assert "disk full" in launcher.sync_error and "run logs" in launcher.sync_error


def test_reading_holds_one_connection_for_many_queries(tmp_path, monkeypatch):
    store = Store(tmp_path / "r.duckdb")
    store.ingest()
    opened = []
    real = store._open
    monkeypatch.setattr(store, "_open", lambda *a: opened.append(1) or real(*a))
    with store.reading():
        assert store.query("SELECT 1").rows == [(1,)]
        assert store.query("SELECT count(*) FROM runs").rows == [(0,)]
        with store.reading():  # nested: the same connection
            store.query("SELECT 2")
    assert len(opened) == 1
    store.query("SELECT 3")  # outside: a connection of its own again
    assert len(opened) == 2
    with pytest.raises(QueryError):
        with store.reading():
            store.query("SELECT nope")
    store.ingest()  # the file is free again after the block, even after an error
