"""Machine-wide CPU slots: how many threads an xling worker on this host may use.

Every xling process on a host (any number of `xling run` sessions, the TUI's launches,
resumes) takes its workers' threads from one registry: a folder with one lock file per
core. A launcher locks free slot files (``fcntl.flock``, never blocking), starts the
worker with those locked descriptors inherited, and closes its own copies: from then on
the worker alone holds them, for exactly as long as it lives. However it ends (done,
crashed, SIGKILL, out of memory) the kernel drops its locks, so a dead worker's slots
come back without anyone cleaning up. No two workers ever hold one slot, so the
threads xling runs never outnumber the cores.

Work that is not xling's counts too, as the GPU pool counts foreign memory: the CPU
time of the host minus that of the slot holders, over the last second, is load xling
does not own, and a machine busy with it grants fewer slots. A busy machine slows
xling down but never stops it: with no xling worker running, one slot is always
granted. ``XLING_CPUS`` fixes xling's share of the host instead (then foreign load is
not measured), and ``XLING_CPU_SLOTS`` moves the registry (tests isolate it).

Slurm and Ray nodes do not use this: there a run gets what the scheduler granted.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from engine.errors import XlingError

SLOTS_ENV = "XLING_CPU_SLOTS"  # the registry folder
CPUS_ENV = "XLING_CPUS"  # cores xling may use on this host; set, foreign load is not measured
_MUTEX = "registry.lock"


class SlotRegistryError(XlingError):
    """The registry folder is unusable (not ours, not a folder); the message says which and how to fix it."""


def registry_dir() -> Path:
    """``$XLING_CPU_SLOTS``, else ``$XDG_RUNTIME_DIR/xling-cpu-slots``, else ``/tmp/xling-<uid>-cpu-slots``
    (one level, so the one folder checked is the whole path we create)."""
    env = os.environ.get(SLOTS_ENV)
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "xling-cpu-slots" if runtime else Path("/tmp") / f"xling-{os.getuid()}-cpu-slots"


def _private_folder(path: Path) -> Path:
    """Creates the folder owner-only; refuses one that another user owns or could write
    (a shared /tmp must not let someone else's files decide our slots)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(path)
    except OSError as exc:
        raise SlotRegistryError(f"CPU slot registry {path}: {exc.strerror}; set {SLOTS_ENV} to a folder of yours")
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise SlotRegistryError(
            f"CPU slot registry {path} is not a folder only you can write; remove it or set {SLOTS_ENV}"
        )
    return path


def host_cpus() -> tuple[int, bool]:
    """(cores xling may use here, whether the user fixed that number with XLING_CPUS)."""
    env = os.environ.get(CPUS_ENV)
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise SlotRegistryError(f"{CPUS_ENV}={env!r}: give a whole number of cores, at least 1")
        return n, True
    return len(os.sched_getaffinity(0)), False


@dataclass(frozen=True)
class Holder:
    """Who holds a slot, as its holder wrote it (pid and run id; None while being handed over)."""

    slot: int
    pid: int | None
    run_id: str | None


def _read_holder(slot: int, fd: int) -> Holder:
    """The slot file's one line, ``<pid> <run_id>``; anything else reads as unknown."""
    try:
        raw = os.pread(fd, 64, 0).decode("ascii", errors="replace").split()
        pid = int(raw[0]) if raw and raw[0].isdigit() else None
        run = raw[1] if len(raw) > 1 and raw[1].isalnum() else None
    except OSError:
        return Holder(slot, None, None)
    return Holder(slot, pid, run)


# -- foreign load ------------------------------------------------------------------------


def _busy_seconds(cpus: frozenset[int]) -> float:
    """CPU seconds the cores we may run on have spent on anything but idling."""
    per_cpu = psutil.cpu_times(percpu=True)
    chosen = [t for i, t in enumerate(per_cpu) if i in cpus] or per_cpu
    fields = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is inside user already
    return sum(getattr(t, f, 0.0) for t in chosen for f in fields)


def _process_seconds(pid: int) -> float | None:
    """CPU seconds a process has used, or None when it is gone or hidden."""
    try:
        t = psutil.Process(pid).cpu_times()
    except (psutil.Error, OSError):
        return None
    return t.user + t.system


@dataclass
class LoadSampler:
    """Cores busy with work that holds no slot: the host's busy CPU time minus the slot
    holders', over a window of at least ``window`` seconds. A window in which the set of
    holders changed is thrown away for a fresh short one: a worker that just exited took
    its CPU time with it, and would otherwise read as someone else's load. Readers are
    injectable so the arithmetic is testable without load."""

    window: float = 1.0
    fresh_window: float = 0.5
    max_age: float = 5.0  # an older sample says nothing of now
    busy: Callable[[], float] | None = None
    process: Callable[[int], float | None] = None  # type: ignore[assignment]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _prev: tuple[float, float, dict[int, float]] | None = field(default=None, repr=False)
    _value: float = 0.0

    def __post_init__(self) -> None:
        if self.busy is None:
            cpus = frozenset(os.sched_getaffinity(0))
            self.busy = lambda: _busy_seconds(cpus)
        if self.process is None:
            self.process = _process_seconds

    def foreign_cores(self, holder_pids: set[int]) -> float:
        prev = self._prev
        if prev is None or self.clock() - prev[0] > self.max_age or set(prev[2]) != self._alive(holder_pids):
            prev = self._sample(holder_pids)
            self.sleep(self.fresh_window)
        elif self.clock() - prev[0] < self.window:
            return self._value
        cur = self._sample(holder_pids)
        (t0, busy0, procs0), (t1, busy1, procs1) = prev, cur
        ours = sum(seconds - procs0.get(pid, seconds) for pid, seconds in procs1.items())
        self._value = max(0.0, (busy1 - busy0 - ours) / max(t1 - t0, 1e-6))
        self._prev = cur
        return self._value

    def _alive(self, pids: set[int]) -> set[int]:
        return {pid for pid in pids if self.process(pid) is not None}

    def _sample(self, pids: set[int]) -> tuple[float, float, dict[int, float]]:
        procs = {pid: s for pid in pids if (s := self.process(pid)) is not None}
        assert self.busy is not None  # set in __post_init__
        return self.clock(), self.busy(), procs


# -- grants ------------------------------------------------------------------------------


@dataclass
class Grant:
    """Locked slot files, held by this process until handed to a worker (or closed)."""

    folder: Path
    slots: list[int]
    fds: list[int]

    @property
    def threads(self) -> int:
        return len(self.slots)

    def hand_over(self, pid: int | None, run_id: str) -> None:
        """After the worker started with ``fds`` inherited: name it in each slot file (for
        other launchers' accounting and waiting reasons) and drop this process's copies,
        so the slots live exactly as long as the worker."""
        line = f"{pid or 0} {run_id}\n".encode("ascii", errors="replace")
        for fd in self.fds:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, line, 0)
            except OSError:
                pass  # accounting only: the lock is what counts
        self.close()

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


