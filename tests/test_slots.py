"""Machine-wide CPU slots: never over-granted across processes, freed by a killed holder,
foreign load counted, a waiting run shown and started when a slot frees, with the
threads it was granted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.launch.pools import CpuPool
from engine.launch.slots import CpuSlots, LoadSampler, SlotRegistryError
from tests.test_launch import events, run_dirs, start_run, wait_for
from xling_tui.cli import app

ROOT = Path(__file__).resolve().parent.parent

# A claimant process: takes 1-3 of 3 slots again and again; while it holds a slot it
# owns a marker file created with O_EXCL, so two holders of one slot fail loudly.
CLAIMANT = r"""
import os, random, sys, time
from pathlib import Path
from engine.launch.slots import CpuSlots
folder, marks, rounds, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
slots = CpuSlots(folder, cpus=3)
done = 0
while done < rounds:
    grant = slots.acquire(rng.randint(1, 3))
    if grant is None:
        time.sleep(0.002)
        continue
    assert grant.threads >= 1 and all(0 <= s < 3 for s in grant.slots), grant.slots
    for s in grant.slots:
        os.close(os.open(marks / f"slot-{s}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    time.sleep(rng.uniform(0.001, 0.01))
    for s in grant.slots:
        os.unlink(marks / f"slot-{s}")
    grant.close()
    done += 1
print(done)
"""


def hold(registry: CpuSlots, n: int, run_id: str) -> subprocess.Popen:
    """A process holding ``n`` slots the way a worker does: inherited, then handed over."""
    grant = registry.acquire(n)
    assert grant is not None and grant.threads == n
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], pass_fds=grant.fds)
    grant.hand_over(proc.pid, run_id)
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_many_claimant_processes_never_share_a_slot(tmp_path, cpu_slots):
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMANT, str(cpu_slots), str(marks), "15", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for seed in range(6)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, outs
    assert [o.split()[-1] for o in outs] == ["15"] * 6
    assert not list(marks.iterdir())


def test_a_killed_holders_slots_come_back(cpu_slots):
    registry = CpuSlots(cpu_slots, cpus=2)
    holder = hold(registry, 2, "deadbeef0000")
    try:
        assert registry.acquire(1) is None
        assert "2 of 2 cores held by xling runs (deadbeef)" in registry.reason
        assert {h.pid for h in registry.holders()} == {holder.pid}
    finally:
        kill(holder)
    grant = registry.acquire(2)
    assert grant is not None and grant.threads == 2
    assert [h.pid for h in registry.holders()] == [None, None]  # ours, not handed over: the old name is gone


def test_foreign_load_shrinks_the_grant_but_never_to_nothing(cpu_slots):
    class Fixed(LoadSampler):
        def __init__(self, cores: float) -> None:
            super().__init__(busy=lambda: 0.0)
            self.cores = cores

        def foreign_cores(self, holder_pids: set[int]) -> float:
            return self.cores

    some_load = CpuSlots(cpu_slots, cpus=4, sampler=Fixed(1.4)).acquire(4)
    assert some_load.threads == 3
    some_load.close()
    idle_but_busy = CpuSlots(cpu_slots, cpus=4, sampler=Fixed(6.0))
    first = idle_but_busy.acquire(4)
    assert first.threads == 1  # no xling run holds a slot: a busy machine slows xling, never stops it
    assert idle_but_busy.acquire(1) is None
    assert "1 of 4 cores held by xling runs" in idle_but_busy.reason
    assert "6.0 cores busy with other programs" in idle_but_busy.reason


def test_load_sampler_subtracts_the_slot_holders_and_forgets_a_window_a_holder_left():
    now = [0.0]
    busy = {"t": 100.0}
    cpu = {7: 50.0, 8: 10.0}
    sleeps = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += 2.0  # in those 2 s the host was 3 cores busy, holder 7 used 1.5 of them
        busy["t"] += 6.0
        if 7 in cpu:
            cpu[7] += 3.0

    sampler = LoadSampler(busy=lambda: busy["t"], process=cpu.get, clock=lambda: now[0], sleep=sleep)
    assert sampler.foreign_cores({7}) == pytest.approx(1.5)
    now[0] += 0.5
    assert sampler.foreign_cores({7}) == pytest.approx(1.5) and len(sleeps) == 1  # within the window: kept
    del cpu[7]  # holder 7 exits: its CPU time is gone, a window across its exit would blame others
    assert sampler.foreign_cores({7}) == pytest.approx(3.0) and len(sleeps) == 2  # a fresh window


def test_cpu_pool_asks_for_its_share_and_passes_what_was_granted(cpu_slots):
    registry = CpuSlots(cpu_slots, cpus=4)
    pool = CpuPool(2, registry=registry)
    a = pool.acquire("a")
    assert a.threads == 2 and a.env["OMP_NUM_THREADS"] == "2" and len(a.fds) == 2
    capped = CpuPool(1, threads=1, registry=registry).acquire("b")
    assert capped.threads == 1
    pool.release("a")  # never started: the slots go back at once
    assert CpuPool(1, registry=registry).acquire("c").threads == 3


def test_a_bad_registry_is_a_clear_error(tmp_path, monkeypatch, tiny_toml):
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(SlotRegistryError, match="not a folder only you can write"):
        CpuSlots(shared, cpus=2).acquire(1)
    monkeypatch.setenv("XLING_CPUS", "many")
    result = CliRunner().invoke(app, ["run", str(tiny_toml), "--db", str(tmp_path / "x.duckdb"), "--device", "cpu"])
    assert result.exit_code == 2 and "XLING_CPUS='many'" in result.output


def test_a_waiting_run_says_why_and_starts_with_what_frees(tmp_path, tiny_toml, cpu_slots, monkeypatch):
    """Three cores, all held by two other runs: `xling run` waits (status says so); one
    slot frees and the run starts on that one thread; the rest follow on all three."""
    monkeypatch.setenv("XLING_CPUS", "3")
    registry = CpuSlots(cpu_slots, cpus=3)
    big, small = hold(registry, 2, "aaaaaaaa0000"), hold(registry, 1, "bbbbbbbb0000")
    db = tmp_path / "w.duckdb"
    proc = start_run(tiny_toml, db)
    try:

        def waiting() -> bool:
            return any(e["kind"] == "queued" and e.get("message") for d in run_dirs(db) for e in events(d))

        wait_for(waiting)
        status = CliRunner().invoke(app, ["status", "--db", str(db), "--format", "json"])
        assert status.exit_code == 0, status.output
        [waits] = [r for r in json.loads(status.output) if r["message"]]
        assert waits["status"] == "queued"
        assert waits["message"] == "waiting for a CPU slot: 3 of 3 cores held by xling runs (aaaaaaaa, bbbbbbbb)"
        assert not any(e["kind"] == "started" for d in run_dirs(db) for e in events(d))
        kill(small)
        wait_for(lambda: any(e["kind"] == "started" for d in run_dirs(db) for e in events(d)))
        kill(big)
        out = proc.communicate(timeout=300)[0]
    finally:
        for p in (big, small, proc):
            if p.poll() is None:
                kill(p)
    assert proc.returncode == 0, out
    started = sorted((e["time"], e["threads"]) for d in run_dirs(db) for e in events(d) if e["kind"] == "started")
    assert [t for _, t in started] == [1, 3, 3]
    assert registry.holders() == []
