"""Run claims are OS locks: held while the launcher lives, gone the moment it dies.

The launcher that holds a run keeps ``<run_dir>/.launcher`` open and flock-ed. These
tests use a real second process, because a lock is per process and what matters is a
launcher killed without a chance to clean up (SIGKILL), whose pid may since belong to
another program.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.runs.claims import claim, claimed_by_other, launcher_alive, release_claim
from engine.runs.layout import CLAIM_FILE

ROOT = Path(__file__).resolve().parents[1]
HOLD = (
    "import sys, time\n"
    "from engine.runs.claims import claim\n"
    "print('claimed' if claim(sys.argv[1]) else 'refused', flush=True)\n"
    "time.sleep(60)\n"
)


def holder(run_dir: Path) -> subprocess.Popen:
    """Another launcher: claims the run and keeps it until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=os.environ
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    return proc


def test_a_live_launchers_claim_holds_and_a_killed_ones_does_not(tmp_path: Path) -> None:
    other = holder(tmp_path)
    try:
        assert claimed_by_other(tmp_path) == other.pid and launcher_alive(tmp_path)
        assert not claim(tmp_path)
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    assert (tmp_path / CLAIM_FILE).exists()  # it had no chance to clean up...
    assert claimed_by_other(tmp_path) is None  # ...but its lock died with it
    assert claim(tmp_path)
    assert (tmp_path / CLAIM_FILE).read_text() == f"{os.getpid()}\n"
    release_claim(tmp_path)
    assert not (tmp_path / CLAIM_FILE).exists()


def test_a_dead_launchers_pid_in_use_by_another_program_does_not_hold_the_run(tmp_path: Path) -> None:
    """The file names a pid that exists (as after pid reuse): without the lock it means nothing."""
    other = holder(tmp_path)
    other.send_signal(signal.SIGKILL)
    other.wait()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / CLAIM_FILE).write_text(f"{stranger.pid}\n")
        assert claimed_by_other(tmp_path) is None
        assert claim(tmp_path)
    finally:
        release_claim(tmp_path)
        stranger.kill()
        stranger.wait()


def test_a_claim_is_this_processs_until_released(tmp_path: Path) -> None:
    assert claim(tmp_path) and claim(tmp_path)  # asking again is not a conflict with ourselves
    assert claimed_by_other(tmp_path) is None
    other = subprocess.run(
        [sys.executable, "-c", HOLD.replace("time.sleep(60)", ""), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert other.stdout.strip() == "refused"
    release_claim(tmp_path)
    release_claim(tmp_path)  # twice is harmless
    assert not (tmp_path / CLAIM_FILE).exists()
