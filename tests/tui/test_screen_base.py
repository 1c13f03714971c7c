"""A screen just pushed is styled once (as mounted); a later resume restyles as Textual asks."""

from __future__ import annotations

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from xling_tui.screens.base import XlingScreen


class Shown(XlingScreen[None]):
    DEFAULT_CSS = "Shown Static { color: red; } Shown:focus-within Static { color: blue; }"

    def compose(self) -> ComposeResult:
        yield Static("xling", id="s")


class Two(App[None]):
    pass


@pytest.mark.asyncio
async def test_the_first_resume_keeps_the_mounted_styles_and_a_later_one_restyles(monkeypatch):
    restyled: list[Screen] = []
    original = Screen.update_node_styles

    def counting(self, animate: bool = True) -> None:
        restyled.append(self)
        original(self, animate)

    monkeypatch.setattr(Screen, "update_node_styles", counting)
    app = Two()
    async with app.run_test(size=(40, 10)) as pilot:
        shown = Shown()
        app.push_screen(shown)
        await pilot.pause()
        assert shown not in restyled
        assert shown.query_one("#s").styles.color.rgb == (255, 0, 0)  # styled as it was mounted
        shown.post_message(events.ScreenResume())  # a later resume that asks for a restyle gets it
        await pilot.pause()
        assert restyled.count(shown) == 1
