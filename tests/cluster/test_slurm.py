"""`--backend slurm` against a real Slurm (tests/cluster/slurm.sh): runs that equal
local ones, the time-limit signal and requeue, cancel, a job killed outright, no
sacct, submissions Slurm refuses, and the TUI following the jobs. Every test checks
the database afterwards."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from typer.testing import CliRunner

from db.store import Store
from tests.cluster.conftest import script
from tests.cluster.helpers import (
    events,
    finish,
    long_toml,
    losses,
    prepare,
    run_dirs,
    slurm_section,
    tokens_per_second,
    train_locally,
    trained_to,
    wait_until,
    xling,
)
from xling_tui.cli.main import app

pytestmark = pytest.mark.slurm
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_jobs_left_behind(slurm_cluster):
    """A test that fails half-way must not leave jobs holding the node's CPUs for the next."""
    before = set(slurm_cluster.squeue())
    yield
    left = [
        j for j, (state, _) in slurm_cluster.squeue().items() if j not in before and state in ("PENDING", "RUNNING")
    ]
    if left:
        slurm_cluster.run("scancel", *left, check=False)


def submitted(run_dir) -> dict:
    """The run's latest `submitted` event ({} before the first)."""
    return ([{}] + [e for e in events(run_dir) if e["kind"] == "submitted"])[-1]


