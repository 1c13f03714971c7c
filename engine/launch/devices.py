"""GPUs as NVML sees them, without initialising CUDA or importing torch.

No driver, no GPU, or no permission all mean the same to xling: CPU mode. The TUI and
the launcher's monitoring poll this every second or so, so nothing here may raise to
the caller, and nothing may touch CUDA (a CUDA context would itself take GPU memory
and pin the process to the driver).

Indices are NVML's, which are PCI bus order; CUDA numbers devices fastest-first unless
``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so whoever starts workers should pin them by index
under that setting, or by ``GpuInfo.uuid``. Memory is in MiB (NVML's bytes / 2**20).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from types import ModuleType
from typing import Any, Protocol, TypeVar

import psutil

MIB = 1024 * 1024
T = TypeVar("T")


def cuda_device_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any NVML failure means no usable GPU
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:  # noqa: BLE001
        return 0
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU; ``ours`` separates xling's runs from neighbours'."""

    pid: int
    used_memory_mb: float | None
    name: str | None
    ours: bool = False


@dataclass(frozen=True)
class GpuInfo:
    """One physical GPU; optional readings are None where the GPU or driver cannot report them."""

    index: int
    uuid: str
    name: str
    memory_used_mb: float
    memory_total_mb: float
    utilization: float | None = None
    temperature: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    mig: bool = False
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class DeviceSnapshot:
    """What the machine offers at ``time``; ``notes`` keeps GPUs skipped while others worked."""

    gpus: tuple[GpuInfo, ...]
    cpu_mode: bool
    reason: str | None
    time: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceSnapshot:
        """Inverse of ``to_dict``, so a snapshot can travel as JSON (``xling gpus --format json``)."""
        gpus = tuple(
            GpuInfo(**{**g, "processes": tuple(GpuProcess(**p) for p in g.get("processes", ()))})
            for g in data.get("gpus", ())
        )
        return cls(
            gpus=gpus,
            cpu_mode=bool(data["cpu_mode"]),
            reason=data.get("reason"),
            time=float(data["time"]),
            notes=tuple(data.get("notes", ())),
        )


class DeviceSource(Protocol):
    def snapshot(self, our_pids: Collection[int] = ()) -> DeviceSnapshot: ...

    def close(self) -> None: ...


def cpu_snapshot(reason: str, notes: Iterable[str] = ()) -> DeviceSnapshot:
    return DeviceSnapshot(gpus=(), cpu_mode=True, reason=reason, time=time.time(), notes=tuple(notes))


# ------------------------------------------------------------------ process names


def short_command(argv: list[str]) -> str:
    """``python -m engine.worker`` rather than a full path and run folder: fits a table cell."""
    exe = os.path.basename(argv[0])
    if exe.startswith("python") and len(argv) > 1:
        if argv[1] == "-m" and len(argv) > 2:
            exe = f"{exe} -m {argv[2]}"
        else:
            exe = f"{exe} {os.path.basename(argv[1])}"
    return exe if len(exe) <= 40 else exe[:39] + "…"


def process_name(pid: int) -> str | None:
    """Best effort: NVML pids may belong to another container's namespace and not be readable."""
    try:
        proc = psutil.Process(pid)
        argv = proc.cmdline()
        return short_command(argv) if argv else (proc.name() or None)
    except (psutil.Error, OSError):
        return None


def _parent_pid(pid: int) -> int | None:
    try:
        return psutil.Process(pid).ppid()
    except (psutil.Error, OSError):
        return None


def xling_worker_pids() -> list[int]:
    """Workers of any xling launcher on this host, so a separate `xling gpus` still tells
    xling's runs from someone else's (a worker runs ``python -m engine.worker``)."""
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info.get("cmdline") or []
        if "-m" in argv and "engine.worker" in argv:
            pids.append(proc.pid)
    return pids


def is_ours(pid: int, our_pids: Collection[int], depth: int = 16) -> bool:
    """A worker's children (compile or data workers) count as the worker's, so walk up the tree."""
    if not our_pids:
        return False
    for _ in range(depth):
        if pid in our_pids:
            return True
        parent = _parent_pid(pid)
        if parent is None or parent <= 1:
            return False
        pid = parent
    return False


# ------------------------------------------------------------------------- NVML


