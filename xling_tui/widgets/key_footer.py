"""The key line at the bottom of every screen: Textual's Footer, rebuilt only when what
it shows changes.

Footer rebuilds a widget per key on every bindings signal of its screen (each focus
change, each return to the screen, each ``refresh_bindings``), and restyles every key
twice as it mounts: about 70 ms of UI-thread time per rebuild here, paid when opening
the experiment view and again on the dashboard whenever a screen on top of it closes.
Most of those signals change nothing the footer shows; this one compares what it would
show and rebuilds only on a difference.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """A Footer that skips rebuilds which would draw the same keys."""

    def __init__(self) -> None:
        super().__init__()
        self._drawn: tuple | None = None  # what the last rebuild showed

    def shown(self, screen: Screen) -> tuple:
        """Everything of the screen's bindings that the footer draws."""
        return tuple(
            (binding.action, self.app.get_key_display(binding), binding.description, enabled, tooltip, binding.group)
            for _, binding, enabled, tooltip in screen.active_bindings.values()
            if binding.show
        )

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = self.shown(screen)
            if shown == self._drawn:
                return
            self._drawn = shown
        super().bindings_changed(screen)
