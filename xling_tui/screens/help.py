"""``?``: every key of every screen, read from the screens' own bindings so it stays true."""

from __future__ import annotations

import importlib

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (title, module, class): screens whose keys the help lists, in this order; a screen
# whose module is not there (yet) is left out.
SCREENS = [
    ("Everywhere", "xling_tui.app", "XlingApp"),
    ("Dashboard", "xling_tui.screens.dashboard", "DashboardScreen"),
    ("Run panels", "xling_tui.screens.run_detail", "RunScreen"),
    ("Experiment", "xling_tui.screens.experiment", "ExperimentScreen"),
    ("Compare", "xling_tui.screens.compare", "CompareScreen"),
    ("Schedule designer", "xling_tui.screens.designer", "DesignerScreen"),
    ("SQL", "xling_tui.screens.sql", "SqlScreen"),
    ("SQL box", "xling_tui.widgets.sql_editor", "SqlEditor"),
    ("Worker log", "xling_tui.screens.log_view", "LogScreen"),
]
EXTRA = {
    "Everywhere": [
        ("ctrl+p", "command palette: every action, and every run by name"),
        ("ctrl+q", "quit (launched runs keep going)"),
        ("esc", "back / close / clear"),
    ],
    "SQL box": [
        ("↑ ↓", "at the first / last line: the previous / next query of the history"),
        ("→", "take the completion shown after the cursor, like tab"),
    ],
}
_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "colon": ":",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "escape": "esc",
    "space": "space",
    "enter": "enter",
    "delete": "del",
    "plus": "+",
    "minus": "-",
    "full_stop": ".",
    "comma": ",",
}


def key_names(keys: str) -> str:
    return " ".join(_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


def bindings_of(module: str, cls: str) -> list[tuple[str, str]] | None:
    try:
        target = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        return None
    out = []
    for b in getattr(target, "BINDINGS", []):
        if isinstance(b, Binding):
            out.append((key_names(b.key), b.tooltip or b.description or b.action.replace("_", " ")))
        elif isinstance(b, tuple) and len(b) >= 2:
            out.append((key_names(b[0]), b[2] if len(b) > 2 else b[1]))
    return out


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=12)
    table.add_column()
    for title, module, cls in SCREENS:
        keys = bindings_of(module, cls)
        if keys is None:
            continue
        table.add_row(Text(title, style="bold underline"), "")
        for key, what in keys + EXTRA.get(title, []):
            table.add_row(key, what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 100%; height: 90%; border: thick $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("xling-tui keys", style="bold"))
            yield Static(help_table())
            yield Static(
                Text(
                    "Over SSH: everything works with the keyboard at 80×24; the mouse "
                    "works where the terminal passes it on. Runs launched here keep going "
                    "after the app quits.",
                    style="dim",
                )
            )
