"""The store when its surroundings are broken or hostile: log lines that are not events,
a database on a read-only file system, a full disk, and the read-only connection users
get for their own code (``db.connect``).

Read-only mounts and small tmpfs disks are real: a user namespace mounts them in a
subprocess (skipped where the kernel does not allow one; the injected tests still run).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import db
import engine.runs.events as events_module
from db.store import Store, StoreBusy, StoreDiskFull, StoreError
from engine.config.spec import load_experiments
from engine.launch.queue import enqueue
from engine.runs.events import EventLog, Started
from engine.runs.layout import EVENTS_FILE
from tests.test_store import make_run, run_row, train, write_lock_held
from xling_tui.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "results.duckdb")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each bad line is reported once per process; each test is a process of its own here."""
    monkeypatch.setattr(events_module, "_reported", set())


def _lines(*lines: bytes | dict) -> bytes:
    return b"".join((json.dumps(x).encode() if isinstance(x, dict) else x) + b"\n" for x in lines)


def _status(run_id: str, status: str) -> dict:
    return {"kind": "status", "run_id": run_id, "status": status, "message": None, "step": 2, "time": 1.0}


BAD = (b"null", b"42", b"[1]", b"\xff\xfe not utf-8 \x80")


# -- 6. lines that are not events ----------------------------------------------------------


def test_lines_that_are_not_events_are_skipped_counted_and_named(store: Store, caplog) -> None:
    run_dir = make_run(store, "r1")
    log = run_dir / EVENTS_FILE
    started = {"kind": "started", "run_id": "r1", "device": "cpu", "host": "h", "pid": 1, "total_steps": 100}
    log.write_bytes(_lines(started, vars(train("r1", 1)), *BAD, _status("r1", "exploded"), vars(train("r1", 3))))
    with caplog.at_level(logging.WARNING, logger="engine"):
        stats = store.ingest()
    assert [(b.line, b.why) for b in stats.skipped] == [
        (3, "JSON but not an object (null)"),
        (4, "JSON but not an object (42)"),
        (5, "JSON but not an object ([1])"),
        (6, "not UTF-8 text"),
        (7, "a status event with an unknown status 'exploded'"),
    ]
    assert f"{log}:3: skipped a line that is JSON but not an object (null)" in caplog.messages
    assert (stats.events, stats.train_rows) == (3, 2)
    assert run_row(store, "r1")["status"] == "running"  # not 'exploded'
    # a later ingest names lines by their number in the whole file, not in what it read
    with open(log, "ab") as fh:
        fh.write(_lines(b"[]", vars(train("r1", 5))))
    stats = store.ingest()
    assert [b.line for b in stats.skipped] == [9] and stats.train_rows == 1


def test_a_file_of_garbage_names_a_few_lines_and_counts_the_rest(tmp_path, caplog) -> None:
    from engine.runs.events import read_events

    (tmp_path / EVENTS_FILE).write_bytes(b"\x00\xff\n" * 20)
    with caplog.at_level(logging.WARNING, logger="engine"):
        events, _ = read_events(tmp_path / EVENTS_FILE)
    assert events == [] and len(caplog.messages) == 6
    assert caplog.messages[-1] == f"{tmp_path / EVENTS_FILE}: 15 more lines that are not events skipped (lines 6 to 20)"


def _queued_results(tmp_path: Path, tiny_toml: Path) -> tuple[Path, Path]:
    """A results folder with the tiny experiment queued (no training) and one run's log
    carrying lines that are not events; nothing ingested yet."""
    db_path = tmp_path / "res" / "results.duckdb"
    store = Store(db_path)
    states = enqueue(store.root, load_experiments(tiny_toml))
    log = states[0].run_dir / EVENTS_FILE
    with open(log, "ab") as fh:
        fh.write(_lines(*BAD, vars(train(states[0].spec.run_id, 2))))
    return db_path, log


