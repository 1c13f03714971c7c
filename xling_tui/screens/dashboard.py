"""The runs dashboard: experiments, every run with its progress and results, the GPUs.

Data arrives from two thread workers: a poller (``DashboardSource.fetch`` every
``app.refresh_every`` seconds, which also ingests what headless ``xling run``
sessions logged) and the GPU sampler. A poll that finds nothing new redraws nothing;
a tick that comes while a fetch is still going is folded into one more fetch after
it, so slow databases never pile up work. Run actions (launch, cancel, resume,
delete, tag) run on threads too and report through notifications.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from engine.runs.status import LIVE, RunStatus
from xling_tui.context import xling_app
from xling_tui.data_source import DashboardData, DashboardSource, RunRow
from xling_tui.messages import ActionFinished, DashboardFetched, GpusSampled
from xling_tui.screens.base import XlingScreen
from xling_tui.screens.dialogs import ChoiceScreen, ConfirmScreen, TextPromptScreen
from xling_tui.widgets.gpu_panel import GpuPanel
from xling_tui.widgets.key_footer import KeyFooter
from xling_tui.widgets.runs_table import SORT_KEYS, RunsTable, filter_rows, sort_rows
from xling_tui.widgets.runs_table_experiments import ExperimentBar


class DashboardScreen(XlingScreen[None]):
    CSS_PATH = "dashboard.tcss"
    OPENS_WITH_DATA = True  # open once the worker's first read is on view
    BINDINGS = [  # description: the footer's word; tooltip: the help screen's line
        Binding("enter,o", "open_run", "open", tooltip="run panels of the run: PPL curves, TEff, alignment"),
        Binding("space", "mark", "mark", tooltip="mark / unmark the run (actions apply to the marked runs)"),
        Binding("slash", "filter", "filter", tooltip="filter: words in name, status, #tag, note, device, language"),
        Binding("s", "sort", "sort", tooltip="sort by the next column (default, name, status, progress, ...)"),
        Binding("S", "reverse_sort", "reverse sort", show=False, tooltip="reverse the sort"),
        Binding(
            "left_square_bracket",
            "experiment(-1)",
            "prev experiment",
            show=False,
            tooltip="show the previous experiment (or all)",
        ),
        Binding(
            "right_square_bracket",
            "experiment(1)",
            "next experiment",
            show=False,
            tooltip="show the next experiment (or all)",
        ),
        Binding("L", "launch", "launch", tooltip="launch the shown experiment (or all) as a headless xling run"),
        Binding("x", "cancel_runs", "cancel", tooltip="cancel running or queued runs (asks; workers checkpoint)"),
        Binding("R", "resume_runs", "resume", show=False, tooltip="resume failed or cancelled runs"),
        Binding("D", "delete_runs", "delete", show=False, tooltip="delete runs and their artefacts (asks)"),
        Binding("t", "tag", "tag", show=False, tooltip="set tags (kept in the run folder)"),
        Binding("n", "note", "note", show=False, tooltip="set a note (kept in the run folder)"),
        Binding("l", "show_log", "log", tooltip="the run's worker log, followed"),
        Binding("c", "compare", "compare", show=False, tooltip="compare the marked runs"),
        Binding(
            "v",
            "view_experiment",
            "experiment",
            tooltip="the experiment's paper table, law and sweeps (the shown experiment, or the run's)",
        ),
        Binding("g", "toggle_gpus", "GPUs", show=False, tooltip="show / hide the GPU panel"),
        Binding("a", "mark_all", "mark all", show=False, tooltip="mark all shown runs (again: none)"),
        Binding("escape", "clear", "clear", show=False, tooltip="close the filter, clear it, then the marks"),
        Binding("ctrl+r", "refresh", "refresh", show=False, tooltip="read the database now"),
    ]

    filter_text: reactive[str] = reactive("")
    sort_key: reactive[str] = reactive("default")
    sort_reverse: reactive[bool] = reactive(False)

    def __init__(self) -> None:
        super().__init__()
        self.data: DashboardData | None = None
        self.marked: set[str] = set()
        self._seq = 0
        self._applied_seq = -1
        self._fetching = False
        self._again = False
        self._force = False
        self._source: DashboardSource | None = None
        self._source_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_error: str | None = None  # the poller reports a failure once, not every poll

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ExperimentBar(id="experiments")
        box = Input(
            placeholder="filter: words that must all match (name, status, #tag, note, device, language)", id="filter"
        )
        box.cursor_blink = False  # over SSH a blinking cursor is a redraw every half second
        yield box
        yield RunsTable(id="runs")
        yield Static("", id="status-line")
        yield GpuPanel(id="gpus")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(RunsTable).focus()
        self._set_status("reading the results…")
        self.request_fetch()
        self.set_interval(xling_app(self).refresh_every, self.request_fetch)
        self.sample_gpus()

    def on_unmount(self) -> None:
        self._stop.set()

    # -- data: the poller -------------------------------------------------------------------

    def request_fetch(self, force: bool = False) -> None:
        """Starts a fetch, or folds this request into one more fetch after the current one."""
        self._force = self._force or force
        if self._fetching:
            self._again = True
            return
        self._fetching, self._again = True, False
        force, self._force = self._force, False
        self._seq += 1
        self.fetch(self._seq, force)

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False)
    def fetch(self, seq: int, force: bool) -> None:
        try:
            with self._source_lock:
                if self._source is None:
                    self._source = DashboardSource(
                        xling_app(self).config_path, xling_app(self).db_path, clock=xling_app(self).clock
                    )
                data = self._source.fetch(force=force)
        except Exception as exc:  # noqa: BLE001 - reported once, the next poll tries again
            if repr(exc) != self._last_error:
                xling_app(self).report_error(exc, "reading the dashboard")
            self._last_error = repr(exc)
            data = None
        else:
            self._last_error = None
        finally:
            self.post_message(DashboardFetched(data, seq))

    def on_dashboard_fetched(self, message: DashboardFetched) -> None:
        self._fetch_done()
        self.opened()  # the collector runs again once what this brings is painted
        if message.data is None or message.seq <= self._applied_seq:
            return  # an older fetch finishing late: never replace newer data
        self._applied_seq = message.seq
        self.apply(message.data)

    def _fetch_done(self) -> None:
        self._fetching = False
        if self._again:
            self.request_fetch()

    def apply(self, data: DashboardData) -> None:
        """Renders new data: experiments bar, table, status line, GPU run names."""
        self.data = data
        known = {r.run_id for r in data.runs}
        self.marked &= known
        bar = self.query_one(ExperimentBar)
        bar.experiments = data.experiments
        if bar.selected is not None and bar.selected not in [e.name for e in data.experiments]:
            bar.selected = None
        self.query_one(GpuPanel).run_names = {
            r.pid: r.label for r in data.runs if r.pid is not None and r.status == RunStatus.RUNNING
        }
        self.render_table()

    def visible_rows(self) -> list[RunRow]:
        if self.data is None:
            return []
        rows = filter_rows(self.data.runs, self.filter_text, self.query_one(ExperimentBar).selected)
        return sort_rows(rows, self.sort_key, self.sort_reverse)

    def render_table(self) -> None:
        rows = self.visible_rows()
        self.query_one(RunsTable).show(rows, self.marked)
        self._set_status(self._status_text(rows))

    def _status_text(self, rows: list[RunRow]) -> str:
        data = self.data
        if data is None:
            return ""
        parts = []
        if data.db_error:
            parts.append(f"[red]database: {data.db_error}[/]")
        if data.config_error:
            parts.append(f"[yellow]config: {data.config_error}[/]")
        total = len(data.runs)
        if not total and not data.db_error:
            parts.append(f"no runs in {xling_app(self).db_path.name} yet: L launches an experiment")
        else:
            counts: dict[str, int] = {}
            for r in rows:
                counts[r.status] = counts.get(r.status, 0) + 1
            shown = f"{len(rows)}/{total} runs" + (f" · filter “{self.filter_text}”" if self.filter_text else "")
            parts.append(shown + " · " + " ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        waiting = [(r, why) for r in rows if (why := r.waiting)]
        if waiting:  # the reason is too long for a table cell; one line says it for the first
            more = f" (+{len(waiting) - 1} more)" if len(waiting) > 1 else ""
            first, why = waiting[0]
            parts.append(f"[yellow]{escape(first.label)} {escape(why)}{more}[/]")
        if self.sort_key != "default":
            parts.append(f"sort {self.sort_key}{' ↓' if self.sort_reverse else ' ↑'}")
        if self.marked:
            parts.append(f"[magenta]{len(self.marked)} marked[/]")
        return " · ".join(parts)

    def _set_status(self, text: str) -> None:
        self.query_one("#status-line", Static).update(text)

    def watch_filter_text(self) -> None:
        if self.is_mounted:
            self.render_table()

    def watch_sort_key(self) -> None:
        if self.is_mounted:
            self.render_table()

    def watch_sort_reverse(self) -> None:
        if self.is_mounted:
            self.render_table()

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Clicking a column header sorts by it (the mouse path to what ``s`` does)."""
        by_column = {
            "name": "name",
            "status": "status",
            "progress": "progress",
            "speed": "tokens/s",
            "best": "best PPL",
        }
        key = by_column.get(str(event.column_key.value))
        if key is None:
            return
        if self.sort_key == key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = key, False

    # -- data: the GPU sampler ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="gpus", exit_on_error=False)
    def sample_gpus(self) -> None:
        """Loops on its own thread until the screen goes: NVML calls never reach the UI loop."""
        from xling_tui.data_source import GpuSampler

        sampler = GpuSampler(xling_app(self).gpu_source)
        try:
            while not self._stop.is_set():
                try:
                    runs = self.data.runs if self.data else ()
                    pids = {r.pid for r in runs if r.pid and r.status == RunStatus.RUNNING}
                    self.post_message(GpusSampled(sampler.sample(pids)))
                except Exception as exc:  # noqa: BLE001
                    xling_app(self).report_error(exc, "sampling the GPUs")
                self._stop.wait(xling_app(self).gpu_every)
        finally:
            sampler.close()

    def on_gpus_sampled(self, message: GpusSampled) -> None:
        self.query_one(GpuPanel).sample = message.sample

    # -- selection -------------------------------------------------------------------------

    def selected_rows(self) -> list[RunRow]:
        """The marked runs, or the run under the cursor when none is marked."""
        if self.data is None:
            return []
        by_id = {r.run_id: r for r in self.data.runs}
        if self.marked:
            return [by_id[rid] for rid in self.query_one(RunsTable).shown_ids if rid in self.marked] + [
                by_id[rid] for rid in sorted(self.marked - set(self.query_one(RunsTable).shown_ids))
            ]
        current = self.query_one(RunsTable).current_run_id
        return [by_id[current]] if current in by_id else []

    def _need_selection(self) -> list[RunRow]:
        rows = self.selected_rows()
        if not rows:
            self.notify("no run selected", severity="warning")
        return rows

    # -- actions: view ---------------------------------------------------------------------

    def action_mark(self) -> None:
        rid = self.query_one(RunsTable).current_run_id
        if rid is None:
            return
        self.marked.symmetric_difference_update({rid})
        table = self.query_one(RunsTable)
        row = table.cursor_row
        self.render_table()
        if row + 1 < table.row_count:
            table.move_cursor(row=row + 1, animate=False)

    def action_mark_all(self) -> None:
        shown = set(self.query_one(RunsTable).shown_ids)
        self.marked = set() if shown <= self.marked else self.marked | shown
        self.render_table()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.display = False
        self.query_one(RunsTable).focus()

    def action_clear(self) -> None:
        """ESC steps back one thing at a time: the filter box, the filter, the marks."""
        box = self.query_one("#filter", Input)
        if box.has_focus:
            self.query_one(RunsTable).focus()
            if not box.value:
                box.display = False
        elif self.filter_text:
            box.value = ""
            box.display = False
        elif self.marked:
            self.marked.clear()
            self.render_table()

    def action_sort(self) -> None:
        names = [k.name for k in SORT_KEYS]
        self.sort_key = names[(names.index(self.sort_key) + 1) % len(names)]
        self.notify(f"sorted by {self.sort_key}", timeout=2)

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def action_experiment(self, delta: int) -> None:
        bar = self.query_one(ExperimentBar)
        bar.step(delta)
        self.render_table()

    def action_toggle_gpus(self) -> None:
        panel = self.query_one(GpuPanel)
        panel.display = not panel.display

    def action_refresh(self) -> None:
        self.request_fetch(force=True)

    def action_open_run(self) -> None:
        rows = self._need_selection()
        if rows:
            xling_app(self).open_run(rows[0].run_id)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            xling_app(self).open_run(str(event.row_key.value))

    def action_compare(self) -> None:
        rows = self._need_selection()
        if rows:
            xling_app(self).open_compare([r.run_id for r in rows])

    def action_view_experiment(self) -> None:
        """The experiment chosen in the bar, else the one of the run under the cursor."""
        name = self.query_one(ExperimentBar).selected
        if name is None:
            current = self.query_one(RunsTable).current_run_id
            by_id = {r.run_id: r for r in (self.data.runs if self.data else ())}
            name = by_id[current].experiment if current in by_id else None
        if name is None:
            self.notify("no experiment: choose one with [ ] or put the cursor on a run", severity="warning")
            return
        xling_app(self).open_experiment(name)

    def action_show_log(self) -> None:
        rows = self._need_selection()
        if rows:
            from engine.runs import layout
            from xling_tui.screens.log_view import LogScreen

            row = rows[0]
            self.app.push_screen(LogScreen(layout.run_dir(xling_app(self).db_path, row.run_id), row.label))

    # -- actions: runs -----------------------------------------------------------------------

    def action_launch(self) -> None:
        bar = self.query_one(ExperimentBar)
        experiment = bar.selected
        what = f"experiment {experiment}" if experiment else "every experiment"
        body = (
            f"Train {what} from {xling_app(self).config_path.name} (finished runs are skipped).\n"
            "It runs as a headless `xling run` and keeps going after xling-tui quits; "
            f"its output goes to {Path(xling_app(self).db_path).stem}.runs/launches/."
        )
        choices = [
            ("auto", "launch (GPU if NVML sees one, else CPU)"),
            ("cpu", "launch on the CPU"),
            ("cuda", "launch on the GPUs"),
        ]

        def chosen(device: str | None) -> None:
            if device:
                self.run_action_thread("launch", experiment=experiment, device=device)

        self.app.push_screen(ChoiceScreen(f"Launch {what}", body, choices), chosen)

    def action_cancel_runs(self) -> None:
        rows = [r for r in self._need_selection() if r.status in LIVE]
        if not rows:
            if self.selected_rows():
                self.notify("nothing to cancel: the selected runs are not running or queued", severity="warning")
            return
        body = "\n".join(f"• {r.label} ({r.status})" for r in rows[:8]) + (
            f"\n… and {len(rows) - 8} more" if len(rows) > 8 else ""
        )
        body += "\nA running worker checkpoints, then stops; resume continues it."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_action_thread("cancel", run_ids=[r.run_id for r in rows])

        self.app.push_screen(ConfirmScreen(f"Cancel {len(rows)} run(s)?", body, yes="Cancel runs"), confirmed)

    def action_resume_runs(self) -> None:
        rows = [r for r in self._need_selection() if r.status in (RunStatus.FAILED, RunStatus.CANCELLED)]
        if not rows:
            if self.selected_rows():
                self.notify("only failed or cancelled runs can be resumed", severity="warning")
            return
        self.run_action_thread("resume", run_ids=[r.run_id for r in rows])

    def action_delete_runs(self) -> None:
        rows = self._need_selection()
        if not rows:
            return
        body = "\n".join(f"• {r.label} ({r.status})" for r in rows[:8]) + (
            f"\n… and {len(rows) - 8} more" if len(rows) > 8 else ""
        )
        body += "\nIts folder goes: event log, checkpoints, model, worker log. This cannot be undone."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_action_thread("delete", run_ids=[r.run_id for r in rows])

        self.app.push_screen(
            ConfirmScreen(f"Delete {len(rows)} run(s) and their artefacts?", body, yes="Delete", danger=True), confirmed
        )

    def action_tag(self) -> None:
        rows = self._need_selection()
        if not rows:
            return
        current = " ".join(rows[0].tags) if len(rows) == 1 else ""

        def entered(text: str | None) -> None:
            if text is not None:
                from xling_tui.actions import parse_tags

                self.run_action_thread("tag", run_ids=[r.run_id for r in rows], tags=parse_tags(text))

        self.app.push_screen(
            TextPromptScreen(
                f"Tags of {rows[0].label}" if len(rows) == 1 else f"Tags of {len(rows)} runs",
                "words separated by spaces or commas; empty removes the tags; esc keeps them",
                current,
            ),
            entered,
        )

    def action_note(self) -> None:
        rows = self._need_selection()
        if not rows:
            return

        def entered(text: str | None) -> None:
            if text is not None:
                self.run_action_thread("note", run_ids=[r.run_id for r in rows], note=text)

        self.app.push_screen(
            TextPromptScreen(
                f"Note on {rows[0].label}" if len(rows) == 1 else f"Note on {len(rows)} runs",
                "one line; empty removes the note; esc keeps it",
                rows[0].note if len(rows) == 1 else "",
            ),
            entered,
        )

    @work(thread=True, group="run-actions", exit_on_error=False)
    def run_action_thread(self, what: str, run_ids: list[str] | tuple[str, ...] = (), **kw) -> None:
        """The file and process work of an action, off the UI thread; errors are reported once."""
        from xling_tui import actions

        db = xling_app(self).db_path
        lines: list[str] = []
        try:
            if what == "launch":
                from engine.config.spec import load_experiments

                load_experiments(xling_app(self).config_path, [kw["experiment"]] if kw["experiment"] else None)
                proc = actions.launch_experiment(xling_app(self).config_path, db, kw["experiment"], kw["device"])
                xling_app(self).track_process(proc, f"launch of {kw['experiment'] or 'every experiment'}")
                lines.append(
                    f"launched {kw['experiment'] or 'every experiment'} (pid {proc.pid}); output in {proc.log_path}"
                )
            elif what == "cancel":
                lines.extend(actions.cancel_runs(db, list(run_ids)))
            elif what == "resume":
                proc = actions.resume_runs(db, list(run_ids))
                xling_app(self).track_process(proc, f"resume of {len(run_ids)} run(s)")
                lines.append(f"resuming {len(run_ids)} run(s) (pid {proc.pid}); output in {proc.log_path}")
            elif what == "delete":
                for rid in run_ids:
                    try:
                        lines.append(actions.delete_run(db, rid))
                    except actions.ActionError as exc:
                        xling_app(self).report_error(exc, "delete")
            elif what in ("tag", "note"):
                for rid in run_ids:
                    actions.write_annotations(db, rid, tags=kw.get("tags"), note=kw.get("note"))
                lines.append(f"{what} saved on {len(run_ids)} run(s)")
        except Exception as exc:  # noqa: BLE001 - the one place run actions report failures
            xling_app(self).report_error(exc, what)
        self.post_message(ActionFinished(lines))

    def on_action_finished(self, message: ActionFinished) -> None:
        for line in message.lines:
            self.notify(line, timeout=6)
        if message.refresh:
            self.request_fetch(force=True)
