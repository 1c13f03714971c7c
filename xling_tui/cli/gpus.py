"""``xling gpus``: what the machine offers and who is using it, as a table, JSON or a live view.

Rendering only; the readings come from ``engine.launch.devices`` (NVML, never CUDA), so this
works on machines without a driver, where it explains CPU mode instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from engine.launch.devices import DeviceSnapshot, DeviceSource, GpuInfo, GpuProcess, NvmlSource, free_gpus, snapshot

MAX_FOREIGN_LISTED = 3
PROCESS_NAME_WIDTH = 20


def _gib(mb: float | None) -> str:
    return "?" if mb is None else f"{mb / 1024:.1f}"


def _short_name(name: str) -> str:
    """'NVIDIA H200' says no more than 'H200' and the column is narrow at 80 columns."""
    for prefix in ("NVIDIA ", "Tesla "):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _total(mb: float) -> str:
    gib = mb / 1024
    return f"{gib:.0f}" if abs(gib - round(gib)) < 0.05 else f"{gib:.1f}"


def _memory(gpu: GpuInfo) -> Text:
    share = gpu.memory_used_mb / gpu.memory_total_mb * 100 if gpu.memory_total_mb else 0.0
    style = "red" if share >= 90 else "yellow" if share >= 50 else ""
    return Text(f"{_gib(gpu.memory_used_mb)}/{_total(gpu.memory_total_mb)} GiB\n{share:.0f}%", style=style)


def _value(value: float | None, unit: str) -> str:
    return "–" if value is None else f"{value:.0f}{unit}"


def _load(gpu: GpuInfo) -> str:
    """Utilisation over temperature in one cell: two narrow columns cost the processes column room."""
    return f"{_value(gpu.utilization, '%')}\n{_value(gpu.temperature, '°C')}"


def _power(gpu: GpuInfo) -> str:
    if gpu.power_w is None:
        return "–"
    return f"{gpu.power_w:.0f}W" + ("" if gpu.power_limit_w is None else f"\n/{gpu.power_limit_w:.0f}W")


def _foreign_line(proc: GpuProcess) -> str:
    parts = [f"pid {proc.pid}"]
    if proc.name:
        name = proc.name
        parts.append(name if len(name) <= PROCESS_NAME_WIDTH else name[: PROCESS_NAME_WIDTH - 1] + "…")
    if proc.used_memory_mb is not None:
        parts.append(f"{_gib(proc.used_memory_mb)} GiB")
    return " ".join(parts)


def _processes(gpu: GpuInfo) -> Text:
    """Counts first, then the foreign processes: those are what keep a GPU from xling."""
    ours = [p for p in gpu.processes if p.ours]
    foreign = [p for p in gpu.processes if not p.ours]
    text = Text()
    if gpu.mig:
        text.append("MIG mode: xling does not schedule here" + ("\n" if gpu.processes else ""), style="yellow")
    if not gpu.processes:
        if not gpu.mig:
            text.append("none", style="dim")
        return text
    text.append(f"ours: {len(ours)}, foreign: {len(foreign)}")
    for proc in foreign[:MAX_FOREIGN_LISTED]:
        text.append(f"\n{_foreign_line(proc)}", style="yellow")
    if len(foreign) > MAX_FOREIGN_LISTED:
        text.append(f"\n+{len(foreign) - MAX_FOREIGN_LISTED} more", style="dim")
    return text


def _index(gpu: GpuInfo, free: Collection[int] | None) -> Text:
    if free is not None and gpu.index in free:
        return Text(f"{gpu.index} ✓", style="bold green")
    return Text(str(gpu.index), style="bold")


def _gpu_table(snap: DeviceSnapshot, free: Collection[int] | None) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        expand=False,
        leading=1,
        title=f"GPUs ({len(snap.gpus)})",
        title_justify="left",
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Name", max_width=14, overflow="fold")
    table.add_column("Memory", no_wrap=True)
    table.add_column("Util\nTemp", justify="right", no_wrap=True)
    table.add_column("Power", justify="right", no_wrap=True)
    table.add_column("Processes", ratio=1, min_width=20, overflow="fold")
    for gpu in snap.gpus:
        table.add_row(_index(gpu, free), _short_name(gpu.name), _memory(gpu), _load(gpu), _power(gpu), _processes(gpu))
    return table


def _footer(snap: DeviceSnapshot, free: Collection[int] | None) -> list[RenderableType]:
    lines: list[RenderableType] = []
    if free is not None:
        if free:
            lines.append(Text("✓ free for xling: " + ", ".join(str(i) for i in sorted(free)), style="green"))
        else:
            lines.append(Text("no GPU free for xling (busy with other work, MIG, or not allowed)", style="yellow"))
    lines.extend(Text(note, style="yellow") for note in snap.notes)
    if snap.reason:
        lines.append(Text(snap.reason, style="yellow"))
    return lines


def _cpu_panel(snap: DeviceSnapshot) -> Panel:
    body = Text.assemble(
        ("CPU mode: ", "bold yellow"),
        snap.reason or "no GPU",
        "\nxling trains on the CPU here (small presets such as cpu-s are meant for it).",
    )
    for note in snap.notes:
        body.append(f"\n{note}", style="dim")
    return Panel(body, title="GPUs", title_align="left", border_style="yellow", expand=False)


def render_table(snap: DeviceSnapshot, free: Collection[int] | None = None) -> RenderableType:
    """One row per GPU; ``free`` (from ``free_gpus``) marks what xling would schedule on."""
    if snap.cpu_mode or not snap.gpus:
        return _cpu_panel(snap)
    return Group(_gpu_table(snap, free), *_footer(snap, free))


def to_json(snap: DeviceSnapshot) -> str:
    return json.dumps(snap.to_dict(), indent=2, ensure_ascii=False)


def from_json(text: str) -> DeviceSnapshot:
    """Inverse of ``to_json``, for scripts and tests that read ``xling gpus --format json``."""
    return DeviceSnapshot.from_dict(json.loads(text))


def _frame(source: DeviceSource, our_pids: Collection[int]) -> RenderableType:
    snap = snapshot(source, our_pids)
    stamp = Text(time.strftime("%H:%M:%S", time.localtime(snap.time)) + " · Ctrl-C to stop", style="dim")
    free = None if snap.cpu_mode else free_gpus(snap, our_pids)
    return Group(render_table(snap, free), stamp)


def watch(
    console: Console,
    source: DeviceSource | None = None,
    interval: float = 1.0,
    iterations: int | None = None,
    our_pids: Collection[int] = (),
) -> None:
    """Refresh in place until Ctrl-C, which is how one leaves a watch: so no traceback for it.

    One NVML source serves every frame (initialising NVML per frame can take seconds)."""
    own = source is None
    src: DeviceSource = NvmlSource() if source is None else source
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            done = 0
            while iterations is None or done < iterations:
                live.update(_frame(src, our_pids), refresh=True)
                done += 1
                if iterations is None or done < iterations:
                    time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if own:
            src.close()
