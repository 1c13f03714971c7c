"""One run in detail, live while it trains: PPL curves, TEff against the scaling law, alignment.

A thread worker reads the database (``db.run_panels``) every refresh and posts one
``RunData`` message; the plots coalesce what arrives and redraw at most twice a second.
While the run is not finished the worker also asks the store to catch up with the run
logs (``try_ingest``, skipped when another process holds the file), so the curve
moves even when no other front end is ingesting.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from db import run_panels
from engine.runs.status import TERMINAL, RunStatus
from xling_tui.context import xling_app
from xling_tui.status_style import status_style
from xling_tui.widgets.heat_row import HeatRow
from xling_tui.widgets.plots import PALETTE, Figure, Series, XPlot, human

MEASURE_LABEL = {"ppl": "PPL", "teff": "TEff"}


@dataclass
class RunData(Message):
    """Everything the screen shows, read in one worker pass."""

    info: run_panels.RunInfo | None
    curves: run_panels.CurvePanel | None = None
    teff: run_panels.TeffPanel | None = None
    alignment: run_panels.AlignmentPanel | None = None
    error: str | None = None


def fetch_run(db_path: Path, run_id: str, ingest: bool) -> RunData:
    """Runs in a worker thread: the store, never the UI thread, touches DuckDB."""
    from db.store import Store, StoreError, StoreReadOnly

    store = Store(db_path)
    try:
        if ingest:
            with contextlib.suppress(StoreReadOnly):  # read what it holds; the dashboard says why no more
                store.try_ingest()
        info = run_panels.run_info(store, run_id)
        if info is None:
            return RunData(
                None, error=f"run {run_id} is not in {Path(db_path).name} yet (waiting for its first events)"
            )
        teff = None
        if info.experiment and info.model:
            teff = run_panels.teff_panel(
                store,
                info.experiment,
                info.model,
                info.languages[0] if info.languages else None,
                info.name if info.status == RunStatus.DONE else None,
            )
        return RunData(info, run_panels.curves(store, run_id), teff, run_panels.alignment(store, run_id))
    except StoreError as exc:
        return RunData(None, error=str(exc))


def curves_figure(panel: run_panels.CurvePanel) -> Figure:
    fig = Figure(log_y=True, x_label="tokens", y_label="PPL")
    colour = {c.label: PALETTE[i % len(PALETTE)] for i, c in enumerate(panel.train or panel.evals)}
    for c in panel.train:
        fig.series.append(Series(f"{c.label} train", c.x, c.y, colour.get(c.label, "white")))
    for c in panel.evals:
        fig.series.append(Series(f"{c.label} eval", c.x, c.y, colour.get(c.label, "white"), marker="o"))
    return fig


def teff_figure(panel: run_panels.TeffPanel, run_id: str, languages: list[str]) -> Figure:
    """Log-log: the law, its monolingual points, each mix run's languages at (MLTE, PPL)."""
    fig = Figure(log_x=True, log_y=True, x_label="tokens", y_label="PPL")
    if panel.curve:
        fig.series.append(Series("mono law", [t for t, _ in panel.curve], [p for _, p in panel.curve], "white"))
    if panel.baselines:
        fig.series.append(
            Series("mono runs", [t for t, _ in panel.baselines], [p for _, p in panel.baselines], "white", marker="o")
        )
    others = [p for p in panel.points if p.run_id != run_id and p.mlte]
    if others:
        fig.series.append(
            Series(
                "other mixes", [p.mlte for p in others if p.mlte], [p.ppl for p in others], "bright_black", marker="+"
            )
        )
    for i, lang in enumerate(languages):
        mine = [p for p in panel.points if p.run_id == run_id and p.language == lang and p.mlte]
        if mine:
            fig.series.append(
                Series(
                    f"{lang} @MLTE",
                    [p.mlte for p in mine if p.mlte],
                    [p.ppl for p in mine],
                    PALETTE[i % len(PALETTE)],
                    marker="x",
                )
            )
    return fig


def teff_text(panel: run_panels.TeffPanel, run_id: str) -> Text:
    out = Text()
    if panel.law_label:
        out.append(panel.law_label + "\n", style="dim")
    if panel.law_error:
        out.append(panel.law_error + "\n", style="yellow")
    mine = [p for p in panel.points if p.run_id == run_id]
    if not mine:
        out.append("no TEff for this run yet (it needs an evaluation and a fitted law)", style="italic")
    for p in mine:
        mlte = human(p.mlte) if p.mlte else "—"
        out.append(f"{p.language:<6} step {p.step:<6} seen {human(p.tokens_seen):<7} PPL {p.ppl:<8.1f} MLTE {mlte:<7} ")
        out.append(f"TEff {p.mark or 'n/a'}", style="bold")
        if p.lo is not None and p.hi is not None and p.status == "inside":
            out.append(f" [{p.lo:.2f}, {p.hi:.2f}] law", style="yellow" if p.wide else "")
        if p.status and p.status != "inside":
            out.append(
                f" ({p.status} the fitted range)" if p.status != "impossible" else " (below the asymptote)", style="dim"
            )
        out.append("\n")
    if panel.seeds:
        out.append(f"{panel.seeds[0].name} over seeds (95%): ", style="dim")
        out.append(" · ".join(f"{MEASURE_LABEL[r.measure]} {r.language} {r.text}" for r in panel.seeds), style="dim")
    return out


