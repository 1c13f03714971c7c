"""A run's spec at a glance: schedule grid with the exact tokens per language, model, data, training.

Read from the spec.json the run logged (so it is what the run trained with, whatever the
experiments file says now). The schedule is shown as the paper writes it (a languages x
stages grid of percentages with the stage ends) and as p(lang) over training
(``MixTimeline``); the tokens each language gets are the exact counts of the schedule
(``engine.config.schedule``), which is what TEff divides by.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from xling_tui.widgets.plots import human
from xling_tui.widgets.schedule_grid import MixTimeline


def schedule_table(spec: dict[str, Any]) -> Table:
    """Languages x stages (% of sequences), then each language's exact tokens and share."""
    from engine.config.schedule import Schedule

    schedule = Schedule.from_dict(spec["schedule"])
    train = spec.get("train", {})
    tokens = schedule.marginal_tokens(spec["total_steps"], train["batch_size"], train["context"])
    total = sum(tokens.values()) or 1
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("language")
    starts = [0.0, *schedule.ends[:-1]]
    for start, end in zip(starts, schedule.ends):
        table.add_column(f"{start:.0%}–{end:.0%}", justify="right")
    table.add_column("tokens (exact)", justify="right")
    table.add_column("share", justify="right")
    for i, lang in enumerate(schedule.languages):
        cells = [f"{p:g}%" for p in schedule.percents[i]]
        table.add_row(lang, *cells, human(tokens[lang]), f"{tokens[lang] / total:.1%}")
    return table


def settings_text(spec: dict[str, Any]) -> Table:
    """Model, data, training and evaluation, one labelled row each (a long value wraps
    under itself, not under the label)."""
    from engine.config.presets import PRESETS

    data, train, ev = spec.get("data", {}), spec.get("train", {}), spec.get("eval", {})
    model = spec.get("model", "?")
    shape = PRESETS.get(model)
    out = Table.grid(padding=(0, 1))
    out.add_column(style="bold", no_wrap=True)
    out.add_column()

    def line(label: str, value: str) -> None:
        out.add_row(label, value)

    line(
        "run",
        f"{spec.get('experiment')} / {spec.get('name')} · {spec.get('kind')} · seed {spec.get('seed')} · "
        f"id {spec.get('run_id')}",
    )
    if shape is not None:
        line(
            "model",
            f"{model}: {shape.n_layer} layers, d_model {shape.d_model}, FFN {shape.d_ff}, "
            f"{shape.n_head}×{shape.head_dim} heads, vocab {data.get('vocab_size', '?')}",
        )
    else:
        line("model", str(model))
    if data.get("kind") == "real":
        corpora = ", ".join(f"{k}: {v.get('path')}" for k, v in (data.get("corpora") or {}).items())
        line("data", f"real languages, {data.get('tokenizer')} tokenizer · {corpora}")
    else:
        line("data", f"{data.get('corpus')} · cloned · anchors {float(data.get('anchors') or 0):.0%}")
    line(
        "train",
        f"{spec.get('total_steps')} steps × batch {train.get('batch_size')} × context {train.get('context')} "
        f"= {human(spec.get('total_tokens') or 0)} tokens ({spec.get('fraction', 1.0):.0%} of the budget "
        f"{human(spec.get('budget_tokens') or 0)})",
    )
    betas = train.get("betas") or ("?", "?")
    line(
        "optimiser",
        f"Adam β=({betas[0]}, {betas[1]}) · lr {train.get('lr')} → {train.get('min_lr')} (cosine) · "
        f"warmup {train.get('warmup')} steps · weight decay {train.get('weight_decay')}",
    )
    every = ev.get("every")
    when = "end only" if not every else f"every {every:.0%}"
    alignment = (
        "at every evaluation" if ev.get("alignment_at_evals") else ("at the end" if ev.get("alignment") else "off")
    )
    probe = " · probe at the end" if ev.get("probe") else ""
    line("eval", f"{when} · context {ev.get('context')}, stride {ev.get('stride')} · alignment {alignment}{probe}")
    return out


class SpecPanel(VerticalScroll):
    """The run's settings, its schedule grid with exact tokens, and p(lang) over training
    (as wide as the panel: one character per slice of the run)."""

    DEFAULT_CSS = """
    SpecPanel { padding: 0 1; }
    SpecPanel > Static { height: auto; margin: 0 0 1 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="spec-settings")
        yield Static("", id="spec-schedule")
        yield MixTimeline(width=48, id="spec-timeline")

    def show(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.query_one("#spec-settings", Static).update(settings_text(spec))
        self.query_one("#spec-schedule", Static).update(schedule_table(spec))
        self._timeline()

    def on_resize(self) -> None:
        self._timeline()

    def _timeline(self) -> None:
        from engine.config.schedule import Schedule

        if self.spec is None:
            return
        timeline = self.query_one("#spec-timeline", MixTimeline)
        timeline.slices = max(24, min(160, self.size.width - 14))
        timeline.show(Schedule.from_dict(self.spec["schedule"]))
