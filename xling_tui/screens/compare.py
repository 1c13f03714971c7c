"""Runs side by side, made to explain: overlaid curves, a legend with the numbers, the report.

The curves (``xling_tui.overlay``): one stable colour per schedule, its seeds as their
mean with a min–max band; ``x`` switches the x axis between tokens seen in the curve's
language (what TEff is about), all training tokens and the step; ``y`` log or linear;
``l`` the language; ``m`` held-out or training PPL; ``s`` the mean of the seeds or each
seed. ``p`` pins the schedule under the legend's cursor: it is drawn on top and the
others' paired differences are taken against it. ``i`` shows the point inspector, a
cursor that ``←``/``→`` move from point to point; the legend reads every curve there.
Under the plot the legend names each schedule with its shares, its final PPL per
language over seeds, the cursor's reading and the difference from the pinned schedule.
The second tab is ``xling report``'s: first, when the picked runs are of two or more
finished schedules of one experiment, the first against each other paired by seed
(``build_comparison``, as ``xling report --compare A B``), then the tables of the runs'
experiments with the picked rows in bold. Data is read on a thread worker
(``db.compare_curves``, ``build_report``, ``build_comparison``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table as RichTable
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.message import Message
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from xling_tui import overlay
from xling_tui.context import xling_app
from xling_tui.overlay import ALL, AXES, View
from xling_tui.screens.base import XlingScreen
from xling_tui.widgets.cell import cell
from xling_tui.widgets.cell_table import CellTable
from xling_tui.widgets.key_footer import KeyFooter
from xling_tui.widgets.plots import PALETTE, XPlot

if TYPE_CHECKING:
    from engine.analysis.uncertainty import PairedDifference

AXIS_ORDER = ("lang_tokens", "tokens", "step")


@dataclass
class CompareData(Message):
    runs: dict = field(default_factory=dict)  # run_id -> db.compare_curves.RunCurves
    reports: list = field(default_factory=list)  # xling_tui.report.Report per experiment
    comparisons: list = field(default_factory=list)  # xling_tui.report.Report per paired comparison
    error: str | None = None
    fingerprint: tuple = ()  # what changed since the last read (nothing: no redraw)


def fetch_compare(db_path: Path, run_ids: list[str]) -> CompareData:
    from db.compare_curves import compare_curves
    from db.run_panels import experiment_of
    from db.store import Store, StoreError
    from xling_tui.report import build_report

    store = Store(db_path)
    try:
        with store.reading():  # one connection for every read of the view
            runs = compare_curves(store, run_ids)
            experiments = experiment_of(store, run_ids)
            reports = [build_report(store, exp) for exp in experiments]
            comparisons = _comparisons(store, experiments, [runs[r].name for r in run_ids if r in runs])
    except StoreError as exc:
        return CompareData(error=str(exc))
    missing = [r for r in run_ids if r not in runs]
    error = f"not in the database: {', '.join(missing)}" if missing else None
    fingerprint = tuple(
        (
            rid,
            r.status,
            tuple((k, len(c.step), int(c.step[-1]) if len(c.step) else -1) for k, c in sorted(r.curves.items())),
        )
        for rid, r in sorted(runs.items())
    )
    return CompareData(runs, reports, comparisons, error, fingerprint + (len(reports), len(comparisons)))


def _comparisons(store, experiments: list[str], picked: list[str]) -> list:
    """The first picked finished schedule of an experiment against each other picked one."""
    from db.paired import schedule_names
    from xling_tui.report import build_comparison

    out = []
    for exp in experiments:
        done = set(schedule_names(store, exp))
        names = [n for n in dict.fromkeys(picked) if n in done]
        out += [build_comparison(store, exp, names[0], other) for other in names[1:]]
    return out


def report_renderables(data: CompareData, picked: set[str]) -> list:
    out: list = []
    for report in [*data.comparisons, *data.reports]:
        out.append(Text(f"{report.experiment}", style="bold underline"))
        for t in report.tables:
            table = RichTable(
                title=t.title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False
            )
            for column in t.columns:
                table.add_column(column, no_wrap=True)
            for row in t.rows:
                table.add_row(*row, style="bold reverse" if row and row[0] in picked else None)
            out.append(table)
        out.extend(Text(n, style="dim") for n in report.notes)
    return out


def natural_width(renderables: list) -> int:
    """The width the tables need unwrapped (notes may wrap; they never set the width)."""
    console = Console(width=10_000)
    tables = [r for r in renderables if isinstance(r, RichTable)]
    return max((Measurement.get(console, console.options, t).maximum for t in tables), default=40)


def _range(values: tuple[float, float, float, int] | None, digits: int = 1) -> str:
    if values is None:
        return "—"
    mean, lo, hi, _ = values
    return f"{mean:.{digits}f}" if hi - lo < 10**-digits else f"{mean:.{digits}f} [{lo:.{digits}f}–{hi:.{digits}f}]"


def _delta(difference: PairedDifference | None) -> Text:
    """``-12.3% [-20.1%, -3.5%] n=3``: green when the interval says lower PPL, red higher,
    no colour when it cannot tell (or, from one seed, has no interval)."""
    if difference is None:
        return Text("—", style="dim")
    style = {-1: "green", 1: "red"}.get(difference.direction(), "")  # lower PPL is better
    return Text(f"{difference.text(1)} n={difference.n}", style=style)


class CompareScreen(XlingScreen):
    """Overlay, legend and report for ``run_ids``."""

    CSS_PATH = "compare.tcss"
    OPENS_WITH_DATA = True  # open once the worker's first read is on view
    BINDINGS = [
        Binding("escape", "close", "back"),
        Binding("1", "tab('tab-curves')", "curves"),
        Binding("2", "tab('tab-table')", "report"),
        Binding("x", "next_axis", "x axis", tooltip="x: tokens seen in the language → all tokens → step"),
        Binding("y", "toggle_log", "log y", tooltip="y axis logarithmic or linear"),
        Binding("l", "next_language", "language", tooltip="one language at a time, or all"),
        Binding("m", "toggle_metric", "metric", tooltip="held-out PPL or training PPL"),
        Binding("s", "toggle_seeds", "seeds", tooltip="seeds of a schedule as their mean with a band, or each"),
        Binding("p", "pin", "pin", tooltip="pin the schedule under the legend's cursor: on top, the reference"),
        Binding("i", "inspect", "inspect", tooltip="a cursor that reads every curve at one x"),
        Binding("left,comma", "move_cursor(-1)", "◀", show=False, priority=True, tooltip="inspector: previous point"),
        Binding("right,full_stop", "move_cursor(1)", "▶", show=False, priority=True, tooltip="inspector: next point"),
        Binding("ctrl+r", "reload", "refresh", show=False),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = list(dict.fromkeys(run_ids))
        self.view = View()
        self.data: CompareData | None = None
        self.groups: list[overlay.Group] = []
        self.colours: dict = {}
        self.shown: overlay.Overlay | None = None
        self._legend_drawn: tuple | None = None  # (columns, rows) the legend table shows
        self._fetching = False  # one read at a time

    def compose(self) -> ComposeResult:
        yield Static(f"comparing {len(self.run_ids)} runs: loading…", id="compare-header")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Curves", id="tab-curves"):
                plot = XPlot(id="compare-plot")
                plot.can_focus = False  # the keys are the screen's; the mouse still pans and zooms
                yield plot
                yield CellTable(id="compare-legend", cursor_type="row", zebra_stripes=False)
            with TabPane("Report", id="tab-table"):
                with ScrollableContainer():  # wide tables scroll sideways rather than wrap
                    yield Static("", id="compare-table")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#compare-legend", DataTable).focus()
        self.action_reload()
        self.set_interval(float(getattr(self.app, "refresh_every", 2.0)), self.action_reload)

    def action_reload(self) -> None:
        if not self._fetching:
            self._fetching = True
            self._fetch()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _fetch(self) -> None:
        try:
            data = fetch_compare(Path(xling_app(self).db_path), self.run_ids)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            report = getattr(self.app, "report_error", None)
            if report is not None:
                report(exc, "reading the runs to compare")
            data = CompareData(error=f"{type(exc).__name__}: {exc}")
        self.post_message(data)

    def on_compare_data(self, data: CompareData) -> None:
        self._fetching = False
        if self.data is not None and data.fingerprint == self.data.fingerprint and data.error == self.data.error:
            return  # nothing new: nothing redrawn
        self.data = data
        self.opened()  # the collector runs again once this is painted
        fresh = {g.key: g for g in overlay.groups_of(data.runs, self.run_ids)}
        order = [g.key for g in self.groups]  # schedules keep their place and colour; new ones come last
        self.groups = [fresh[k] for k in order if k in fresh] + [g for k, g in fresh.items() if k not in order]
        for group in self.groups:
            self.colours.setdefault(group.key, PALETTE[len(self.colours) % len(PALETTE)])
        self.render_view()
        self._render_report(data)

    # -- rendering ------------------------------------------------------------------------

    def render_view(self) -> None:
        """Plot, legend and header for the current view (the UI thread's whole job)."""
        if self.data is None:
            return
        self.shown = shown = overlay.build(self.data.runs, self.groups, self.colours, self.view)
        self.query_one("#compare-plot", XPlot).show(shown.figure)
        self._render_legend(self.data, shown)
        self._render_header()

    def _render_header(self) -> None:
        view = self.view
        runs = len(self.data.runs) if self.data else 0
        what = f"{overlay.METRIC_LABEL[view.metric]} of {view.language if view.language != ALL else 'every language'}"
        axis = self.shown.figure.x_label if self.shown else AXES[view.axis]
        header = Text(f"{runs} runs, {len(self.groups)} schedules · {what} · x: {axis} · y: ")
        header.append("log" if view.log_y else "linear")
        seeds = "mean, band min–max" if view.mean_seeds else "each"
        if view.mean_seeds and self.shown is not None and overlay.crowded(self.shown):
            seeds += " (the pinned one's only: many curves)"
        header.append(f" · seeds: {seeds}", style="dim")
        if view.cursor is not None:
            header.append(f"\ncursor at {overlay.axis_value(view, view.cursor)} (←/→ move, i hides)", style="bold")
        if self.data and self.data.error:
            header.append(f"\n{self.data.error}", style="yellow")
        self.query_one("#compare-header", Static).update(header)

    def _render_legend(self, data: CompareData, shown: overlay.Overlay) -> None:
        """The legend table; left alone when it would show the same cells (an x-axis
        switch or a log toggle changes the curves, not their final values)."""
        rows = overlay.legend(data.runs, self.groups, self.colours, self.view, shown)
        langs = overlay.languages(data.runs, self.view.metric) if self.view.language == ALL else [self.view.language]
        columns = [("", "swatch"), ("schedule", "name"), ("seeds", "seeds")]
        columns += [(f"final {lang}", f"final-{lang}") for lang in langs]
        if self.view.cursor is not None:
            columns += [(f"@cursor {lang}", f"cursor-{lang}") for lang in langs]
        if self.view.pinned is not None:
            columns += [(f"vs pinned {lang} (95%)", f"delta-{lang}") for lang in langs]
        columns.append(("shares over training", "shares"))
        body = []
        for row in rows:
            seeds = row.group.seeds
            cells: list = [
                Text("━━ ◆" if row.pinned else "━━", style=f"bold {row.colour}"),
                Text(row.group.label, style="bold" if row.pinned else ""),
                str(len(seeds)) if len(seeds) > 1 else f"s{seeds[0]}",
            ]
            cells += [_range(row.final.get(lang)) for lang in langs]
            if self.view.cursor is not None:
                cells += ["—" if (v := row.at_cursor.get(lang)) is None else f"{v:.1f}" for lang in langs]
            if self.view.pinned is not None:
                cells += [
                    Text("reference", style="dim") if row.pinned else _delta(row.delta.get(lang)) for lang in langs
                ]
            cells.append(row.group.schedule())  # last: the numbers come first at 80 columns
            body.append((str(row.group.key), cells))
        if (columns, body) == self._legend_drawn:
            return
        self._legend_drawn = (columns, body)
        table = self.query_one("#compare-legend", DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        for label, key in columns:
            table.add_column(label, key=key)
        for key, cells in body:
            table.add_row(*(cell(value) for value in cells), key=key)
        if body:
            table.move_cursor(row=min(max(keep, 0), len(body) - 1), animate=False)

    def _render_report(self, data: CompareData) -> None:
        picked = {r.name for r in data.runs.values()}
        parts = report_renderables(data, picked)
        table = self.query_one("#compare-table", Static)
        table.styles.width = natural_width(parts) + 2  # its own width: the container scrolls sideways
        table.update(Group(*parts))

    # -- the view's toggles ---------------------------------------------------------------

    def _set(self, **changes) -> None:
        self.view = self.view.with_(**changes)
        self.render_view()

    def action_next_axis(self) -> None:
        i = AXIS_ORDER.index(self.view.axis)
        self._set(axis=AXIS_ORDER[(i + 1) % len(AXIS_ORDER)], cursor=None)  # the cursor's x meant the old axis

    def action_toggle_log(self) -> None:
        self._set(log_y=not self.view.log_y)

    def action_next_language(self) -> None:
        if self.data is None:
            return
        options = [ALL, *overlay.languages(self.data.runs, self.view.metric)]
        current = options.index(self.view.language) if self.view.language in options else 0
        self._set(language=options[(current + 1) % len(options)])

    def action_toggle_metric(self) -> None:
        self._set(metric="train" if self.view.metric == "eval" else "eval", cursor=None)

    def action_toggle_seeds(self) -> None:
        self._set(mean_seeds=not self.view.mean_seeds)

    def action_pin(self) -> None:
        table = self.query_one("#compare-legend", DataTable)
        if not self.groups or table.row_count == 0:
            return
        key = self.groups[min(table.cursor_row, len(self.groups) - 1)].key
        self._set(pinned=None if self.view.pinned == key else key)

    def action_inspect(self) -> None:
        if self.view.cursor is not None:
            self._set(cursor=None)
        elif self.shown is not None:
            self._set(cursor=overlay.step_cursor(overlay.cursor_stops(self.shown), None, 1))

    def action_move_cursor(self, direction: int) -> None:
        if self.shown is not None and self.view.cursor is not None:
            stops = overlay.cursor_stops(self.shown)
            self._set(cursor=overlay.step_cursor(stops, self.view.cursor, direction))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """←/→ are the inspector's only while it is shown (else the legend scrolls)."""
        if action == "move_cursor":
            return self.view.cursor is not None
        return True

    def action_tab(self, tab: str) -> None:
        self.query_one("#compare-tabs", TabbedContent).active = tab

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
