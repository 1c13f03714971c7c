"""The key line at the bottom of every screen, drawn as one widget.

It looks and behaves like Textual's Footer (the same theme colours, the same order and
grouping of keys, dimmed keys for disabled actions, the command palette's key at the
right, a click runs the key, hovering shows its tooltip) but is a single widget that
draws its one line itself. Footer mounts a widget per key and styles each of them as
it mounts, and rebuilds them all on every bindings signal of its screen: about 30 ms of
UI-thread time each time a screen opens here (``bench/tui_startup.py``), a third of the
experiment view's budget. This one re-renders its line, and only when the keys it
shows change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

PALETTE_BORDER = "▏"  # Textual's "vkey" border, left edge


@dataclass(frozen=True)
class Key:
    """One key as the line shows it (a group's label is a Key that runs nothing)."""

    key: str  # what a click simulates ("" for a group's label)
    display: str
    description: str
    enabled: bool = True
    tooltip: str = ""
    grouped: bool = False  # part of a group: the key alone, a cell of room either side
    label: bool = False  # a group's description after its keys


@dataclass(frozen=True)
class Span:
    """Where a key landed on the line, in cells."""

    start: int
    end: int
    key: Key


def shown_keys(screen: Screen, key_display: Callable[[Binding], str]) -> tuple[list[Key], Key | None]:
    """The screen's bindings as the footer lists them: one key per action (its first
    binding), consecutive actions of one binding group drawn as the group's keys and its
    label; and the command palette's key, drawn apart at the right."""
    active = screen.active_bindings
    per_action: defaultdict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
    for _, binding, enabled, tooltip in active.values():
        if binding.show:
            per_action[binding.action].append((binding, enabled, tooltip))
    keys: list[Key] = []
    for group, members in groupby(per_action.values(), lambda m: m[0][0].group):
        firsts = [m[0] for m in members]
        if group is not None and len(firsts) > 1:
            for binding, enabled, tooltip in firsts:
                keys.append(
                    Key(binding.key, key_display(binding), "", enabled, tooltip or binding.description, grouped=True)
                )
            keys.append(Key("", "", group.description, label=True))
        else:
            keys.extend(Key(b.key, key_display(b), b.description, enabled, tooltip) for b, enabled, tooltip in firsts)
    palette = None
    app = screen.app
    if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
        _, binding, enabled, tooltip = active[app.COMMAND_PALETTE_BINDING]
        palette = Key(binding.key, key_display(binding), binding.description, enabled, binding.tooltip or tooltip)
    return keys, palette


class KeyFooter(Widget, can_focus=False):
    """The screen's keys on one line; click one to press it."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {
        "key-footer--key",
        "key-footer--description",
        "key-footer--hover",
        "key-footer--palette-border",
    }
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .key-footer--hover {
            background: $block-hover-background;
        }
        .key-footer--palette-border {
            color: $foreground 20%;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: tuple[list[Key], Key | None] = ([], None)
        self._spans: list[Span] = []
        self._hover: Key | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        """Redraws when the keys the screen shows have changed (most signals change nothing)."""
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            return
        keys = shown_keys(screen, self.app.get_key_display)
        if keys != self._keys:
            self._keys = keys
            self.refresh()

    # -- drawing ----------------------------------------------------------------------------

    def _piece(self, key: Key, compact: bool = False) -> list[Segment]:
        """One key as Textual's FooterKey draws it: ' k ' then 'description ' (compact, as
        the palette's key: 'k' then ' description')."""
        key_style = self.get_component_rich_style("key-footer--key")
        description_style = self.get_component_rich_style("key-footer--description")
        if key.label:
            return [Segment(key.description, description_style)]
        if not key.description:
            parts = [Segment(key.display, key_style)]
        elif compact:
            parts = [Segment(key.display, key_style), Segment(f" {key.description}", description_style)]
        else:
            parts = [Segment(f" {key.display} ", key_style), Segment(f"{key.description} ", description_style)]
        over = Style()
        if key == self._hover and key.enabled:  # FooterKey's :hover: the whole key on the hover background
            hover = self.get_component_rich_style("key-footer--hover")
            over = Style(bgcolor=hover.bgcolor)
        under = Style(dim=True) if not key.enabled else Style()
        return [Segment(text, under + style + over) for text, style, _ in parts]

    def render_line(self, y: int) -> Strip:
        keys, palette = self._keys
        blank = Style(bgcolor=self.rich_style.bgcolor)  # the gaps: the footer's background alone
        segments: list[Segment] = []
        spans: list[Span] = []
        x = 0
        room = 0  # the margin owed to the left of the next piece; margins collapse within a group
        previous: Key | None = None
        for key in keys:
            margin_left, margin_right = (1, 1) if key.grouped else (0, 1) if key.label else (0, 0)
            collapse = previous is not None and previous.grouped and key.grouped  # siblings in one group
            for gap in [max(room, margin_left)] if collapse else [room, margin_left]:
                if gap:
                    segments.append(Segment(" " * gap, blank))
                    x += gap
            piece = self._piece(key)
            width = Segment.get_line_length(piece)
            spans.append(Span(x, x + width, key))
            segments.extend(piece)
            x += width
            room = margin_right
            previous = key
        line = Strip(segments)
        width = self.size.width
        if palette is not None:
            border = Segment(PALETTE_BORDER, self.get_component_rich_style("key-footer--palette-border"))
            piece = [border, *self._piece(palette, compact=True), Segment(" ", blank)]
            start = max(width - Segment.get_line_length(piece), 0)
            spans = [s for s in spans if s.end <= start]
            spans.append(Span(start + 1, width - 1, palette))
            line = Strip.join([line.crop_extend(0, start, blank), Strip(piece)])
        self._spans = spans
        return line.crop_extend(0, width, blank)

    # -- the mouse --------------------------------------------------------------------------

    def _key_at(self, x: int) -> Key | None:
        for span in self._spans:
            if span.start <= x < span.end and not span.key.label:
                return span.key
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        key = self._key_at(event.x)
        if key != self._hover:
            self._hover = key
            self.tooltip = key.tooltip or None if key is not None else None
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        key = self._key_at(event.x)
        if key is None:
            return
        if key.enabled:
            self.app.simulate_key(key.key)
        else:
            self.app.bell()
