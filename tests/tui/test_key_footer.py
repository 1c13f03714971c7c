"""The key line: one widget that draws what Textual's Footer draws, redraws only when the
keys it shows change, and runs a key when it is clicked."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual_plot import PlotWidget

from xling_tui.widgets.key_footer import KeyFooter

# Not printable keys: a focused Input takes those, and the footer leaves them out.
PLAIN = [Binding("escape,q", "close", "back"), Binding("f5", "follow", "follow on/off")]
WITH_DISABLED = [
    Binding("f1", "one", "alpha", tooltip="the first"),
    Binding("f2", "two", "beta"),
    Binding("f3", "three", "gamma"),
]


class Keys(Screen):
    """A screen with ``bindings``; 'two' is disabled while ``two_enabled`` is False."""

    DEFAULT_CSS = "Keys { overflow: hidden; }"  # no scrollbar over the last line at 30x10

    def __init__(self, footer: type, plot: bool = False) -> None:
        super().__init__()
        self.footer = footer
        self.plot = plot
        self.two_enabled = False
        self.ran: list[str] = []

    def compose(self) -> ComposeResult:
        yield Input(id="first")
        yield Input(id="second")
        if self.plot:
            yield PlotWidget(id="plot")  # focused: its zoom and pan keys show as two groups
        yield self.footer()

    def on_mount(self) -> None:
        if self.plot:
            self.query_one("#plot").focus()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return True if action != "two" or self.two_enabled else None

    def action_one(self) -> None:
        self.ran.append("one")

    def action_two(self) -> None:
        self.ran.append("two")


def keys(footer: type, bindings: list[Binding], plot: bool = False) -> Keys:
    return type("Keys", (Keys,), {"BINDINGS": bindings})(footer, plot)


class Host(App):
    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.first = screen

    def get_default_screen(self) -> Screen:
        return self.first


async def bottom_line(footer: type, bindings: list[Binding], size: tuple[int, int], plot: bool) -> list:
    app = Host(keys(footer, bindings, plot))
    async with app.run_test(size=size) as pilot:

        def line() -> list:
            strip = app.screen._compositor.render_strips()[-1]
            return [(c, seg.style.clear_meta_and_links() if seg.style else None) for seg in strip for c in seg.text]

        expected = "Zoom" if plot else bindings[0].description
        for _ in range(100):  # until the keys are drawn (Footer builds them a frame after its screen)
            await pilot.pause(0.02)
            if expected in "".join(c for c, _ in line()):
                break
        await pilot.pause(0.05)
        return line()


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [(80, 24), (200, 60), (30, 10)])
@pytest.mark.parametrize(
    "bindings, plot", [(PLAIN, False), (WITH_DISABLED, False), ([], True)], ids=["plain", "disabled", "groups"]
)
async def test_the_line_is_textuals_footer_cell_for_cell(bindings, plot, size):
    """Every cell (character, colour, weight, dimming) as Footer draws it, the command
    palette's key at the right and groups of keys included, at any width."""
    ours = await bottom_line(KeyFooter, bindings, size, plot)
    theirs = await bottom_line(Footer, bindings, size, plot)
    text = "".join(c for c, _ in theirs)
    assert ("Zoom" in text) if plot else (bindings[0].description in text)
    assert "".join(c for c, _ in ours) == text
    assert ours == theirs


@pytest.mark.asyncio
async def test_the_line_redraws_only_when_its_keys_change():
    screen = keys(KeyFooter, WITH_DISABLED)
    app = Host(screen)
    async with app.run_test() as pilot:
        await pilot.pause(0.05)
        footer = screen.query_one(KeyFooter)
        line = "".join(seg.text for seg in footer.render_line(0))
        assert " f1 alpha " in line and " f2 beta " in line
        redrawn = []
        refresh = footer.refresh

        def counted(*args, **kwargs):
            redrawn.append(1)
            return refresh(*args, **kwargs)

        footer.refresh = counted  # type: ignore[method-assign]
        screen.query_one("#second", Input).focus()
        await pilot.pause()
        await app.push_screen(Screen())
        await pilot.pause()
        app.pop_screen()
        await pilot.pause()
        screen.refresh_bindings()
        await pilot.pause()
        assert redrawn == []  # the same keys: nothing redrawn
        screen.two_enabled = True
        screen.refresh_bindings()
        await pilot.pause()
        assert redrawn == [1]
        beta = [seg for seg in footer.render_line(0) if "beta" in seg.text]
        assert beta and not beta[0].style.dim  # enabled now: no longer dimmed


@pytest.mark.asyncio
async def test_a_click_runs_the_key_and_a_disabled_key_runs_nothing():
    screen = keys(KeyFooter, WITH_DISABLED)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.05)
        footer = screen.query_one(KeyFooter)
        line = "".join(seg.text for seg in footer.render_line(0))
        await pilot.click(KeyFooter, offset=(line.index("alpha"), 0))
        await pilot.click(KeyFooter, offset=(line.index("beta"), 0))  # 'two' is disabled
        await pilot.pause()
        assert screen.ran == ["one"]
        await pilot.hover(KeyFooter, offset=(line.index("alpha"), 0))
        await pilot.pause()
        assert footer.tooltip == "the first"
        await pilot.hover(KeyFooter, offset=(line.index("gamma"), 0))
        await pilot.pause()
        assert footer.tooltip is None  # gamma has no tooltip
        await pilot.hover(KeyFooter, offset=(len(line) - 3, 0))  # the command palette's key
        await pilot.pause()
        assert footer.tooltip
