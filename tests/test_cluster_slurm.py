"""`xling run --backend slurm` against faked sbatch/srun/squeue/sacct/scancel on PATH: the
command lines xling makes, job ids on the runs, one squeue per status for all jobs,
jobs that die without a word, cancel and resume; and the [cluster] settings."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.backends import slurm_jobs
from engine.backends.slurm_jobs import SETTLE_S
from engine.config.cluster import ClusterSettings, load_cluster, parse_sbatch_options, parse_slurm_time, with_flags
from engine.config.locate import SpecError
from engine.config.spec import load_experiments
from engine.runs.events import iter_events
from xling_tui.cli.main import app

runner = CliRunner()

# Each fake records its argv in $FAKE_SLURM/calls. squeue answers from $FAKE_SLURM/states
# ("JOBID|STATE|NODE|REASON|SUBMITTED" lines: the jobs the controller still holds), sacct
# from $FAKE_SLURM/accounting (the first three), as `squeue --format=%i|%T|%N|%r|%V` and
# `sacct --format=JobID,State,NodeList --parsable2` print; a file <command>.down makes
# that command fail as it does with its daemon away. `scancel --signal=TERM` replaces the
# states with $FAKE_SLURM/states.after-signal when there is one (the worker stopped).
ANSWER = """
[ -f "$FAKE_SLURM/$NAME.down" ] && { echo "$NAME: error: Connection refused" >&2; exit 1; }
for arg in "$@"; do
  case "$arg" in --jobs=*) ids=$(echo "${arg#--jobs=}" | tr ',' ' ');; esac
done
for id in $ids; do
  grep "^$id|" "$FAKE_SLURM/$FILE" 2>/dev/null | cut -d'|' -f"$FIELDS"
done
"""
FAKES = {
    "sbatch": """#!/bin/sh
echo "sbatch $*" >> "$FAKE_SLURM/calls"
n=$(cat "$FAKE_SLURM/next" 2>/dev/null || echo 1000)
echo $((n + 1)) > "$FAKE_SLURM/next"
echo "Submitted batch job $n"
""",
    "srun": "#!/bin/sh\nexit 0\n",
    "scancel": """#!/bin/sh
