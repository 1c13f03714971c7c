"""``xling-tui [CONFIG] [--db PATH]``: the Textual app over the same results as ``xling``.

The app owns what every screen shares: the config and database paths, the clock and
device source (injected by tests), the command palette's actions, navigation between
screens, the processes it launched, and the one place errors are reported. Screens
do their database and NVML work on thread workers; nothing here touches DuckDB, and
nothing imported at start-up imports torch (``bench/tui_startup.py`` times it).
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from xling_tui.collector import collect_less_often

ERROR_LOG = "xling-tui.errors.log"  # beside the database: tracebacks of unexpected errors


class XlingCommands(Provider):
    """The command palette: the app's actions, and every run by name (opens its panels)."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app: XlingApp = self.app  # type: ignore[assignment]
        commands: list[tuple[str, str, Callable[[], Any]]] = [
            (title, help_text, functools.partial(app.run_action, action))
            for title, help_text, action in app.palette_actions(self.screen)
        ]
        for run_id, label, status in app.known_runs():
            commands.append((f"open run {label}", f"{status} · {run_id[:8]}", functools.partial(app.open_run, run_id)))
        return commands

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            if not title.startswith("open run "):
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class XlingApp(App[None]):
    """The app; screens read ``config_path``, ``db_path``, ``clock`` and ``gpu_source`` from it."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses (tests, benches) live elsewhere
    TITLE = "xling"
    COMMANDS = App.COMMANDS | {XlingCommands}
    BINDINGS = [
        Binding("question_mark,f1", "help", "help"),
        Binding("colon", "sql", "SQL"),
        Binding("e", "designer", "designer"),
        Binding("q", "quit", "quit"),
    ]
    # (palette title, help, action) for the app-wide actions; screen actions come from the screen.
    PALETTE = [
        ("dashboard", "the runs of every experiment", "dashboard"),
        ("SQL query", "read-only SQL over the results (:)", "sql"),
        ("schedule designer", "edit the experiments' language-mix schedules (e)", "designer"),
        ("help", "every key of every screen (?)", "help"),
        ("quit", "leave xling-tui; launched runs keep going (q)", "quit"),
    ]

    def __init__(
        self,
        config_path: Path,
        db_path: Path,
        *,
        gpu_source: Any = None,
        clock: Callable[[], float] | None = None,
        refresh_every: float = 2.0,
        gpu_every: float = 1.0,
    ) -> None:
        super().__init__()
        collect_less_often()
        self.config_path = Path(config_path).absolute()
        self.db_path = Path(db_path).absolute()
        self.gpu_source = gpu_source  # None: NVML (engine.launch.devices.NvmlSource), on the sampler thread
        self.clock = clock or time.time
        self.refresh_every = refresh_every
        self.gpu_every = gpu_every
        self.launched: list[tuple[Any, str]] = []  # (Popen, what) of headless runs we started
        self._launched_lock = threading.Lock()
        self.sub_title = f"{self.config_path.name} · {self.db_path.name}"

    def get_default_screen(self) -> Screen:
        from xling_tui.screens.dashboard import DashboardScreen

        return DashboardScreen()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._reap_launched)

    # -- navigation -----------------------------------------------------------------------

    def _dashboard(self):
        from xling_tui.screens.dashboard import DashboardScreen

        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                return screen
        return None

    def known_runs(self) -> list[tuple[str, str, str]]:
        """(run_id, label, status) of the runs the dashboard knows, for the palette."""
        board = self._dashboard()
        if board is None or board.data is None:
            return []
        return [(r.run_id, r.label, r.status) for r in board.data.runs]

    def palette_actions(self, screen: Screen | None = None) -> list[tuple[str, str, str]]:
        """App actions plus those of ``screen`` (the one the palette was opened from; its
        bindings with a description), run on it as ``screen.<action>``."""
        screen = screen if screen is not None else self.screen
        out = list(self.PALETTE)
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description and binding.action not in ("clear",):
                keys = binding.key.replace("left_square_bracket", "[").replace("right_square_bracket", "]")
                out.append(
                    (
                        binding.description,
                        f"{binding.tooltip or type(screen).__name__} ({keys})",
                        f"screen.{binding.action}",
                    )
                )
        return out

    def action_dashboard(self) -> None:
        while len(self.screen_stack) > 2:  # the default screen sits above Textual's blank base
            self.pop_screen()

    def action_help(self) -> None:
        from xling_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_sql(self) -> None:
        from xling_tui.screens.sql import SqlScreen

        if not isinstance(self.screen, SqlScreen):
            self.push_screen(SqlScreen())

    def action_designer(self) -> None:
        from xling_tui.screens.designer import DesignerScreen

        board = self._dashboard()
        experiment = board.query_one("#experiments").selected if board is not None and board.is_mounted else None
        if not isinstance(self.screen, DesignerScreen):
            self.push_screen(DesignerScreen(experiment))

    def open_run(self, run_id: str) -> None:
        from xling_tui.screens.run_detail import RunScreen

        self.push_screen(RunScreen(run_id))

    def open_experiment(self, experiment: str) -> None:
        from xling_tui.screens.experiment import ExperimentScreen

        self.push_screen(ExperimentScreen(experiment))

    def open_compare(self, run_ids: list[str]) -> None:
        from xling_tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(list(run_ids)))

    # -- launched processes ---------------------------------------------------------------

    def track_process(self, proc: Any, what: str) -> None:
        """From any thread: remembers a launch so its exit is reported (and the process reaped)."""
        with self._launched_lock:
            self.launched.append((proc, what))

    def _reap_launched(self) -> None:
        with self._launched_lock:
            ended = [(p, w, p.poll()) for p, w in self.launched]
            ended = [e for e in ended if e[2] is not None]
            for proc, what, _ in ended:
                self.launched.remove((proc, what))
        for proc, what, code in ended:
            log = getattr(proc, "log_path", None)
            if code in (0, 130):
                self.notify(f"{what} finished", timeout=5)
            elif code == 1:
                self.notify(f"{what} finished; some runs failed (see the dashboard)", severity="warning")
            else:
                self.notify(f"{what} stopped with exit code {code}; see {log}", severity="error", timeout=15)

    # -- errors ---------------------------------------------------------------------------

    def report_error(self, error: BaseException, context: str) -> None:
        """The one place errors go; safe from any thread. A user-facing error (bad input,
        busy database, refused action) shows its message; anything else is a bug in
        xling: it shows its type and message and its traceback goes to a log file."""
        from xling_tui.errors import is_user_error

        if is_user_error(error):
            self.notify(str(error), title=context, severity="error", timeout=10)
            return
        log = self.db_path.with_name(ERROR_LOG)
        try:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {context}\n")
                fh.write("".join(traceback.format_exception(error)))
            where = f"; details in {log}"
        except OSError:
            where = ""
        self.notify(
            f"{type(error).__name__}: {error}{where}",
            title=f"internal error while {context}",
            severity="error",
            timeout=15,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="xling-tui",
        description="Terminal app for xling: runs dashboard, GPUs, schedule designer, run panels, SQL.",
        epilog="Keys: ? help, ctrl+p command palette, q quit. Works over SSH at 80x24.",
    )
    parser.add_argument(
        "config",
        nargs="?",
        default="experiments.toml",
        type=Path,
        help="experiments file [default: ./experiments.toml]",
    )
    parser.add_argument(
        "--db", type=Path, default=None, help="DuckDB results file [default: $XLING_DB or ./xling.duckdb]"
    )
    parser.add_argument(
        "--refresh",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often the dashboard polls the database [default: 2]",
    )
    args = parser.parse_args(argv)
    if args.refresh <= 0:
        parser.error("--refresh must be positive")
    from engine.runs.layout import default_db_path

    db = args.db if args.db is not None else default_db_path()
    if db.exists() and db.is_dir():
        parser.error(f"--db {db} is a directory; give the .duckdb file")
    XlingApp(args.config, db, refresh_every=args.refresh).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