def status_rows(db) -> dict[str, dict]:
    out = runner.invoke(app, ["status", "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    return {r["run_id"]: r for r in json.loads(out.output)}


def test_runs_on_slurm_equal_the_same_runs_trained_locally(tmp_path, tiny_toml, slurm_cluster):
    with open(tiny_toml, "a") as fh:
        fh.write(slurm_section(time="10"))
    db = tmp_path / "slurm.duckdb"
    prepare(tiny_toml)  # the token cache, once, before two launchers read it
    proc = xling("run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--device", "cpu")
    local = train_locally(tiny_toml, tmp_path / "local.duckdb")  # meanwhile, on this machine
    code, out = finish(proc)
    assert code == 0, out
    store = Store(db)
    rows = store.query("SELECT run_id, status, backend, job_id, step, total_steps FROM runs").dicts()
    assert len(rows) == 3 and {(r["status"], r["backend"]) for r in rows} == {("done", "slurm")}
    for r in rows:
        assert r["step"] == r["total_steps"] and r["job_id"].isdigit()
        assert slurm_cluster.sacct_state(r["job_id"]) == "COMPLETED"  # Slurm's own record of the job
    on_slurm, here = losses(store), losses(local)
    assert on_slurm.keys() == here.keys() and len(on_slurm) > 30
    assert max(abs(on_slurm[k] - here[k]) for k in here) <= 1e-6
    evals = "SELECT run_id, step, language, ppl FROM evals"
    on_slurm, here = ({(r, st, lang): ppl for r, st, lang, ppl in s.query(evals).rows} for s in (store, local))
    assert on_slurm.keys() == here.keys() and max(abs(on_slurm[k] - here[k]) / here[k] for k in here) <= 1e-6


def test_a_time_limit_shorter_than_the_run_signals_checkpoints_requeues_and_resumes(
    tmp_path, tiny_corpus, slurm_cluster
):
    """--time 1 (a minute, Slurm's least), the signal asked for 10 s before it: Slurm
    looks at time limits every 30 s and may signal up to 60 s early (sbatch(1), --signal),
    which makes it 20 to 50 s into each job here. The run trains ~50 s, so it is
    interrupted at least once: the worker checkpoints on the signal (periodic checkpoints
    are off), submitit requeues the same job and it resumes at that step, as often as it
    takes. Its loss trajectory is that of the same run with a time limit it never
    reaches, trained meanwhile in a second database. Slurm holds a requeued job 120 s
    (BeginTime) before it may run again; the test releases it after 8 s (scontrol update
    StartTime=now) to stay short."""
    probe = long_toml(tmp_path / "probe.toml", tiny_corpus, tokens=10_000_000)
    tokens = int(tokens_per_second(probe, tmp_path) * 50) // 256 * 256
    limited = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=tokens)
    with open(limited, "a") as fh:
        fh.write(slurm_section(time="1", signal_delay_s=10, max_requeues=10))
    unlimited = long_toml(tmp_path / "reference.toml", tiny_corpus, tokens=tokens)
    with open(unlimited, "a") as fh:
        fh.write(slurm_section(time="30"))
    db, reference_db = tmp_path / "requeue.duckdb", tmp_path / "reference.duckdb"
    args = ("--backend", "slurm", "--device", "cpu")
    procs = [
        xling("run", str(limited), "--db", str(db), *args),
        xling("run", str(unlimited), "--db", str(reference_db), *args),
    ]
    reference_job = wait_until(
        "the reference's job", lambda: run_dirs(reference_db) and submitted(run_dirs(reference_db)[0])
    )
    released, held_since = set(), {}
    while any(p.poll() is None for p in procs):
        for job_id, (state, reason) in slurm_cluster.squeue().items():
            if state != "PENDING" or reason != "BeginTime":
                held_since.pop(job_id, None)
            elif time.monotonic() - held_since.setdefault(job_id, time.monotonic()) > 8:
                # not at once: the job's previous run may still be cleaning up on the node
                slurm_cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
                released.add(job_id)
        time.sleep(1)
    for proc in procs:
        code, out = finish(proc)
        assert code == 0, out
    (run,) = run_dirs(db)
    log = events(run)
    stops = [e["step"] for e in log if e["kind"] == "status" and e["status"] == "cancelled"]
    requeues = [e for e in log if e["kind"] == "status" and "requeued by Slurm" in (e["message"] or "")]
    starts = [e["resumed_from"] for e in log if e["kind"] == "started"]
    assert stops and len(requeues) == len(stops) and starts == [None, *stops], (stops, starts)
    assert released == {submitted(run)["job_id"]}  # one job, requeued: never a second submission
    assert reference_job["job_id"] not in released
    store = Store(db)
    row = store.query("SELECT status, step, total_steps FROM runs").dicts()[0]
    assert row["status"] == "done" and row["step"] == row["total_steps"]
    requeued, reference = losses(store), losses(Store(reference_db))
    assert requeued.keys() == reference.keys()
    assert max(abs(requeued[k] - reference[k]) for k in reference) <= 1e-6


def test_cancel_signals_the_worker_first_then_resume_finishes_on_slurm(tmp_path, tiny_corpus, slurm_cluster):
    toml = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=120_000)
    with open(toml, "a") as fh:
        fh.write(slurm_section(time="10"))
    db = tmp_path / "cancel.duckdb"
    out = runner.invoke(app, ["run", str(toml), "--db", str(db), "--backend", "slurm", "--device", "cpu", "--detach"])
    assert out.exit_code == 0, out.output
    (run,) = run_dirs(db)
    job = submitted(run)["job_id"]
    wait_until("the job to train 10 steps", lambda: trained_to(run, 10))
    out = runner.invoke(app, ["cancel", run.name, "--db", str(db)])
    assert out.exit_code == 0 and "checkpointed and stopped" in out.output, out.output
    assert job not in slurm_cluster.squeue() or slurm_cluster.squeue()[job][0] == "COMPLETED"  # out of the queue
    # The job ended by itself once its worker had checkpointed: Slurm never had to cancel it.
    wait_until("sacct to record the job", lambda: slurm_cluster.sacct_state(job) == "COMPLETED", timeout=60)
    (stop,) = [e for e in events(run) if e["kind"] == "status" and e["status"] == "cancelled"]
    assert stop["step"] >= 10 and status_rows(db)[run.name]["status"] == "cancelled"
    out = runner.invoke(app, ["resume", run.name, "--db", str(db), "--config", str(toml)])
    assert out.exit_code == 0, out.output
    assert submitted(run)["backend"] == "slurm" and submitted(run)["job_id"] != job
    assert [e["resumed_from"] for e in events(run) if e["kind"] == "started"] == [None, stop["step"]]
    row = Store(db).query("SELECT status, step, total_steps FROM runs").dicts()[0]
    assert row["status"] == "done" and row["step"] == row["total_steps"]


