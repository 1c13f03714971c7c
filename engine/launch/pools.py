"""Where the next run goes: CPU threads from the host's slot registry, or a free GPU
as NVML sees it, or a cluster scheduler's request.

A CPU run's threads come from ``engine.launch.slots``, shared by every xling process
on the host; ``--max-parallel`` and ``--threads`` only cap what one session asks for.

A GPU is free when the memory and utilisation that xling's own runs do not account
for are under thresholds (someone else's job leaves it alone) and it holds fewer of
our runs than ``runs_per_gpu``. Our own placements count at once, before NVML has
seen the new process, so two runs never grab one GPU in the same instant.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from engine.backends.base import Placement
from engine.launch.slots import CpuSlots, Grant, thread_env

if TYPE_CHECKING:
    from engine.launch.devices import DeviceSource


class CpuPool:
    """Up to ``slots`` runs of this session at once, each with the threads the host's
    registry grants it now: at most ``threads`` (default: the cores over ``slots``)."""

    def __init__(self, slots: int, threads: int | None = None, registry: CpuSlots | None = None) -> None:
        self.slots = max(1, slots)
        self.threads = threads
        self.registry = registry or CpuSlots()
        self.used: dict[str, Grant] = {}
        self._reason: str | None = None

    @property
    def capacity(self) -> int:
        return self.slots

    def acquire(self, run_id: str, ours: Collection[int] = ()) -> Placement | None:
        """A placement for the run, or None while every slot is taken (``ours``: see GpuPool)."""
        if len(self.used) >= self.slots:
            self._reason = f"waiting: this session runs {self.slots} at once (--max-parallel)"
            return None
        want = self.threads or max(1, self.registry.cpus // self.slots)
        grant = self.registry.acquire(want)
        if grant is None:
            self._reason = self.registry.reason
            return None
        self._reason = None
        self.used[run_id] = grant
        return Placement("cpu", env=thread_env(grant.threads), threads=grant.threads, fds=tuple(grant.fds))

    def started(self, run_id: str, pid: int | None) -> None:
        """The worker inherited the locked slots: from now on they live as long as it does."""
        if run_id in self.used:
            self.used[run_id].hand_over(pid, run_id)

    def release(self, run_id: str) -> None:
        grant = self.used.pop(run_id, None)
        if grant is not None:
            grant.close()  # a worker that never started: its slots go back now

    def waiting_reason(self) -> str | None:
        return self._reason


class GpuPool:
    """One worker per (GPU, slot); each sees only its GPU (CUDA_VISIBLE_DEVICES, PCI order)."""

    def __init__(
        self,
        allowed: Collection[int] | None,
        runs_per_gpu: int = 1,
        source: DeviceSource | None = None,
        max_memory_mb: float = 1024,
        max_utilization: float = 10.0,
    ) -> None:
        from engine.launch import devices

        self.allowed = None if allowed is None else set(allowed)
        self.runs_per_gpu = max(1, runs_per_gpu)
        source = source or devices.NvmlSource()  # one NVML session for the launcher's life
        self._snapshot = lambda ours: devices.snapshot(source, ours)
        self.thresholds = (max_memory_mb, max_utilization)
        self.assigned: dict[str, int] = {}
        self._reason: str | None = None

    @property
    def capacity(self) -> int:
        snap = self._snapshot(())
        gpus = [g.index for g in snap.gpus if not g.mig and (self.allowed is None or g.index in self.allowed)]
        return max(1, len(gpus) * self.runs_per_gpu)

    def acquire(self, run_id: str, ours: Collection[int] = ()) -> Placement | None:
        """A free GPU for the run; ``ours`` are the launcher's live workers, whose memory and
        utilisation do not make a GPU busy (they count through ``runs_per_gpu`` instead)."""
        from engine.launch.devices import free_gpus

        snap = self._snapshot(ours)
        if snap.cpu_mode:
            self._reason = f"no GPU: {snap.reason}"
            return None
        free = free_gpus(snap, set(ours), *self.thresholds, allowed=self.allowed)
        load = {g: sum(1 for v in self.assigned.values() if v == g) for g in free}
        candidates = [g for g in free if load[g] < self.runs_per_gpu]
        if not candidates:
            self._reason = "waiting for a free GPU (busy with other jobs or at --runs-per-gpu)"
            return None
        gpu = min(candidates, key=lambda g: (load[g], g))
        self.assigned[run_id] = gpu
        self._reason = None
        env = {"CUDA_VISIBLE_DEVICES": str(gpu), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        return Placement("cuda", env=env, gpu=gpu)

    def started(self, run_id: str, pid: int | None) -> None:
        pass

    def release(self, run_id: str) -> None:
        self.assigned.pop(run_id, None)

    def waiting_reason(self) -> str | None:
        return self._reason


class ClusterPool:
    """A scheduler places the runs (Slurm, Ray): every run gets the same request, the
    node's share being what the scheduler granted (no host registry there), and
    ``slots`` only caps how many are handed to it at once."""

    def __init__(self, placement: Placement, slots: int) -> None:
        self.request = placement
        self.slots = max(1, slots)
        self.used: set[str] = set()

    @property
    def capacity(self) -> int:
        return self.slots

    def acquire(self, run_id: str, ours: Collection[int] = ()) -> Placement | None:
        if len(self.used) >= self.slots:
            return None
        self.used.add(run_id)
        return self.request

    def started(self, run_id: str, pid: int | None) -> None:
        pass

    def release(self, run_id: str) -> None:
        self.used.discard(run_id)

    def waiting_reason(self) -> str | None:
        return None


Pool = CpuPool | GpuPool | ClusterPool
