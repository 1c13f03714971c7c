"""The GPU panel: rows per GPU with their run or foreign process, or a clear CPU-mode panel."""

from __future__ import annotations

import pytest

from engine.launch.devices import FakeSource, fake_gpu
from xling_tui.data_source import GpuSampler
from xling_tui.widgets.gpu_panel import render_gpus

asyncio = pytest.mark.asyncio


def _text(renderable, width: int = 100) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_sampler_keeps_a_bounded_history_per_gpu():
    source = FakeSource([fake_gpu(0, utilization=10.0, memory_used_mb=8192.0, memory_total_mb=16384.0)])
    sampler = GpuSampler(source, history=3)
    for _ in range(5):
        sample = sampler.sample()
    assert sample.utilization[0] == (10.0, 10.0, 10.0)
    assert sample.memory[0] == (50.0, 50.0, 50.0)
    assert source.calls == 5


def test_rows_name_our_run_and_the_foreign_process(fake_gpus):
    sample = GpuSampler(fake_gpus).sample()
    text = _text(render_gpus(sample, {4_194_000: "table1/90/10"}))
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[0].startswith("0 H100") and "87%" in lines[0] and "71°C" in lines[0] and "▶ table1/90/10" in lines[0]
    assert "pid 31337 python train_other.py" in lines[1] and "35%" in lines[1]


def test_cpu_mode_says_why(no_gpus):
    text = _text(render_gpus(GpuSampler(no_gpus).sample(), {}))
    assert "CPU mode" in text and "no NVIDIA driver" in text


def test_a_broken_source_degrades_to_cpu_mode():
    class Broken:
        def snapshot(self, our_pids=()):
            raise RuntimeError("driver fell over")

        def close(self):
            pass

    sample = GpuSampler(Broken()).sample()
    assert sample.snapshot.cpu_mode and "driver fell over" in sample.snapshot.reason


@asyncio
async def test_dashboard_shows_the_cpu_mode_panel_without_gpus(make_app, no_gpus):
    from xling_tui.widgets.gpu_panel import GpuPanel

    app = make_app(gpu_source=no_gpus)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.screen.query_one(GpuPanel)
        for _ in range(200):
            if panel.sample is not None:
                break
            await pilot.pause(0.05)
        assert panel.cpu_mode is True
        assert "CPU mode" in str(panel.render())
        await pilot.press("g")
        assert not panel.display


def test_a_workers_child_on_the_gpu_counts_as_its_run():
    """A GPU process whose parent is the run's worker (here: this test's child, and us the worker)."""
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        source = FakeSource([fake_gpu(0, processes=[(child.pid, 1000.0, "python -c")])])
        sample = GpuSampler(source).sample({os.getpid()})
        assert sample.run_pid == {child.pid: os.getpid()}
        text = _text(render_gpus(sample, {os.getpid(): "exp/90/10"}))
        assert "▶ exp/90/10" in text and f"pid {child.pid}" not in text
    finally:
        child.kill()
        child.wait()