class CpuSlots:
    """The host's registry: ``acquire`` grants up to ``want`` slots now, or None with a reason."""

    def __init__(self, folder: Path | None = None, cpus: int | None = None, sampler: LoadSampler | None = None):
        detected, fixed = host_cpus()
        self.cpus = cpus or detected
        self.measure_foreign = sampler is not None or not (fixed or cpus)
        self.sampler = sampler or LoadSampler()
        self.folder = Path(folder) if folder is not None else registry_dir()
        self.reason: str | None = None

    def acquire(self, want: int) -> Grant | None:
        folder = _private_folder(self.folder)
        with self._mutex(folder):
            free, held = self._try_all(folder)
            foreign = self.sampler.foreign_cores({h.pid for h in held if h.pid}) if self.measure_foreign else 0.0
            budget = self.cpus - len(held) - int(foreign + 0.5)
            if not held:
                budget = max(budget, 1)  # a busy machine slows xling down, never stops it
            n = max(0, min(want, budget, len(free)))
            for _, fd in free[n:]:
                os.close(fd)
            if n == 0:
                self.reason = self._why(held, foreign)
                return None
            self.reason = None
            for _, fd in free[:n]:
                os.ftruncate(fd, 0)  # the last holder's name is stale until ours is written
            return Grant(folder, [s for s, _ in free[:n]], [fd for _, fd in free[:n]])

    def holders(self) -> list[Holder]:
        """Slots held right now, by whom (for status lines and tests)."""
        folder = _private_folder(self.folder)
        with self._mutex(folder):
            free, held = self._try_all(folder)
            for _, fd in free:
                os.close(fd)
        return held

    def _try_all(self, folder: Path) -> tuple[list[tuple[int, int]], list[Holder]]:
        """Locks every free slot (to be kept or let go by the caller); reads who holds the rest."""
        free: list[tuple[int, int]] = []
        held: list[Holder] = []
        for slot in range(self.cpus):
            fd = os.open(folder / f"slot-{slot}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                held.append(_read_holder(slot, fd))
                os.close(fd)
                continue
            free.append((slot, fd))
        return free, held

    @staticmethod
    @contextmanager
    def _mutex(folder: Path) -> Iterator[None]:
        """One decision at a time on the host, so two launchers never split the free slots
        between them in the same instant (each would then wait for the other's half)."""
        fd = os.open(folder / _MUTEX, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _why(self, held: list[Holder], foreign: float) -> str:
        runs = ", ".join(sorted({h.run_id[:8] for h in held if h.run_id}))
        parts = []
        if held:
            parts.append(f"{len(held)} of {self.cpus} cores held by xling runs" + (f" ({runs})" if runs else ""))
        if foreign >= 0.5:
            parts.append(f"{foreign:.1f} cores busy with other programs")
        return "waiting for a CPU slot: " + ("; ".join(parts) or f"all {self.cpus} cores in use")


def thread_env(threads: int) -> dict[str, str]:
    """The worker's libraries (OpenMP, MKL, OpenBLAS) start with the granted thread count too."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}
