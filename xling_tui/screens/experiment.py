"""One experiment as the paper would show it, filling in live as its runs finish.

Top: ``xling report``'s table (its numbers and marks: ``>x`` extrapolated, ``n/a``
impossible, seed intervals where there are several seeds) with a row for every
schedule and baseline of the experiment, the ones still training or queued included
(their cells wait, the last column says where they are), and a colour swatch that is
the plot's legend. Below: the monolingual scaling law with the baselines it was fitted
on, and each mix's languages at their MLTE (the tokens a monolingual model needs for
that PPL); for an experiment that sweeps a setting, PPL and TEff per language along
each axis. ``enter`` opens the run under the cursor. Data is read on a thread worker
every refresh; a poll that finds nothing new redraws nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from xling_tui.context import xling_app
from xling_tui.overlay import MARKERS
from xling_tui.screens.base import XlingScreen
from xling_tui.status_style import status_style
from xling_tui.widgets.cell import cell
from xling_tui.widgets.cell_table import CellTable
from xling_tui.widgets.key_footer import KeyFooter
from xling_tui.widgets.plots import PALETTE, Figure, Series, XPlot

NARROW_KEEP = 60  # from this report-column priority on, a column stays at any width


@dataclass
class ExperimentData(Message):
    """Everything the view shows, read in one worker pass (None fields: unchanged)."""

    experiment: str
    fingerprint: tuple = ()
    report: Any = None  # xling_tui.report.Report
    runs: list = field(default_factory=list)  # db.experiment_view.ExperimentRun
    law: Any = None  # db.run_panels.TeffPanel
    sweeps: list = field(default_factory=list)  # db.experiment_view.Sweep
    error: str | None = None


def fetch_experiment(db_path: Path, experiment: str, known: tuple = ()) -> ExperimentData:
    """Runs on a thread worker; returns only the fingerprint when nothing changed since ``known``."""
    from db import experiment_view, run_panels
    from db.store import Store, StoreError
    from xling_tui.report import build_report

    store = Store(db_path)
    try:
        store.try_ingest()
        with store.reading():  # one connection for the dozen small reads below
            mark = experiment_view.fingerprint(store, experiment)
            if known and mark == known:
                return ExperimentData(experiment, mark)
            runs = experiment_view.experiment_runs(store, experiment)
            if not runs:
                return ExperimentData(experiment, mark, error=f"no runs of {experiment!r} in {Path(db_path).name} yet")
            model = next((r.model for r in runs if r.kind == "baseline" and r.model), runs[0].model)
            languages: list[str] = next((r.spec["languages"] for r in runs if r.spec.get("languages")), [])
            language = languages[0] if languages else None
            law = run_panels.teff_panel(store, experiment, model, language) if model else None
            return ExperimentData(
                experiment,
                mark,
                build_report(store, experiment),
                runs,
                law,
                experiment_view.sweeps(store, experiment, runs),
            )
    except StoreError as exc:
        return ExperimentData(experiment, error=str(exc))


# -- the table --------------------------------------------------------------------------------


def schedule_colours(runs: list) -> dict[str, str]:
    """A colour per mix schedule, in the experiment's order (baselines are the law's, white)."""
    names = list(dict.fromkeys(r.name for r in runs if r.kind == "mix"))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def where_runs_are(runs: list) -> str:
    """'2 done · 1 running 60%' for the runs of one row."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = []
    for status in ("done", "running", "queued", "failed", "cancelled"):
        if status in counts:
            part = f"{counts[status]} {status}"
            if status == "running":
                progress = [r.progress for r in runs if r.status == "running" and r.progress is not None]
                if progress:
                    part += f" {100 * min(progress):.0f}%"
            parts.append(part)
    return " · ".join(parts)


def table_rows(report, runs: list) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """The report's main table with a row for every schedule of the experiment and a
    'runs' column: (columns, [(name, cells)]). A row whose runs have not finished shows
    its settings and waits for its numbers."""
    from engine.analysis.scaling import format_tokens

    main = report.tables[0]
    columns = list(main.columns)
    by_name: dict[str, list] = {}
    for r in runs:
        by_name.setdefault(r.name, []).append(r)
    done = {row[0]: row for row in main.rows}
    out: list[tuple[str, list[Any]]] = []
    order = [n for n in by_name if by_name[n][0].kind == "baseline"] + [
        n for n in by_name if by_name[n][0].kind != "baseline"
    ]
    for name in order:
        group = by_name[name]
        state = where_runs_are(group)
        if name in done:
            cells: list[Any] = list(done[name])
        else:
            cells = [_waiting_cell(column, group[0], format_tokens) for column in columns]
        style = "" if name in done else status_style(group[0].status) or "dim"
        out.append((name, [*cells, Text(state, style=style)]))
    for name, row in done.items():  # a finished run the definition no longer lists (kept by the report)
        if name not in by_name:
            out.append((name, [*row, ""]))
    return [*columns, "runs"], out


