"""GPU discovery through NVML and its degradation to CPU mode; rendering for ``xling gpus``.

NVML is faked by monkeypatching pynvml's functions, so every failure path runs on a
machine without a driver; the one real call checks the machine's own answer.
"""

from __future__ import annotations

import io
import os
import sys
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from rich.console import Console

from engine.launch import devices
from engine.launch.devices import (
    DeviceSnapshot,
    FakeSource,
    GpuProcess,
    NvmlSource,
    cpu_snapshot,
    cuda_device_count,
    fake_gpu,
    foreign_memory_mb,
    free_gpus,
    is_ours,
    short_command,
    snapshot,
)
from xling_tui.cli.gpus import from_json, render_table, to_json, watch

MIB = 1024 * 1024


# ----------------------------------------------------------------- a fake NVML


class FakeNvml:
    """Devices as dicts; a value that is an exception class is raised when that reading is asked for."""

    def __init__(self, devices_: list[dict[str, Any]], init_error: BaseException | None = None) -> None:
        self.devices = devices_
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0

    def _get(self, index: int, key: str, default: Any = None) -> Any:
        value = self.devices[index].get(key, default)
        if isinstance(value, type) and issubclass(value, BaseException):
            raise value()
        if isinstance(value, BaseException):
            raise value
        return value

    def install(self, mp: pytest.MonkeyPatch) -> FakeNvml:
        def init() -> None:
            if self.init_error is not None:
                raise self.init_error
            self.inits += 1

        def shutdown() -> None:
            self.shutdowns += 1

        def procs(kind: str):
            def read(handle: int) -> list[SimpleNamespace]:
                rows = self._get(handle, kind, [])
                return [
                    SimpleNamespace(pid=pid, usedGpuMemory=None if mb is None else int(mb * MIB)) for pid, mb in rows
                ]

            return read

        fns = {
            "nvmlInit": init,
            "nvmlShutdown": shutdown,
            "nvmlDeviceGetCount": lambda: len(self.devices),
            "nvmlDeviceGetHandleByIndex": lambda i: (self._get(i, "handle", None), i)[1],
            "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(
                used=int(self._get(h, "used_mb", 0) * MIB), total=int(self._get(h, "total_mb", 81920) * MIB)
            ),
            "nvmlDeviceGetName": lambda h: self._get(h, "name", "NVIDIA H200"),
            "nvmlDeviceGetUUID": lambda h: self._get(h, "uuid", f"GPU-{h}"),
            "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=self._get(h, "util", 0)),
            "nvmlDeviceGetTemperatureV": lambda h, s: self._get(h, "temp_v", pynvml.NVMLError_FunctionNotFound),
            "nvmlDeviceGetTemperature": lambda h, s: self._get(h, "temp", 40),
            "nvmlDeviceGetPowerUsage": lambda h: self._get(h, "power_mw", 100_000),
            "nvmlDeviceGetEnforcedPowerLimit": lambda h: self._get(h, "limit_mw", 700_000),
            "nvmlDeviceGetPowerManagementLimit": lambda h: self._get(h, "mgmt_limit_mw", 700_000),
            "nvmlDeviceGetMigMode": lambda h: [self._get(h, "mig", 0), 0],
            "nvmlDeviceGetComputeRunningProcesses": procs("compute"),
            "nvmlDeviceGetComputeRunningProcesses_v2": procs("compute"),
            "nvmlDeviceGetGraphicsRunningProcesses": procs("graphics"),
            "nvmlDeviceGetGraphicsRunningProcesses_v2": procs("graphics"),
        }
        for name, fn in fns.items():
            mp.setattr(pynvml, name, fn)
        return self


def nvml(mp: pytest.MonkeyPatch, *devs: dict[str, Any], init_error: BaseException | None = None) -> FakeNvml:
    return FakeNvml(list(devs), init_error).install(mp)


# ------------------------------------------------------------- the real machine


def test_real_snapshot_never_raises_and_agrees_with_device_count() -> None:
    snap = snapshot()
    assert isinstance(snap, DeviceSnapshot)
    if cuda_device_count() == 0:
        assert snap.cpu_mode and snap.reason and snap.gpus == ()
    else:
        assert not snap.cpu_mode and snap.gpus


