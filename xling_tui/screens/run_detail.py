"""One run in detail, live while it trains: PPL curves, TEff against the scaling law,
alignment (over training too, when the run measures it at every evaluation), the
downstream probe, the run's spec and the tail of its worker log.

A thread worker reads the database (``db.run_panels``) and the log every refresh and
posts one ``RunData`` message; the plots coalesce what arrives and redraw at most twice
a second; a panel whose content did not change is not redrawn.
While the run is not finished the worker also asks the store to catch up with the run
logs (``try_ingest``, skipped when another process holds the file), so the curve
moves even when no other front end is ingesting.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table as RichTable
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Log, Static, TabbedContent, TabPane

from db import run_panels
from engine.runs.status import TERMINAL, RunStatus
from xling_tui.context import xling_app
from xling_tui.screens.base import XlingScreen
from xling_tui.status_style import status_style
from xling_tui.widgets.heat_row import HeatRow, heat_header, heat_text
from xling_tui.widgets.key_footer import KeyFooter
from xling_tui.widgets.plots import PALETTE, Figure, Series, XPlot, human
from xling_tui.widgets.spec_panel import SpecPanel

MEASURE_LABEL = {"ppl": "PPL", "teff": "TEff"}


LOG_TAIL_BYTES = 32 * 1024  # what the log tab reads of worker.log: its end
LOG_TAIL_LINES = 200


@dataclass
class RunData(Message):
    """Everything the screen shows, read in one worker pass."""

    info: run_panels.RunInfo | None
    curves: run_panels.CurvePanel | None = None
    teff: run_panels.TeffPanel | None = None
    alignment: run_panels.AlignmentPanel | None = None
    error: str | None = None
    steps: list[run_panels.AlignmentStep] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] | None = None
    log_tail: str | None = None  # None: no worker.log yet


def fetch_run(db_path: Path, run_id: str, ingest: bool, spec: dict[str, Any] | None = None) -> RunData:
    """Runs in a worker thread: the store, never the UI thread, touches DuckDB. ``spec``
    is what an earlier pass read (a run's spec never changes)."""
    from db.store import Store, StoreError, StoreReadOnly

    store = Store(db_path)
    try:
        if ingest:
            with contextlib.suppress(StoreReadOnly):  # read what it holds; the dashboard says why no more
                store.try_ingest()
        with store.reading():  # one connection for the panels' reads
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
            return RunData(
                info,
                run_panels.curves(store, run_id),
                teff,
                run_panels.alignment(store, run_id),
                steps=run_panels.alignment_steps(store, run_id),
                probes=run_panels.probe_results(store, run_id),
                spec=spec or run_panels.run_spec(store, run_id),
                log_tail=log_tail(db_path, run_id),
            )
    except StoreError as exc:
        return RunData(None, error=str(exc))


def log_tail(db_path: Path, run_id: str) -> str | None:
    """The last lines of the run's worker.log (None before it exists). The run id must be
    a plain file name (``layout.name_problem``): nothing read from the database becomes
    a path unchecked."""
    from engine.runs import layout
    from engine.runs.tail import read_new

    if layout.name_problem(run_id):
        return None
    chunk = read_new(layout.run_dir(Path(db_path), run_id) / layout.WORKER_LOG, last=LOG_TAIL_BYTES)
    if chunk is None:
        return None
    lines = chunk.data.decode("utf-8", errors="replace").splitlines()
    if chunk.start > 0:
        lines = lines[1:]  # the first line read is cut
    return "\n".join(lines[-LOG_TAIL_LINES:])


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


def steps_text(steps: list[run_panels.AlignmentStep], total_steps: int | None) -> Text:
    """Alignment over training (a run with ``alignment_at_evals``): per pair, hidden-state
    similarity per layer as a heat map with one row per measurement, then the embedding
    and gradient similarity at the same steps."""
    out = Text()
    pairs = list(dict.fromkeys(pair for s in steps for pair in s.hidden))
    pairs += [p for p in dict.fromkeys(pair for s in steps for pair in s.embedding) if p not in pairs]
    for pair in pairs:
        out.append(f"alignment over training, {pair}\n", style="bold")
        n_layers = max((len(s.hidden.get(pair, [])) for s in steps), default=0)
        out.append_text(heat_header("step", n_layers, label_width=12))
        out.append("  emb in  emb out  gradient", style="dim")
        for s in steps:
            label = f"{s.step}" + (f" {s.step / total_steps:.0%}" if total_steps else "")
            out.append("\n")
            row = s.hidden.get(pair, [])
            out.append_text(heat_text(label, row + [None] * (n_layers - len(row)), label_width=12))
            emb, grad = s.embedding.get(pair, {}), s.gradient.get(pair)
            out.append(f"  {_num(emb.get('input')):>6}  {_num(emb.get('output')):>7}  {_num(grad):>8}")
        out.append("\n\n")
    return out


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def probe_table(rows: list[dict[str, Any]], width: int) -> RichTable:
    """The probe's accuracy per language at each step it ran, against chance; at ``width``
    columns (``xling_tui.fit_width``): the step, training accuracy and counts go first."""
    from xling_tui.fit_width import Column, fitted_table

    one_step = len({r["step"] for r in rows}) <= 1
    columns = [
        Column("step", priority=5 if one_step else 45, justify="right"),
        Column("task", priority=40),
        Column("fine-tuned in", priority=30),
        Column("scored in", essential=True),
        Column("accuracy", essential=True),
        Column("chance", priority=60),
        Column("examples", priority=20, justify="right"),
        Column("train acc.", priority=10),
    ]
    body = []
    for r in rows:
        zero_shot = r["language"] != r["train_language"]
        body.append(
            [
                str(r["step"]),
                r["task"],
                r["train_language"],
                Text(r["language"] + (" (zero-shot)" if zero_shot else ""), style="bold" if zero_shot else ""),
                _num(r["accuracy"]),
                _num(r["chance"]),
                str(r["n_examples"]),
                _num(r["train_accuracy"]),
            ]
        )
    table, _ = fitted_table(columns, body, width)
    return table


def alignment_text(panel: run_panels.AlignmentPanel, width: int = 80) -> tuple[Text, Text]:
    """The embedding similarity lines, and the gradient similarity per component in as
    many columns as ``width`` holds."""
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
        n_cols = max(1, min(4, (width - 2) // 30))
        n_rows = -(-len(items) // n_cols)
        for r in range(n_rows):
            for c in range(n_cols):
                if c * n_rows + r < len(items):
                    name, value = items[c * n_rows + r]
                    grad.append(f"{'  ' if c == 0 else '    '}{name:<18}{value:>6.2f}")
            grad.append("\n")
    return emb, grad


class RunScreen(XlingScreen):
    """Curves, TEff and alignment of ``run_id``; refreshes every ``app.refresh_every`` seconds."""

    CSS_PATH = "run_detail.tcss"
    OPENS_WITH_DATA = True  # open once the worker's first read is on view
    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("1", "tab('tab-ppl')", "PPL"),
        Binding("2", "tab('tab-teff')", "TEff"),
        Binding("3", "tab('tab-align')", "Alignment"),
        Binding("4", "tab('tab-probe')", "Probe", tooltip="the downstream probe's accuracy per language"),
        Binding("5", "tab('tab-spec')", "Spec", tooltip="schedule grid, model, data, seed, training"),
        Binding("6", "tab('tab-log')", "Log", tooltip="the end of the run's worker log"),
        Binding("ctrl+r", "reload", "Refresh"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.info: run_panels.RunInfo | None = None
        self.spec: dict[str, Any] | None = None
        self.probe_shown = False
        self._log_shown: str | None = None
        self._last: RunData | None = None
        self.renders = 0  # data that changed what is shown (tests read it)
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
                    yield Static("", id="align-steps")
                    yield Static("", id="align-emb")
                    yield HeatRow(id="align-hidden")
                    yield Static("", id="align-grad")
            with TabPane("Probe", id="tab-probe"):
                with VerticalScroll():
                    yield Static("", id="probe-body")
            with TabPane("Spec", id="tab-spec"):
                yield SpecPanel(id="spec-panel")
            with TabPane("Log", id="tab-log"):
                yield Log(id="log-tail", highlight=False, auto_scroll=True)
        yield KeyFooter()

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
            data = fetch_run(Path(xling_app(self).db_path), self.run_id, ingest, self.spec)
        except Exception as exc:  # noqa: BLE001 - a bug in a panel must not take the app down
            report = getattr(self.app, "report_error", None)
            if report is not None:
                report(exc, "reading the run")
            data = RunData(None, error=f"{type(exc).__name__}: {exc}")
        self.post_message(data)

    def on_run_data(self, data: RunData) -> None:
        self._fetching = False
        self.loads += 1
        if data == self._last:
            return  # a finished run reads the same every time: nothing is redrawn
        self._last = data
        self.renders += 1
        self.opened()  # the collector runs again once this is painted
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
            emb, grad = alignment_text(data.alignment, self.size.width)
            self.query_one("#align-emb", Static).update(emb)
            self.query_one("#align-grad", Static).update(grad)
            self.query_one("#align-hidden", HeatRow).show(data.alignment.hidden)
        over_training = len(data.steps) > 1
        self.query_one("#align-steps", Static).display = over_training
        if over_training:
            self.query_one("#align-steps", Static).update(steps_text(data.steps, info.total_steps))
        self._show_probe(data)
        if data.spec is not None and self.spec is None:
            self.spec = data.spec
            self.query_one("#spec-panel", SpecPanel).show(data.spec)
        self._show_log(data.log_tail)

    def _show_probe(self, data: RunData) -> None:
        """The probe tab is there only for a run that probes (its spec asks, or it logged results)."""
        asked = bool(((data.spec or {}).get("eval") or {}).get("probe"))
        tabs = self.query_one("#run-tabs", TabbedContent)
        shown = asked or bool(data.probes)
        if shown != self.probe_shown:
            self.probe_shown = shown
            self.refresh_bindings()
        if not shown:
            tabs.hide_tab("tab-probe")
            return
        tabs.show_tab("tab-probe")
        body = self.query_one("#probe-body", Static)
        if data.probes:
            body.update(probe_table(data.probes, max(self.size.width - 2, 40)))
        else:
            body.update(Text("no probe results yet (the probe runs after training)", style="italic"))

    def _show_log(self, tail: str | None) -> None:
        if tail == self._log_shown:
            return  # nothing new: no redraw
        self._log_shown = tail
        log = self.query_one("#log-tail", Log)
        log.clear()
        log.write(tail if tail is not None else "(no worker.log in the run folder yet: its worker has not started)")

    def action_tab(self, tab: str) -> None:
        self.query_one("#run-tabs", TabbedContent).active = tab

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The probe's key only for a run that probes (shown dimmed otherwise)."""
        if action == "tab" and parameters == ("tab-probe",):
            return True if self.probe_shown else None
        return True

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
