"""The line above the runs table: which experiment the table shows, and how each is doing.

``[`` and ``]`` step through "all" and every experiment (from experiments.toml and the
database); the selected one is highlighted, the others show their run counts.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from xling_tui.data_source import ExperimentRow


def experiment_counts(e: ExperimentRow) -> str:
    if e.runs == 0:
        return "not run" if e.in_config else "no runs"
    parts = [f"{e.done}/{e.defined_runs or e.runs} done"]
    if e.running:
        parts.append(f"{e.running} running")
    if e.failed:
        parts.append(f"{e.failed} failed")
    if not e.in_config:
        parts.append("not in config")
    return ", ".join(parts)


class ExperimentBar(Static):
    """Shows the experiments; ``selected`` is an experiment name or None for all."""

    DEFAULT_CSS = """
    ExperimentBar { height: auto; max-height: 3; padding: 0 1; }
    """

    selected: reactive[str | None] = reactive(None)
    experiments: reactive[tuple[ExperimentRow, ...]] = reactive(tuple)

    def choices(self) -> list[str | None]:
        return [None, *(e.name for e in self.experiments)]

    def step(self, delta: int) -> None:
        choices = self.choices()
        i = choices.index(self.selected) if self.selected in choices else 0
        self.selected = choices[(i + delta) % len(choices)]

    def current(self) -> ExperimentRow | None:
        return next((e for e in self.experiments if e.name == self.selected), None)

    def render(self) -> Text:
        text = Text("experiment ", style="dim")

        def chip(label: str, on: bool) -> None:
            text.append(f" {label} ", style="reverse bold" if on else "bold")

        chip("all", self.selected is None)
        for e in self.experiments:
            text.append(" ")
            chip(e.name, e.name == self.selected)
            text.append(f" {experiment_counts(e)}", style="dim")
        current = self.current()
        if current is not None and current.description:
            text.append(f"\n{current.description}", style="italic dim")
        return text