# ---------------------------------------------------------- NVML failure paths


@pytest.mark.parametrize(
    "error, reason",
    [
        (pynvml.NVMLError_LibraryNotFound, "no NVIDIA driver (NVML not found)"),
        (pynvml.NVMLError_DriverNotLoaded, "NVIDIA driver not loaded"),
        (pynvml.NVMLError_NoPermission, "NVML: insufficient permissions"),
        (pynvml.NVMLError_LibRmVersionMismatch, "NVML/driver version mismatch"),
        (pynvml.NVMLError_Unknown, "NVML: Unknown Error"),
        (OSError, "NVML failed: OSError"),
    ],
)
def test_init_failures_mean_cpu_mode_with_a_reason(monkeypatch: pytest.MonkeyPatch, error: type, reason: str) -> None:
    nvml(monkeypatch, {}, init_error=error())
    snap = snapshot()
    assert snap.cpu_mode and snap.gpus == ()
    assert snap.reason is not None and snap.reason.startswith(reason)


def test_missing_pynvml_means_cpu_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    snap = snapshot()
    assert snap.cpu_mode and "pynvml" in (snap.reason or "")


def test_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = nvml(monkeypatch)
    snap = snapshot()
    assert snap.cpu_mode and snap.reason == "no GPU"
    assert fake.inits == fake.shutdowns == 1


def test_one_gpu_lost_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(monkeypatch, {"used_mb": 100}, {"handle": pynvml.NVMLError_GpuIsLost}, {"temp": pynvml.NVMLError_GpuIsLost})
    snap = snapshot()
    assert not snap.cpu_mode and [g.index for g in snap.gpus] == [0]
    assert len(snap.notes) == 2
    assert snap.notes[0].startswith("GPU 1 skipped") and "lost" in snap.notes[0]
    assert snap.notes[1].startswith("GPU 2 skipped")


def test_all_gpus_lost_means_cpu_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(monkeypatch, {"handle": pynvml.NVMLError_GpuIsLost})
    snap = snapshot()
    assert snap.cpu_mode and "no usable GPU" in (snap.reason or "") and "lost" in (snap.reason or "")