def test_a_job_killed_outright_fails_the_run_keeps_its_log_and_resumes(tmp_path, tiny_corpus, slurm_cluster):
    toml = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=120_000, checkpoint_every=10)
    with open(toml, "a") as fh:
        fh.write(slurm_section(time="10"))
    db = tmp_path / "killed.duckdb"
    out = runner.invoke(app, ["run", str(toml), "--db", str(db), "--backend", "slurm", "--device", "cpu", "--detach"])
    assert out.exit_code == 0, out.output
    (run,) = run_dirs(db)
    job = submitted(run)["job_id"]
    wait_until("the job to train 25 steps", lambda: trained_to(run, 25))
    slurm_cluster.kill_outright(job)
    wait_until("the job to end", lambda: slurm_cluster.squeue().get(job, ("",))[0] not in ("RUNNING", "COMPLETING"))
    row = status_rows(db)[run.name]
    assert row["status"] == "failed" and f"slurm job {job} ended (FAILED" in row["message"], row
    logged = [e["step"] for e in events(run) if e["kind"] == "train"]
    stored = [s for (s,) in Store(db).query("SELECT step FROM train_metrics ORDER BY step").rows]
    assert stored == sorted(set(logged)) and stored[-1] >= 25  # everything the worker logged
    out = runner.invoke(app, ["resume", "--failed", "--db", str(db), "--config", str(toml)])
    assert out.exit_code == 0, out.output
    starts = [e["resumed_from"] for e in events(run) if e["kind"] == "started"]
    assert len(starts) == 2 and starts[1] >= 20 and starts[1] % 10 == 0  # its last periodic checkpoint
    assert Store(db).query("SELECT status FROM runs").rows == [("done",)]


def test_without_sacct_states_come_from_squeue_and_a_forgotten_job_is_not_alive(tmp_path, tiny_corpus, slurm_cluster):
    toml = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=400_000, runs=2)
    with open(toml, "a") as fh:
        fh.write(slurm_section(time="10"))
    db = tmp_path / "nodbd.duckdb"
    script("slurm.sh", "dbd-stop")
    try:
        assert subprocess.run(["sacct", "--jobs=1"], capture_output=True).returncode != 0  # sacct has no answer
        out = runner.invoke(
            app, ["run", str(toml), "--db", str(db), "--backend", "slurm", "--device", "cpu", "--detach"]
        )
        assert out.exit_code == 0, out.output
        first, second = run_dirs(db)
        jobs = {d.name: submitted(d)["job_id"] for d in (first, second)}
        wait_until("both jobs to train", lambda: trained_to(first, 5) and trained_to(second, 5))
        rows = status_rows(db)
        assert {r["job_state"] for r in rows.values()} == {"RUNNING"}  # from squeue
        # The first is looked at while the controller still remembers its job ...
        slurm_cluster.kill_outright(jobs[first.name])
        wait_until("squeue to show the end", lambda: slurm_cluster.squeue().get(jobs[first.name], ("",))[0] == "FAILED")
        rows = status_rows(db)
        assert rows[first.name]["status"] == "failed" and "(FAILED" in rows[first.name]["message"]
        assert rows[second.name]["status"] == "running"
        # ... the second only once it has forgotten it (MinJobAge): gone, not alive forever.
        slurm_cluster.kill_outright(jobs[second.name])
        wait_until(
            "the controller to forget the job",
            lambda: jobs[second.name] not in slurm_cluster.squeue(),
            timeout=180,
            every=2,
        )
        row = status_rows(db)[second.name]
        assert row["status"] == "failed" and "GONE" in row["message"] and "no accounting record" in row["message"]
    finally:
        script("slurm.sh", "dbd-start")


