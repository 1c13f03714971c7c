"""Who holds a run, and whether its worker still lives.

Two `xling run` sessions on one experiment queue the same runs; the claim file in a
run folder is what stops both from starting the same one. A worker is alive when its
pid exists on this host and its log moved recently (a working worker heartbeats
every few seconds), so a pid reused by another program does not look like ours.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.runs.layout import CLAIM_FILE, EVENTS_FILE

LIVE_SECONDS = 30.0  # a running run whose log is quieter than this, with no live pid, is dead


def launcher_alive(run_dir: Path) -> bool:
    """Another xling process on this host holds the run."""
    return claimed_by_other(run_dir) is not None


def log_is_fresh(run_dir: Path) -> bool:
    """The run's log moved within LIVE_SECONDS (a working worker heartbeats every few seconds)."""
    try:
        return time.time() - (Path(run_dir) / EVENTS_FILE).stat().st_mtime < LIVE_SECONDS
    except OSError:
        return False


def pid_exists(pid: int) -> bool:
    """On this host; a process of another user exists too (we may not signal it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _is_worker(pid: int, run_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "engine.worker" in cmdline and str(run_dir) in cmdline


def claimed_by_other(run_dir: Path) -> int | None:
    """The pid of another live launcher on this host that owns this run, if any."""
    try:
        pid = int((Path(run_dir) / CLAIM_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid == os.getpid() or not pid_exists(pid):
        return None
    return pid


def claim(run_dir: Path) -> bool:
    """Atomically marks this launcher as the run's owner; a dead owner's claim is taken over.

    Two `xling run` sessions on one experiment queue the same runs; the claim is what
    stops both from starting the same one.
    """
    path = Path(run_dir) / CLAIM_FILE
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if claimed_by_other(run_dir) is not None:
                return False
            path.unlink(missing_ok=True)  # stale: its launcher is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        return True
    return False


def release_claim(run_dir: Path) -> None:
    if claimed_by_other(run_dir) is None:
        (Path(run_dir) / CLAIM_FILE).unlink(missing_ok=True)
