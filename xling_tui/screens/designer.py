"""The schedule designer: edit an experiment's schedule grids, save experiments.toml, launch.

Rows are the experiment's languages (shared by all its schedules), columns are a
schedule's stages with their end points; cells are shares of training sequences in %.
Below them, the sweep's axes (ratio, languages, anchors, model, tokens: comma-separated
values) with the number of points and mix runs they make; a ratio axis makes the
schedules itself, and the grid then previews its first point.
Column sums update as you type and a column that is not 100% is marked, with the
engine's own message for the first problem. Saving goes through ``toml_edit`` (only
changed values rewritten, comments kept, validated by ``engine.config.spec`` first); launching
saves, then starts a headless ``xling run`` through ``xling_tui.actions``, so the runs
outlive the TUI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, Static

from engine.analysis.scaling import format_tokens
from engine.config.locate import SpecError
from engine.config.presets import PRESET_NAMES
from engine.config.schedule import ScheduleError
from engine.config.spec import load_experiments
from engine.config.sweep import ratio_mix
from xling_tui import toml_edit
from xling_tui.context import xling_app
from xling_tui.screens.base import XlingScreen

if TYPE_CHECKING:
    from xling_tui.actions import LoggedProcess
from xling_tui.widgets.key_footer import KeyFooter
from xling_tui.widgets.schedule_grid import (
    GridModel,
    MixTimeline,
    ScheduleGrid,
    add_language,
    next_language_name,
    remove_language,
)

NEW_EXPERIMENT = "\x00new"

# The sweep's axes as the designer edits them: (axis, label, tooltip), two rows.
SWEEP_INPUTS = [
    ("ratio", "sweep ratio", "main language's share in %, e.g. 50, 90, 99: makes the schedules"),
    ("languages", " languages", "numbers of cloned languages, e.g. 2, 4, 10"),
    ("anchors", " anchors", "shares of ids common to all clones, e.g. 0, 0.1, 0.5"),
    ("model", "sweep model", "model presets, e.g. cpu-xxs, cpu-xs, cpu-s"),
    ("tokens", " tokens", "token budgets, e.g. 1_000_000, 2_000_000"),
]


def _two(languages: list[str]) -> list[str]:
    out = list(languages[:2])
    while len(out) < 2:
        out.append(next_language_name(out))
    return out


# The paper's two-language schedules: name -> (stage ends, shares of the first two languages);
# any further language gets 0%. The 4-stage one alternates the imbalance every quarter.
PAIR_PRESETS: dict[str, tuple[list[float], list[list[float]]]] = {
    "50/50": ([1.0], [[50.0], [50.0]]),
    "90/10": ([1.0], [[90.0], [10.0]]),
    "90→10 / 10→90": ([0.5, 1.0], [[90.0, 10.0], [10.0, 90.0]]),
    "4-stage 90/10 ↔ 10/90": ([0.25, 0.5, 0.75, 1.0], [[90.0, 10.0, 90.0, 10.0], [10.0, 90.0, 10.0, 90.0]]),
}
TEN_LANGUAGES = "10 languages, 50% main"
PRESET_CHOICES = [*PAIR_PRESETS, TEN_LANGUAGES]


def preset_grid(preset: str, languages: list[str]) -> tuple[list[str], list[float], list[list[float]]]:
    """(languages, ends, percents) of ``preset`` for an experiment that has ``languages``.

    Two-language presets fill the first two languages (adding a second if needed) and
    give the others 0%; the ten-language one keeps the names there are, adds more up to
    ten, and gives the first 50% and the other nine 50/9% each (exactly, so columns sum to 100).
    """
    if preset == TEN_LANGUAGES:
        names = list(languages)
        while len(names) < 10:
            names.append(next_language_name(names))
        return names, [1.0], [[50.0]] + [[50.0 / 9] if i < 10 else [0.0] for i in range(1, len(names))]
    ends, rows = PAIR_PRESETS[preset]
    names = list(languages) if len(languages) >= 2 else _two(languages)
    percents = [list(rows[i]) if i < 2 else [0.0] * len(ends) for i in range(len(names))]
    return names, list(ends), percents


@dataclass
class SaveResult(Message):
    """From the save worker: the draft written, or why nothing was."""

    draft: toml_edit.ExperimentDraft | None
    error: str | None = None


@dataclass
class LaunchResult(Message):
    """From the save worker after a launch: the headless run's pid, its log and the run ids."""

    pid: int | None
    log_path: str = ""
    run_ids: list[str] | None = None
    error: str | None = None


