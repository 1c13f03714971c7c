"""The headless front end, ``xling`` (Typer): run, resume, cancel, logs, status, sql,
report, gpus, data. Never imports textual; the TUI's launches are this CLI in a
process of their own (``python -m xling_tui.cli run ...``)."""

from xling_tui.cli.main import app, main

__all__ = ["app", "main"]