def test_unsupported_readings_become_none(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(
        monkeypatch,
        {
            "power_mw": pynvml.NVMLError_NotSupported,
            "limit_mw": pynvml.NVMLError_NotSupported,
            "mgmt_limit_mw": pynvml.NVMLError_NotSupported,
            "util": pynvml.NVMLError_NotSupported,
            "compute": pynvml.NVMLError_NoPermission,
            "temp": 55,
        },
    )
    (gpu,) = snapshot().gpus
    assert gpu.power_w is None and gpu.power_limit_w is None and gpu.utilization is None
    assert gpu.processes == ()
    assert gpu.temperature == 55.0  # temperature V unsupported by this "driver": fell back to the old call
    assert gpu.memory_total_mb == 81920 and gpu.name == "NVIDIA H200"


def test_readings_and_units(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(
        monkeypatch,
        {
            "used_mb": 2048,
            "total_mb": 4096,
            "util": 37,
            "temp_v": 61,
            "power_mw": 250_500,
            "limit_mw": 700_000,
            "name": b"NVIDIA A100",
            "uuid": "GPU-abc",
        },
    )
    (gpu,) = snapshot().gpus
    assert (gpu.memory_used_mb, gpu.memory_total_mb, gpu.utilization, gpu.temperature) == (2048, 4096, 37, 61)
    assert (gpu.power_w, gpu.power_limit_w, gpu.name, gpu.uuid, gpu.mig) == (
        250.5,
        700.0,
        "NVIDIA A100",
        "GPU-abc",
        False,
    )


def test_mig_mode_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(monkeypatch, {"mig": pynvml.NVML_DEVICE_MIG_ENABLE}, {"mig": pynvml.NVMLError_NotSupported})
    snap = snapshot()
    assert [g.mig for g in snap.gpus] == [True, False]
    assert free_gpus(snap) == [1]


def test_driver_dying_mid_snapshot_degrades_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = nvml(monkeypatch, {"util": pynvml.NVMLError_DriverNotLoaded})
    with NvmlSource() as source:
        snap = source.snapshot()
        assert snap.cpu_mode and snap.reason == "NVIDIA driver not loaded"
        fake.devices[0]["util"] = 5
        assert not source.snapshot().cpu_mode
        assert not source.snapshot().cpu_mode
    assert fake.inits == 2 and fake.shutdowns == 2  # re-initialised once after the failure, then kept open


def test_processes_are_merged_named_and_marked_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    me = os.getpid()
    nvml(monkeypatch, {"compute": [(me, 500), (999_999_999, None)], "graphics": [(me, 700)]})
    (gpu,) = snapshot(our_pids=[me]).gpus
    procs = {p.pid: p for p in gpu.processes}
    assert set(procs) == {me, 999_999_999}
    assert procs[me].used_memory_mb == 700 and procs[me].ours and procs[me].name
    assert procs[999_999_999] == GpuProcess(999_999_999, None, None, False)


def test_children_of_our_workers_are_ours() -> None:
    assert is_ours(os.getpid(), {os.getppid()})
    assert not is_ours(os.getpid(), {999_999_999})
    assert not is_ours(os.getpid(), ())


def test_short_command() -> None:
    assert short_command(["/usr/bin/python3.11", "-m", "engine.worker", "/runs/x"]) == "python3.11 -m engine.worker"
    assert short_command(["/opt/venv/bin/python", "/home/u/train.py", "--lr", "3"]) == "python train.py"
    assert short_command(["/usr/bin/nvidia-smi"]) == "nvidia-smi"


def test_a_broken_source_still_gives_a_snapshot() -> None:
    class Broken:
        def snapshot(self, our_pids: Any = ()) -> DeviceSnapshot:
            raise RuntimeError("boom")

        def close(self) -> None:
            pass

    snap = snapshot(Broken())
    assert snap.cpu_mode and "boom" in (snap.reason or "")


# ------------------------------------------------------------------- free_gpus

OURS = 4242


@pytest.fixture()
def fleet() -> DeviceSnapshot:
    """0 idle; 1 busy with a foreign job; 2 used only by our run; 3 MIG; 4 held by an invisible neighbour;
    5 ours plus a small foreign process; 6 idle memory but busy compute from nobody visible."""
    return FakeSource(
        [
            dict(index=0, name="NVIDIA H200", memory_used_mb=300, utilization=0),
            dict(index=1, memory_used_mb=30_500, utilization=95, processes=[(123, 30_000, "python train.py")]),
            dict(
                index=2, memory_used_mb=20_400, utilization=100, processes=[(OURS, 20_000, "python -m engine.worker")]
            ),
            dict(index=3, memory_used_mb=0, utilization=None, mig=True),
            dict(index=4, memory_used_mb=40_000, utilization=0),
            dict(index=5, memory_used_mb=20_600, utilization=100, processes=[(OURS + 1, 20_000), (77, 400)]),
            dict(index=6, memory_used_mb=200, utilization=80),
        ]
    ).snapshot(our_pids=[OURS, OURS + 1])


def test_free_gpus_picks_idle_and_our_own(fleet: DeviceSnapshot) -> None:
    assert free_gpus(fleet) == [0, 2, 5]


def test_free_gpus_allowed_restricts(fleet: DeviceSnapshot) -> None:
    assert free_gpus(fleet, allowed=[1, 2, 3]) == [2]
    assert free_gpus(fleet, allowed=[]) == []


def test_free_gpus_thresholds_and_pids_given_late(fleet: DeviceSnapshot) -> None:
    unmarked = FakeSource(
        [
            fake_gpu(0, memory_used_mb=300),
            fake_gpu(2, memory_used_mb=20_400, utilization=100, processes=[(OURS, 20_000)]),
        ]
    ).snapshot()
    # Marked by the source or passed to free_gpus: the same answer.
    assert free_gpus(unmarked, our_pids=[OURS]) == [0, 2]
    assert free_gpus(unmarked) == [0]
    assert free_gpus(fleet, max_memory_mb=100) == []
    assert free_gpus(fleet, max_utilization=90) == [0, 2, 5, 6]


def test_foreign_memory_estimates() -> None:
    ours_unknown = fake_gpu(0, memory_used_mb=20_000, processes=[GpuProcess(1, None, None, True)])
    assert foreign_memory_mb(ours_unknown) == 0  # no foreign process visible, ours cannot be subtracted
    nothing_known = fake_gpu(0, memory_used_mb=20_000, processes=[GpuProcess(1, None, None, True), (2, None)])
    assert foreign_memory_mb(nothing_known) == 20_000
    hidden = fake_gpu(0, memory_used_mb=30_000, processes=[GpuProcess(1, 10_000, None, True), (2, 1_000)])
    assert foreign_memory_mb(hidden) == 20_000  # someone NVML does not list holds 19 GB


def test_cpu_snapshot_has_no_free_gpus() -> None:
    assert free_gpus(cpu_snapshot("no GPU")) == []


# ------------------------------------------------------------------- rendering


def _text(renderable: Any) -> str:
    console = Console(record=True, width=80)
    console.print(renderable)
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= 80
    return out


def test_render_table_for_gpus(fleet: DeviceSnapshot) -> None:
    snap = DeviceSnapshot(fleet.gpus, False, None, fleet.time, notes=("GPU 7 skipped: GPU is lost",))
    out = _text(render_table(snap, free_gpus(snap)))
    for text in (
        "H200",
        "0.3/80 GiB",
        "95%",
        "ours: 0, foreign: 1",
        "pid 123",
        "python train.py",
        "29.3 GiB",
        "ours: 1, foreign: 0",
        "MIG mode",
        "free for xling: 0, 2, 5",
        "GPU 7 skipped",
    ):
        assert text in out, text
    assert "NVIDIA H200" not in out


def test_render_table_readings() -> None:
    gpu = fake_gpu(
        0, memory_used_mb=1024, memory_total_mb=4096, utilization=12, temperature=64, power_w=250, power_limit_w=700
    )
    out = _text(render_table(FakeSource([gpu]).snapshot()))
    for text in ("1.0/4 GiB", "25%", "12%", "64°C", "250W", "/700W", "none"):
        assert text in out, text


def test_render_table_cpu_mode() -> None:
    out = _text(render_table(cpu_snapshot("no NVIDIA driver (NVML not found)")))
    assert "CPU mode: no NVIDIA driver (NVML not found)" in out


def test_json_round_trip(fleet: DeviceSnapshot) -> None:
    snap = DeviceSnapshot(fleet.gpus, False, None, fleet.time, notes=("GPU 7 skipped",))
    assert from_json(to_json(snap)) == snap
    cpu = cpu_snapshot("NVML: insufficient permissions")
    assert from_json(to_json(cpu)) == cpu


def test_watch_runs_without_a_terminal(fleet: DeviceSnapshot) -> None:
    source = FakeSource(list(fleet.gpus))
    console = Console(file=io.StringIO(), width=80)
    watch(console, source, interval=0, iterations=2)
    assert source.calls == 2
    assert "free for xling" in console.file.getvalue()


def test_watch_ends_quietly_on_ctrl_c() -> None:
    class Interrupted(FakeSource):
        def snapshot(self, our_pids: Any = ()) -> DeviceSnapshot:
            raise KeyboardInterrupt

    watch(Console(file=io.StringIO(), width=80), Interrupted(), interval=0)


def test_watch_defaults_to_nvml_and_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = nvml(monkeypatch, {"used_mb": 10})
    watch(Console(file=io.StringIO(), width=80), interval=0, iterations=3)
    assert fake.inits == 1 and fake.shutdowns == 1


def test_device_count_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(monkeypatch, {}, {})
    assert devices.cuda_device_count() == 2
    nvml(monkeypatch, init_error=pynvml.NVMLError_LibraryNotFound())
    assert devices.cuda_device_count() == 0


def test_render_table_says_when_nothing_is_free(fleet: DeviceSnapshot) -> None:
    assert "no GPU free for xling" in _text(render_table(fleet, free=[]))


def test_xling_workers_are_recognised_from_another_process(tmp_path):
    import subprocess
    import sys
    import time

    from engine.launch.devices import xling_worker_pids

    # a process that looks like a worker (python -m engine.worker) without training anything
    fake = tmp_path / "engine"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "worker.py").write_text("import time\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-m", "engine.worker"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while proc.pid not in xling_worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.pid in xling_worker_pids()
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in xling_worker_pids()
