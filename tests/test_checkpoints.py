"""Checkpoints a run folder may hold: plain data only, a fallback, and no partial files.

A crafted checkpoint (or Slurm result file) must not run code; a damaged newest checkpoint falls back to the
previous one with the same loss trajectory; a full disk leaves nothing partial and the
run resumes once there is space. Runs here are 16 steps of the tiny experiment.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import checkpoint
from engine.config.spec import load_experiments
from engine.errors import CheckpointError, DiskFull
from engine.runs.events import EventLog, iter_events
from engine.runs.layout import CHECKPOINT_FILE, FINAL_MODEL_FILE, PREVIOUS_CHECKPOINT_FILE, SPEC_FILE
from engine.train import Trainer
from engine.worker import run_worker


@pytest.fixture
def spec(tiny_toml):
    """16 steps, checkpoints every 4."""
    text = tiny_toml.read_text().replace("tokens = 24_576", "tokens = 4_096")
    text = text.replace("baselines = [1.0, 0.5]", "baselines = [1.0]")  # half of 4,096 tokens is under 10 steps
    tiny_toml.write_text(text.replace("checkpoint_every = 5", "checkpoint_every = 4"))
    (exp,) = load_experiments(tiny_toml)
    return next(r for r in exp.runs if r.name == "90/10")


def _run_dir(tmp_path: Path, spec, name: str) -> Path:
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / SPEC_FILE).write_text(spec.to_json())
    return run_dir


def _losses(run_dir: Path) -> dict[int, float]:
    """The last logged loss per step (a resumed run logs steps after its checkpoint again)."""
    return {e["step"]: e["loss"] for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "train"}


def _statuses(run_dir: Path) -> list[tuple[str, str | None]]:
    return [(e["status"], e.get("message")) for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "status"]


@pytest.fixture
def straight(tmp_path, spec) -> dict[int, float]:
    """The loss trajectory of a run that never stopped."""
    run_dir = _run_dir(tmp_path, spec, "straight")
    with EventLog(run_dir) as log:
        assert Trainer(spec, run_dir).run(log) == "done"
    return _losses(run_dir)


def _same_trajectory(a: dict[int, float], b: dict[int, float]) -> None:
    assert a.keys() == b.keys() and len(a) >= 8
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-6, abs=1e-7), step


def _leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp"))


# -- 1. plain data only -----------------------------------------------------------------


class _Payload:
    """Unpickling this creates a file: what a hostile checkpoint could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_by_name_and_never_runs(tmp_path, spec):
    hostile = {"step": 3, "model": _Payload(tmp_path / "pwned"), "opt": {}, "acc": {}, "torch_rng": torch.zeros(1)}
    # the payload is live: an unsafe load runs it
    torch.save(hostile, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert (tmp_path / "pwned").exists()
    (tmp_path / "pwned").unlink()

    run_dir = _run_dir(tmp_path, spec, "run")
    torch.save(hostile, run_dir / CHECKPOINT_FILE)
    assert run_worker(run_dir, "cpu", threads=1) == 1
    assert not (tmp_path / "pwned").exists()
    ((status, message),) = _statuses(run_dir)
    assert status == "failed"
    assert f"refusing to load {run_dir / CHECKPOINT_FILE}" in message and "did not run" in message


def test_checkpoints_hold_only_what_weights_only_loading_accepts(tmp_path, spec):
    run_dir = _run_dir(tmp_path, spec, "run")
    with EventLog(run_dir) as log:
        assert Trainer(spec, run_dir).run(log, stop_after=6) == "cancelled"
    for name in (CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE):
        state = torch.load(run_dir / name, weights_only=True)
        assert isinstance(state["torch_rng"], torch.Tensor)
    assert torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)["step"] == 6
    assert torch.load(run_dir / PREVIOUS_CHECKPOINT_FILE, weights_only=True)["step"] == 4


