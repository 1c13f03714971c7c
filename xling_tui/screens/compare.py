"""Several runs side by side: their PPL curves overlaid, the paired comparison, the paper-style table.

The tables are ``xling report``'s own: first, when the picked runs are of two or more
finished schedules of one experiment, the first schedule against each other one paired
by seed (``xling_tui.report.build_comparison``, as ``--compare A B``); then, for each
experiment the picked runs belong to, its report (``build_report``) with the picked
runs' rows in bold. The curves are the held-out PPL of each run, one language at a time
(``l`` cycles) or all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from db import run_panels
from xling_tui.context import xling_app
from xling_tui.widgets.plots import PALETTE, Figure, Series, XPlot

ALL = "all languages"


@dataclass
class CompareData(Message):
    names: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # run_id -> (name, seed)
    curves: dict[str, dict[str, run_panels.Curve]] = field(default_factory=dict)
    reports: list = field(default_factory=list)  # xling_tui.report.Report per experiment
    comparisons: list = field(default_factory=list)  # xling_tui.report.Report per paired comparison
    error: str | None = None


def fetch_compare(db_path: Path, run_ids: list[str]) -> CompareData:
    from db.store import Store, StoreError
    from xling_tui.report import build_report

    store = Store(db_path)
    try:
        names = run_panels.run_names(store, run_ids)
        curves = run_panels.eval_curves(store, run_ids)
        experiments = run_panels.experiment_of(store, run_ids)
        reports = [build_report(store, exp) for exp in experiments]
        comparisons = _comparisons(store, experiments, [names[r][0] for r in run_ids if r in names])
    except StoreError as exc:
        return CompareData(error=str(exc))
    missing = [r for r in run_ids if r not in names]
    error = f"not in the database: {', '.join(missing)}" if missing else None
    return CompareData(names, curves, reports, comparisons, error)


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


def compare_figure(data: CompareData, run_ids: list[str], language: str) -> Figure:
    fig = Figure(log_y=True, x_label="tokens", y_label="PPL")
    k = 0
    for rid in (r for r in run_ids if r in data.curves):
        for lang, curve in sorted(data.curves[rid].items()):
            if language not in (ALL, lang):
                continue
            style = PALETTE[k % len(PALETTE)]  # one colour per line drawn
            k += 1
            name, seed = data.names.get(rid, (rid, None))
            label = f"{name} s{seed}" + ("" if language != ALL else f" {lang}")
            fig.series.append(Series(label, curve.x, curve.y, style))
    return fig


def languages_of(data: CompareData) -> list[str]:
    return sorted({lang for per_run in data.curves.values() for lang in per_run})


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


class CompareScreen(Screen):
    """Overlay and table for ``run_ids``; ``l`` cycles the language shown in the overlay."""

    DEFAULT_CSS = """
    CompareScreen #compare-header { height: auto; text-style: bold; padding: 0 1; }
    CompareScreen TabbedContent { height: 1fr; }
    CompareScreen #compare-table { padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("1", "tab('tab-curves')", "Curves"),
        Binding("2", "tab('tab-table')", "Table"),
        Binding("l", "next_language", "Language"),
        Binding("ctrl+r", "reload", "Refresh"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = list(dict.fromkeys(run_ids))
        self.language = ALL
        self.data: CompareData | None = None
        self._fetching = False  # one read at a time

    def compose(self) -> ComposeResult:
        yield Static(f"comparing {len(self.run_ids)} runs: loading…", id="compare-header")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Curves", id="tab-curves"):
                yield XPlot(id="compare-plot")
            with TabPane("Table", id="tab-table"):
                with ScrollableContainer():  # wide tables scroll sideways rather than wrap
                    yield Static("", id="compare-table")
        yield Footer()

    def on_mount(self) -> None:
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
        self.data = data
        self._render_data(data)

    def _render_data(self, data: CompareData) -> None:
        header = Text(f"comparing {len(self.run_ids)} runs · PPL of {self.language} (l: next language)")
        if data.error:
            header.append(f"\n{data.error}", style="yellow")
        self.query_one("#compare-header", Static).update(header)
        self.query_one("#compare-plot", XPlot).show(compare_figure(data, self.run_ids, self.language))
        picked = {data.names[r][0] for r in self.run_ids if r in data.names}
        parts = report_renderables(data, picked)
        table = self.query_one("#compare-table", Static)
        table.styles.width = natural_width(parts) + 2  # its own width: the container scrolls sideways
        table.update(Group(*parts))

    def action_next_language(self) -> None:
        if self.data is None:
            return
        options = [ALL, *languages_of(self.data)]
        self.language = options[(options.index(self.language) + 1) % len(options)] if self.language in options else ALL
        self._render_data(self.data)

    def action_tab(self, tab: str) -> None:
        self.query_one("#compare-tabs", TabbedContent).active = tab

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