def alignment_text(panel: run_panels.AlignmentPanel) -> tuple[Text, Text]:
    if panel.step is None:
        empty = Text("no alignment measurements yet (they are taken at the end of training)", style="italic")
        return empty, Text("")
    emb = Text(f"embedding similarity at step {panel.step} (equivalent rows vs all-pairs control)\n", style="bold")
    for e in panel.embeddings:
        emb.append(
            f"  {e['lang_a']}–{e['lang_b']} {e['matrix']:<6} {e['similarity']:.3f}  control {e['control']:.3f}\n"
        )
    grad = Text()
    for pair, comps in panel.gradients.items():
        grad.append(
            f"gradient similarity {pair}: mean {panel.gradient_mean.get(pair, float('nan')):.3f}\n", style="bold"
        )
        items = list(comps.items())
        half = (len(items) + 1) // 2
        for left, right in zip(items[:half], items[half:] + [None] * (2 * half - len(items))):
            grad.append(f"  {left[0]:<18}{left[1]:>6.2f}")
            if right:
                grad.append(f"    {right[0]:<18}{right[1]:>6.2f}")
            grad.append("\n")
    return emb, grad


class RunScreen(Screen):
    """Curves, TEff and alignment of ``run_id``; refreshes every ``app.refresh_every`` seconds."""

    DEFAULT_CSS = """
    RunScreen #run-header { height: auto; text-style: bold; padding: 0 1; }
    RunScreen TabbedContent { height: 1fr; }
    RunScreen TabPane { padding: 0; }
    RunScreen #teff-text { height: auto; max-height: 8; padding: 0 1; }
    RunScreen #align-body { padding: 0 1; }
    RunScreen HeatRow { margin: 1 0; }
    """

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("1", "tab('tab-ppl')", "PPL"),
        Binding("2", "tab('tab-teff')", "TEff"),
        Binding("3", "tab('tab-align')", "Alignment"),
        Binding("ctrl+r", "reload", "Refresh"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.info: run_panels.RunInfo | None = None
        self.loads = 0
        self._fetching = False  # one read at a time: a slow database never piles up threads

    def compose(self) -> ComposeResult:
        yield Static(f"run {self.run_id}: loading…", id="run-header")
        with TabbedContent(id="run-tabs"):
            with TabPane("PPL", id="tab-ppl"):
                yield XPlot(id="ppl-plot")
            with TabPane("TEff", id="tab-teff"):
                yield XPlot(id="teff-plot")
                yield Static("", id="teff-text")
            with TabPane("Alignment", id="tab-align"):
                with VerticalScroll(id="align-body"):
                    yield Static("", id="align-emb")
                    yield HeatRow(id="align-hidden")
                    yield Static("", id="align-grad")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(float(getattr(self.app, "refresh_every", 2.0)), self.action_reload)

    def action_reload(self) -> None:
        if self._fetching:
            return
        self._fetching = True
        live = self.info is None or self.info.status not in TERMINAL
        self._fetch(live)

    @work(thread=True, exclusive=True, group="run-detail", exit_on_error=False)
    def _fetch(self, ingest: bool) -> None:
        try:
            data = fetch_run(Path(xling_app(self).db_path), self.run_id, ingest)
        except Exception as exc:  # noqa: BLE001 - a bug in a panel must not take the app down
            report = getattr(self.app, "report_error", None)
            if report is not None:
                report(exc, "reading the run")
            data = RunData(None, error=f"{type(exc).__name__}: {exc}")
        self.post_message(data)

    def on_run_data(self, data: RunData) -> None:
        self._fetching = False
        self.loads += 1
        header = self.query_one("#run-header", Static)
        if data.info is None:
            header.update(Text(data.error or "", style="yellow"))
            return
        self.info = info = data.info
        progress = f"{info.step or 0}/{info.total_steps or '?'}"
        speed = f" · {human(info.tokens_per_s)} tok/s" if info.tokens_per_s and info.status == RunStatus.RUNNING else ""
        text = Text(f"{info.name} · {info.experiment} · ")
        text.append(info.status, style=status_style(info.status))
        text.append(f" · step {progress} · {info.model} · {info.device or '—'}{speed} · {info.run_id}")
        if info.message and info.status != RunStatus.DONE:
            text.append(f"\n{info.message}", style="red" if info.status == RunStatus.FAILED else "dim")
        if data.error:
            text.append(f"\n{data.error}", style="yellow")
        header.update(text)
        if data.curves is not None:
            self.query_one("#ppl-plot", XPlot).show(curves_figure(data.curves))
        if data.teff is not None:
            self.query_one("#teff-plot", XPlot).show(teff_figure(data.teff, info.run_id, info.languages))
            self.query_one("#teff-text", Static).update(teff_text(data.teff, info.run_id))
        if data.alignment is not None:
            emb, grad = alignment_text(data.alignment)
            self.query_one("#align-emb", Static).update(emb)
            self.query_one("#align-grad", Static).update(grad)
            self.query_one("#align-hidden", HeatRow).show(data.alignment.hidden)

    def action_tab(self, tab: str) -> None:
        self.query_one("#run-tabs", TabbedContent).active = tab

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