def _waiting_cell(column: str, run, format_tokens) -> Any:
    from engine.config.schedule import Schedule

    if column == "run":
        return run.name
    if column == "type":
        return "mono" if run.kind == "baseline" else "multi"
    if column == "tokens":
        return format_tokens(run.total_tokens or 0)
    if column.startswith("p(") and column.endswith(")"):
        try:
            return Schedule.from_dict(run.spec["schedule"]).share_label(column[2:-1])
        except (KeyError, TypeError, ValueError):
            return "?"
    return Text("…", style="dim")


# -- the plots -----------------------------------------------------------------------------


def law_figure(law, colours: dict[str, str], languages: list[str]) -> Figure:
    """Log-log: the law, the baselines it was fitted on, every mix's languages at (MLTE, PPL)."""
    fig = Figure(log_x=True, log_y=True, x_label="tokens (a mix at its MLTE)", y_label="PPL")
    if law is None:
        return fig
    if law.curve:
        fig.series.append(Series("mono law", [t for t, _ in law.curve], [p for _, p in law.curve], "white"))
    if law.baselines:
        fig.series.append(
            Series("mono runs", [t for t, _ in law.baselines], [p for _, p in law.baselines], "white", "o")
        )
    for name, colour in colours.items():
        for i, lang in enumerate(languages):
            mine = [p for p in law.points if p.run_name == name and p.language == lang and p.mlte]
            if mine:
                marker = MARKERS[i % len(MARKERS)]
                fig.series.append(
                    Series(f"{name} {lang}", [p.mlte for p in mine], [p.ppl for p in mine], colour, marker)
                )
    fig.legend = len(fig.series) <= 8  # more than that: the table's swatches are the legend
    return fig


def law_text(law, languages: list[str]) -> Text:
    out = Text()
    if law is None:
        return Text("no model preset: no law", style="italic")
    if law.law_label:
        out.append(law.law_label, style="dim")
    if law.law_error:
        out.append(law.law_error, style="yellow")
    unplotted = sorted({f"{p.run_name} {p.language}" for p in law.points if not p.mlte})
    if unplotted:
        out.append(f"\nnot on the plot (PPL below the law's asymptote: no MLTE): {', '.join(unplotted)}", style="dim")
    marks = " ".join(f"{MARKERS[i % len(MARKERS)]} {lang}" for i, lang in enumerate(languages))
    out.append(f"\nmarkers: {marks} · o white: monolingual runs · colours: the table's swatches", style="dim")
    return out


def sweep_figure(sweep, measure: str, colours: list[str]) -> Figure:
    """PPL (log) or TEff per language along one axis: one line per schedule and language,
    at the geometric mean over seeds."""
    numeric = sweep.numeric
    values = sorted({repr(p.value) for p in sweep.points}) if not numeric else []
    fig = Figure(log_y=measure == "ppl", x_label=sweep.axis, y_label="PPL" if measure == "ppl" else "TEff")
    lines: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for p in sweep.points:
        x = float(p.value) if numeric else float(values.index(repr(p.value)))
        for lang, seeds in getattr(p, measure).items():
            if seeds:
                xs, ys = lines.setdefault((p.schedule, lang), ([], []))
                xs.append(x)
                ys.append(math.exp(sum(math.log(v) for v in seeds) / len(seeds)) if min(seeds) > 0 else float("nan"))
    schedules = list(dict.fromkeys(s for s, _ in lines))
    langs = list(dict.fromkeys(lang for _, lang in lines))
    for (schedule, lang), (xs, ys) in lines.items():
        colour = colours[schedules.index(schedule) % len(colours)]
        fig.series.append(Series(None, xs, ys, colour))
        fig.series.append(Series(f"{schedule} {lang}", xs, ys, colour, MARKERS[langs.index(lang) % len(MARKERS)]))
    fig.legend = False  # the caption names the lines: a legend box would hide the points at the right
    return fig


def sweep_legend(sweep, measure: str, colours: list[str]) -> Text:
    """The lines of ``sweep_figure``: a swatch per schedule, a marker per language."""
    schedules = list(dict.fromkeys(p.schedule for p in sweep.points if getattr(p, measure)))
    langs = list(dict.fromkeys(lang for p in sweep.points for lang in getattr(p, measure)))
    out = Text()
    for i, schedule in enumerate(schedules):
        out.append("━━ ", style=f"bold {colours[i % len(colours)]}")
        out.append(f"{schedule}   ")
    out.append(" ".join(f"{MARKERS[i % len(MARKERS)]} {lang}" for i, lang in enumerate(langs)), style="dim")
    return out


