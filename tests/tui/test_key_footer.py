"""The key line rebuilds its widgets only when the keys it shows change: focus moving,
a screen opened on top and closed, or a refresh that changes nothing leave it alone."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from xling_tui.widgets.key_footer import KeyFooter


class Keys(Screen):
    BINDINGS = [Binding("f1", "one", "one"), Binding("f2", "two", "two")]

    def __init__(self) -> None:
        super().__init__()
        self.two_enabled = True

    def compose(self) -> ComposeResult:
        yield Input(id="first")
        yield Input(id="second")
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return True if action != "two" or self.two_enabled else None

    def action_one(self) -> None:
        pass

    def action_two(self) -> None:
        pass


@pytest.mark.asyncio
async def test_the_footer_is_rebuilt_only_when_its_keys_change():
    app = App()
    async with app.run_test() as pilot:
        screen = Keys()
        await app.push_screen(screen)
        await pilot.pause()
        footer = screen.query_one(KeyFooter)

        def keys() -> list[tuple[str, str, bool]]:
            return [(k.key, k.description, k.has_class("-disabled")) for k in footer.query(FooterKey)]

        assert keys()[:2] == [("f1", "one", False), ("f2", "two", False)]
        rebuilt = []
        rebuild = footer.recompose

        async def counted() -> None:
            rebuilt.append(1)
            await rebuild()

        footer.recompose = counted  # type: ignore[method-assign]
        screen.query_one("#second", Input).focus()
        await pilot.pause()
        await app.push_screen(Screen())
        await pilot.pause()
        app.pop_screen()
        await pilot.pause()
        screen.refresh_bindings()
        await pilot.pause()
        assert rebuilt == []  # the same keys: nothing rebuilt
        screen.two_enabled = False
        screen.refresh_bindings()
        await pilot.pause()
        assert rebuilt == [1] and keys()[:2] == [("f1", "one", False), ("f2", "two", True)]