class _WholeNvmlFailure(Exception):
    """NVML itself is unusable (not just one GPU): the snapshot becomes CPU mode."""


def _nvml_module() -> ModuleType:
    import pynvml

    return pynvml


def _error(nv: ModuleType, name: str) -> type[BaseException]:
    """The named NVMLError subclass, or a never-raised stand-in if this pynvml lacks it."""
    return getattr(nv, name, None) or type(name, (Exception,), {})


def _whole_failures(nv: ModuleType) -> tuple[type[BaseException], ...]:
    """Failures of the library, not of a device or a reading. NoPermission is not among them:
    raised by one GPU or one query it only costs that GPU or that field (at init it still
    ends in CPU mode, as any failure there does)."""
    names = (
        "NVMLError_Uninitialized",
        "NVMLError_DriverNotLoaded",
        "NVMLError_LibraryNotFound",
        "NVMLError_LibRmVersionMismatch",
    )
    return tuple(_error(nv, n) for n in names)


def nvml_reason(nv: ModuleType | None, exc: BaseException) -> str:
    """Reasons a user can act on, rather than NVML's bare error strings."""
    if nv is None:
        return "nvidia-ml-py not installed (no pynvml module)"
    table = [
        ("NVMLError_LibraryNotFound", "no NVIDIA driver (NVML not found)"),
        ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
        ("NVMLError_NoPermission", "NVML: insufficient permissions"),
        ("NVMLError_LibRmVersionMismatch", "NVML/driver version mismatch (driver updated? reboot or reload it)"),
        ("NVMLError_Uninitialized", "NVML not initialised"),
        ("NVMLError_GpuIsLost", "GPU is lost (fell off the bus)"),
    ]
    for name, text in table:
        if isinstance(exc, _error(nv, name)):
            return text
    if isinstance(exc, nv.NVMLError):
        return f"NVML: {exc}"
    return f"NVML failed: {type(exc).__name__}: {exc}"


def _optional(nv: ModuleType, *readers: Callable[[], T]) -> T | None:
    """First reading that works; a reading a GPU does not support is None, not an error.

    Lost GPUs and a dead driver still propagate: they invalidate the GPU or the whole
    snapshot, not one field.
    """
    fatal = (_error(nv, "NVMLError_GpuIsLost"), *_whole_failures(nv))
    for read in readers:
        try:
            return read()
        except fatal:
            raise
        except Exception:  # noqa: BLE001 - NotSupported, FunctionNotFound, old pynvml, ...
            continue
    return None


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _temperature(nv: ModuleType, handle: Any) -> float | None:
    sensor = getattr(nv, "NVML_TEMPERATURE_GPU", 0)
    return _optional(
        nv,
        lambda: float(nv.nvmlDeviceGetTemperatureV(handle, sensor)),
        lambda: float(nv.nvmlDeviceGetTemperature(handle, sensor)),
    )


def _mig_enabled(nv: ModuleType, handle: Any) -> bool:
    mode = _optional(nv, lambda: nv.nvmlDeviceGetMigMode(handle)[0])
    return mode is not None and mode == getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1)


def _process_list(nv: ModuleType, handle: Any) -> list[Any]:
    """Compute and graphics processes; the versioned calls cover drivers older than pynvml."""
    found: list[Any] = []
    for kind in ("Compute", "Graphics"):
        names = (f"nvmlDeviceGet{kind}RunningProcesses", f"nvmlDeviceGet{kind}RunningProcesses_v2")
        readers = [lambda n=n: getattr(nv, n)(handle) for n in names]
        found.extend(_optional(nv, *readers) or [])
    return found


def _processes(nv: ModuleType, handle: Any, our_pids: Collection[int]) -> tuple[GpuProcess, ...]:
    """One entry per pid (a process may be both compute and graphics), largest memory kept."""
    memory: dict[int, float | None] = {}
    for proc in _process_list(nv, handle):
        pid = int(proc.pid)
        used = getattr(proc, "usedGpuMemory", None)
        mb = None if used is None else used / MIB
        old = memory.get(pid)
        memory[pid] = mb if old is None else (old if mb is None else max(old, mb))
    return tuple(
        GpuProcess(pid=pid, used_memory_mb=mb, name=process_name(pid), ours=is_ours(pid, our_pids))
        for pid, mb in sorted(memory.items())
    )


