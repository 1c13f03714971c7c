"""Where to write the SQL screen's result: a path whose extension picks CSV, Parquet or JSON.

The path is checked before the dialog closes (its folder exists, it is not a folder,
the extension is known); an existing file is replaced only after an explicit yes.
Returns the absolute path, or None.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from xling_tui.screens.dialogs import ConfirmScreen


class ExportScreen(ModalScreen[Path | None]):
    CSS_PATH = "export_dialog.tcss"
    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, default: Path, rows: int) -> None:
        super().__init__()
        self.default = default
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]Export the result ({self.rows:,} rows)[/b]")
            box = Input(value=str(self.default), id="export-path")
            box.cursor_blink = False
            yield box
            yield Static(
                "the extension picks the format: .csv, .parquet or .json · enter writes · esc cancels",
                id="export-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from db.export import ExportError, check_target

        try:
            target = check_target(Path(event.value.strip()))
        except ExportError as exc:
            self.query_one("#export-hint", Static).update(f"✗ {exc}")
            return
        if not target.exists():
            self.dismiss(target)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(target)
            else:
                self.query_one("#export-hint", Static).update(f"{target.name} is kept; give another name")

        self.app.push_screen(
            ConfirmScreen(
                "Replace the file?", f"{target} exists. Replace it with this result?", "Replace", danger=True
            ),
            answered,
        )

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
