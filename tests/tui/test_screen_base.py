"""A screen just pushed is styled once (as mounted); a later resume restyles as Textual asks;
the garbage collector is held off while a screen opens, and only then."""

from __future__ import annotations

import gc

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from tests.tui.fixture_db import until
from xling_tui.collector import PAUSE, YOUNG_GENERATION, Pause, collect_less_often
from xling_tui.screens import base
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


# -- the collector while a screen opens ---------------------------------------------------


class Fed(XlingScreen[None]):
    """A screen whose content comes from a worker (here: from the test)."""

    OPENS_WITH_DATA = True

    def compose(self) -> ComposeResult:
        self.collector_on_at_compose = gc.isenabled()
        yield Static("loading", id="s")

    def show(self, text: str) -> None:
        self.query_one("#s", Static).update(text)
        self.opened()


@pytest.fixture
def quick(monkeypatch):
    """The collector back on right after the paint (not half a second later); no limit hit by chance."""
    monkeypatch.setattr(base, "COLLECT_AFTER", 0.01)
    monkeypatch.setattr(base, "HOLD_LIMIT", 60.0)
    assert gc.isenabled() and PAUSE.holders == 0


@pytest.mark.asyncio
async def test_a_screen_with_data_holds_the_collector_until_its_data_is_painted(quick):
    app = Two()
    async with app.run_test(size=(40, 10)) as pilot:
        fed = Fed()
        app.push_screen(fed)
        await pilot.pause(0.1)
        assert fed.collector_on_at_compose is False and not gc.isenabled()  # held from before its compose
        fed.show("data")
        assert await until(pilot, gc.isenabled)
        assert PAUSE.holders == 0


@pytest.mark.asyncio
async def test_a_screen_without_data_is_open_at_its_first_paint(quick):
    app = Two()
    async with app.run_test(size=(40, 10)) as pilot:
        app.push_screen(Shown())
        assert await until(pilot, gc.isenabled)


@pytest.mark.asyncio
async def test_a_screen_that_goes_before_its_data_lets_the_collector_go(quick):
    app = Two()
    async with app.run_test(size=(40, 10)) as pilot:
        app.push_screen(Fed())
        await pilot.pause()
        assert not gc.isenabled()
        app.pop_screen()
        assert await until(pilot, gc.isenabled)


@pytest.mark.asyncio
async def test_a_screen_whose_data_never_comes_holds_the_collector_no_longer_than_the_limit(quick, monkeypatch):
    monkeypatch.setattr(base, "HOLD_LIMIT", 0.2)
    app = Two()
    async with app.run_test(size=(40, 10)) as pilot:
        app.push_screen(Fed())
        await pilot.pause()
        assert not gc.isenabled()
        assert await until(pilot, gc.isenabled)


@pytest.mark.asyncio
async def test_screens_opened_over_each_other_hold_it_until_the_last_is_open(quick):
    app = Two()
    async with app.run_test(size=(40, 10)) as pilot:
        first, second = Fed(), Fed()
        app.push_screen(first)
        await pilot.pause()
        app.push_screen(second)
        await pilot.pause()
        assert PAUSE.holders == 2
        first.opened()  # its paint happens under the second: it lets go all the same
        await until(pilot, lambda: PAUSE.holders == 1)
        await pilot.pause(0.1)
        assert PAUSE.holders == 1 and not gc.isenabled()
        second.show("data")
        assert await until(pilot, gc.isenabled)


def test_the_pause_is_counted_and_leaves_a_collector_someone_else_turned_off_off():
    pause = Pause()
    assert gc.isenabled()
    pause.hold()
    pause.hold()
    pause.release()
    assert not gc.isenabled()
    pause.release()
    assert gc.isenabled()
    pause.release()  # one release too many does nothing
    assert gc.isenabled() and pause.holders == 0
    gc.disable()
    try:
        pause.hold()
        pause.release()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_young_collections_come_less_often():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])
        collect_less_often()
        assert gc.get_threshold() == (YOUNG_GENERATION, before[1], before[2])
    finally:
        gc.set_threshold(*before)