class ExperimentScreen(XlingScreen):
    """The experiment ``experiment``: its paper table, its law, its sweeps; live."""

    CSS_PATH = "experiment.tcss"
    OPENS_WITH_DATA = True  # open once the worker's first read is on view
    BINDINGS = [
        Binding("escape", "close", "back"),
        Binding("enter", "open_run", "open run", tooltip="the run panels of the row's run"),
        Binding("1", "panel('law')", "law", tooltip="the monolingual law, its baselines, the mixes at their MLTE"),
        Binding("2", "panel('sweeps')", "sweeps", tooltip="PPL and TEff along each axis the experiment sweeps"),
        Binding("a", "next_axis", "axis", show=False, tooltip="sweeps: the next axis"),
        Binding("t", "toggle_measure", "PPL/TEff", show=False, tooltip="sweeps: PPL or TEff"),
        Binding("ctrl+r", "reload", "refresh", show=False),
    ]

    def __init__(self, experiment: str) -> None:
        super().__init__()
        self.experiment = experiment
        self.data: ExperimentData | None = None
        self.colours: dict[str, str] = {}
        self.row_names: list[str] = []
        self.axis = 0
        self.measure = "ppl"
        self._sweeps_added = False
        self._fetching = False

    def compose(self) -> ComposeResult:
        # No TabbedContent: it costs more to mount than everything else here, and the
        # view has one panel below the table (two for a sweep, switched with 1 and 2).
        # The table and the plot stay hidden until the first data: an empty table and
        # empty axes, drawn first and again with their data, cost about 40 ms of UI-thread
        # time (bench/tui_startup.py) and showed nothing.
        yield Static(f"experiment {self.experiment}: loading…", id="exp-header")
        table = CellTable(id="exp-table", cursor_type="row")
        table.display = False
        yield table
        with Vertical(id="exp-law-pane", classes="exp-pane") as pane:
            pane.display = False
            yield XPlot(id="exp-law")
            yield Static("", id="exp-law-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#exp-table", DataTable).focus()
        self.action_reload()
        self.set_interval(float(getattr(self.app, "refresh_every", 2.0)), self.action_reload)

    def action_reload(self) -> None:
        if not self._fetching:
            self._fetching = True
            self._fetch(self.data.fingerprint if self.data is not None and not self.data.error else ())

    @work(thread=True, exclusive=True, group="experiment", exit_on_error=False)
    def _fetch(self, known: tuple) -> None:
        try:
            data = fetch_experiment(Path(xling_app(self).db_path), self.experiment, known)
        except Exception as exc:  # noqa: BLE001 - shown, and the bug goes to the error log
            report = getattr(self.app, "report_error", None)
            if report is not None:
                report(exc, "reading the experiment")
            data = ExperimentData(self.experiment, error=f"{type(exc).__name__}: {exc}")
        self.post_message(data)

    def on_experiment_data(self, data: ExperimentData) -> None:
        self._fetching = False
        if data.report is None and data.error is None:
            return  # nothing new since the last read
        self.data = data
        self.opened()  # the collector runs again once this is painted
        if data.error:
            self.query_one("#exp-header", Static).update(Text(data.error, style="yellow"))
            return
        for name, colour in schedule_colours(data.runs).items():
            self.colours.setdefault(name, colour)
        table = self.query_one("#exp-table", DataTable)
        if not table.display:  # the first data: the table and the law come into view
            table.display = True
            self.query_one("#exp-law-pane").display = True  # the sweeps' pane comes later, hidden
        self._render_header()
        self._render_table()
        self._render_law()
        self._render_sweeps()

    # -- rendering ------------------------------------------------------------------------

    @property
    def _data(self) -> ExperimentData:
        """The data being drawn: the render methods run only once some has arrived."""
        assert self.data is not None
        return self.data

    def _render_header(self) -> None:
        data = self._data
        text = Text(f"{self.experiment}", style="bold")
        text.append(f" · {len(data.runs)} runs: {where_runs_are(data.runs)}")
        if data.sweeps:
            text.append(f" · 2: sweeps along {', '.join(s.axis for s in data.sweeps)}", style="dim")
        self.query_one("#exp-header", Static).update(text)

    def _render_table(self) -> None:
        from xling_tui.fit_width import fit_columns
        from xling_tui.report import report_columns

        columns, report_rows = table_rows(self._data.report, self._data.runs)
        # Text from here on: the table shows strings literally, so they are measured so too.
        rows = [(name, [Text(c, end="") if isinstance(c, str) else c for c in cells]) for name, cells in report_rows]
        specs = report_columns(columns[:-1])
        table = self.query_one("#exp-table", DataTable)
        width = max(self.size.width - 8, 40)  # the swatch and the runs column need their room too
        dropped = fit_columns(specs, [cells[:-1] for _, cells in rows], width)
        dropped = [d for d in dropped if next(c for c in specs if c.header == d).priority < NARROW_KEEP]
        keep = [i for i, c in enumerate(columns) if c not in dropped]
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_column("", key="swatch")
        for i in keep:
            table.add_column(columns[i], key=f"c{i}")
        self.row_names = []
        for name, cells in rows:
            colour = self.colours.get(name)
            swatch = Text("━━", style=f"bold {colour}") if colour else Text("○", style="white")
            table.add_row(cell(swatch), *(cell(cells[i]) for i in keep))
            self.row_names.append(name)
        if rows:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1), animate=False)

    def _languages(self) -> list[str]:
        return list(self.data.report.languages) if self.data and self.data.report else []

    def _render_law(self) -> None:
        law, langs = self._data.law, self._languages()
        self.query_one("#exp-law", XPlot).show(law_figure(law, self.colours, langs))
        self.query_one("#exp-law-text", Static).update(law_text(law, langs))

    def _render_sweeps(self) -> None:
        """The sweeps panel exists only for an experiment that sweeps: added with its first sweep."""
        sweeps = self._data.sweeps
        self.refresh_bindings()  # the sweep keys follow whether there is a sweep (KeyFooter: rebuilt on a change)
        if not sweeps:
            return
        if not self.query("#exp-sweep"):
            if not self._sweeps_added:
                self._sweeps_added = True
                pane = Vertical(XPlot(id="exp-sweep"), Static("", id="exp-sweep-text"), id="exp-sweep-pane")
                pane.add_class("exp-pane")
                pane.display = False
                self.mount(pane, before=self.query_one(KeyFooter))
            self.call_after_refresh(self._render_sweeps)  # drawn once the panel is mounted
            return
        sweep = sweeps[self.axis % len(sweeps)]
        self.query_one("#exp-sweep", XPlot).show(sweep_figure(sweep, self.measure, list(PALETTE)))
        caption = Text(f"{'PPL' if self.measure == 'ppl' else 'TEff'} along {sweep.axis}", style="bold")
        if not sweep.numeric:
            values = sorted({repr(p.value) for p in sweep.points})
            caption.append("  x: " + ", ".join(f"{i}={v}" for i, v in enumerate(values)))
        caption.append(f"  ·  a: next of {len(sweeps)} axes · t: PPL/TEff\n", style="dim")
        caption.append_text(sweep_legend(sweep, self.measure, list(PALETTE)))
        self.query_one("#exp-sweep-text", Static).update(caption)

    # -- keys -----------------------------------------------------------------------------

    def action_open_run(self) -> None:
        if self.data is None or not self.row_names:
            return
        name = self.row_names[min(self.query_one("#exp-table", DataTable).cursor_row, len(self.row_names) - 1)]
        runs = sorted((r for r in self.data.runs if r.name == name), key=lambda r: (r.status != "done", r.seed or 0))
        if runs:
            self.app.push_screen(_run_screen(runs[0].run_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """enter on the table (the table takes the key before the screen's binding)."""
        event.stop()
        self.action_open_run()

    def action_next_axis(self) -> None:
        if self.data is not None and self.data.sweeps:
            self.axis = (self.axis + 1) % len(self.data.sweeps)
            self._render_sweeps()

    def action_toggle_measure(self) -> None:
        if self.data is not None and self.data.sweeps:
            self.measure = "teff" if self.measure == "ppl" else "ppl"
            self._render_sweeps()

    def action_panel(self, panel: str) -> None:
        """1: the law; 2: the sweeps (for an experiment that sweeps)."""
        sweeps = self.query("#exp-sweep-pane")
        if panel == "sweeps" and not sweeps:
            return
        self.query_one("#exp-law-pane").display = panel == "law"
        for pane in sweeps:
            pane.display = panel == "sweeps"

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The sweep keys only for an experiment that sweeps (shown dimmed otherwise)."""
        if action in ("next_axis", "toggle_measure") or (action == "panel" and parameters == ("sweeps",)):
            return True if self.data is not None and self.data.sweeps else None
        return True

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def _run_screen(run_id: str):
    from xling_tui.screens.run_detail import RunScreen

    return RunScreen(run_id)
