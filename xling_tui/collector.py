"""Python's garbage collector and the UI thread.

Textual allocates segments, strips and styles by the thousand per frame. Two things keep
the collector's pauses out of what a user waits for:

- ``collect_less_often``: with Python's default a young collection runs every 700
  allocations, objects that live a frame are promoted, and the old generations'
  collections pause the UI thread for up to 100 ms.
- ``PAUSE``: while a screen opens (``screens/base.py``: from its compose to a moment
  after the paint that shows its data) the collector is held off, and what it would have
  done then runs once the screen is on view. Opening the experiment view took a young
  collection of 11-18 ms one time in three, and now and then an old one of 120-170 ms
  (``bench/tui_startup.py`` reports the opening and, apart, the collection it left for
  later). Textual does the same around scroll animations (``App.PAUSE_GC_ON_SCROLL``).

Both are process-wide, as the collector is.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 50_000  # allocations between Python's young collections (its default: 700)


def collect_less_often() -> None:
    """Young collections every ``YOUNG_GENERATION`` allocations rather than 700."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)


class Pause:
    """The collector held off while anyone holds it. Counted, since screens open over
    each other; when the last holder lets go it is back on, if it was on at the first
    hold (whoever turned it off before keeps it off)."""

    def __init__(self) -> None:
        self.holders = 0
        self._was_enabled = False

    def hold(self) -> None:
        if self.holders == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
        self.holders += 1

    def release(self) -> None:
        if self.holders == 0:
            return
        self.holders -= 1
        if self.holders == 0 and self._was_enabled:
            gc.enable()


PAUSE = Pause()
