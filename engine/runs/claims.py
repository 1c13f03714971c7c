"""Who holds a run, and whether its worker still lives.

Two `xling run` sessions on one experiment queue the same runs; the claim on a run
folder is what stops both from starting the same one. A claim is an OS lock
(``fcntl.flock``) on ``<run_dir>/.launcher``, taken by the launcher and held, file open,
for as long as it owns the run. The kernel drops the lock when its process ends, however
it ends (SIGKILL included), so a dead launcher never looks alive, even when its pid has
been given to another program since. The pid written in the file only says who holds it.

A worker is alive when its pid exists on this host and its log moved recently (a working
worker heartbeats every few seconds) or the process with that pid is an
``engine.worker`` of this run, so a pid reused by another program does not look like ours.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import psutil

from engine.runs.layout import CLAIM_FILE, EVENTS_FILE

LIVE_SECONDS = 30.0  # a running run whose log is quieter than this, with no live pid, is dead
_RETRIES = 3  # claim attempts: another process's look at a claim holds its lock for microseconds

_held: dict[str, int] = {}  # run folder (absolute) -> the open, locked claim file of this process


def _key(run_dir: Path) -> str:
    return os.path.abspath(run_dir)


def launcher_alive(run_dir: Path) -> bool:
    """Another live xling process holds the run."""
    return claimed_by_other(run_dir) is not None


def log_is_fresh(run_dir: Path) -> bool:
    """The run's log moved within LIVE_SECONDS (a working worker heartbeats every few seconds)."""
    try:
        return time.time() - (Path(run_dir) / EVENTS_FILE).stat().st_mtime < LIVE_SECONDS
    except OSError:
        return False


def pid_exists(pid: int) -> bool:
    """On this host; a process of another user exists too (we may not signal it)."""
    return psutil.pid_exists(pid)


def is_worker(pid: int, run_dir: Path) -> bool:
    """The process ``pid`` is an ``engine.worker`` of this run folder (not a program that got its pid)."""
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return False
    return "engine.worker" in cmdline and str(run_dir) in cmdline


def claimed_by_other(run_dir: Path) -> int | None:
    """The pid of another live process that holds this run (-1 while it is still writing
    its pid), or None when nobody else does."""
    if _key(run_dir) in _held:
        return None
    try:
        fd = os.open(Path(run_dir) / CLAIM_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _pid_in(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return -1


def claim(run_dir: Path) -> bool:
    """Makes this process the run's owner until ``release_claim`` (or its exit); False
    when another live process owns it."""
    key = _key(run_dir)
    if key in _held:
        return True
    path = Path(key) / CLAIM_FILE
    refused = 0
    while refused < _RETRIES:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            refused += 1
            if refused < _RETRIES:
                time.sleep(0.02)  # perhaps only a look (claimed_by_other); an owner keeps it
            continue
        if _still_at(fd, path):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            _held[key] = fd
            return True
        os.close(fd)  # its owner released it (and removed it) between our open and our lock: again
    return False


def _still_at(fd: int, path: Path) -> bool:
    """The locked file is the one at ``path``, not one its last owner has just removed."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def release_claim(run_dir: Path) -> None:
    """Gives up a claim of this process (removing the file first, while it is still locked,
    so no other process can be holding the file being removed); others' claims stay."""
    fd = _held.pop(_key(run_dir), None)
    if fd is None:
        return
    try:
        (Path(run_dir) / CLAIM_FILE).unlink(missing_ok=True)
    finally:
        os.close(fd)
