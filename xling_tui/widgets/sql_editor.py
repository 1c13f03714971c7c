"""The SQL box: a TextArea that completes names and walks the history like a shell.

Completion is TextArea's own ghost text (``suggestion``): while a word is typed, the
best candidate's rest appears dimmed after the cursor; ``tab`` (or ``→``) takes it,
``ctrl+n`` shows the next candidate. Candidates come from ``xling_tui.sql_completion``
over the catalog the screen hands in (read on a thread worker). ``↑`` on the first line
and ``↓`` on the last post ``HistoryStep``: the screen swaps in an older or newer query.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from xling_tui.sql_completion import Catalog, Completion, complete


class SqlEditor(TextArea):
    BINDINGS = [
        Binding("tab", "complete", "complete", show=False, tooltip="complete the table, column or function name"),
        Binding("ctrl+n", "next_candidate", "next completion", show=False, tooltip="show the next possible name"),
    ]

    @dataclass
    class HistoryStep(Message):
        """↑ on the first line (-1, older) or ↓ on the last (+1, newer)."""

        direction: int

    @dataclass
    class Candidates(Message):
        """The names the word being typed could become (empty when none)."""

        completion: Completion

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(text, id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.cursor_blink = False  # over SSH a blinking cursor is a redraw every half second
        self.catalog = Catalog()
        self.completion = Completion("")
        self._choice = 0

    def update_suggestion(self) -> None:
        """TextArea's hook after every edit: the ghost text for the word at the cursor."""
        row, column = self.cursor_location
        line = self.document.get_line(row)
        following = line[column : column + 1]
        if not self.selection.is_empty or (following and (following.isalnum() or following == "_")):
            completion = Completion("")
        else:
            before = self.get_text_range((0, 0), self.cursor_location)
            completion = complete(before, self.catalog, self.text)
        self._show(completion, 0)

    def _show(self, completion: Completion, choice: int) -> None:
        changed = completion != self.completion
        self.completion, self._choice = completion, choice
        self.suggestion = completion.suffix(choice)
        if changed:
            self.post_message(self.Candidates(completion))

    def action_complete(self) -> None:
        """Takes the suggestion; with none, tab moves the focus as usual."""
        if self.suggestion:
            self.insert(self.suggestion)
        else:
            self.screen.focus_next()

    def action_next_candidate(self) -> None:
        if len(self.completion.candidates) > 1:
            self._show(self.completion, self._choice + 1)

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.navigator.is_first_wrapped_line(self.cursor_location):
            self.post_message(self.HistoryStep(-1))
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self.navigator.is_last_wrapped_line(self.cursor_location):
            self.post_message(self.HistoryStep(+1))
            return
        super().action_cursor_down(select)

    def replace_text(self, text: str) -> None:
        """Shows ``text`` (a query from the history) with the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)
        self.suggestion = ""
