"""`--backend ray` on a real two-node Ray cluster (tests/cluster/ray.sh): runs spread
over both nodes, a node lost mid-run (its run failed with Ray's reason, resumed on the
node left), and `xling cancel` stopping a Ray run after a checkpoint. Every test checks
the database afterwards."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from db.store import Store
from tests.cluster.conftest import CLUSTER_DIR, script
from tests.cluster.helpers import events, finish, long_toml, run_dirs, trained_to, wait_until, xling

pytestmark = pytest.mark.raycluster


def worker_pid(run_dir: Path) -> int:
    return [e for e in events(run_dir) if e["kind"] == "started"][-1]["pid"]


def second_node_session() -> int:
    """The second node's processes share the session `ray.sh` started it in."""
    return int((CLUSTER_DIR / "ray" / "pids" / "ray-worker").read_text())


def in_session(pid: int, session: int) -> bool:
    try:
        return os.getsid(pid) == session
    except ProcessLookupError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def second_node(ray_cluster):
    """The second node is back up after a test that lost it."""
    yield
    script("ray.sh", "worker-start", env={"PYTHON": sys.executable})


def test_runs_spread_over_both_nodes_and_a_lost_node_fails_its_run_which_resumes(
    tmp_path, tiny_corpus, ray_cluster, second_node
):
    toml = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=200_000, checkpoint_every=10, runs=2)
    db = tmp_path / "ray.duckdb"
    ray = ("--backend", "ray", "--ray-address", ray_cluster.address, "--device", "cpu", "--cpus-per-run", "1")
    proc = xling("run", str(toml), "--db", str(db), *ray, env=ray_cluster.env)
    runs = wait_until("two runs", lambda: len(run_dirs(db)) == 2 and run_dirs(db), timeout=120)
    wait_until("both runs to train 25 steps", lambda: all(trained_to(r, 25) for r in runs))
    pids = {r.name: worker_pid(r) for r in runs}
    second = second_node_session()
    lost = [r for r in runs if in_session(pids[r.name], second)]
    assert len(lost) == 1, pids  # one CPU per node, one run on each
    (lost,) = lost
    (kept,) = [r for r in runs if r != lost]
    script("ray.sh", "worker-kill")
    code, out = finish(proc)
    assert code == 1, out  # one run failed
    assert not alive(pids[lost.name])  # no worker outlives its node
    store = Store(db)
    rows = {r["run_id"]: r for r in store.query("SELECT run_id, status, message, backend FROM runs").dicts()}
    assert rows[kept.name]["status"] == "done" and rows[lost.name]["status"] == "failed"
    assert "Ray task" in rows[lost.name]["message"] and "node" in rows[lost.name]["message"], rows[lost.name]
    logged = sorted({e["step"] for e in events(lost) if e["kind"] == "train"})
    stored = [
        s for (s,) in store.query(f"SELECT step FROM train_metrics WHERE run_id = '{lost.name}' ORDER BY step").rows
    ]
    assert stored == logged and stored[-1] >= 25  # everything the lost worker had logged
    # The second node is gone: the resumed run can only train on the head.
    resume = xling("resume", lost.name, "--db", str(db), "--config", str(toml), *ray, env=ray_cluster.env)
    code, out = finish(resume)
    assert code == 0, out
    starts = [e for e in events(lost) if e["kind"] == "started"]
    assert len(starts) == 2 and starts[1]["resumed_from"] >= 20 and starts[1]["resumed_from"] % 10 == 0
    assert Store(db).query("SELECT DISTINCT status FROM runs").rows == [("done",)]


def test_cancel_stops_a_ray_run_after_a_checkpoint(tmp_path, tiny_corpus, ray_cluster):
    toml = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=2_000_000)
    db = tmp_path / "cancel.duckdb"
    ray = ("--backend", "ray", "--ray-address", ray_cluster.address, "--device", "cpu", "--cpus-per-run", "1")
    proc = xling("run", str(toml), "--db", str(db), *ray, env=ray_cluster.env)
    (run,) = wait_until("the run", lambda: run_dirs(db), timeout=120)
    wait_until("the run to train 10 steps", lambda: trained_to(run, 10))
    cancel = xling("cancel", run.name, "--db", str(db))
    code, out = finish(cancel, timeout=120)
    assert code == 0 and "checkpoint" in out, out
    code, out = finish(proc)
    assert code == 0, out
    (stop,) = [e for e in events(run) if e["kind"] == "status" and e["status"] == "cancelled"]
    assert stop["step"] >= 10 and (run / "checkpoint.pt").exists()
    row = Store(db).query("SELECT status, step FROM runs").dicts()[0]
    assert row == {"status": "cancelled", "step": stop["step"]}
