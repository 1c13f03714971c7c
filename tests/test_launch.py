"""The launcher with real processes: Ctrl-C stops cleanly and resumably, kill -9 is noticed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runs.events import iter_events

LONG = """\
[experiments.long]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 400_000
baselines = [0.5]
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32, warmup = 4, log_every = 5, checkpoint_every = 20 }}
eval = {{ context = 32, stride = 16, max_tokens = 1000, every = 0 }}

[[experiments.long.schedules]]
name = "50/50"
mix = {{ EN1 = [50], EN2 = [50] }}
"""


def _interruptible() -> None:
    """A shell's background job inherits SIGINT ignored; a user's terminal would not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_run(toml: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xling_tui.cli", "run", str(toml), "--db", str(db), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        preexec_fn=_interruptible,
    )


def run_dirs(db: Path) -> list[Path]:
    root = db.with_name(db.stem + ".runs") / "runs"
    return sorted(root.iterdir()) if root.exists() else []


def events(run_dir: Path) -> list[dict]:
    return list(iter_events(run_dir / "events.jsonl"))


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def training_dir(db: Path, min_step: int) -> Path | None:
    for d in run_dirs(db):
        if any(e["kind"] == "train" and e["step"] >= min_step for e in events(d)):
            return d
    return None


def last_status(run_dir: Path) -> str:
    return [e for e in events(run_dir) if e["kind"] in ("status", "queued", "started")][-1].get("status", "queued")


def worker_pids(db: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "engine.worker" in cmd and str(db.parent) in cmd:
                pids.append(int(proc.name))
    return pids


@pytest.fixture
def long_toml(tmp_path, tiny_corpus):
    path = tmp_path / "experiments.toml"
    path.write_text(LONG.format(corpus=tiny_corpus))
    return path


def test_ctrl_c_cancels_resumably_without_orphans(tmp_path, long_toml):
    db = tmp_path / "r.duckdb"
    proc = start_run(long_toml, db)
    wait_for(lambda: training_dir(db, 25) is not None)
    busy = training_dir(db, 25)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=240)  # a hang guard: a loaded machine is slow to checkpoint
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    assert worker_pids(db) == []
    statuses = {d.name: last_status(d) for d in run_dirs(db)}
    assert set(statuses.values()) == {"cancelled"}, statuses
    assert (busy / "checkpoint.pt").exists()
    # the metrics it had are in the database already
    from db.store import Store

    n = Store(db).query("SELECT count(*) FROM train_metrics WHERE run_id = ?", [busy.name]).rows[0][0]
    assert n >= 5
    again = start_run(long_toml, db)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    resumed = [e.get("resumed_from") for e in events(busy) if e["kind"] == "started"]
    assert resumed[0] is None and resumed[-1] >= 25
    assert all(last_status(d) == "done" for d in run_dirs(db))


def test_sigterm_on_the_launcher_stops_like_ctrl_c(tmp_path, long_toml):
    db = tmp_path / "t.duckdb"
    proc = start_run(long_toml, db)
    wait_for(lambda: training_dir(db, 10) is not None)
    proc.terminate()
    out, _ = proc.communicate(timeout=240)  # a hang guard: a loaded machine is slow to checkpoint
    assert proc.returncode == 130, out
    assert worker_pids(db) == []
    assert {last_status(d) for d in run_dirs(db)} == {"cancelled"}


def test_killed_worker_is_failed_then_resumes(tmp_path, long_toml):
    db = tmp_path / "k.duckdb"
    proc = start_run(long_toml, db)
    wait_for(lambda: training_dir(db, 45) is not None)
    victim = training_dir(db, 45)
    pid = next(e["pid"] for e in events(victim) if e["kind"] == "started")
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 1, out
    assert last_status(victim) == "failed"
    message = [e for e in events(victim) if e["kind"] == "status"][-1]["message"]
    assert "signal 9" in message
    steps_before = max(e["step"] for e in events(victim) if e["kind"] == "train")
    again = start_run(long_toml, db)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    assert last_status(victim) == "done"
    resumed = [e.get("resumed_from") for e in events(victim) if e["kind"] == "started"][-1]
    assert resumed is not None and resumed >= 40 and resumed <= steps_before
    from db.store import Store

    rows = Store(db).query("SELECT status, step, total_steps FROM runs WHERE run_id = ?", [victim.name]).rows
    assert rows == [("done", rows[0][2], rows[0][2])]


def test_cancel_logs_and_resume_by_run_id(tmp_path, long_toml):
    from typer.testing import CliRunner

    from xling_tui.cli.main import app

    cli = CliRunner()
    db = tmp_path / "c.duckdb"
    proc = start_run(long_toml, db)
    wait_for(lambda: training_dir(db, 25) is not None)
    victim = training_dir(db, 25)
    out = cli.invoke(app, ["cancel", victim.name[:6], "--db", str(db)])
    assert out.exit_code == 0 and "stopping worker" in out.output, out.output
    out_run, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out_run  # a cancelled run is not a failure
    assert last_status(victim) == "cancelled"
    logs = cli.invoke(app, ["logs", victim.name, "--db", str(db)])
    assert logs.exit_code == 0 and "step 5/" in logs.output
    again = cli.invoke(app, ["cancel", victim.name, "--db", str(db)])
    assert "already cancelled" in again.output
    resumed = cli.invoke(app, ["resume", victim.name[:8], "--db", str(db), "--device", "cpu"])
    assert resumed.exit_code == 0, resumed.output
    assert last_status(victim) == "done"
    starts = [e.get("resumed_from") for e in events(victim) if e["kind"] == "started"]
    assert starts[0] is None and starts[-1] >= 20
    nothing = cli.invoke(app, ["resume", "--failed", "--db", str(db)])
    assert nothing.exit_code == 0 and "nothing to resume" in nothing.output
    missing = cli.invoke(app, ["resume", "zzzz", "--db", str(db)])
    assert missing.exit_code == 2 and "no run with id 'zzzz'" in missing.output


def test_two_launchers_on_one_experiment_never_start_a_run_twice(tmp_path, tiny_corpus):
    toml = tmp_path / "experiments.toml"
    toml.write_text(
        LONG.format(corpus=tiny_corpus)
        .replace("tokens = 400_000", "tokens = 60_000")
        .replace("baselines = [0.5]", "baselines = [1.0, 0.5, 0.25]")
    )
    db = tmp_path / "two.duckdb"
    first, second = start_run(toml, db), start_run(toml, db)
    outs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    for d in run_dirs(db):
        assert sum(e["kind"] == "started" for e in events(d)) == 1, d.name
        assert last_status(d) == "done"
        assert not (d / ".launcher").exists()
