"""Rich progress for a headless ``xling run``: one bar per run, one for the whole set."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from engine.launch.state import RunState
from engine.runs.status import LIVE, TERMINAL, RunStatus
from xling_tui.status_style import status_style


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


class RunProgress:
    """Adapts launcher states to rich tasks; the launcher calls ``update`` after each poll."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[label]}", justify="left"),
            BarColumn(bar_width=16),
            TaskProgressColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )
        self.overall: TaskID | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RunProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, states: list[RunState]) -> None:
        todo = [s for s in states if not s.skipped]
        finished = sum(s.status in TERMINAL for s in todo)
        if self.overall is None:
            self.overall = self.progress.add_task("", total=len(todo), label="[bold]all runs[/]", info="")
        self.progress.update(self.overall, completed=finished, info=f"{finished} finished, {len(todo) - finished} left")
        several = len({s.spec.experiment for s in todo}) > 1  # then "table1/50/50", not just "50/50"
        for state in todo:
            shown = state.spec.run_id in self.tasks or state.on_cluster or state.message  # message: why it waits
            if state.status is RunStatus.QUEUED and not shown:
                continue
            self._update_run(state, several)

    def _update_run(self, s: RunState, with_experiment: bool) -> None:
        run_id = s.spec.run_id
        if run_id not in self.tasks:
            self.tasks[run_id] = self.progress.add_task("", total=s.spec.total_steps, label="", info="")
        style = status_style(s.status) or "default"
        name = f"{s.spec.experiment}/{s.spec.name}" if with_experiment else s.spec.name
        label = f"[{style}]{escape(_short(name, 24 if with_experiment else 18))}[/]"
        if s.status is RunStatus.RUNNING:
            parts = [f"{s.tokens_per_s or 0:,.0f} tok/s", f"loss {s.loss:.3f}" if s.loss else "", _eta(s.eta_seconds)]
        else:
            ppl = " ".join(f"{k} {v:.1f}" for k, v in sorted(s.best_ppl.items()))
            done = f"PPL {ppl}" if ppl and s.status is RunStatus.DONE else ""
            parts = [f"[{style}]{s.status}[/]", done, escape(s.message or "")]
        if s.on_cluster and s.status in LIVE:
            parts.append(f"[dim]{escape(s.where)}[/]")
        info = "  ".join(p for p in parts if p)
        self.progress.update(self.tasks[run_id], completed=s.step or 0, label=label, info=info)
