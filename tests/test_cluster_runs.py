"""Real tiny runs through the cluster backends, end to end into DuckDB: Slurm's code
path through submitit's local executor (jobs, a time-limit signal, requeue, resume)
and Ray tasks on a local Ray (skipped when the ray extra is not installed)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from db.store import Store
from engine.config.cluster import RaySettings, SlurmSettings
from engine.config.spec import load_experiments
from engine.data.prepare import prepare_run_data
from engine.launch.launcher import Launcher
from engine.launch.pools import ClusterPool
from engine.launch.queue import enqueue
from engine.runs.events import iter_events


def launch(tmp_path: Path, toml: Path, backend, slots: int = 3):
    experiments = load_experiments(toml)
    for spec in {json_key(s): s for e in experiments for s in e.runs}.values():
        prepare_run_data(spec.data_recipe(), log=lambda m: None)  # as `xling run` does first
    store = Store(tmp_path / "c.duckdb")
    states = enqueue(store.root, experiments)
    launcher = Launcher(
        store.root,
        sink=store,
        backend=backend,
        max_parallel=slots,
        pool=ClusterPool(backend.placement() if hasattr(backend, "executor") else backend.placement("cpu"), slots),
    )
    summary = launcher.run(states)
    store.ingest(wait=60)
    return store, states, summary


def json_key(spec) -> str:
    import json

    return json.dumps([spec.to_dict()["data"], spec.budget_tokens], sort_keys=True)


def events(run_dir: Path) -> list[dict]:
    return list(iter_events(run_dir / "events.jsonl"))


def test_slurm_backend_through_submitits_local_executor(tmp_path, tiny_toml):
    from engine.backends.slurm import SlurmBackend

    backend = SlurmBackend(SlurmSettings(gpus_per_run=0, cpus_per_run=1), executor="local")
    store, states, summary = launch(tmp_path, tiny_toml, backend)
    assert summary.done == 3 and summary.failed == 0
    rows = store.query("SELECT run_id, status, backend, job_id, host, pid, device FROM runs ORDER BY run_id").dicts()
    assert [r["status"] for r in rows] == ["done"] * 3
    for r, state in zip(rows, sorted(states, key=lambda s: s.spec.run_id)):
        assert r["backend"] == "slurm" and r["host"] == socket.gethostname() and r["device"] == "cpu"
        assert r["job_id"] == [e for e in events(state.run_dir) if e["kind"] == "submitted"][-1]["job_id"]
        assert r["pid"] != int(r["job_id"])  # the worker is the job's child, not the job itself
        assert list((state.run_dir / "slurm").glob(f"{r['job_id']}_*result.pkl"))
    n_evals = store.query("SELECT count(DISTINCT run_id) FROM evals").rows[0][0]
    assert n_evals == 3


LONG = """\
[experiments.long]
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = {tokens}
baselines = [1.0]
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32, warmup = 4, log_every = 5, checkpoint_every = 100_000 }}
eval = {{ context = 32, stride = 16, max_tokens = 1000, every = 0, alignment = false }}
"""


def test_time_limit_signal_checkpoints_requeues_and_resumes(tmp_path, tiny_corpus):
    """The signal Slurm sends ``signal_delay_s`` before a job's time limit (or at
    preemption) reaches the job's process: the worker checkpoints (periodic checkpoints
    are off here), submitit requeues the same job, and it resumes at that step."""
    from engine.backends.slurm import SlurmBackend

    toml = tmp_path / "experiments.toml"
    toml.write_text(LONG.format(tokens=60_000, corpus=tiny_corpus))
    (spec,) = load_experiments(toml)[0].runs
    prepare_run_data(spec.data_recipe(), log=lambda m: None)
    store = Store(tmp_path / "t.duckdb")
    (state,) = enqueue(store.root, load_experiments(toml))
    backend = SlurmBackend(SlurmSettings(gpus_per_run=0, cpus_per_run=1), executor="local")
    handle = backend.start(state.run_dir, backend.placement())
    wait_for_step(state.run_dir, 20, handle)
    (task,) = children(int(handle.job_id))  # the local executor's job process runs our task
    os.kill(task, signal.SIGUSR2)
    assert handle.wait(timeout=300) == 0
    log = events(state.run_dir)
    requeued = [e for e in log if e["kind"] == "status" and e["status"] == "queued"]
    stopped = [e["step"] for e in log if e["kind"] == "status" and e["status"] == "cancelled"]
    starts = [e["resumed_from"] for e in log if e["kind"] == "started"]
    assert len(requeued) == 1 and "requeued by Slurm" in requeued[0]["message"]
    assert len(stopped) == 1 and stopped[0] >= 20 and starts == [None, stopped[0]]
    store.ingest(wait=60)
    row = store.query("SELECT status, step, total_steps FROM runs").dicts()[0]
    assert row["status"] == "done" and row["step"] == row["total_steps"]
    steps = [s for (s,) in store.query("SELECT step FROM train_metrics ORDER BY step").rows]
    assert steps == sorted(set(steps)) and steps[-1] == row["total_steps"]


def wait_for_step(run_dir: Path, step: int, handle) -> None:
    deadline = time.monotonic() + 120
    while not any(e["kind"] == "train" and e["step"] >= step for e in events(run_dir)):
        assert time.monotonic() < deadline and handle.poll() is None, "the run did not get going"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'xling[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_backend_on_a_local_ray(tmp_path, tiny_toml, local_ray):
    from engine.backends.ray import RayBackend

    backend = RayBackend(RaySettings(gpus_per_run=0, cpus_per_run=1))
    store, states, summary = launch(tmp_path, tiny_toml, backend, slots=2)
    assert summary.done == 3 and summary.failed == 0
    rows = store.query("SELECT status, backend, job_id, host FROM runs").dicts()
    assert {(r["status"], r["backend"], r["host"]) for r in rows} == {("done", "ray", socket.gethostname())}
    assert all(len(r["job_id"]) > 12 for r in rows)  # Ray task ids


def test_ray_run_stops_on_request_and_resumes(tmp_path, tiny_corpus, local_ray):
    from engine.backends.ray import RayBackend, RayJobs

    toml = tmp_path / "experiments.toml"
    toml.write_text(LONG.format(tokens=400_000, corpus=tiny_corpus))
    (spec,) = load_experiments(toml)[0].runs
    prepare_run_data(spec.data_recipe(), log=lambda m: None)
    store = Store(tmp_path / "r.duckdb")
    (state,) = enqueue(store.root, load_experiments(toml))
    backend = RayBackend(RaySettings(gpus_per_run=0, cpus_per_run=1))
    handle = backend.start(state.run_dir, backend.placement("cpu"))
    wait_for_step(state.run_dir, 20, handle)
    said = RayJobs().cancel(handle.job_id, state.run_dir, running=True)  # as `xling cancel` from elsewhere
    assert "checkpoint" in said
    assert handle.wait(timeout=60) == 3  # the worker's "stopped, resumable" exit
    state.refresh()
    assert state.status == "cancelled" and (state.run_dir / "checkpoint.pt").exists()


def test_a_signal_after_the_worker_finished_requeues_nothing(tmp_path):
    """Slurm's time-limit signal can come just as the run ends: a worker that is done (or
    failed) has nothing to resume, and a requeue would train a finished run again."""
    import subprocess
    import sys

    from engine.backends.slurm import WorkerTask

    for code, requeued in ((0, False), (1, False), (3, True)):
        run_dir = tmp_path / str(code)
        run_dir.mkdir()
        task = WorkerTask()
        task._proc = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
        task._proc.wait()
        again = task.checkpoint(str(run_dir), "cpu", 1)
        assert (again is not None) == requeued
        logged = [e["status"] for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "status"]
        assert logged == (["queued"] if requeued else [])


def test_a_worker_killed_by_the_signal_after_it_logged_done_is_not_requeued(tmp_path):
    """Slurm signals every process of the step. A worker that logged done and is shutting
    down (Python's handlers already gone) dies of the signal; its exit code says killed,
    its log says done, and the log is what counts: requeueing would train it again from
    the start (seen on CI's machine)."""
    import signal
    import subprocess
    import sys

    from engine.backends.slurm import WorkerTask
    from engine.runs.events import EventLog, Status
    from engine.runs.status import RunStatus

    for logged_status, requeued in ((RunStatus.DONE, False), (RunStatus.FAILED, False), (RunStatus.CANCELLED, True)):
        run_dir = tmp_path / logged_status
        run_dir.mkdir()
        with EventLog(run_dir) as log:
            log.emit(Status(run_dir.name, logged_status, None))
        task = WorkerTask()
        task._proc = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGUSR2)"])
        assert task._proc.wait() == -signal.SIGUSR2
        again = task.checkpoint(str(run_dir), "cpu", 1)
        assert (again is not None) == requeued, logged_status
        statuses = [e["status"] for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "status"]
        assert statuses == [logged_status, *(["queued"] if requeued else [])]