@pytest.mark.parametrize("command", [["status"], ["sql", "SELECT count(*) AS n FROM train_metrics"], ["report"]])
def test_reading_commands_warn_about_lines_that_are_not_events_and_read_on(tmp_path, tiny_toml, command) -> None:
    db_path, log = _queued_results(tmp_path, tiny_toml)
    result = CliRunner().invoke(app, [*command, "--db", str(db_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for line in (2, 3, 4, 5):  # after the queued event
        assert f"warning: {log}:{line}: skipped a line that is" in result.stderr
    assert "Traceback" not in result.output
    assert Store(db_path).query("SELECT count(*) FROM train_metrics").rows == [(1,)]


def test_a_torn_line_never_swallows_the_next_event(tmp_path) -> None:
    """A crash (or a full disk) mid-line leaves a fragment; the next writer ends it first."""
    from engine.runs.events import read_events

    (tmp_path / EVENTS_FILE).write_bytes(_lines(vars(train("r", 1))) + b'{"kind": "train", "st')
    with EventLog(tmp_path) as log:
        log.emit(Started("r", "cpu", "h", 2, 10, 100))
    skipped: list = []
    events, _ = read_events(tmp_path / EVENTS_FILE, skipped=skipped)
    assert [e["kind"] for e in events] == ["train", "started"]
    assert [b.line for b in skipped] == [2]


# -- 7. a database on a read-only file system ------------------------------------------------

RO_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'


def _user_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True).returncode == 0


def _read_only(folder: Path, *cmd: str) -> subprocess.CompletedProcess:
    """``cmd`` with ``folder`` mounted read-only (a user namespace: no privileges needed)."""
    ns = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", RO_MOUNT, "sh", str(folder)]
    return subprocess.run([*ns, *cmd], capture_output=True, text=True, timeout=300, cwd=ROOT)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def read_only_results(tmp_path, tiny_toml) -> tuple[Path, str]:
    """Results ingested once, then one more train line that a reader cannot ingest."""
    if not _user_namespaces():
        pytest.skip("no user namespaces here to mount a read-only file system")
    db_path = tmp_path / "res" / "results.duckdb"
    store = Store(db_path)
    (state, *_) = enqueue(store.root, load_experiments(tiny_toml))
    with EventLog(state.run_dir) as log:
        log.emit(train(state.spec.run_id, 1))
    store.ingest()
    with EventLog(state.run_dir) as log:
        log.emit(train(state.spec.run_id, 2))
    return db_path, _digest(db_path)


XLING = [sys.executable, "-m", "xling_tui.cli"]


@pytest.mark.parametrize(
    "command", [["status"], ["sql", "SELECT count(*) AS n FROM train_metrics", "-f", "csv"], ["report", "tiny"]]
)
def test_every_reading_command_reads_a_database_on_a_read_only_file_system(read_only_results, command) -> None:
    db_path, digest = read_only_results
    proc = _read_only(db_path.parent, *XLING, *command, "--db", str(db_path))
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr  # one line each, however long: paths are never broken
    assert f"{db_path} is on a read-only file system: new results in {db_path.parent / 'results.runs'}" in said
    assert "could not be ingested; showing what the database holds" in said
    assert "Traceback" not in proc.stderr
    if command[0] == "sql":
        assert proc.stdout.splitlines() == ["n", "1"]  # what the database held
    if command[0] == "status":
        assert "90/10" in proc.stdout
    assert _digest(db_path) == digest


READ_ONLY_READERS = """
import sys
import db
from xling_tui.data_source import DashboardSource

with db.connect(sys.argv[1]) as con:
    print(con.sql("SELECT count(*) FROM runs").fetchall()[0][0])
data = DashboardSource(sys.argv[2], sys.argv[1]).fetch()
print(len(data.runs), data.db_error)
"""


def test_db_connect_and_the_dashboard_read_a_read_only_database(read_only_results, tiny_toml) -> None:
    db_path, digest = read_only_results
    proc = _read_only(db_path.parent, sys.executable, "-c", READ_ONLY_READERS, str(db_path), str(tiny_toml))
    assert proc.returncode == 0, proc.stderr
    n_runs, dashboard = proc.stdout.splitlines()
    assert dashboard.startswith(f"{n_runs} ") and int(n_runs) == 3
    assert "could not be ingested" in dashboard
    assert _digest(db_path) == digest


# -- 9. a full disk under the database ---------------------------------------------------------


def test_a_full_disk_during_an_ingest_is_named_changes_nothing_and_is_caught_up_later(store, monkeypatch):
    run_dir = make_run(store, "r1")
    with EventLog(run_dir) as log:
        for step in range(5):
            log.emit(train("r1", step))
    store.ingest()  # the schema; then nothing new until the run logs more
    with EventLog(run_dir) as log:
        log.emit(train("r1", 5))

    def full(path, rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("db.ingest.write_ndjson", full)
    with pytest.raises(StoreDiskFull, match=r"no space left on .*\.ndjson: nothing was ingested"):
        store.ingest()
    monkeypatch.undo()
    assert store.query("SELECT count(*) FROM train_metrics").rows == [(5,)]
    assert store.ingest().train_rows == 1
    assert store.query("SELECT count(*) FROM train_metrics").rows == [(6,)]


DB_ON_A_FULL_DISK = """
import json, os, subprocess, sys
from pathlib import Path
from db.store import Store, StoreDiskFull
from engine.runs.events import EventLog, TrainMetric

disk = Path(sys.argv[1])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
store = Store(disk / "r.duckdb")
store.ingest()
run_dir = store.run_dir("r1")
run_dir.mkdir(parents=True)
(run_dir / "spec.json").write_text(json.dumps({"run_id": "r1", "experiment": "e", "name": "n"}))
with EventLog(run_dir) as log:
    for i in range(5000):
        log.emit(TrainMetric("r1", i, i, 1e-3, 1.0, {"A": 1.0}, 1.0))
st = os.statvfs(disk)
(disk / "filler").write_bytes(b"x" * (st.f_bavail * st.f_frsize - 20_000))
try:
    store.ingest()
    said = None
except StoreDiskFull as exc:
    said = str(exc)
held = store.query("SELECT count(*) FROM train_metrics").rows[0][0]
(disk / "filler").unlink()
print(json.dumps({"said": said, "held": held, "later": store.ingest().train_rows}))
"""


def test_a_really_full_disk_under_the_database(tmp_path):
    if not _user_namespaces():
        pytest.skip("no user namespaces here to mount a small tmpfs")
    (tmp_path / "disk").mkdir()
    cmd = ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", DB_ON_A_FULL_DISK]
    proc = subprocess.run([*cmd, str(tmp_path / "disk")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["said"].startswith(f"no space left on {tmp_path / 'disk' / 'r.duckdb.wal'}: nothing was ingested")
    assert (report["held"], report["later"]) == (0, 5000)


# -- 10. db.connect ---------------------------------------------------------------------------


def test_db_connect_waits_out_an_ingest_that_a_plain_read_only_open_fails_on(store: Store) -> None:
    make_run(store, "r1")
    store.ingest()
    with write_lock_held(store.db_path, 1.5):  # as an ingest holds it, only longer
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            duckdb.connect(str(store.db_path), read_only=True)
        with db.connect(store.db_path, wait=30) as con:
            assert con.sql("SELECT run_id FROM runs").fetchall() == [("r1",)]


def test_db_connect_gives_up_with_a_message_naming_the_holder(store: Store) -> None:
    store.ingest()
    with write_lock_held(store.db_path, 3.0):
        with pytest.raises(StoreBusy, match="holds its lock; gave up after 0.3 s"):
            db.connect(store.db_path, wait=0.3)


def test_db_connect_is_read_only_and_never_creates_a_database(tmp_path: Path, store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist yet"):
        db.connect(tmp_path / "nothing.duckdb")
    assert not (tmp_path / "nothing.duckdb").exists()
    make_run(store, "r1")
    store.ingest()
    with db.connect(store.db_path) as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM runs")
    assert store.query("SELECT count(*) FROM runs").rows == [(1,)]


def test_db_connect_refuses_a_file_that_is_not_an_xling_database(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "other.duckdb")).execute("CREATE TABLE t (a INT)").close()
    with pytest.raises(StoreError, match="is not an xling results database"):
        db.connect(tmp_path / "other.duckdb")


def test_db_connect_uses_xling_db(monkeypatch, store: Store) -> None:
    store.ingest()
    monkeypatch.setenv("XLING_DB", str(store.db_path))
    with db.connect() as con:
        assert con.sql("SELECT count(*) FROM runs").fetchall() == [(0,)]
