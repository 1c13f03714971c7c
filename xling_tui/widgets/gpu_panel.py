"""The GPU panel: a row per GPU, or a plain statement that this machine trains on the CPU.

It only renders what the sampler thread (``data_source.GpuSampler``) measured; it never
talks to NVML itself. Utilisation and memory sparklines use a fixed 0-100% scale, so a
wobble of one percent does not look like a spike.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from xling_tui.data_source import GpuSample
from xling_tui.widgets.runs_table import sparkline

SPARK = 10


def short_gpu_name(name: str) -> str:
    for prefix in ("NVIDIA ", "Tesla "):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _percent_style(value: float | None) -> str:
    if value is None:
        return "dim"
    return "bold red" if value >= 90 else "yellow" if value >= 50 else "green"


def _process_text(gpu, run_names: dict[int, str], run_pid: dict[int, int]) -> Text:
    """Which xling run is on the GPU, or whose process is (the reason xling may not use it)."""
    text = Text()
    if gpu.mig:
        text.append("MIG: not scheduled ", style="yellow")
    shown: set[str] = set()
    for p in gpu.processes:
        name = run_names.get(run_pid.get(p.pid, p.pid))
        if name in shown:
            continue  # a worker and its children: the run once
        if text:
            text.append(" ")
        if p.ours or name:
            shown.add(name or "")
            text.append("▶ " + (name or f"xling pid {p.pid}"), style="bold cyan")
        else:
            mem = f" {p.used_memory_mb / 1024:.1f}G" if p.used_memory_mb is not None else ""
            text.append(f"pid {p.pid} {p.name or '?'}{mem}", style="yellow")
    if not gpu.processes and not gpu.mig:
        text.append("idle", style="dim")
    return text


def render_gpus(sample: GpuSample | None, run_names: dict[int, str]) -> RenderableType:
    if sample is None:
        return Text("GPUs: sampling…", style="dim")
    snap = sample.snapshot
    if snap.cpu_mode or not snap.gpus:
        body = Text.assemble(
            ("CPU mode", "bold yellow"),
            f" — {snap.reason or 'no GPU'}. ",
            "Runs train on the CPU here; the cpu-* model presets are sized for it.",
        )
        for note in snap.notes:
            body.append(f"\n{note}", style="dim")
        return body
    table = Table.grid(padding=(0, 1), expand=True)
    for width in (12, SPARK, 4, SPARK, 7, 11):  # fixed, so the sparklines never get squeezed
        table.add_column(no_wrap=True, width=width)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for gpu in snap.gpus:
        util = gpu.utilization
        mem_pct = 100.0 * gpu.memory_used_mb / gpu.memory_total_mb if gpu.memory_total_mb else 0.0
        power = "" if gpu.power_w is None else f"{gpu.power_w:.0f}W"
        table.add_row(
            Text(f"{gpu.index} {short_gpu_name(gpu.name)}", style="bold", overflow="ellipsis"),
            Text(
                sparkline(sample.utilization.get(gpu.index, ()), SPARK, 0.0, 100.0).ljust(SPARK),
                style=_percent_style(util),
            ),
            Text("–" if util is None else f"{util:3.0f}%", style=_percent_style(util)),
            Text(
                sparkline(sample.memory.get(gpu.index, ()), SPARK, 0.0, 100.0).ljust(SPARK),
                style=_percent_style(mem_pct),
            ),
            Text(f"{gpu.memory_used_mb / 1024:.0f}/{gpu.memory_total_mb / 1024:.0f}G"),
            Text(("–" if gpu.temperature is None else f"{gpu.temperature:.0f}°C") + (f" {power}" if power else "")),
            _process_text(gpu, run_names, sample.run_pid),
        )
    notes = [Text(n, style="yellow") for n in snap.notes]
    return Group(table, *notes) if notes else table


class GpuPanel(Static):
    """Set ``sample`` (from the sampler) and ``run_names`` (pid -> run label, from the dashboard)."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; max-height: 10; border-top: solid $secondary; padding: 0 1; }
    """

    sample: reactive[GpuSample | None] = reactive(None)
    run_names: reactive[dict[int, str]] = reactive(dict)

    def render(self) -> RenderableType:
        return render_gpus(self.sample, self.run_names)

    @property
    def cpu_mode(self) -> bool | None:
        return None if self.sample is None else bool(self.sample.snapshot.cpu_mode or not self.sample.snapshot.gpus)
