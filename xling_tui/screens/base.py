"""The base of xling's full screens: what every screen does as it opens.

- **Styled once.** Textual styles every widget as it is mounted, then restyles the whole
  screen when it resumes (to pick up pseudo-classes that changed while another screen
  was on top). On a push the first resume comes right after the mount, so the second
  pass finds nothing to change; for the experiment view it was about 7 ms of the 100 ms
  its opening may take (``bench/tui_startup.py``). Later resumes restyle whenever
  Textual asks them to.
- **No collection while it opens.** The garbage collector is held off from the screen's
  compose until a moment after the paint that shows what it opened for
  (``xling_tui/collector.py`` says why). A screen whose content comes from a worker sets
  ``OPENS_WITH_DATA`` and calls ``opened()`` once its first data is in its widgets;
  any other screen is open at its first paint. The hold ends at the latest after
  ``HOLD_LIMIT`` seconds, or when the screen goes.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual import events
from textual.screen import Screen

from xling_tui.collector import PAUSE

ResultType = TypeVar("ResultType")

HOLD_LIMIT = 1.5  # seconds: no opening keeps the collector off longer (a slow worker read)
COLLECT_AFTER = 0.5  # seconds after the paint: the collector runs while the screen is being read


class XlingScreen(Screen[ResultType]):
    """A Screen styled once as it opens, with the collector held off until it shows its content."""

    OPENS_WITH_DATA: ClassVar[bool] = False  # True: open once the screen calls opened()

    _resumed_before = False
    _holds_collector = False

    def on_compose(self) -> None:
        # Textual calls this before composing the screen (a subclass's handler first).
        PAUSE.hold()
        self._holds_collector = True

    def on_mount(self) -> None:
        self.set_timer(HOLD_LIMIT, self._release_collector)
        if not self.OPENS_WITH_DATA:
            self.opened()

    def opened(self) -> None:
        """The screen's content is in its widgets: once that is painted (and a moment
        more), the collector runs again."""
        if self._holds_collector:
            self.call_after_refresh(self.set_timer, COLLECT_AFTER, self._release_collector)

    def _release_collector(self) -> None:
        if self._holds_collector:
            self._holds_collector = False
            PAUSE.release()

    def on_unmount(self) -> None:
        self._release_collector()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Screen's own handler (Textual calls a subclass's handler first),
        # which restyles only when the event asks it to.
        if not self._resumed_before:
            self._resumed_before = True
            event.refresh_styles = False
