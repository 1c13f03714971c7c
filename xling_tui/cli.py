"""The ``xling`` command line: headless runs, SQL over results, status.

Every user mistake (bad config, unknown experiment, bad SQL, busy database) ends as
one red line and exit code 2; a traceback means a bug in xling. Exit codes: 0
success, 1 some runs failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="xling",
    help="Experiment manager for cross-lingual generalisation under language imbalance.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_CONFIG = Path("experiments.toml")

DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", help="DuckDB results file [default: $XLING_DB or ./xling.duckdb]", show_default=False),
]


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class UserError(Exception):
    """Something the user can fix; shown as one line, exit code 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _db_path(db: Optional[Path]) -> Path:
    from engine.layout import default_db_path

    return Path(db) if db else default_db_path()


def _store(db: Optional[Path]):
    from db.store import Store

    return Store(_db_path(db))


def _resolve_device(device: Device) -> str:
    if device == Device.cpu:
        return "cpu"
    from engine.devices import cuda_device_count

    n = cuda_device_count()
    if device == Device.cuda and n == 0:
        raise UserError("--device cuda: no CUDA GPU is visible (NVML found none); use --device cpu")
    return "cuda" if n > 0 else "cpu"


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="experiments file")] = DEFAULT_CONFIG,
    experiment: Annotated[
        Optional[list[str]], typer.Option("--experiment", "-e", help="run only this experiment (repeatable)")
    ] = None,
    db: DbOption = None,
    device: Annotated[Device, typer.Option(help="where to train")] = Device.auto,
    max_parallel: Annotated[
        Optional[int], typer.Option(min=1, help="runs at once [default: 1 on CPU, one per GPU]", show_default=False)
    ] = None,
) -> None:
    """Train every run of the experiments in CONFIG that has not finished yet.

    Finished runs are skipped (a run's id is a hash of its resolved spec); failed or
    interrupted runs resume from their last checkpoint. Results land in the DuckDB
    file; each run's log and checkpoints in a folder beside it.
    """
    from engine.spec import SpecError, load_experiments

    try:
        experiments = load_experiments(config, experiment or None)
        dev = _resolve_device(device)
    except (SpecError, UserError) as exc:
        raise fail(str(exc))
    from engine.launch import Launcher, enqueue

    store = _store(db)
    root = store.root
    states = enqueue(root, experiments)
    todo = [s for s in states if not s.skipped]
    skipped = len(states) - len(todo)
    console.print(
        f"[bold]{len(states)}[/] runs in {', '.join(e.name for e in experiments)}: "
        f"{len(todo)} to run, {skipped} finished or running elsewhere · device [bold]{dev}[/] · db {store.db_path}"
    )
    if todo:
        try:
            _prepare_data(todo)
        except ValueError as exc:
            raise fail(str(exc))
    parallel = max_parallel or (_gpu_count() if dev == "cuda" else 1)
    launcher = Launcher(root, sink=store, max_parallel=parallel, device=dev)
    from xling_tui.progress import RunProgress

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` of xling run stops its workers like Ctrl-C
    with RunProgress(console) as progress:
        summary = launcher.run(states, on_update=progress.update)
    _final_ingest(store)
    _print_summary(summary, states)
    if summary.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if summary.failed else 0)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _gpu_count() -> int:
    from engine.devices import cuda_device_count

    return max(1, cuda_device_count())


def _prepare_data(states) -> None:
    """Tokenise each corpus once, before workers start, instead of in every worker at once."""
    from engine.data import prepare_tokens

    seen = set()
    for s in states:
        key = json.dumps([s.spec.data, s.spec.budget_tokens], sort_keys=True)
        if key not in seen:
            seen.add(key)
            with console.status(f"preparing data: {s.spec.data['corpus']} (vocab {s.spec.data['vocab_size']})"):
                prepare_tokens(s.spec.data, s.spec.budget_tokens, log=lambda m: None)


def _final_ingest(store) -> None:
    from db.store import StoreBusy

    try:
        store.ingest(wait=60)
    except StoreBusy:
        err_console.print(
            f"[yellow]{store.db_path} is held by another process; every result is kept in "
            f"{store.root} and will be ingested by the next xling command.[/]"
        )


def _print_summary(summary, states) -> None:
    parts = [f"[green]{summary.done} done[/]"]
    if summary.failed:
        parts.append(f"[red]{summary.failed} failed[/]")
    if summary.cancelled:
        parts.append(f"[yellow]{summary.cancelled} cancelled (resume with xling run)[/]")
    if summary.skipped:
        parts.append(f"{summary.skipped} skipped")
    console.print(" · ".join(parts))
    for s in states:
        if s.status == "failed" and not s.skipped:
            console.print(f"  [red]✗[/] {s.spec.experiment}/{s.spec.name} [dim]{s.spec.run_id}[/]: {s.message}")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the results (read-only)")],
    db: DbOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
) -> None:
    """Run a read-only SQL query on the results: tables experiments, runs, train_metrics, evals."""
    from db.store import StoreError

    store = _store(db)
    store.try_ingest()
    try:
        result = store.query(query)
    except StoreError as exc:
        raise fail(str(exc))
    _print_result(result.columns, result.rows, format)


def _print_result(columns: list[str], rows: list[tuple], fmt: OutputFormat) -> None:
    if fmt == OutputFormat.json:
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, ensure_ascii=False, indent=1))
    elif fmt == OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        table = Table(*columns, header_style="bold", show_lines=False)
        for r in rows:
            table.add_row(*(_cell(v) for v in r))
        console.print(table)
        console.print(f"[dim]{len(rows)} row(s)[/]")


def _cell(v: object) -> str:
    if v is None:
        return "[dim]NULL[/]"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v).replace("[", r"\[")


@app.command()
def status(
    db: DbOption = None,
    experiment: Annotated[Optional[str], typer.Option("--experiment", "-e", help="only this experiment")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
) -> None:
    """Runs with their status, progress and best perplexity per language."""
    from db.queries import run_status
    from db.store import StoreError

    store = _store(db)
    if not store.db_path.exists() and not store.root.exists():
        raise fail(f"no results at {store.db_path} yet: start with `xling run`")
    store.try_ingest()
    try:
        result = run_status(store, experiment)
    except StoreError as exc:
        raise fail(str(exc))
    if format == OutputFormat.table:
        _print_status_table(result.dicts())
    else:
        _print_result(result.columns, result.rows, format)


def _human(n: int | None) -> str:
    if n is None:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _print_status_table(rows: list[dict]) -> None:
    """A terminal-sized view; --format csv/json gives every column."""
    from xling_tui.progress import STATUS_STYLE

    table = Table("run", "experiment", "name", "status", "progress", "tokens", "best PPL", header_style="bold")
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "")
        progress = f"{100 * (r['progress'] or 0):.0f}%"
        status = f"[{style}]{r['status']}[/]"
        if r["message"] and r["status"] in ("failed", "cancelled"):
            status += f"\n[dim]{_cell(r['message'])}[/]"
        table.add_row(r["run_id"][:8], r["experiment"], _cell(r["name"]), status, progress,
                      _human(r["tokens"]), (r["best_ppl"] or "").replace(" · ", "\n"))
    console.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    console.print(" · ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no runs yet")


class ReportFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@app.command()
def report(
    experiment: Annotated[Optional[str], typer.Argument(help="experiment name [default: every one in the db]")] = None,
    db: DbOption = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="output format")] = ReportFormat.table,
    figures: Annotated[Optional[Path], typer.Option("--figures", help="also write PNG figures into this folder")] = None,
) -> None:
    """The paper's tables for an experiment: PPL and TEff per language, alignment per layer and component.

    TEff uses the experiment's monolingual scaling law, refitted whenever a run finishes.
    """
    from db.store import StoreError
    from xling_tui.report import build_report, print_tables, to_csv, to_markdown

    store = _store(db)
    if not store.db_path.exists() and not store.root.exists():
        raise fail(f"no results at {store.db_path} yet: start with `xling run`")
    store.try_ingest()
    try:
        known = [r[0] for r in store.query("SELECT name FROM experiments ORDER BY name").rows]
        if experiment is not None and experiment not in known:
            raise fail(f"no experiment named {experiment!r} in {store.db_path}; known: {', '.join(known) or 'none'}")
        reports = [build_report(store, name) for name in ([experiment] if experiment else known)]
    except StoreError as exc:
        raise fail(str(exc))
    for rep in reports:
        if format == ReportFormat.json:
            print(rep.to_json())
        elif format == ReportFormat.csv:
            sys.stdout.write(to_csv(rep))
        elif format == ReportFormat.markdown:
            sys.stdout.write(to_markdown(rep))
        else:
            print_tables(rep, console)
        if figures is not None:
            from xling_tui.figures import write_figures

            target = figures / rep.experiment if len(reports) > 1 else figures
            for path in write_figures(store, rep, target):
                err_console.print(f"wrote {path}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
