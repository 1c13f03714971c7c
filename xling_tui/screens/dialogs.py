"""Small modal dialogs the dashboard uses: confirm an action, choose one, enter text.

Keyboard-first: ``y``/``enter`` confirm, ``n``/``escape`` cancel; the mouse works on the buttons.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Returns True only on an explicit yes: a destructive action never runs by accident."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 64; max-width: 100%; height: auto; border: thick $warning;
                               background: $surface; padding: 0 1; }
    ConfirmScreen .buttons { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin: 0 1; min-width: 10; }
    """
    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, title: str, body: str, yes: str = "Yes", danger: bool = False) -> None:
        super().__init__()
        self.title_text, self.body, self.yes, self.danger = title, body, yes, danger

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self.title_text}[/b]")
            yield Static(self.body, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error" if self.danger else "primary")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ChoiceScreen(ModalScreen[str | None]):
    """One button per choice, keys 1..9 pick them; None when dismissed."""

    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical { width: 64; max-width: 100%; height: auto; border: thick $primary;
                              background: $surface; padding: 0 1; }
    ChoiceScreen Button { width: 100%; margin: 0 0 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "dismiss_none", "cancel"),
        *(Binding(str(i), f"pick({i - 1})", show=False) for i in range(1, 10)),
    ]

    def __init__(self, title: str, body: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.body, self.choices = title, body, choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self.title_text}[/b]")
            yield Static(self.body, markup=False)
            for i, (_value, label) in enumerate(self.choices, 1):
                yield Button(f"{i}  {label}", id=f"choice-{i - 1}")
            yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        self.dismiss(self.choices[int(bid.split("-")[1])][0] if bid.startswith("choice-") else None)

    def action_pick(self, index: int) -> None:
        if index < len(self.choices):
            self.dismiss(self.choices[index][0])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class TextPromptScreen(ModalScreen[str | None]):
    """A one-line input; enter returns its text, escape returns None (nothing changes)."""

    DEFAULT_CSS = """
    TextPromptScreen { align: center middle; }
    TextPromptScreen > Vertical { width: 70; max-width: 100%; height: auto; border: thick $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, title: str, hint: str, value: str = "") -> None:
        super().__init__()
        self.title_text, self.hint, self.value = title, hint, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self.title_text}[/b]")
            box = Input(value=self.value, id="prompt")
            box.cursor_blink = False
            yield box
            yield Static(self.hint, classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