class DesignerScreen(XlingScreen):
    """Schedule grid editor for one experiment of ``app.config_path``."""

    DEFAULT_CSS = """
    DesignerScreen { layout: vertical; }
    DesignerScreen #designer-body { height: 1fr; }
    DesignerScreen .row { height: 1; margin: 0 0 0 0; }
    DesignerScreen .row Label { width: auto; padding: 0 1 0 0; }
    DesignerScreen .row Select { width: 24; }
    DesignerScreen .row Input { width: 14; }
    DesignerScreen #schedule-name { width: 24; }
    DesignerScreen #sweep-model, DesignerScreen #sweep-tokens { width: 24; }
    DesignerScreen #sweep-points { height: auto; color: $text-muted; }
    DesignerScreen #title { text-style: bold; height: 1; }
    DesignerScreen #grid-box { height: auto; margin: 1 0 0 0; }
    DesignerScreen #timeline { margin: 1 0 0 0; }
    DesignerScreen #marginal-tokens { height: auto; color: $text-muted; }
    DesignerScreen #message { height: auto; margin: 1 0 0 0; }
    DesignerScreen #message.error { color: $error; text-style: bold; }
    DesignerScreen #message.ok { color: $success; }
    DesignerScreen #buttons { height: 1; margin: 1 0 0 0; }
    DesignerScreen #buttons Button { margin: 0 1 0 0; min-width: 6; }
    """

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+r", "launch", "Save+launch"),
        Binding("f2", "add_language", "+lang"),
        Binding("f3", "remove_language", "−lang"),
        Binding("f4", "add_stage", "+stage"),
        Binding("f5", "remove_stage", "−stage"),
        Binding("f6", "new_schedule", "+schedule"),
        Binding("f7", "delete_schedule", "−schedule", show=False),
        Binding("f8", "open_run", "Open run", show=False),
        Binding("escape", "close", "Back"),
    ]

    def __init__(self, experiment: str | None = None, *, device: str = "auto") -> None:
        super().__init__()
        self.experiment = experiment
        self.device = device
        self.original: toml_edit.ExperimentDraft | None = None
        self.models: list[GridModel] = []
        self.names: list[str] = []
        self.sources: list[int | None] = []
        self.current = 0
        self.launched_runs: list[str] = []
        self.launched_proc: LoggedProcess | None = None  # the headless `xling run` started from here (tests wait on it)
        self._loading = False
        self._clean: tuple | None = None  # the state as loaded or saved; anything else is unsaved
        self._warned = False

    # -- layout -------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return Path(xling_app(self).config_path)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="designer-body"):
            yield Static("", id="title")
            with Horizontal(classes="row"):
                yield Label("experiment")
                yield Select([], id="experiment", compact=True, prompt="—")
                yield Label(" schedule")
                yield Select([], id="schedule", allow_blank=True, compact=True, prompt="—")
            with Horizontal(classes="row"):
                yield Label("name")
                yield Input("", id="schedule-name", compact=True)
                yield Label(" preset")
                yield Select([(p, p) for p in PRESET_CHOICES], id="preset", compact=True, prompt="apply…")
            with VerticalScroll(id="grid-box"):
                yield ScheduleGrid(GridModel(["EN1", "EN2"], [1.0], [[50.0], [50.0]]), id="grid")
            yield MixTimeline(id="timeline")
            yield Static("", id="marginal-tokens")
            with Horizontal(classes="row"):
                yield Label("model")
                yield Select([(p, p) for p in PRESET_NAMES], id="model", allow_blank=False, compact=True)
                yield Label(" tokens")
                yield Input("", id="tokens", compact=True)
            with Horizontal(classes="row"):
                yield Label("seeds")
                yield Input("", id="seeds", compact=True, tooltip="e.g. 0, 1, 2")
                yield Label(" anchors")
                yield Input("", id="anchors", compact=True, tooltip="fraction of ids shared by all clones")
            with Horizontal(classes="row"):
                for axis, label, tip in SWEEP_INPUTS[:3]:
                    yield Label(label)
                    yield Input("", id=f"sweep-{axis}", compact=True, tooltip=tip)
            with Horizontal(classes="row"):
                for axis, label, tip in SWEEP_INPUTS[3:]:
                    yield Label(label)
                    yield Input("", id=f"sweep-{axis}", compact=True, tooltip=tip)
            yield Static("", id="sweep-points")
            yield Static("", id="message")
            with Horizontal(id="buttons"):
                for label, action in (
                    ("+lang", "add_language"),
                    ("−lang", "remove_language"),
                    ("+stage", "add_stage"),
                    ("−stage", "remove_stage"),
                    ("+sched", "new_schedule"),
                    ("−sched", "delete_schedule"),
                    ("Save", "save"),
                    ("Launch", "launch"),
                ):
                    yield Button(label, id=f"do-{action}", compact=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._load(self.experiment, focus="cell-0-0")

    # -- loading ------------------------------------------------------------------------

    def _load(self, name: str | None, focus: str | None = None) -> None:
        try:
            doc = toml_edit.load_document(self.config_path)
        except toml_edit.DraftError as exc:
            self._message(str(exc), error=True)
            doc = None
        names = toml_edit.experiment_names(doc) if doc is not None else []
        if name is None:
            name = names[0] if names else "new"
        draft = (
            toml_edit.read_draft(doc, name)
            if doc is not None
            else toml_edit.ExperimentDraft.new(name, ["EN1", "EN2"], 1_000_000)
        )
        if not draft.schedules and draft.sweep.get("ratio"):  # the sweep makes them: show the first
            first = draft.sweep["ratio"][0]
            mix = ratio_mix(draft.languages, first)
            rows = [mix[lang] for lang in draft.languages]
            draft.schedules.append(toml_edit.ScheduleDraft(f"ratio={first:g} (sweep)", draft.languages, [1.0], rows))
        elif not draft.schedules:
            draft.languages, ends, percents = preset_grid("50/50", draft.languages)
            draft.schedules.append(toml_edit.ScheduleDraft("50/50", draft.languages, ends, percents))
        self.experiment = name
        self.original = toml_edit.snapshot(draft)
        self.draft_meta = draft
        languages = list(draft.languages)
        self.models = [GridModel(languages, list(s.ends), [list(r) for r in s.percents]) for s in draft.schedules]
        self.names = [s.name for s in draft.schedules]
        self.sources = [s.source for s in draft.schedules]
        self._loading = True
        options = [(n, n) for n in names] + ([(name, name)] if name not in names else [])
        self.query_one("#experiment", Select).set_options(options + [("new experiment…", NEW_EXPERIMENT)])
        self.query_one("#experiment", Select).value = name
        model = self.query_one("#model", Select)
        model.value = draft.model if draft.model in PRESET_NAMES else PRESET_NAMES[0]
        self.query_one("#tokens", Input).value = f"{draft.tokens:_}"
        self.query_one("#seeds", Input).value = ", ".join(str(s) for s in draft.seeds)
        self.query_one("#anchors", Input).value = toml_edit.format_number(draft.anchors)
        for axis, *_ in SWEEP_INPUTS:
            values = draft.sweep.get(axis, [])
            shown = [toml_edit.format_number(v) if isinstance(v, int | float) else str(v) for v in values]
            self.query_one(f"#sweep-{axis}", Input).value = ", ".join(shown)
        self.query_one("#title", Static).update(f"Schedule designer · {self.config_path.name} · {name}")
        self._show_schedule(0, focus)
        self._clean = self._state()
        self._warned = False
        self.call_after_refresh(self._done_loading)

    def _done_loading(self) -> None:
        self._loading = False

    def _refresh_schedule_options(self) -> None:
        select = self.query_one("#schedule", Select)
        select.set_options([(n or f"schedule {i + 1}", i) for i, n in enumerate(self.names)])
        select.value = self.current

    def _show_schedule(self, index: int, focus: str | None = None) -> None:
        self.current = index
        self._refresh_schedule_options()
        self.query_one("#schedule-name", Input).value = self.names[index]
        self.grid.set_model(self.models[index], focus)
        self._update_summary()

    @property
    def grid(self) -> ScheduleGrid:
        return self.query_one("#grid", ScheduleGrid)

    @property
    def model(self) -> GridModel:
        return self.models[self.current]

    # -- live feedback ------------------------------------------------------------------

    def on_schedule_grid_changed(self, event: ScheduleGrid.Changed) -> None:
        self._update_summary()

    def _state(self) -> tuple:
        """Everything a save would write, as shown now."""
        fields = ("tokens", "seeds", "anchors", *(f"sweep-{axis}" for axis, *_ in SWEEP_INPUTS))
        inputs = (self.query_one(f"#{w}", Input).value for w in fields)
        values = (str(self.query_one("#model", Select).value), *inputs)
        grids = tuple((tuple(m.languages), tuple(m.ends), tuple(tuple(r) for r in m.percents)) for m in self.models)
        return values, tuple(self.names), tuple(self.sources), grids

    @property
    def dirty(self) -> bool:
        return self._clean is not None and self._state() != self._clean

    def _update_summary(self) -> None:
        error = self.model.error()
        timeline = self.query_one("#timeline", MixTimeline)
        tokens_line = self.query_one("#marginal-tokens", Static)
        if error:
            timeline.show(None)
            tokens_line.update("")
            self._message(error, error=True)
            return
        schedule = self.model.schedule()
        timeline.show(schedule)
        try:
            budget = toml_edit.parse_int(self.query_one("#tokens", Input).value)
            meta = self.draft_meta
            steps = max(1, round(budget / (meta.batch_size * meta.context)))
            tokens = schedule.marginal_tokens(steps, meta.batch_size, meta.context)
            tokens_line.update(
                "tokens per language: " + " · ".join(f"{lang} {format_tokens(n)}" for lang, n in tokens.items())
            )
        except ValueError:
            tokens_line.update("")
        self._message("")

    def _message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error and bool(text), "error")
        message.set_class(not error and bool(text), "ok")

    # -- controls -----------------------------------------------------------------------

    @on(Select.Changed, "#schedule")
    def _schedule_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and event.value != self.current and event.value < len(self.models):
            self._show_schedule(event.value)

    @on(Select.Changed, "#experiment")
    def _experiment_picked(self, event: Select.Changed) -> None:
        if self._loading or not isinstance(event.value, str) or event.value == self.experiment:
            return  # our own set_options/value changes, or the blank a refill passes through
        if event.value == NEW_EXPERIMENT:
            self.app.push_screen(_NameQuestion(), self._new_experiment)
            return
        self._load(str(event.value))

    def _new_experiment(self, name: str | None) -> None:
        if not name:
            self.query_one("#experiment", Select).value = self.experiment
            return
        self._load(name)

    @on(Select.Changed, "#preset")
    def _preset_picked(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str):
            return
        languages = self.model.languages
        names, ends, percents = preset_grid(event.value, list(languages))
        while len(languages) < len(names):
            add_language(self.models, names[len(languages)])
        self.models[self.current] = GridModel(languages, ends, [list(r) for r in percents])
        self.names[self.current] = event.value  # the grid is the preset now; rename it freely
        self.query_one("#schedule-name", Input).value = event.value
        self.query_one("#preset", Select).clear()
        self._show_schedule(self.current)

    @on(Input.Changed, "#schedule-name")
    def _renamed(self, event: Input.Changed) -> None:
        if self.names and event.value != self.names[self.current]:
            self.names[self.current] = event.value
            self._refresh_schedule_options()

    @on(Input.Changed, "#tokens")
    def _tokens_changed(self, event: Input.Changed) -> None:
        if self.models:
            self._update_summary()

    @on(Input.Changed, "#seeds, #sweep-ratio, #sweep-languages, #sweep-anchors, #sweep-model, #sweep-tokens")
    def _sweep_changed(self, event: Input.Changed) -> None:
        self.query_one("#sweep-points", Static).update(self._sweep_summary())

    def _sweep_summary(self) -> str:
        """How many points the axes make and the mix runs they ask for, as typed."""
        try:
            sweep = self._sweep()
            seeds = len(self.query_one("#seeds", Input).value.replace(",", " ").split())
        except SpecError as exc:
            return str(exc)
        if not sweep:
            return "no sweep: one point (a sweep.AXIS makes a curve: ratio, languages, anchors, model, tokens)"
        points = math.prod(len(v) for v in sweep.values())
        mixes = 1 if "ratio" in sweep else len(self.models)
        made = "; the ratio makes the schedules (the grid's are not saved)" if "ratio" in sweep else ""
        return (
            f"sweep: {points} points × {mixes} schedule(s) × {seeds} seed(s) = {points * mixes * seeds} mix runs{made}"
        )

    def _sweep(self) -> dict[str, list]:
        """The axes as typed; SpecError naming the axis when a value is not one."""
        out: dict[str, list] = {}
        for axis, *_ in SWEEP_INPUTS:
            words = self.query_one(f"#sweep-{axis}", Input).value.replace(",", " ").split()
            if not words:
                continue
            try:
                if axis == "model":
                    out[axis] = words
                elif axis in ("tokens", "languages"):
                    out[axis] = [toml_edit.parse_int(w) for w in words]
                else:
                    out[axis] = [float(w) for w in words]
            except ValueError:
                kind = "whole numbers" if axis in ("tokens", "languages") else "numbers"
                raise SpecError(f"sweep.{axis}: {kind} separated by commas") from None
        return out

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("do-"):
            await self.run_action(event.button.id.removeprefix("do-"))

    async def _restructure(self, edit, focus: str | None = None) -> None:
        try:
            edit()
        except ScheduleError as exc:
            self._message(str(exc), error=True)
            return
        await self.grid.rebuild(focus)
        self._update_summary()

    async def action_add_language(self) -> None:
        await self._restructure(lambda: add_language(self.models), f"lang-{len(self.model.languages)}")

    async def action_remove_language(self) -> None:
        row, _ = self.grid.cursor()
        index = len(self.model.languages) - 1 if row is None else row
        await self._restructure(lambda: remove_language(self.models, index))

    async def action_add_stage(self) -> None:
        _, col = self.grid.cursor()
        index = self.model.n_stages - 1 if col is None else col
        await self._restructure(lambda: self.model.add_stage(index), f"cell-0-{index + 1}")

    async def action_remove_stage(self) -> None:
        _, col = self.grid.cursor()
        index = self.model.n_stages - 1 if col is None else col
        await self._restructure(lambda: self.model.remove_stage(index))

    def action_new_schedule(self) -> None:
        languages = self.model.languages
        percents: list[list[float | str]] = [[100.0 / len(languages)] for _ in languages]
        self.models.append(GridModel(languages, [1.0], percents))
        self.names.append(f"schedule {len(self.names) + 1}")
        self.sources.append(None)
        self._show_schedule(len(self.models) - 1)

    def action_delete_schedule(self) -> None:
        if len(self.models) <= 1:
            self._message("an experiment keeps at least one schedule here", error=True)
            return
        for seq in (self.models, self.names, self.sources):
            del seq[self.current]
        self._show_schedule(max(0, self.current - 1))

    def action_close(self) -> None:
        if self.dirty and not self._warned:
            self._warned = True
            self._message("unsaved changes: esc again leaves without saving, ctrl+s saves", error=True)
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- save and launch ----------------------------------------------------------------

    def current_draft(self) -> toml_edit.ExperimentDraft:
        """The edited experiment; raises SpecError naming the first thing that is wrong."""
        meta = self.draft_meta
        for name, model in zip(self.names, self.models):
            error = model.error()
            if error:
                raise SpecError(f"schedule {name!r}: {error}")
            if not name.strip():
                raise SpecError("every schedule needs a name")
        try:
            tokens = toml_edit.parse_int(self.query_one("#tokens", Input).value)
        except ValueError:
            raise SpecError("tokens: a whole number of tokens, e.g. 2_500_000") from None
        try:
            seeds = [int(s) for s in self.query_one("#seeds", Input).value.replace(",", " ").split()]
        except ValueError:
            raise SpecError("seeds: whole numbers separated by commas, e.g. 0, 1, 2") from None
        anchors_text = self.query_one("#anchors", Input).value.strip() or "0"
        try:
            anchors = float(anchors_text)
        except ValueError:
            raise SpecError("anchors: a fraction between 0 and 1, e.g. 0.1") from None
        languages = list(self.models[0].languages)
        sweep = self._sweep()
        schedules = [
            toml_edit.ScheduleDraft(n.strip(), languages, list(m.ends), m.schedule_draft_rows(), source=src)
            for n, m, src in zip(self.names, self.models, self.sources)
            if "ratio" not in sweep  # a ratio sweep makes its own schedules
        ]
        return toml_edit.ExperimentDraft(
            meta.name,
            languages,
            str(self.query_one("#model", Select).value),
            tokens,
            seeds,
            anchors,
            schedules,
            meta.batch_size,
            meta.context,
            meta.is_new,
            sweep,
        )

    def action_save(self) -> None:
        self._save(launch=False)

    def action_launch(self) -> None:
        self._save(launch=True)

    def _save(self, launch: bool) -> None:
        try:
            draft = self.current_draft()
        except SpecError as exc:
            self._message(str(exc), error=True)
            return
        self._message("saving…")
        self._write(draft, launch)

    @work(thread=True, exclusive=True, group="designer-save")
    def _write(self, draft: toml_edit.ExperimentDraft, launch: bool) -> None:
        try:
            toml_edit.save(self.config_path, draft, self.original)
        except (SpecError, toml_edit.DraftError, OSError) as exc:
            self.post_message(SaveResult(None, str(exc)))
            return
        self.post_message(SaveResult(draft))
        if launch:
            self.post_message(self._start(draft.name))

    def _start(self, name: str) -> LaunchResult:
        from xling_tui.actions import launch_experiment

        try:
            runs = [r.run_id for e in load_experiments(self.config_path, [name]) for r in e.runs]
            proc = launch_experiment(
                self.config_path, Path(xling_app(self).db_path), experiment=name, device=self.device
            )
        except (SpecError, OSError) as exc:
            return LaunchResult(None, error=f"launch failed: {exc}")
        self.launched_proc = proc
        track = getattr(self.app, "track_process", None)  # the app reports its exit and reaps it
        if track is not None:
            track(proc, f"launch of {name}")
        return LaunchResult(proc.pid, str(getattr(proc, "log_path", "")), runs)

    def on_save_result(self, result: SaveResult) -> None:
        """What is on disk now is what later edits are compared against."""
        if result.draft is None:
            self._message(result.error or "not saved", error=True)
            return
        try:
            saved = toml_edit.read_draft(toml_edit.load_document(self.config_path), result.draft.name)
        except toml_edit.DraftError as exc:
            self._message(str(exc), error=True)
            return
        self.original = toml_edit.snapshot(saved)
        self.draft_meta = saved
        self.sources = [s.source for s in saved.schedules]
        self._clean = self._state()
        self._message(f"saved {self.config_path}")

    def on_launch_result(self, result: LaunchResult) -> None:
        if result.pid is None:
            self._message(result.error or "launch failed", error=True)
            return
        self.launched_runs = result.run_ids or []
        self._message(
            f"launched {len(self.launched_runs)} runs of {self.experiment} (pid {result.pid}); "
            f"log: {result.log_path}; F8 opens the first run"
        )

    def action_open_run(self) -> None:
        if not self.launched_runs:
            self._message("nothing launched from here yet (ctrl+r saves and launches)", error=True)
            return
        from xling_tui.screens.run_detail import RunScreen

        self.app.push_screen(RunScreen(self.launched_runs[0]))


class _NameQuestion(Screen[str | None]):
    """Asks for a new experiment's name (enter confirms, escape cancels)."""

    DEFAULT_CSS = """
    _NameQuestion { align: center middle; }
    _NameQuestion > Static { width: 60; }
    _NameQuestion > Input { width: 60; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        yield Static("Name of the new experiment (letters, digits, - and _):")
        yield Input(id="new-name", restrict=r"[A-Za-z0-9_\-]*")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
