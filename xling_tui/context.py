"""What screens ask of the app: its files, clock, refresh rates, error reporter, navigation.

Screens reach the app as ``self.app``, which Textual types as any App; ``xling_app``
gives them the XlingApp's own attributes, typed, without importing the app module
(which imports every screen). Screens tested alone run in a bare App that has only the
attributes they read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from engine.launch.devices import DeviceSource


class XlingContext(Protocol):
    config_path: Path
    db_path: Path
    clock: Callable[[], float]  # injectable, so snapshots show the same ages
    refresh_every: float  # seconds between dashboard polls
    gpu_every: float  # seconds between GPU samples
    gpu_source: DeviceSource | None  # None: NVML

    def report_error(self, error: BaseException, context: str) -> None: ...

    def open_run(self, run_id: str) -> None: ...

    def open_compare(self, run_ids: list[str]) -> None: ...

    def open_experiment(self, experiment: str) -> None: ...

    def track_process(self, proc: Any, what: str) -> None: ...


def xling_app(node: DOMNode) -> XlingContext:
    """The running app, as what a screen may use of it."""
    return cast("XlingContext", node.app)
