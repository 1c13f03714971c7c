"""The base of xling's full screens: a screen just composed is not styled a second time.

Textual styles every widget as it is mounted, then restyles the whole screen when it
resumes (to pick up pseudo-classes that changed while another screen was on top). On a
push the first resume comes right after the mount, so the second pass finds nothing to
change; for the experiment view it was about 7 ms of the 100 ms its opening may take
(``bench/tui_startup.py``). Later resumes restyle whenever Textual asks them to.
"""

from __future__ import annotations

from typing import TypeVar

from textual import events
from textual.screen import Screen

ResultType = TypeVar("ResultType")


class XlingScreen(Screen[ResultType]):
    """A Screen whose first resume keeps the styles its widgets were mounted with."""

    _resumed_before = False

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Screen's own handler (Textual calls a subclass's handler first),
        # which restyles only when the event asks it to.
        if not self._resumed_before:
            self._resumed_before = True
            event.refresh_styles = False