def test_a_submission_slurm_refuses_names_what_and_leaves_nothing_queued(tmp_path, tiny_toml, slurm_cluster):
    with open(tiny_toml, "a") as fh:
        fh.write(slurm_section(time="10"))
    before = set(slurm_cluster.squeue())

    def run(db, *flags: str):
        return runner.invoke(
            app, ["run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--device", "cpu", *flags]
        )

    out = run(tmp_path / "refused.duckdb", "--partition", "nope")
    assert out.exit_code == 1 and "partition nope" in out.output and "nvalid partition" in out.output, out.output
    assert "Traceback" not in out.output and set(slurm_cluster.squeue()) == before
    # Over the partition's MaxTime (60 min): Slurm queues it, pending for ever; xling takes it out.
    db = tmp_path / "too-long.duckdb"
    out = run(db, "--time", "2:00:00")
    assert out.exit_code == 1, out.output
    for row in Store(db).query("SELECT status, message, job_id FROM runs").dicts():
        assert (
            row["status"] == "failed" and "PartitionTimeLimit" in row["message"] and "--time 120 min" in row["message"]
        )
        assert slurm_cluster.squeue().get(row["job_id"], ("CANCELLED",))[0] == "CANCELLED"
    # The same, submitted with --detach: `xling status` finds and removes them.
    db = tmp_path / "too-long-detached.duckdb"
    out = run(db, "--time", "2:00:00", "--detach")
    assert out.exit_code == 0, out.output
    wait_until(  # at submission Slurm says PartitionConfig; each job's next pass names the limit
        "Slurm to name the limit for every job",
        lambda: {r for s, r in slurm_cluster.squeue().values() if s == "PENDING"} == {"PartitionTimeLimit"},
    )
    rows = status_rows(db)
    assert {r["status"] for r in rows.values()} == {"failed"}
    assert all("would never start" in r["message"] and "removed it" in r["message"] for r in rows.values())
    queue = slurm_cluster.squeue()
    assert all(queue.get(r["job_id"], ("CANCELLED",))[0] == "CANCELLED" for r in rows.values()), queue


@pytest.mark.asyncio
async def test_the_tui_shows_the_jobs_and_their_states_while_they_go(tmp_path, tiny_corpus, slurm_cluster, monkeypatch):
    """Two jobs that each take every CPU of the node: one runs while the other waits, and
    the dashboard says so beside each run (`slurm <job> RUNNING`, `PENDING (Resources)`).
    The dashboard asks Slurm every second here (every 15 s by default), and the runs are
    long enough that a fast node cannot train one between two questions; both are
    cancelled once seen."""
    from xling_tui import data_source
    from xling_tui.app import XlingApp
    from xling_tui.widgets.runs_table import device_text

    monkeypatch.setattr(data_source, "RECONCILE_SECONDS", 1.0)
    toml = long_toml(tmp_path / "experiments.toml", tiny_corpus, tokens=2_000_000, runs=2)
    with open(toml, "a") as fh:
        fh.write(slurm_section(time="10", cpus_per_run=slurm_cluster.node_cpus()))
    db = tmp_path / "tui.duckdb"
    out = runner.invoke(app, ["run", str(toml), "--db", str(db), "--backend", "slurm", "--device", "cpu", "--detach"])
    assert out.exit_code == 0, out.output
    jobs = {d.name: submitted(d)["job_id"] for d in run_dirs(db)}
    tui = XlingApp(toml, db, refresh_every=1.0)
    tui.animation_level = "none"
    seen: set[str] = set()
    async with tui.run_test(size=(160, 40)) as pilot:
        for _ in range(600):
            data = getattr(tui.screen, "data", None)
            seen |= {device_text(row) for row in (data.runs if data else ())}
            if any("RUNNING" in t for t in seen) and any("PENDING" in t for t in seen):
                break
            await pilot.pause(0.5)
    assert any(f"slurm {job} RUNNING" in t for job in jobs.values() for t in seen), seen
    assert any(f"slurm {job} PENDING (" in t for job in jobs.values() for t in seen), seen
    for job in jobs.values():
        slurm_cluster.run("scancel", job)