def _read_gpu(nv: ModuleType, index: int, our_pids: Collection[int]) -> GpuInfo:
    """Handle and memory are required (without them xling cannot judge the GPU); the rest is optional."""
    handle = nv.nvmlDeviceGetHandleByIndex(index)
    mem = nv.nvmlDeviceGetMemoryInfo(handle)
    util = _optional(nv, lambda: float(nv.nvmlDeviceGetUtilizationRates(handle).gpu))
    power = _optional(nv, lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0)
    limit = _optional(
        nv,
        lambda: nv.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0,
        lambda: nv.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0,
    )
    return GpuInfo(
        index=index,
        uuid=_optional(nv, lambda: _text(nv.nvmlDeviceGetUUID(handle))) or "",
        name=_optional(nv, lambda: _text(nv.nvmlDeviceGetName(handle))) or f"GPU {index}",
        memory_used_mb=mem.used / MIB,
        memory_total_mb=mem.total / MIB,
        utilization=util,
        temperature=_temperature(nv, handle),
        power_w=power,
        power_limit_w=limit,
        mig=_mig_enabled(nv, handle),
        processes=_processes(nv, handle, our_pids),
    )


class NvmlSource:
    """The real boundary. Stays initialised between snapshots (``nvmlInit`` can take a second
    per GPU without persistence mode, too slow for a 1 s refresh) and re-initialises after
    any failure, so a driver that comes back is picked up. ``close()`` shuts NVML down."""

    def __init__(self) -> None:
        self._nv: ModuleType | None = None

    def __enter__(self) -> NvmlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        nv, self._nv = self._nv, None
        if nv is not None:
            try:
                nv.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down a broken NVML must not fail
                pass

    def _init(self) -> ModuleType:
        if self._nv is None:
            nv = _nvml_module()
            nv.nvmlInit()
            self._nv = nv
        return self._nv

    def snapshot(self, our_pids: Collection[int] = ()) -> DeviceSnapshot:
        nv: ModuleType | None = None
        try:
            nv = _nvml_module()
            return self._read(self._init(), frozenset(our_pids))
        except ImportError as exc:
            return cpu_snapshot(nvml_reason(None, exc))
        except Exception as exc:  # noqa: BLE001 - every NVML failure degrades to CPU mode
            self.close()
            return cpu_snapshot(nvml_reason(nv, exc))

    def _read(self, nv: ModuleType, our_pids: frozenset[int]) -> DeviceSnapshot:
        count = int(nv.nvmlDeviceGetCount())
        if count == 0:
            return cpu_snapshot("no GPU")
        gpus: list[GpuInfo] = []
        notes: list[str] = []
        for index in range(count):
            try:
                gpus.append(_read_gpu(nv, index, our_pids))
            except _whole_failures(nv):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad GPU must not hide the others
                notes.append(f"GPU {index} skipped: {nvml_reason(nv, exc)}")
        if not gpus:
            return cpu_snapshot("no usable GPU (" + "; ".join(notes) + ")", notes)
        return DeviceSnapshot(gpus=tuple(gpus), cpu_mode=False, reason=None, time=time.time(), notes=tuple(notes))


# ------------------------------------------------------------------------- fakes


def _as_process(spec: GpuProcess | Mapping[str, Any] | tuple[Any, ...]) -> GpuProcess:
    """Processes for fakes: a GpuProcess, a mapping of its fields, or ``(pid, mb[, name])``."""
    if isinstance(spec, GpuProcess):
        return spec
    if isinstance(spec, Mapping):
        return GpuProcess(**{"used_memory_mb": None, "name": None, **spec})
    pid, mb, *rest = spec
    return GpuProcess(pid=int(pid), used_memory_mb=mb, name=rest[0] if rest else None)


def fake_gpu(
    index: int,
    name: str = "Fake GPU 80GB",
    memory_used_mb: float = 0.0,
    memory_total_mb: float = 81920.0,
    utilization: float | None = 0.0,
    processes: Iterable[Any] = (),
    uuid: str | None = None,
    **fields: Any,
) -> GpuInfo:
    """A GpuInfo with plausible defaults, so tests and demos state only what matters to them."""
    return GpuInfo(
        index=index,
        uuid=uuid or f"GPU-fake-{index:04d}",
        name=name,
        memory_used_mb=memory_used_mb,
        memory_total_mb=memory_total_mb,
        utilization=utilization,
        processes=tuple(_as_process(p) for p in processes),
        **fields,
    )


