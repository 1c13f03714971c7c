"""A run's worker log (what ``xling logs`` prints), followed while the run is going."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label, Log

from engine.runs.layout import WORKER_LOG
from engine.runs.tail import LogTail
from xling_tui.screens.base import XlingScreen
from xling_tui.widgets.key_footer import KeyFooter

TAIL_BYTES = 256 * 1024  # a long run's log can be large: show its end


class LogScreen(XlingScreen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "back"), Binding("f", "toggle_follow", "follow on/off")]
    DEFAULT_CSS = """
    LogScreen Label { padding: 0 1; background: $boost; width: 100%; }
    LogScreen Log { height: 1fr; }
    """

    def __init__(self, run_dir: Path, title: str) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.title_text = title
        self._tail = LogTail(self.run_dir / WORKER_LOG, last=TAIL_BYTES)  # a long run's log: its end
        self._said_missing = False
        self.follow = True

    def compose(self) -> ComposeResult:
        where = Path(self.run_dir.parent.parent.name, "runs", self.run_dir.name[:8] + "…", WORKER_LOG)
        yield Label(Text.assemble(f"log of {self.title_text}  ", (str(where), "dim")), id="log-title")
        yield Log(highlight=False, auto_scroll=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.read_more()
        self.set_interval(1.0, self.read_more)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.query_one(Log).auto_scroll = self.follow
        self.notify("following the log" if self.follow else "stopped following")

    @work(thread=True, exclusive=True, group="log")
    def read_more(self) -> None:
        chunk = self._tail.read()
        if chunk is None and self._tail.offset == 0 and not self._said_missing:
            self._said_missing = True
            self.app.call_from_thread(
                self._append, "(no worker.log in the run folder yet: its worker has not started here)\n"
            )
        if chunk:
            self.app.call_from_thread(self._append, chunk.decode("utf-8", errors="replace"))

    def _append(self, text: str) -> None:
        self.query_one(Log).write(text)
