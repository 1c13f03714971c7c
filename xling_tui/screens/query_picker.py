"""The SQL screen's list of saved queries and past ones, searchable; enter loads one.

Saved queries come first, by name, then the history, newest first. Typing filters both
(every word must appear in the name or the SQL); ``delete`` forgets a saved query.
Returns the chosen SQL, or None.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from xling_tui.query_library import QueryLibrary


class QueryPickerScreen(ModalScreen[str | None]):
    CSS_PATH = "query_picker.tcss"
    BINDINGS = [
        Binding("escape", "dismiss_none", "cancel"),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
        Binding("enter", "choose", "load", priority=True),
        Binding("delete", "forget", "forget saved", priority=True, tooltip="forget the highlighted saved query"),
    ]

    def __init__(self, library: QueryLibrary, persist: Callable[[], object]) -> None:
        super().__init__()
        self.library = library
        self.persist = persist  # writes the library on a thread (the SQL screen's worker)
        self.entries: list[tuple[str | None, str]] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Saved and past queries[/b] · type to search · enter loads · del forgets a saved one")
            box = Input(placeholder="search names and SQL", id="picker-search")
            box.cursor_blink = False
            yield box
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#picker-search", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def _fill(self, text: str) -> None:
        self.entries = self.library.search(text)
        options = self.query_one("#picker-list", OptionList)
        options.clear_options()
        for name, sql in self.entries:
            one_line = " ".join(sql.split())
            label = Text.assemble((f"★ {name}  ", "bold yellow") if name else ("", ""), (one_line, ""))
            options.add_option(Option(label))
        if self.entries:
            options.highlighted = 0
        elif not self.library.history and not self.library.saved:
            options.add_option(
                Option(Text("no queries yet: ctrl+r runs one, ctrl+s saves one", style="dim"), disabled=True)
            )

    def action_move(self, step: int) -> None:
        options = self.query_one("#picker-list", OptionList)
        if self.entries:
            options.highlighted = ((options.highlighted or 0) + step) % len(self.entries)

    def action_choose(self) -> None:
        index = self.query_one("#picker-list", OptionList).highlighted
        if index is not None and index < len(self.entries):
            self.dismiss(self.entries[index][1])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self.entries):
            self.dismiss(self.entries[event.option_index][1])

    def action_forget(self) -> None:
        index = self.query_one("#picker-list", OptionList).highlighted
        name = self.entries[index][0] if index is not None and index < len(self.entries) else None
        if name is None:
            self.notify("only saved queries can be forgotten", severity="warning")
            return
        self.library.forget(name)
        self.persist()
        self._fill(self.query_one("#picker-search", Input).value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