def test_writing_anything_but_plain_data_is_a_bug_caught_at_save(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['acc'\]\['count'\] is a ndarray"):
        checkpoint.save(tmp_path, {"acc": {"count": np.zeros(2)}})
    assert list(tmp_path.iterdir()) == []


# -- 8. a damaged newest checkpoint ------------------------------------------------------


def test_a_truncated_checkpoint_falls_back_to_the_previous_one_exactly(tmp_path, spec, straight):
    run_dir = _run_dir(tmp_path, spec, "run")
    with EventLog(run_dir) as log:
        assert Trainer(spec, run_dir).run(log, stop_after=10) == "cancelled"  # checkpoints at 8 and 10
    newest = run_dir / CHECKPOINT_FILE
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    said: list[str] = []
    with EventLog(run_dir) as log:
        assert Trainer(spec, run_dir, log=said.append).run(log) == "done"
    assert any(f"removed a damaged checkpoint ({newest}: truncated or corrupt" in m for m in said)
    resumed = [e["resumed_from"] for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "started"]
    assert resumed == [None, 8]
    _same_trajectory(straight, _losses(run_dir))
    assert not newest.exists() and not (run_dir / PREVIOUS_CHECKPOINT_FILE).exists()


def _state(step: int) -> dict:
    return {"step": step, "model": {"w": torch.ones(3)}, "opt": {}, "acc": {}, "torch_rng": torch.zeros(2)}


def test_a_damaged_newest_checkpoint_is_removed_so_it_never_becomes_the_fallback(tmp_path):
    checkpoint.save(tmp_path, _state(1))
    checkpoint.save(tmp_path, _state(2))
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\0" * 100)
    loaded = checkpoint.load(tmp_path, "cpu", "r")
    assert loaded.state["step"] == 1 and loaded.path == tmp_path / PREVIOUS_CHECKPOINT_FILE
    assert len(loaded.damaged) == 1 and not (tmp_path / CHECKPOINT_FILE).exists()
    checkpoint.save(tmp_path, _state(3))
    assert checkpoint.load(tmp_path, "cpu", "r").state["step"] == 3
    assert torch.load(tmp_path / PREVIOUS_CHECKPOINT_FILE, weights_only=True)["step"] == 1


def test_damaged_checkpoints_without_an_intact_one_name_the_files_and_what_to_do(tmp_path, spec):
    run_dir = _run_dir(tmp_path, spec, "run")
    (run_dir / CHECKPOINT_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    torch.save({"something": "else"}, run_dir / PREVIOUS_CHECKPOINT_FILE)
    assert run_worker(run_dir, "cpu", threads=1) == 1
    ((status, message),) = _statuses(run_dir)
    assert status == "failed" and message.startswith("cannot resume: ")
    assert f"{run_dir / CHECKPOINT_FILE}: truncated or corrupt" in message
    assert f"{run_dir / PREVIOUS_CHECKPOINT_FILE}: not an xling checkpoint" in message
    assert "Delete the damaged file(s) to restart this run from step 0" in message
    with pytest.raises(CheckpointError):  # nothing was removed: the user decides
        checkpoint.load(run_dir, "cpu", spec.run_id)


def test_a_checkpoint_of_another_run_is_not_used(tmp_path):
    checkpoint.save(tmp_path, _state(1) | {"run_id": "other"})
    with pytest.raises(CheckpointError, match="it belongs to run 'other'"):
        checkpoint.load(tmp_path, "cpu", "mine")


# -- 9. a full disk --------------------------------------------------------------------


def _full_disk_on(monkeypatch, fails) -> None:
    """torch.save writes part of the file, then the disk is full, when ``fails(path)``."""
    real = torch.save

    def save(obj, fh, *args, **kwargs):
        if fails(Path(fh.name)):
            fh.write(b"partial" * 100)
            fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, fh, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_mid_checkpoint_leaves_no_partial_file_and_the_run_resumes(tmp_path, spec, straight, monkeypatch):
    run_dir = _run_dir(tmp_path, spec, "run")
    saves = []
    _full_disk_on(monkeypatch, lambda path: saves.append(path) or len(saves) == 2)  # the second checkpoint, step 8
    assert run_worker(run_dir, "cpu", threads=1) == 1
    ((status, message),) = _statuses(run_dir)
    assert status == "failed"
    assert message.startswith(f"no space left on {run_dir / CHECKPOINT_FILE}: free some space")
    assert _leftovers(run_dir) == []
    assert torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)["step"] == 4  # the last good one, untouched
    monkeypatch.undo()  # space is back
    assert run_worker(run_dir, "cpu", threads=1) == 0
    _same_trajectory(straight, _losses(run_dir))
    assert _statuses(run_dir)[-1][0] == "done"


def test_a_full_disk_while_writing_the_model_leaves_no_partial_model(tmp_path, spec, monkeypatch):
    run_dir = _run_dir(tmp_path, spec, "run")
    _full_disk_on(monkeypatch, lambda path: FINAL_MODEL_FILE in path.name)
    assert run_worker(run_dir, "cpu", threads=1) == 1
    assert _statuses(run_dir)[-1][1].startswith(f"no space left on {run_dir / FINAL_MODEL_FILE}")
    assert not (run_dir / FINAL_MODEL_FILE).exists() and _leftovers(run_dir) == []
    monkeypatch.undo()
    assert run_worker(run_dir, "cpu", threads=1) == 0
    assert set(torch.load(run_dir / FINAL_MODEL_FILE, weights_only=True)) >= {"head.weight"}


def test_a_full_event_log_says_so_and_a_later_line_is_never_swallowed(tmp_path, monkeypatch):
    import engine.runs.events as events_module
    from engine.runs.events import BadLine, Heartbeat, read_events

    real = events_module.os.write

    def write(fd, data):
        real(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    log = EventLog(tmp_path)
    log.emit(Heartbeat("r", 1, 1))
    monkeypatch.setattr(events_module.os, "write", write)
    with pytest.raises(DiskFull, match=f"no space left on {tmp_path / 'events.jsonl'}"):
        log.emit(Heartbeat("r", 2, 1))
    monkeypatch.undo()
    log.emit(Heartbeat("r", 3, 1))
    log.close()
    EventLog(tmp_path).close()
    skipped: list[BadLine] = []
    events, _ = read_events(tmp_path / "events.jsonl", skipped=skipped)
    assert [e["step"] for e in events] == [1, 3]
    assert [b.line for b in skipped] == [2]


REAL_DISK_FULL = """
import json, os, subprocess, sys
from pathlib import Path
from engine.runs.events import iter_events
from engine.worker import run_worker

disk, run_dir, size, spec, room = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(disk)], check=True)
run_dir.mkdir()
(run_dir / "spec.json").write_text(Path(spec).read_text())
st = os.statvfs(disk)
(disk / "filler").write_bytes(b"x" * (st.f_bavail * st.f_frsize - room))
report = {"codes": [run_worker(run_dir, "cpu", 1)], "files": sorted(os.listdir(run_dir))}
(disk / "filler").unlink()  # space is back
report["codes"].append(run_worker(run_dir, "cpu", 1))
report["statuses"] = [e for e in iter_events(run_dir / "events.jsonl") if e["kind"] == "status"]
report["after"] = sorted(os.listdir(run_dir))
print(json.dumps(report))
"""


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    cmd = ["unshare", "--user", "--map-root-user", "--mount", "mount", "-t", "tmpfs", "tmpfs", str(tmp_path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def test_a_really_full_disk_in_a_small_tmpfs(tmp_path, spec):
    """No injection: a tmpfs with room for the log but not for a checkpoint (a user namespace mounts it)."""
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a tmpfs in a user namespace here; the injected full-disk tests cover the code")
    (tmp_path / "disk").mkdir()
    (tmp_path / "spec.json").write_text(spec.to_json())
    args = [str(tmp_path / "disk"), str(tmp_path / "disk" / "run"), "8m", str(tmp_path / "spec.json"), "65536"]
    cmd = ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", REAL_DISK_FULL, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["codes"] == [1, 0]
    run_dir = tmp_path / "disk" / "run"
    assert [s["status"] for s in report["statuses"]] == ["failed", "done"]
    assert report["statuses"][0]["message"].startswith(f"no space left on {run_dir / CHECKPOINT_FILE}")
    assert report["files"] == ["events.jsonl", "spec.json"]  # nothing partial
    assert FINAL_MODEL_FILE in report["after"]


# -- submitit's result file in <run>/slurm/ ----------------------------------------------------


def _job(result: Path):
    from types import SimpleNamespace

    return SimpleNamespace(job_id="42", paths=SimpleNamespace(result_pickle=result, stdout=result.parent / "out"))


def test_a_slurm_result_file_is_read_as_plain_data(tmp_path):
    from submitit.core.utils import cloudpickle_dump

    from engine.backends.slurm import _outcome

    cloudpickle_dump(("success", 3), tmp_path / "ok.pkl")
    assert _outcome(_job(tmp_path / "ok.pkl"), None) == (3, "")
    cloudpickle_dump(("error", "Traceback (most recent call last):\nValueError: boom"), tmp_path / "err.pkl")
    assert _outcome(_job(tmp_path / "err.pkl"), None)[1].startswith("job 42 failed: ValueError: boom;")
    cloudpickle_dump(("success", _Payload(tmp_path / "pwned")), tmp_path / "hostile.pkl")
    code, why = _outcome(_job(tmp_path / "hostile.pkl"), None)
    assert code == 1 and "unreadable result" in why and "it names" in why
    assert not (tmp_path / "pwned").exists()


def test_a_launcher_that_cannot_log_a_dead_worker_says_why_and_goes_on(tmp_path, spec, monkeypatch):
    """The disk is full: the worker died without a word, and the launcher cannot write either."""
    from engine.launch.launcher import Launcher
    from engine.launch.state import RunState

    class Dead:
        def exit_reason(self, code: int) -> str:
            return f"worker exited with code {code}"

    def full(run_dir, event):
        raise DiskFull(run_dir / "events.jsonl")

    state = RunState(spec, _run_dir(tmp_path, spec, "run"), status="running")
    launcher = Launcher(tmp_path)
    launcher.procs[spec.run_id] = Dead()
    launcher.pool.acquire(spec.run_id)
    monkeypatch.setattr("engine.launch.launcher.append_event", full)
    launcher._finish(state, 1)
    assert state.status == "failed"
    assert state.message.endswith(f"(no space left on {state.run_dir / 'events.jsonl'}; not logged)")


def test_a_killed_saves_temporary_file_goes_with_the_checkpoints(tmp_path):
    checkpoint.save(tmp_path, _state(1))
    stray = tmp_path / f".{CHECKPOINT_FILE}.4242.0badf00d.tmp"  # what atomic_file leaves when killed mid-write
    stray.write_bytes(b"partial")
    checkpoint.remove(tmp_path)
    assert list(tmp_path.iterdir()) == []
