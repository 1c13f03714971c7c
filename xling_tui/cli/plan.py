"""``xling plan``: what an experiments file would train, before it trains anything.

Per experiment, in the file's order: the runs its sweep points ask for, how many of
them were asked for before (by an experiment above it, or another point: a run is
what it computes, so those train once), and the tokens and time left to train. The
totals are the compute that sharing saves. Times are the measured wall time of runs
already finished in the database, else estimated from ``--tokens-per-s PRESET=N``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.config.sweep import format_tokens

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(2)


def plan_command(
    config: Annotated[Path, typer.Argument(help="experiments file")],
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="only this experiment (repeatable)")
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="results of runs already trained [default: $XLING_DB or ./xling.duckdb]"),
    ] = None,
    tokens_per_s: Annotated[
        str | None,
        typer.Option("--tokens-per-s", help="PRESET=N: measured training tokens/s of one preset, e.g. mini=250000"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per experiment, then the totals")] = False,
) -> None:
    """Runs each experiment asks for, runs shared with others (trained once), tokens and time to train."""
    from engine.config.locate import SpecError
    from engine.config.plan import plan
    from engine.config.spec import load_experiments

    try:
        experiments = load_experiments(config, experiment or None)
    except SpecError as exc:
        raise _fail(str(exc))
    rate = _throughput(tokens_per_s)
    durations, finished = _measured(db)
    rows = plan(experiments, durations, finished, rate)
    totals = _totals(rows)
    if as_json:
        for row in rows:
            console.print_json(json.dumps({k: v for k, v in vars(row).items() if k != "run_ids"}))
        console.print_json(json.dumps(totals))
        return
    _print(rows, totals)


def _throughput(text: str | None):
    from engine.config.plan import Throughput
    from engine.config.presets import PRESET_NAMES

    if text is None:
        return None
    model, _, value = text.partition("=")
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if model not in PRESET_NAMES or rate <= 0:
        raise _fail(f"--tokens-per-s {text!r}: give PRESET=N, N > 0, PRESET one of {', '.join(PRESET_NAMES)}")
    return Throughput(model, rate)


def _measured(db: Path | None) -> tuple[dict[str, float], set[str]]:
    """Measured wall times of finished runs, when there is a database."""
    from db.queries import run_durations
    from db.store import Store, StoreError
    from engine.runs.layout import default_db_path

    store = Store(Path(db) if db else default_db_path())
    if not store.db_path.exists() and not store.root.exists():
        return {}, set()
    try:
        store.try_ingest()
        durations = run_durations(store)
    except StoreError as exc:
        raise _fail(str(exc))
    return durations, set(durations)


def _totals(rows) -> dict:
    asked = sum(r.asked for r in rows)
    shared = sum(r.shared for r in rows)
    seconds = [r.seconds for r in rows]
    saved = [r.saved_seconds for r in rows]
    return {
        "asked": asked,
        "trained": asked - shared,
        "shared": shared,
        "done": sum(r.done for r in rows),
        "tokens": sum(r.tokens for r in rows),
        "seconds": None if None in seconds else sum(s for s in seconds if s is not None),
        "saved_tokens": sum(r.saved_tokens for r in rows),
        "saved_seconds": None if None in saved else sum(s for s in saved if s is not None),
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _print(rows, totals: dict) -> None:
    table = Table("experiment", "asked", "shared", "to train", "done", "tokens", "time", "saved", box=None)
    for r in rows:
        measured = f" ({r.measured} measured)" if r.measured else ""
        table.add_row(
            r.name,
            str(r.asked),
            str(r.shared),
            str(r.asked - r.shared),
            str(r.done),
            format_tokens(r.tokens),
            _duration(r.seconds) + measured,
            _duration(r.saved_seconds),
        )
    console.print(table)
    console.print(
        f"{totals['asked']} runs asked for, {totals['trained']} trained ({totals['done']} already done): "
        f"{totals['shared']} shared runs save {format_tokens(totals['saved_tokens'])} tokens, "
        f"{_duration(totals['saved_seconds'])} of training; to train: {format_tokens(totals['tokens'])} tokens, "
        f"{_duration(totals['seconds'])}"
    )
    if totals["seconds"] is None:
        console.print("[dim]time: give --tokens-per-s PRESET=N (a measured throughput) or train some runs first[/]")
