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
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xling_tui.cli.launching import CLUSTER_PANEL, BackendName, LaunchFlags, LaunchPlan, launch_options, plan_launch

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
    Path | None,
    typer.Option("--db", help="DuckDB results file [default: $XLING_DB or ./xling.duckdb]", show_default=False),
]


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class UserError(Exception):
    """Something the user can fix; shown as one line, exit code 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # "[cluster]" is text
    return typer.Exit(code)


def _db_path(db: Path | None) -> Path:
    from engine.runs.layout import default_db_path

    return Path(db) if db else default_db_path()


def _store(db: Path | None):
    from db.store import Store

    return Store(_db_path(db))


def _results(db: Path | None):
    """The store of an existing results database, caught up with its run logs."""
    store = _store(db)
    if not store.db_path.exists() and not store.root.exists():
        raise fail(f"no results at {store.db_path} yet: start with `xling run`")
    store.try_ingest()
    return store


@app.command()
@launch_options
def run(
    config: Annotated[Path, typer.Argument(help="experiments file")] = DEFAULT_CONFIG,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="run only this experiment (repeatable)")
    ] = None,
    db: DbOption = None,
    *,
    flags: LaunchFlags,
) -> None:
    """Train every run of the experiments in CONFIG that has not finished yet.

    Finished runs are skipped (a run's id is a hash of its resolved spec); failed or
    interrupted runs resume from their last checkpoint. Results land in the DuckDB
    file; each run's log and checkpoints in a folder beside it.
    """
    from engine.config.locate import SpecError
    from engine.config.spec import load_experiments

    try:
        experiments = load_experiments(config, experiment or None)
        plan = _plan(config, flags)
    except (SpecError, UserError) as exc:
        raise fail(str(exc))
    from engine.launch.queue import enqueue

    store = _store(db)
    _add_auto_baselines(store, experiments)  # what earlier results showed missing
    states = enqueue(store.root, experiments)
    code = _launch(store, states, ", ".join(e.name for e in experiments), plan)
    for _ in range(AUTO_ROUNDS):  # mixes whose MLTE fell outside the law's range: baselines that cover it
        if code != 0 or not _add_auto_baselines(store, experiments):
            break
        code = _launch(store, enqueue(store.root, experiments), 'the baselines "auto" adds', plan)
    raise typer.Exit(code)


AUTO_ROUNDS = 2  # rounds of baselines = "auto" after the first launch


def _add_auto_baselines(store, experiments) -> int:
    """Baselines that ``baselines = "auto"`` experiments still need, added to them; how many."""
    from db.auto_baselines import add_missing_baselines
    from db.store import StoreError

    if not any(e.config.baselines == "auto" for e in experiments) or not store.db_path.exists():
        return 0
    try:
        store.try_ingest()
        added = {e.name: add_missing_baselines(store, e) for e in experiments}
    except StoreError:
        return 0  # the database is busy or older: the next `xling run` adds them
    for name, specs in added.items():
        if specs:
            console.print(f'[bold]{name}[/]: {len(specs)} baselines added (baselines = "auto"): an MLTE fell outside')
    return sum(len(specs) for specs in added.values())


def _plan(config: Path, flags: LaunchFlags) -> LaunchPlan:
    """The launch the flags ask for; flags that do not fit, a bad [cluster] or no cluster are UserErrors."""
    from engine.backends.base import BackendError
    from engine.config.locate import SpecError
    from xling_tui.cli.cluster import ClusterUsageError

    try:
        return plan_launch(config, flags)
    except (SpecError, ClusterUsageError, BackendError) as exc:
        raise UserError(str(exc)) from None


def _launch(store, states, what: str, plan: LaunchPlan) -> int:
    """Shared by run and resume: prepare data, start workers, show progress; the exit code."""
    from engine.launch.slots import SlotRegistryError
    from xling_tui.cli.progress import RunProgress

    todo = [s for s in states if not s.skipped]
    on = f" on [bold]{plan.where}[/]" if plan.cluster else ""
    console.print(
        f"[bold]{len(states)}[/] runs in {what}: {len(todo)} to run, {len(states) - len(todo)} finished or "
        f"running elsewhere · device [bold]{plan.device}[/]{on}\n[dim]db {store.db_path}[/]"
    )
    try:  # before the data: a bad XLING_CPUS or CPU slot folder is said at once
        launcher = plan.launcher(store.root, store, len(todo))
    except SlotRegistryError as exc:
        raise fail(str(exc))
    if todo:
        try:
            _prepare_data(todo)
        except ValueError as exc:
            raise fail(str(exc))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` of xling run stops workers like Ctrl-C
    try:
        with RunProgress(console) as progress:
            summary = launcher.run(states, on_update=progress.update)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if launcher.sync_error:
        err_console.print(f"[yellow]{launcher.sync_error}[/]")
    _final_ingest(store)
    _print_summary(summary, states)
    if summary.interrupted:
        raise typer.Exit(130)
    return 1 if summary.failed else 0


def _print_detached(states) -> None:
    from xling_tui.cli.cluster import where

    for s in states:
        if not s.skipped and s.status in ("queued", "running"):
            job = where({"backend": s.backend, "job_id": s.job_id, "host": None, "pid": None})
            console.print(f"  {s.spec.run_id[:8]} {s.spec.experiment}/{s.spec.name}: {job}")
    console.print(
        "[dim]`xling status` follows them, `xling cancel RUN` stops one, `xling logs RUN -f` shows its log[/]"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _prepare_data(states) -> None:
    """Tokenise each corpus once, before workers start, instead of in every worker at once."""
    from engine.data.prepare import prepare_run_data

    seen = set()
    for s in states:
        data = s.spec.data
        key = repr(s.spec.data_recipe())  # what is tokenised: the points of a tokens sweep share one
        if key not in seen:
            seen.add(key)
            what = data.corpus if data.kind == "cloned" else ", ".join(s.spec.languages)
            with console.status(f"preparing data: {what} (vocab {data.vocab_size})"):
                prepare_run_data(s.spec.data_recipe(), log=lambda m: None)


def _final_ingest(store) -> None:
    from db.store import StoreBusy, StoreError

    try:
        store.ingest(wait=60)
    except StoreBusy:
        err_console.print(
            f"[yellow]{store.db_path} is held by another process; every result is kept in "
            f"{store.root} and will be ingested by the next xling command.[/]"
        )
    except StoreError as exc:
        err_console.print(f"[yellow]{exc}; every result is kept in {store.root}.[/]")


def _print_summary(summary, states) -> None:
    parts = [f"[green]{summary.done} done[/]"]
    if summary.failed:
        parts.append(f"[red]{summary.failed} failed[/]")
    if summary.cancelled:
        parts.append(f"[yellow]{summary.cancelled} cancelled (resume with xling run)[/]")
    if summary.skipped:
        parts.append(f"{summary.skipped} skipped")
    if summary.detached:
        parts.append(f"[cyan]{summary.detached} submitted, still on the cluster[/]")
    console.print(" · ".join(parts))
    if summary.detached:
        _print_detached(states)
    for s in states:
        if s.status == "failed" and not s.skipped:
            console.print(f"  [red]✗[/] {s.spec.experiment}/{s.spec.name} [dim]{s.spec.run_id}[/]: {s.message}")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the results (read-only)")],
    db: DbOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
) -> None:
    """Run a read-only SQL query on the results (runs, train_metrics, evals, teff, align_*, ...).

    Tables: experiments, runs, train_metrics, evals, align_embeddings, align_hidden,
    align_gradients, scaling_fits, teff; see docs/database.md.
    """
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
    experiment: Annotated[str | None, typer.Option("--experiment", "-e", help="only this experiment")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
) -> None:
    """Runs with their status, progress and best perplexity per language."""
    from db.queries import run_status
    from db.store import StoreError
    from xling_tui.cli.cluster import reconcile_cluster_runs

    store = _results(db)
    try:
        if reconcile_cluster_runs(store):  # a job that ended without its worker reporting
            store.try_ingest()
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
    from xling_tui.cli.cluster import where
    from xling_tui.cli.progress import STATUS_STYLE

    table = Table(
        "run", "experiment", "name", "status", "progress", "tokens", "device", "where", "best PPL", header_style="bold"
    )
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "")
        progress = f"{100 * (r['progress'] or 0):.0f}%"
        status = f"[{style}]{r['status']}[/]"
        if r["message"] and r["status"] in ("failed", "cancelled", "queued"):  # queued: why it waits
            status += f"\n[dim]{_cell(r['message'])}[/]"
        table.add_row(
            r["run_id"][:8],
            r["experiment"],
            _cell(r["name"]),
            status,
            progress,
            _human(r["tokens"]),
            r["device"] or "",
            where(r),
            (r["best_ppl"] or "").replace(" · ", "\n"),
        )
    console.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    console.print(" · ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no runs yet")


RunIds = Annotated[list[str], typer.Argument(help="run ids (a unique prefix is enough; see `xling status`)")]


def _run_dirs(store, ids: list[str]) -> list[Path]:
    from engine.launch.state import find_runs

    try:
        return find_runs(store.root, ids)
    except LookupError as exc:
        raise fail(str(exc))


@app.command()
def cancel(runs: RunIds, db: DbOption = None) -> None:
    """Stop runs: a running worker checkpoints and stops (resumable), a queued run leaves the queue."""
    from engine.backends.base import BackendError
    from engine.launch.queue import cancel as cancel_run
    from engine.launch.state import state_of

    store = _store(db)
    for run_dir in _run_dirs(store, runs):
        state = state_of(run_dir)
        try:
            said = cancel_run(state)
        except BackendError as exc:
            raise fail(f"{run_dir.name}: {exc}")
        console.print(f"{run_dir.name} {state.spec.experiment}/{state.spec.name}: {said}")
    store.try_ingest()


@app.command()
@launch_options
def resume(
    runs: Annotated[list[str] | None, typer.Argument(help="run ids or unique prefixes")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="every failed or cancelled run in the database")] = False,
    db: DbOption = None,
    config: Annotated[
        Path,
        typer.Option(
            "--config", help="experiments file whose \\[cluster] settings apply", rich_help_panel=CLUSTER_PANEL
        ),
    ] = DEFAULT_CONFIG,
    *,
    flags: LaunchFlags,
) -> None:
    """Continue failed or cancelled runs from their last checkpoint, with the same loss trajectory."""
    from engine.launch.queue import requeue
    from engine.launch.state import all_run_dirs, state_of

    if not runs and not failed:
        raise fail("name the runs to resume, or give --failed for every failed or cancelled run")
    store = _store(db)
    if failed:
        states = [s for s in map(state_of, all_run_dirs(store.root)) if s.status in ("failed", "cancelled")]
    else:
        states = [state_of(d) for d in _run_dirs(store, runs or [])]
    if not states:
        console.print("nothing to resume: no failed or cancelled runs")
        raise typer.Exit(0)
    last = {s.backend for s in states if s.backend}
    if flags.cluster.backend is None and len(last) == 1:  # where the runs last went, when they agree
        flags = replace(flags, cluster=replace(flags.cluster, backend=BackendName(last.pop())))
    try:
        plan = _plan(config, flags)
    except UserError as exc:
        raise fail(str(exc))
    raise typer.Exit(_launch(store, requeue(states), "the resumed runs", plan))


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(help="run id or unique prefix")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the run ends")] = False,
    db: DbOption = None,
) -> None:
    """A run's worker log (what its process printed: progress, evaluations, errors)."""
    import time

    from engine.launch.state import state_of
    from engine.runs.layout import WORKER_LOG

    (run_dir,) = _run_dirs(_store(db), [run_id])
    path, offset, next_check = run_dir / WORKER_LOG, 0, 0.0
    try:
        while True:
            if path.exists():
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                offset += len(chunk)
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()
            if not follow:
                break
            state = state_of(run_dir)
            if state.status not in ("queued", "running"):
                break
            if time.monotonic() >= next_check:  # a cluster run's liveness costs a scheduler call
                next_check = time.monotonic() + (30.0 if state.on_cluster else 0.0)
                if (state.status == "running" or state.on_cluster) and not state.is_alive():
                    break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    if not path.exists() and not follow:
        err_console.print(f"[dim]{run_id}: no worker log yet (the run has not started)[/]")


@app.command()
def gpus(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh every second until Ctrl-C")] = False,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")] = OutputFormat.table,
) -> None:
    """GPUs as NVML sees them: memory, utilisation, temperature, power, and whose processes run there."""
    from engine.launch.devices import free_gpus, snapshot, xling_worker_pids
    from xling_tui.cli import gpus as view

    ours = xling_worker_pids()
    if watch:
        view.watch(console, our_pids=ours)
        return
    snap = snapshot(our_pids=ours)
    if format == OutputFormat.json:
        print(view.to_json(snap))
    else:
        console.print(view.render_table(snap, free=free_gpus(snap, ours)))


class ReportFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@app.command()
def report(
    experiment: Annotated[str | None, typer.Argument(help="experiment name [default: every one in the db]")] = None,
    db: DbOption = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="output format")] = ReportFormat.table,
    figures: Annotated[Path | None, typer.Option("--figures", help="also write PNG figures into this folder")] = None,
) -> None:
    """The paper's tables for an experiment: PPL and TEff per language, alignment per layer and component.

    TEff uses the experiment's monolingual scaling law, refitted whenever a run finishes.
    """
    from db.store import StoreError
    from xling_tui.cli.figures import figures_unavailable
    from xling_tui.report import build_report, print_tables, to_csv, to_markdown

    if figures is not None and (why := figures_unavailable()):
        raise fail(why)
    store = _results(db)
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
            from xling_tui.cli.figures import write_figures

            target = figures / rep.experiment if len(reports) > 1 else figures
            for path in write_figures(store, rep, target):
                err_console.print(f"wrote {path}")


from xling_tui.cli.data import data_app  # noqa: E402
from xling_tui.cli.plan import plan_command  # noqa: E402

app.add_typer(data_app, name="data")
app.command("plan")(plan_command)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
