"""The schedule designer's grid (languages x stages, cells in %) and its p(lang) timeline.

The grid holds text, not numbers: a half-typed cell is a normal state for an editor,
and ``engine.config.schedule.Schedule`` (constructed without validation) says what is wrong
with it in the same words ``xling run`` would. Sums and marginal shares come from the
same class, so the designer can never disagree with the trainer about a schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from engine.config.schedule import SUM_TOLERANCE, Schedule, ScheduleError

MAX_LANGUAGES = 32
MAX_STAGES = 12


def format_cell(x: float) -> str:
    """How a share shows in a cell: 90, 12.5, 5.556 (50/9 keeps its exact value underneath)."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.4g}"


def parse_number(text: str) -> float | None:
    try:
        value = float(text.strip().rstrip("%").replace("_", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class GridModel:
    """A schedule being edited: exact values where known, the raw text where not a number."""

    languages: list[str]  # the experiment's, shared by all its schedules' models (as typed)
    ends: list[float]  # fractions of training
    percents: list[list[float | str]]  # [language][stage]; a str is unparseable input

    @property
    def n_stages(self) -> int:
        return len(self.ends)

    def schedule(self) -> Schedule:
        """Unvalidated, so a broken grid still yields a Schedule whose ``validate`` explains it."""
        percents = cast("tuple[tuple[float, ...], ...]", tuple(tuple(r) for r in self.percents))  # str cells too
        return Schedule(tuple(self.languages), tuple(self.ends), percents)

    def error(self) -> str | None:
        try:
            self.schedule().validate()
        except ScheduleError as exc:
            return str(exc)
        return None

    def column_sum(self, stage: int) -> float | None:
        column = [row[stage] for row in self.percents]
        if any(isinstance(c, str) for c in column):
            return None
        return math.fsum(column)  # type: ignore[arg-type]

    def column_ok(self, stage: int) -> bool:
        total = self.column_sum(stage)
        return total is not None and abs(total - 100.0) <= SUM_TOLERANCE

    def marginals(self) -> dict[str, float] | None:
        """Share of training per language, or None while the grid is invalid."""
        if self.error() is not None:
            return None
        return self.schedule().marginal_fractions()

    # -- structure edits -------------------------------------------------------------

    def schedule_draft_rows(self) -> list[list[float]]:
        """The cells as numbers; call only when ``error()`` is None."""
        return [[float(c) for c in row] for row in self.percents]

    def add_stage(self, after: int) -> None:
        """Splits stage ``after`` in two halves with the same shares: an edit that changes nothing yet."""
        if self.n_stages >= MAX_STAGES:
            raise ScheduleError(f"at most {MAX_STAGES} stages")
        start = self.ends[after - 1] if after > 0 else 0.0
        middle = round((start + self.ends[after]) / 2, 6)
        self.ends.insert(after, middle)
        for row in self.percents:
            row.insert(after, row[after])

    def remove_stage(self, index: int) -> None:
        """The stage's time goes to the next stage (or the previous one, for the last)."""
        if self.n_stages <= 1:
            raise ScheduleError("a schedule needs at least one stage")
        if index == self.n_stages - 1:
            del self.ends[index - 1]
        else:
            del self.ends[index]
        for row in self.percents:
            del row[index]


def add_language(models: list[GridModel], name: str | None = None) -> str:
    """A new language row (0% everywhere) in every schedule of the experiment."""
    languages = models[0].languages
    if len(languages) >= MAX_LANGUAGES:
        raise ScheduleError(f"at most {MAX_LANGUAGES} languages")
    name = name or next_language_name(languages)
    languages.append(name)
    for m in models:
        m.percents.append([0.0] * m.n_stages)
    return name


def remove_language(models: list[GridModel], index: int) -> str:
    languages = models[0].languages
    if len(languages) <= 1:
        raise ScheduleError("an experiment needs at least one language")
    name = languages.pop(index)
    for m in models:
        del m.percents[index]
    return name


def next_language_name(names: list[str]) -> str:
    """EN1, EN2 -> EN3; otherwise L<n>."""
    stems = {n.rstrip("0123456789") for n in names if n.rstrip("0123456789") != n}
    stem = stems.pop() if len(stems) == 1 else "L"
    k = len(names) + 1
    while f"{stem}{k}" in names:
        k += 1
    return f"{stem}{k}"


class ScheduleGrid(Widget, can_focus=False):
    """Editable cells; every edit posts ``ScheduleGrid.Changed``. Up/down/enter move between rows."""

    DEFAULT_CSS = """
    ScheduleGrid { height: auto; }
    ScheduleGrid Grid { height: auto; grid-rows: 1; grid-gutter: 0 1; }
    ScheduleGrid Input { border: none; height: 1; padding: 0 1; width: 100%; }
    ScheduleGrid Input:focus { background: $accent 40%; }
    ScheduleGrid .head { text-style: bold; }
    ScheduleGrid .sum-ok { color: $success; }
    ScheduleGrid .sum-bad { color: $error; text-style: bold reverse; }
    ScheduleGrid .marginal { color: $text-muted; }
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Row up", show=False),
        Binding("down", "move(1)", "Row down", show=False),
    ]

    @dataclass
    class Changed(Message):
        grid: ScheduleGrid

    def __init__(self, model: GridModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        m = self.model
        grid = Grid(id="cells")
        grid.styles.grid_size_columns = m.n_stages + 2
        grid.styles.grid_columns = " ".join(["10", *["7"] * m.n_stages, "16"])
        with grid:
            yield Static("stage", classes="head")
            for s in range(m.n_stages):
                yield Static(f" {s + 1}", classes="head")
            yield Static("share of run", classes="head")
            yield Static("ends at %", classes="head")
            for s, end in enumerate(m.ends):
                yield Input(
                    format_cell(end * 100),
                    id=f"end-{s}",
                    compact=True,
                    disabled=s == m.n_stages - 1,
                    tooltip="stage end, % of training",
                )
            yield Static("")
            for i, lang in enumerate(m.languages):
                yield Input(lang, id=f"lang-{i}", compact=True, tooltip="language name")
                for s in range(m.n_stages):
                    yield Input(self._cell_text(i, s), id=f"cell-{i}-{s}", compact=True)
                yield Static("", id=f"marginal-{i}", classes="marginal")
            yield Static("sum", classes="head")
            for s in range(m.n_stages):
                yield Static("", id=f"sum-{s}", classes="sum")
            yield Static("")

    def _cell_text(self, i: int, s: int) -> str:
        value = self.model.percents[i][s]
        return value if isinstance(value, str) else format_cell(value)

    def on_mount(self) -> None:
        self.update_derived()

    async def rebuild(self, focus: str | None = None, notify: bool = True) -> None:
        """After a structure edit (``notify``: tell the screen) or a new model: new cells, focus placed."""
        await self.recompose()
        self.update_derived()
        if focus:
            for cell in self.query(f"#{focus}"):  # none when that cell went away
                cell.focus()
        if notify:
            self.post_message(self.Changed(self))

    def set_model(self, model: GridModel, focus: str | None = None) -> None:
        self.model = model
        self.call_later(self.rebuild, focus, False)

    # -- edits ---------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.parent is None or event.input not in self.query(Input):
            return
        wid = event.input.id or ""
        try:
            self._apply_edit(wid, event.value)
        except (IndexError, ValueError):
            return  # an input of the grid being replaced (a structure edit is in flight)
        self.update_derived()
        self.post_message(self.Changed(self))

    def _apply_edit(self, wid: str, value: str) -> None:
        m = self.model
        if wid.startswith("cell-"):
            i, s = (int(x) for x in wid.split("-")[1:])
            current = m.percents[i][s]
            if isinstance(current, float) and format_cell(current) == value.strip():
                return  # the text shows this exact value (e.g. 5.556 for 50/9): keep it exact
            number = parse_number(value)
            m.percents[i][s] = value if number is None else number
        elif wid.startswith("end-"):
            s = int(wid.split("-")[1])
            number = parse_number(value)
            if number is not None and format_cell(m.ends[s] * 100) != value.strip():
                m.ends[s] = number / 100
        elif wid.startswith("lang-"):
            i = int(wid.split("-")[1])
            m.languages[i] = value.strip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_move(1)

    def action_move(self, delta: int) -> None:
        focused = self.screen.focused
        if not isinstance(focused, Input) or not focused.id:
            return
        parts = focused.id.split("-")
        m = self.model
        if parts[0] == "cell":
            row, col = int(parts[1]) + delta, int(parts[2])
        elif parts[0] == "lang":
            row, col = int(parts[1]) + delta, -1
        else:
            row, col = (0 if delta > 0 else -2), int(parts[1])
        if row < -1 or row >= len(m.languages):
            return
        target = f"end-{col}" if row == -1 else (f"lang-{row}" if col < 0 else f"cell-{row}-{col}")
        if row == -1 and col < 0:
            return
        widget = self.query_one(f"#{target}", Input)
        if not widget.disabled:
            widget.focus()

    def cursor(self) -> tuple[int | None, int | None]:
        """(language row, stage column) of the focused cell, for remove-row/column keys."""
        focused = self.screen.focused
        if not isinstance(focused, Input) or not focused.id or focused not in self.query(Input):
            return None, None
        parts = focused.id.split("-")
        if parts[0] == "cell":
            return int(parts[1]), int(parts[2])
        if parts[0] == "lang":
            return int(parts[1]), None
        return None, int(parts[1])

    # -- derived ---------------------------------------------------------------------------

    def update_derived(self) -> None:
        m = self.model
        if len(self.query(".sum")) != m.n_stages or len(self.query(".marginal")) != len(m.languages):
            return  # the cells for this model are still being built; rebuild() comes back here
        for s in range(m.n_stages):
            total = m.column_sum(s)
            label = self.query_one(f"#sum-{s}", Static)
            ok = m.column_ok(s)
            label.update(("?" if total is None else format_cell(round(total, 6))) + (" ✓" if ok else " ✗"))
            label.set_class(ok, "sum-ok")
            label.set_class(not ok, "sum-bad")
        marginals = m.marginals()
        for i, lang in enumerate(m.languages):
            text = "—" if marginals is None else f"{marginals.get(lang, 0.0) * 100:.1f}%"
            self.query_one(f"#marginal-{i}", Static).update(text)


TIMELINE_BLOCKS = " ▁▂▃▄▅▆▇█"


def _block(p: float) -> str:
    """A nonzero share never shows as blank: 5% is the lowest block, not nothing."""
    return TIMELINE_BLOCKS[0] if p <= 0 else TIMELINE_BLOCKS[max(1, round(p * 8))]


class MixTimeline(Static):
    """p(lang) over training, one row per language, one character per slice of the run."""

    DEFAULT_CSS = """
    MixTimeline { height: auto; color: $accent; }
    """

    def __init__(self, *, width: int = 48, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.slices = width
        self.schedule: Schedule | None = None

    def show(self, schedule: Schedule | None) -> None:
        self.schedule = schedule
        self.update(self._render_text())

    def _render_text(self) -> Text:
        out = Text()
        sched = self.schedule
        if sched is None:
            return Text("p(lang) over training: fix the grid to see it", style="italic")
        names = [n[:8] for n in sched.languages]
        width = max(len(n) for n in names)
        n = self.slices
        columns = [sched.probs(k, n) for k in range(n)]
        for i, name in enumerate(names):
            out.append(f"{name:>{width}} ", style="bold")
            out.append("".join(_block(col[i]) for col in columns))
            out.append("\n")
        out.append(" " * (width + 1) + "0%" + " " * (n - 6) + "100%", style="dim")
        return out