echo "scancel $*" >> "$FAKE_SLURM/calls"
case "$1" in --signal=TERM) [ -f "$FAKE_SLURM/states.after-signal" ] && cp "$FAKE_SLURM/states.after-signal" "$FAKE_SLURM/states";; esac
exit 0
""",
    "squeue": '#!/bin/sh\necho "squeue $*" >> "$FAKE_SLURM/calls"\nNAME=squeue FILE=states FIELDS=1-5' + ANSWER,
    "sacct": '#!/bin/sh\necho "sacct $*" >> "$FAKE_SLURM/calls"\nNAME=sacct FILE=accounting FIELDS=1-3' + ANSWER,
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    folder = tmp_path / "fake-slurm"
    folder.mkdir()
    for name, text in FAKES.items():
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(folder))
    return folder


def calls(fake: Path, command: str) -> list[str]:
    path = fake / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if line.startswith(command + " ")]


LONG_AGO = "2026-01-01T00:00:00"


def set_states(fake: Path, states: dict[str, tuple[str, ...]], file: str = "states") -> None:
    """job id -> (state, node[, reason[, submit time]]) in the controller ("states") or in
    accounting; jobs were submitted long ago unless told."""
    lines = (
        f"{j}|{v[0]}|{v[1]}|{v[2] if len(v) > 2 else 'None'}|{v[3] if len(v) > 3 else LONG_AGO}\n"
        for j, v in states.items()
    )
    (fake / file).write_text("".join(lines))


def run_dirs(db: Path) -> list[Path]:
    return sorted((db.parent / (db.stem + ".runs") / "runs").iterdir())


def submitted(run_dir: Path) -> dict:
    return [e for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "submitted"][-1]


def status_rows(db: Path) -> dict[str, dict]:
    out = runner.invoke(app, ["status", "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    return {r["run_id"]: r for r in json.loads(out.output)}


def test_detached_submission_status_cancel_and_resume(tmp_path, tiny_toml, fake_slurm):
    db = tmp_path / "r.duckdb"
    with open(tiny_toml, "a") as fh:
        fh.write(
            '\n[cluster.slurm]\npartition = "cpu"\ntime = "2:00:00"\nsetup = ["module load cuda"]\n'
            'sbatch = { mail-type = "END" }\n'
        )
    out = runner.invoke(
        app,
        [
            "run",
            str(tiny_toml),
            "--db",
            str(db),
            "--backend",
            "slurm",
            "--partition",
            "gpu",
            "--gpus-per-run",
            "2",
            "--time",
            "1:30:00",
            "--account",
            "lab",
            "--sbatch",
            "constraint=a100",
            "--sbatch",
            "exclusive",
            "--detach",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "3 submitted" in out.output and "slurm 1000" in out.output
    dirs = run_dirs(db)
    jobs = {d.name: submitted(d)["job_id"] for d in dirs}
    assert sorted(jobs.values()) == ["1000", "1001", "1002"]
    assert all(submitted(d)["backend"] == "slurm" for d in dirs)
    sbatch = calls(fake_slurm, "sbatch")
    assert len(sbatch) == 3
    for d in dirs:  # submitit renamed each script after its job id, in the run's own folder
        script = (d / "slurm" / f"{jobs[d.name]}_submission.sh").read_text()
        for line in (
            "#SBATCH --partition=gpu",
            "#SBATCH --time=90",
            "#SBATCH --gpus-per-node=2",
            "#SBATCH --account=lab",
            "#SBATCH --constraint=a100",
            "#SBATCH --exclusive",
            "#SBATCH --mail-type=END",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --signal=USR2@120",
            f"#SBATCH --job-name=xling-{d.name}",
            "module load cuda",
        ):
            assert line in script, (line, script)
        assert str(d) in " ".join(sbatch)

    # status: one squeue for all three jobs; the runs show their job; a node failure is noticed
    first, second, third = dirs
    set_states(
        fake_slurm,
        {
            jobs[first.name]: ("NODE_FAIL", "node7"),
            jobs[second.name]: ("PENDING", "None"),
            jobs[third.name]: ("RUNNING", "node8"),
        },
    )
    rows = status_rows(db)
    squeue = calls(fake_slurm, "squeue")
    assert len(squeue) == 1 and f"--jobs={','.join(sorted(jobs.values()))}" in squeue[0]
    assert not calls(fake_slurm, "sacct")  # the controller knew every job
    assert rows[first.name]["status"] == "failed" and "NODE_FAIL" in rows[first.name]["message"]
    assert rows[second.name]["status"] == "queued" and rows[second.name]["job_id"] == jobs[second.name]
    assert all(r["backend"] == "slurm" for r in rows.values())
    table = runner.invoke(app, ["status", "--db", str(db)])
    assert "where" in table.output and "slurm" in table.output and jobs[third.name] in table.output
    assert len(calls(fake_slurm, "squeue")) == 2  # the dead run is no longer asked about
    assert jobs[first.name] not in calls(fake_slurm, "squeue")[-1]

    # cancel maps to scancel; a pending job's run is cancelled at once
    out = runner.invoke(app, ["cancel", second.name, "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert calls(fake_slurm, "scancel") == [f"scancel {jobs[second.name]}"]
    assert status_rows(db)[second.name]["status"] == "cancelled"

    # resume goes back to Slurm (where the run last went) with a new job
    out = runner.invoke(app, ["resume", first.name, "--db", str(db), "--config", str(tiny_toml), "--detach"])
    assert out.exit_code == 0, out.output
    assert submitted(first)["job_id"] == "1003"
    assert "--partition=cpu" in (first / "slurm" / "1003_submission.sh").read_text()  # the file's setting
    assert status_rows(db)[first.name]["job_id"] == "1003"


def test_a_live_job_is_not_submitted_twice(tmp_path, tiny_toml, fake_slurm):
    db = tmp_path / "twice.duckdb"
    args = ["run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--detach", "-e", "tiny"]
    assert runner.invoke(app, args).exit_code == 0
    set_states(fake_slurm, {"1000": ("RUNNING", "n1"), "1001": ("PENDING", "None"), "1002": ("REQUEUED", "None")})
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(calls(fake_slurm, "sbatch")) == 3 and "3 finished or running elsewhere" in again.output
    set_states(fake_slurm, {"1000": ("COMPLETED", "n1"), "1001": ("CANCELLED by 1", "None"), "1002": ("TIMEOUT", "n2")})
    rows = status_rows(db)  # all three ended without their workers reporting
    assert sorted(r["status"] for r in rows.values()) == ["cancelled", "failed", "failed"]
    third = runner.invoke(app, args)
    assert third.exit_code == 0 and len(calls(fake_slurm, "sbatch")) == 6


def test_sbatch_refusal_fails_the_run_with_its_message(tmp_path, tiny_toml, fake_slurm):
    (fake_slurm / "sbatch").write_text(
        "#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n"
    )
    db = tmp_path / "no.duckdb"
    out = runner.invoke(app, ["run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--partition", "nope"])
    assert out.exit_code == 1
    assert "invalid partition specified" in out.output and "Traceback" not in out.output


def test_bad_cluster_settings_name_file_line_and_field(tmp_path, tiny_toml):
    text = tiny_toml.read_text()
    tiny_toml.write_text(text + '\n[cluster.slurm]\npartition = "gpu"\ntime = "soon"\n')
    line = len(text.splitlines()) + 4
    with pytest.raises(SpecError, match=rf"experiments.toml:{line}: cluster.slurm.time: 'soon' is not a Slurm time"):
        load_cluster(tiny_toml)
    assert load_experiments(tiny_toml)  # the experiments themselves ignore [cluster]
    tiny_toml.write_text(text + "\n[cluster.pbs]\nqueue = 1\n")
    with pytest.raises(SpecError, match=r"cluster.pbs: unknown field 'pbs' \(known backends: slurm, ray\)"):
        load_cluster(tiny_toml)
    out = runner.invoke(app, ["run", str(tiny_toml), "--backend", "slurm", "--db", str(tmp_path / "x.duckdb")])
    assert out.exit_code == 2 and "cluster.pbs" in out.output
    tiny_toml.write_text(text)
    out = runner.invoke(
        app, ["run", str(tiny_toml), "--backend", "slurm", "--time", "1:2:3:4", "--db", str(tmp_path / "x.duckdb")]
    )
    assert out.exit_code == 2 and "--time: '1:2:3:4' is not a Slurm time" in out.output
    out = runner.invoke(app, ["run", str(tiny_toml), "--partition", "gpu", "--db", str(tmp_path / "x.duckdb")])
    assert out.exit_code == 2 and "--partition applies to --backend slurm or ray" in out.output
    out = runner.invoke(
        app,
        [
            "run",
            str(tiny_toml),
            "--backend",
            "slurm",
            "--device",
            "cpu",
            "--gpus-per-run",
            "1",
            "--db",
            str(tmp_path / "x.duckdb"),
        ],
    )
    assert out.exit_code == 2 and "choose one" in out.output


def test_slurm_times_flags_and_sbatch_options():
    assert [parse_slurm_time(t) for t in ("90", "1:30", "2:00:00", "1-0", "1-2:30", "0-0:0:30")] == [
        90,
        2,
        120,
        1440,
        1590,
        1,
    ]
    with pytest.raises(ValueError):
        parse_slurm_time("two hours")
    settings = with_flags(
        ClusterSettings(), "slurm", {"time": "4:00:00", "partition": None, "sbatch": {"constraint": "a100"}}
    )
    assert settings.slurm.time == 240 and settings.slurm.partition is None
    assert settings.slurm.sbatch == {"constraint": "a100"}
    with pytest.raises(SpecError, match="--gpus-per-run"):
        with_flags(ClusterSettings(), "slurm", {"gpus_per_run": -1})
    assert parse_sbatch_options(["constraint=a100", "--exclusive", "mail-type=END,FAIL"]) == {
        "constraint": "a100",
        "exclusive": True,
        "mail-type": "END,FAIL",
    }
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_sbatch_options(["=x"])


# -- what Slurm says, without its accounting, and how xling stops a job --------------------


def test_states_come_from_squeue_then_sacct_and_a_job_neither_knows_is_gone(fake_slurm):
    from engine.backends.slurm_jobs import GONE, query_jobs

    set_states(fake_slurm, {"7": ("RUNNING", "n1"), "8": ("PENDING", "", "Priority")})
    set_states(fake_slurm, {"9": ("COMPLETED", "n2"), "8": ("PENDING", "None assigned")}, file="accounting")
    infos = query_jobs(["7", "8", "9", "10"])
    assert calls(fake_slurm, "squeue") == ["squeue --noheader --states=all --jobs=10,7,8,9 --format=%i|%T|%N|%r|%V"]
    assert len(calls(fake_slurm, "sacct")) == 1 and "--jobs=10,9 " in calls(fake_slurm, "sacct")[0]
    assert (infos["7"].state, infos["7"].alive, infos["7"].host) == ("RUNNING", True, "n1")
    assert (infos["8"].label, infos["8"].alive) == ("PENDING (Priority)", True)  # the controller's word wins
    assert (infos["9"].state, infos["9"].alive) == ("COMPLETED", False)
    assert (infos["10"].state, infos["10"].alive) == (GONE, False)
    (fake_slurm / "sacct.down").touch()  # slurmdbd stopped: what the controller forgot is over
    infos = query_jobs(["7", "9"])
    assert infos["7"].alive and (infos["9"].state, infos["9"].alive) == (GONE, False)
    (fake_slurm / "squeue.down").touch()  # neither answers: no answer at all (the caller keeps them alive)
    assert query_jobs(["7", "9"]) == {}
    (fake_slurm / "sacct.down").unlink()  # the controller away, accounting there: its record stands
    assert query_jobs(["9"])["9"].state == "COMPLETED"


def test_a_run_whose_job_is_forgotten_without_sacct_is_failed_not_alive_forever(tmp_path, tiny_toml, fake_slurm):
    db = tmp_path / "gone.duckdb"
    out = runner.invoke(app, ["run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--detach"])
    assert out.exit_code == 0, out.output
    set_states(fake_slurm, {"1000": ("RUNNING", "n1"), "1001": ("PENDING", "", "Resources")})
    (fake_slurm / "sacct.down").touch()
    rows = status_rows(db)
    states = sorted((r["job_id"], r["status"], r["job_state"]) for r in rows.values())
    assert states == [
        ("1000", "queued", "RUNNING"),
        ("1001", "queued", "PENDING (Resources)"),
        ("1002", "failed", "GONE"),
    ]
    gone = [r for r in rows.values() if r["job_id"] == "1002"][0]
    assert "no accounting record" in gone["message"] and "xling resume" in gone["message"]
    table = runner.invoke(app, ["status", "--db", str(db)], env={"COLUMNS": "200"}).output
    assert "RUNNING" in table and "PENDING (Resources)" in table
    running = [d for d in run_dirs(db) if submitted(d)["job_id"] == "1000"][0]
    noted = [e["state"] for e in iter_events(running / "events.jsonl") if e["kind"] == "job_state"]
    assert noted == ["RUNNING"]  # asked twice, logged once: only changes are logged


def test_a_job_slurm_will_never_start_is_removed_and_its_run_failed(tmp_path, tiny_toml, fake_slurm):
    db = tmp_path / "never.duckdb"
    out = runner.invoke(app, ["run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--detach"])
    assert out.exit_code == 0, out.output
    set_states(
        fake_slurm,
        {"1000": ("PENDING", "", "PartitionTimeLimit"), "1001": ("PENDING", "", "Priority"), "1002": ("RUNNING", "n")},
    )
    rows = {r["job_id"]: r for r in status_rows(db).values()}
    assert calls(fake_slurm, "scancel") == ["scancel 1000"]
    assert rows["1000"]["status"] == "failed"
    assert (
        "would never start: PENDING (PartitionTimeLimit: its time limit is over the partition's MaxTime)"
        in (rows["1000"]["message"])
    )
    assert rows["1001"]["status"] == rows["1002"]["status"] == "queued"


def test_partition_config_right_after_submission_waits_for_slurm_to_name_the_limit(tmp_path, tiny_toml, fake_slurm):
    """Slurm 22.05 says PartitionConfig for any broken partition limit at submission and
    names the limit at its next pass: only a job older than one pass is taken out."""
    db = tmp_path / "settling.duckdb"
    out = runner.invoke(app, ["run", str(tiny_toml), "--db", str(db), "--backend", "slurm", "--detach"])
    assert out.exit_code == 0, out.output
    just_now = datetime.now().isoformat(timespec="seconds")
    set_states(fake_slurm, {"1000": ("PENDING", "", "PartitionConfig", just_now), "1001": ("RUNNING", "n")})
    rows = {r["job_id"]: r for r in status_rows(db).values()}
    assert calls(fake_slurm, "scancel") == [] and rows["1000"]["status"] == "queued"
    set_states(fake_slurm, {"1000": ("PENDING", "", "PartitionTimeLimit", just_now), "1001": ("RUNNING", "n")})
    rows = {r["job_id"]: r for r in status_rows(db).values()}
    assert calls(fake_slurm, "scancel") == ["scancel 1000"] and "PartitionTimeLimit" in rows["1000"]["message"]


def test_partition_config_that_outlasts_a_scheduling_pass_never_starts():
    old = (datetime.now() - timedelta(seconds=SETTLE_S + 5)).isoformat(timespec="seconds")
    info = slurm_jobs._info("7", "PENDING", "", "PartitionConfig", old)
    assert info.never_starts and not info.alive and "more than the partition's nodes have" in info.explained
    fresh = slurm_jobs._info("7", "PENDING", "", "PartitionConfig", datetime.now().isoformat(timespec="seconds"))
    assert fresh.alive and not fresh.never_starts and fresh.explained == "PENDING (PartitionConfig)"


def test_cancel_signals_the_worker_and_waits_before_it_cancels(tmp_path, fake_slurm):
    from engine.backends.slurm_jobs import SlurmJobs

    set_states(fake_slurm, {"5": ("RUNNING", "n1")})
    (fake_slurm / "states.after-signal").write_text("5|COMPLETED|n1|None\n")
    said = SlurmJobs(grace=30).cancel("5", tmp_path, running=True)
    assert calls(fake_slurm, "scancel") == ["scancel --signal=TERM 5"]  # the job ended by itself
    assert "checkpointed and stopped" in said
    (fake_slurm / "calls").unlink()
    (fake_slurm / "states.after-signal").unlink()
    set_states(fake_slurm, {"6": ("RUNNING", "n1")})  # a worker that does not stop
    said = SlurmJobs(grace=1.5).cancel("6", tmp_path, running=True)
    assert calls(fake_slurm, "scancel") == ["scancel --signal=TERM 6", "scancel 6"]
    assert "did not stop within 2 s" in said
    (fake_slurm / "calls").unlink()
    assert "removed from the Slurm queue" in SlurmJobs().cancel("7", tmp_path, running=False)
    assert calls(fake_slurm, "scancel") == ["scancel 7"]  # nothing to signal in a pending job


def test_the_watcher_asks_for_every_job_at_once_and_not_too_often():
    from engine.backends.base import JobInfo
    from engine.backends.slurm_jobs import JobWatcher

    asked: list[set[str]] = []

    def query(ids):
        asked.append(set(ids))
        return {i: JobInfo("RUNNING", True) for i in ids}

    watcher = JobWatcher(interval=3600, query=query)
    watcher.watch("1")
    watcher.watch("2")
    assert watcher.info("1").state == "RUNNING" and watcher.info("2").state == "RUNNING"
    assert asked == [{"1", "2"}]  # one query answered both, and the second look used it
    watcher.forget("1")
    assert watcher.info("1") is None and len(asked) == 1