class FakeSource:
    """Injected in tests and demos: fixed GPUs (GpuInfo or ``fake_gpu`` keyword dicts)."""

    def __init__(
        self, gpus: Iterable[GpuInfo | Mapping[str, Any]] = (), reason: str | None = None, notes: Iterable[str] = ()
    ) -> None:
        self.gpus = tuple(g if isinstance(g, GpuInfo) else fake_gpu(**g) for g in gpus)
        self.reason = reason
        self.notes = tuple(notes)
        self.calls = 0

    def __enter__(self) -> FakeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def snapshot(self, our_pids: Collection[int] = ()) -> DeviceSnapshot:
        self.calls += 1
        if not self.gpus:
            return cpu_snapshot(self.reason or "no GPU", self.notes)
        ours = frozenset(our_pids)
        gpus = tuple(
            replace(g, processes=tuple(replace(p, ours=p.ours or p.pid in ours) for p in g.processes))
            for g in self.gpus
        )
        return DeviceSnapshot(gpus=gpus, cpu_mode=False, reason=self.reason, time=time.time(), notes=self.notes)


# ------------------------------------------------------------------- public API


def snapshot(source: DeviceSource | None = None, our_pids: Collection[int] = ()) -> DeviceSnapshot:
    """Never raises: callers poll this from UI loops, where a traceback would be worse than CPU mode."""
    own = source is None
    try:
        src = NvmlSource() if source is None else source
    except Exception as exc:  # noqa: BLE001
        return cpu_snapshot(f"device source failed: {type(exc).__name__}: {exc}")
    try:
        return src.snapshot(our_pids)
    except Exception as exc:  # noqa: BLE001 - a broken source (or fake) still yields a snapshot
        return cpu_snapshot(f"device source failed: {type(exc).__name__}: {exc}")
    finally:
        if own:
            src.close()


def _split(gpu: GpuInfo, our_pids: Collection[int]) -> tuple[list[GpuProcess], list[GpuProcess]]:
    ours = [p for p in gpu.processes if p.ours or p.pid in our_pids]
    return ours, [p for p in gpu.processes if not (p.ours or p.pid in our_pids)]


def foreign_memory_mb(gpu: GpuInfo, our_pids: Collection[int] = ()) -> float:
    """Memory not held by xling's runs, erring towards "busy".

    Inside a container NVML lists no processes of other containers while still counting
    their memory, so the sum over visible foreign processes alone would call a
    neighbour's GPU free; total use minus our own catches that. The larger of the two
    estimates that can be made wins; when neither can be made, all used memory counts.
    """
    ours, foreign = _split(gpu, our_pids)
    estimates: list[float] = []
    if all(p.used_memory_mb is not None for p in ours):
        estimates.append(max(0.0, gpu.memory_used_mb - sum(p.used_memory_mb or 0.0 for p in ours)))
    if all(p.used_memory_mb is not None for p in foreign):
        estimates.append(sum(p.used_memory_mb or 0.0 for p in foreign))
    return max(estimates) if estimates else gpu.memory_used_mb


def is_free(
    gpu: GpuInfo, our_pids: Collection[int] = (), max_memory_mb: float = 1024, max_utilization: float = 10.0
) -> bool:
    """Utilisation cannot be split per process, so with one of our runs on the GPU only memory counts."""
    if gpu.mig:
        return False
    if foreign_memory_mb(gpu, our_pids) >= max_memory_mb:
        return False
    ours, _ = _split(gpu, our_pids)
    return bool(ours) or gpu.utilization is None or gpu.utilization < max_utilization


def free_gpus(
    snap: DeviceSnapshot,
    our_pids: Collection[int] = (),
    max_memory_mb: float = 1024,
    max_utilization: float = 10.0,
    allowed: Collection[int] | None = None,
) -> list[int]:
    """GPUs xling may schedule on: not busy with anyone else's work, not MIG, within ``allowed``."""
    pids = frozenset(our_pids)
    return [
        g.index
        for g in snap.gpus
        if (allowed is None or g.index in allowed) and is_free(g, pids, max_memory_mb, max_utilization)
    ]
