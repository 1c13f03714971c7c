"""The ``xling`` command line: headless runs, SQL over results, status.

Every user mistake (bad config, unknown experiment, bad SQL, busy database) is an
``XlingError``; ``XlingGroup`` turns it into one red line and exit code 2, in one
place for every command. A traceback means a bug in xling. Exit codes: 0 success,
1 some runs failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from engine.errors import XlingError
from xling_tui.cli.launching import CLUSTER_PANEL, BackendName, LaunchFlags, LaunchPlan, launch_options, plan_launch
from xling_tui.cli.output import console, err_console, fail, warn
from xling_tui.sql_value import value_text


class XlingGroup(TyperGroup):
    """The one ``except`` of the CLI: a user's mistake, from any command, is its message
    (printed as text, so a message such as "[cluster.slurm] time" keeps its brackets)."""

    def invoke(self, ctx: Any) -> Any:  # Any: click's Context, or the copy newer typers vendor
        try:
            return super().invoke(ctx)
        except XlingError as exc:
            raise fail(str(exc)) from None


app = typer.Typer(
    cls=XlingGroup,
    name="xling",
    help="Experiment manager for cross-lingual generalisation under language imbalance.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
DEFAULT_CONFIG = Path("experiments.toml")

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB results file [default: $XLING_DB or ./xling.duckdb]", show_default=False),
]


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class UserError(XlingError):
    """Command-line input that cannot work (a flag that does not fit, no results yet)."""


def _db_path(db: Path | None) -> Path:
    from engine.runs.layout import default_db_path

    return Path(db) if db else default_db_path()


def _store(db: Path | None):
    from db.store import Store

    return Store(_db_path(db))


def _results(db: Path | None):
    """The store of an existing results database, caught up with its run logs (a folder,
    another program's file or a newer schema is a StoreError)."""
    store = _store(db)
    if not store.db_path.exists() and not store.root.exists():
        raise UserError(f"no results at {store.db_path} yet: start with `xling run`")
    _catch_up(store)
    return store


def _catch_up(store) -> None:
    """Readers ingest first; a database that cannot take new results (read-only here, or
    a full disk) is still read as it is, with a note saying what is missing."""
    from db.store import StoreDiskFull, StoreReadOnly

    try:
        store.try_ingest()
    except (StoreReadOnly, StoreDiskFull) as exc:
        err_console.print(f"[yellow]note:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


class _WarningsToStderr(logging.Handler):
    """engine's and db's warnings (a log line that is not an event, ...): a yellow line each."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[yellow]warning:[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


_WARNINGS = _WarningsToStderr(logging.WARNING)


@app.callback()
def _setup() -> None:
    for name in ("engine", "db"):
        if _WARNINGS not in logging.getLogger(name).handlers:
            logging.getLogger(name).addHandler(_WARNINGS)


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

    Finished runs are skipped (a run's id is a hash of what it computes); failed or
    interrupted runs resume from their last checkpoint. Results land in the DuckDB
    file; each run's log and checkpoints in a folder beside it.
    """
    from engine.config.spec import check_inputs, load_experiments

    experiments = load_experiments(config, experiment or None)
    check_inputs(experiments)
    plan = plan_launch(config, flags)
    from engine.launch.preflight import locate_in
    from engine.launch.queue import enqueue, unfinished

    store = _writable_store(db)
    _add_auto_baselines(store, experiments)  # what earlier results showed missing
    pending = unfinished(store.root, experiments)
    launcher = _launcher(store, plan, len(pending))
    _preflight(pending, locate_in(experiments), plan)
    states = enqueue(store.root, experiments)
    code = _launch(store, states, ", ".join(e.name for e in experiments), plan, launcher)
    for _ in range(AUTO_ROUNDS):  # mixes whose MLTE fell outside the law's range: baselines that cover it
        if code != 0 or not _add_auto_baselines(store, experiments):
            break
        pending = unfinished(store.root, experiments)
        launcher = _launcher(store, plan, len(pending))
        _preflight(pending, locate_in(experiments), plan)
        code = _launch(store, enqueue(store.root, experiments), 'the baselines "auto" adds', plan, launcher)
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


def _writable_store(db: Path | None):
    """The store a launch will ingest into, opened once first: a folder, another
    program's file, a read-only copy or a newer schema stops here (a StoreError), before
    any run is queued."""
    store = _store(db)
    store.try_ingest()
    return store


def _preflight(specs, locate, plan: LaunchPlan) -> None:
    """Sizes against this machine (a cluster's nodes are not known here), then every
    distinct corpus tokenised and checked, before anything is queued (a SpecError)."""
    from engine.launch import preflight

    if plan.cluster is None:
        gpu = _smallest_gpu_bytes(plan.gpus) if plan.device == "cuda" else None
        preflight.check_memory(specs, locate, preflight.machine_memory(), gpu)
    for job in preflight.data_jobs(specs):
        with console.status(f"preparing data: {job.what}"):
            preflight.prepare(job, locate)


def _smallest_gpu_bytes(allowed: list[int] | None) -> int | None:
    from engine.launch.devices import snapshot

    sizes = [g.memory_total_mb for g in snapshot().gpus if allowed is None or g.index in allowed]
    return int(min(sizes) * 2**20) if sizes else None


def _launcher(store, plan: LaunchPlan, n_runs: int):
    """The launcher and its pool, made before anything is queued or prepared: a bad
    XLING_CPUS or CPU slot folder (SlotRegistryError) is said at once."""
    return plan.launcher(store.root, store, n_runs)


def _launch(store, states, what: str, plan: LaunchPlan, launcher) -> int:
    """Shared by run and resume: start workers, show progress; the exit code."""
    from xling_tui.cli.progress import RunProgress

    todo = [s for s in states if not s.skipped]
    on = f" on [bold]{plan.where}[/]" if plan.cluster else ""
    console.print(
        f"[bold]{len(states)}[/] runs in {escape(what)}: {len(todo)} to run, {len(states) - len(todo)} finished or "
        f"running elsewhere · device [bold]{plan.device}[/]{on}\n[dim]db {escape(str(store.db_path))}[/]"
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` of xling run stops workers like Ctrl-C
    try:
        with RunProgress(console) as progress:
            summary = launcher.run(states, on_update=progress.update)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if launcher.sync_error:
        warn(str(launcher.sync_error))
    _final_ingest(store)
    _print_summary(summary, states)
    if summary.interrupted:
        raise typer.Exit(130)
    return 1 if summary.failed else 0


def _print_detached(states) -> None:
    from engine.runs.status import LIVE
    from xling_tui.cli.cluster import where

    for s in states:
        if not s.skipped and s.status in LIVE:
            job = where({"backend": s.backend, "job_id": s.job_id, "host": None, "pid": None})
            console.print(Text(f"  {s.spec.run_id[:8]} {s.spec.experiment}/{s.spec.name}: {job}"))
    console.print(
        "[dim]`xling status` follows them, `xling cancel RUN` stops one, `xling logs RUN -f` shows its log[/]"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _final_ingest(store) -> None:
    from db.store import StoreBusy, StoreDiskFull, StoreError, StoreReadOnly

    try:
        store.ingest(wait=60)
    except StoreBusy:
        warn(
            f"{store.db_path} is held by another process; every result is kept in "
            f"{store.root} and will be ingested by the next xling command."
        )
    except (StoreReadOnly, StoreDiskFull) as exc:  # their message says where the results wait
        err_console.print(f"[yellow]{escape(str(exc))}[/]")
    except StoreError as exc:
        warn(f"{exc}; every result is kept in {store.root}.")


def _print_summary(summary, states) -> None:
    from engine.runs.status import RunStatus

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
        if s.status is RunStatus.FAILED and not s.skipped:
            console.print(
                Text.assemble(
                    "  ", ("✗", "red"), f" {s.spec.experiment}/{s.spec.name} ", (s.spec.run_id, "dim"), f": {s.message}"
                )
            )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the results (read-only)")],
    db: DbOption = None,
    format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="output format; csv and json stream every row")
    ] = OutputFormat.table,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="rows a table shows (it says how many it left out)")
    ] = 1000,
    allow_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-files",
            help="also let the query read files in this folder (or this file), e.g. your own CSV or "
            "Parquet; read only, never written (repeatable)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a read-only SQL query on the results (runs, train_metrics, evals, teff, align_*, ...).

    Tables: experiments, runs, train_metrics, evals, align_embeddings, align_hidden,
    align_gradients, scaling_fits, teff; see docs/database.md.

    Read-only: only the results database is readable; nothing is written, attached,
    downloaded, installed or loaded (no COPY, ATTACH, INSTALL/LOAD, no read_csv of other
    files; DuckDB's external access is off and its settings are locked). --allow-files
    opens chosen files to reading, never to writing.
    """
    from db.user_sql import UserQuery
    from xling_tui.cli import output

    store = _results(db)
    user_query = UserQuery(store, query, allow_files=allow_files or ())
    try:
        if format == OutputFormat.table:
            result = user_query.run(max_rows, count_rest=True)
            output.print_table(result.columns, result.rows, result.left_out)
            return
        with user_query.open() as rows:
            write = output.write_json if format == OutputFormat.json else output.write_csv
            write(rows.columns, rows.batches(), sys.stdout)
            sys.stdout.flush()
    except BrokenPipeError:  # `| head` read what it wanted: stop quietly, as cat does
        output.stop_writing_stdout()


def _print_result(columns: list[str], rows: list[tuple], fmt: OutputFormat) -> None:
    from xling_tui.cli import output

    if fmt == OutputFormat.json:
        output.write_json(columns, [rows], sys.stdout)
    elif fmt == OutputFormat.csv:
        output.write_csv(columns, [rows], sys.stdout)
    else:
        output.print_table(columns, rows)


@app.command()
def status(
    db: DbOption = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e", help="only this experiment")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
) -> None:
    """Runs with their status, progress and best perplexity per language."""
    from db.cluster_runs import reconcile_cluster_runs
    from db.queries import run_status

    store = _results(db)
    if reconcile_cluster_runs(store):  # job states, and jobs that ended without their worker reporting
        store.try_ingest()
    result = run_status(store, experiment)
    if format == OutputFormat.table:
        rows = result.dicts()
        _print_status_table(rows)
        _print_seed_summaries(store, list(dict.fromkeys(r["experiment"] for r in rows if r["experiment"])))
    else:
        _print_result(result.columns, result.rows, format)


def _print_seed_summaries(store, experiments: list[str]) -> None:
    """Schedules with several finished seeds: final PPL and TEff as mean [95% interval] n."""
    from db.summary import experiment_summary

    table = Table("experiment", "schedule", "final PPL (95%)", "TEff (95%)", header_style="bold")
    for exp in experiments:
        summaries = experiment_summary(store, exp)
        several = {r.name for r in summaries if r.n > 1}
        for name in dict.fromkeys(r.name for r in summaries if r.name in several):
            cells = {
                m: "\n".join(f"{r.language} {r.text}" for r in summaries if r.name == name and r.measure == m)
                for m in ("ppl", "teff")
            }
            table.add_row(exp, value_text(name), value_text(cells["ppl"]), value_text(cells["teff"]))
    if table.row_count:
        console.print("over seeds (mean [95% interval] n=seeds; `xling report EXP` for everything):")
        console.print(table)


def _human(n: int | None) -> str:
    if n is None:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _print_status_table(rows: list[dict]) -> None:
    """One line per run at any width (columns left out first: where, tokens, device; the
    experiment when all runs share one; where last of those when runs are on a cluster,
    since the job id is how to find them); why a run failed, was cancelled or waits is a
    line of its own under the table; --format csv/json gives every column."""
    from engine.runs.status import RunStatus
    from xling_tui.cli.cluster import where
    from xling_tui.fit_width import Column, print_fitted
    from xling_tui.status_style import status_style

    one_experiment = len({r["experiment"] for r in rows}) <= 1
    on_cluster = any(r["backend"] not in (None, "local") for r in rows)
    columns = [
        Column("run", essential=True),
        Column("experiment", priority=5 if one_experiment else 40),
        Column("name", essential=True),
        Column("status", essential=True),
        Column("progress", priority=60, justify="right"),
        Column("tokens", priority=20, justify="right"),
        Column("device", priority=30),
        Column("where", priority=45 if on_cluster else 10),
        Column("best PPL", priority=50),
    ]
    table_rows = [
        [
            r["run_id"][:8],
            Text(r["experiment"] or ""),
            Text(r["name"] or ""),
            Text(r["status"], style=status_style(r["status"])),
            f"{100 * (r['progress'] or 0):.0f}%",
            _human(r["tokens"]),
            Text(r["device"] or ""),
            Text(where(r)),
            Text(r["best_ppl"] or ""),
        ]
        for r in rows
    ]
    print_fitted(console, columns, table_rows)
    explained = (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.QUEUED)  # why it ended; queued: why it waits
    for r in rows:  # its own line, never wrapped into the table
        if r["message"] and r["status"] in explained:
            console.print(Text(f"{r['run_id'][:8]} {r['name']}: {r['message']}", style="dim"), highlight=False)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    console.print(" · ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no runs yet")


RunIds = Annotated[list[str], typer.Argument(help="run ids (a unique prefix is enough; see `xling status`)")]


def _run_dirs(store, ids: list[str]) -> list[Path]:
    from engine.launch.state import find_runs

    return find_runs(store.root, ids)


@app.command()
def cancel(runs: RunIds, db: DbOption = None) -> None:
    """Stop runs: a running worker checkpoints and stops (resumable), a queued run leaves the queue."""
    from engine.launch.queue import cancel as cancel_run

    store = _store(db)
    for run_dir in _run_dirs(store, runs):
        (state,) = _states([run_dir])
        said = cancel_run(state)
        console.print(Text(f"{run_dir.name} {state.spec.experiment}/{state.spec.name}: {said}"))
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
    from engine.launch.preflight import locate_run
    from engine.launch.queue import requeue
    from engine.launch.state import all_run_dirs
    from engine.runs.status import RunStatus

    if not runs and not failed:
        raise UserError("name the runs to resume, or give --failed for every failed or cancelled run")
    store = _store(db)
    if failed:
        everything = _states(all_run_dirs(store.root), skip_damaged=True)
        states = [s for s in everything if s.status in (RunStatus.FAILED, RunStatus.CANCELLED)]
    else:
        states = _states(_run_dirs(store, runs or []))
    if not states:
        console.print("nothing to resume: no failed or cancelled runs")
        raise typer.Exit(0)
    last = {s.backend for s in states if s.backend}
    if flags.cluster.backend is None and len(last) == 1:  # where the runs last went, when they agree
        flags = replace(flags, cluster=replace(flags.cluster, backend=BackendName(last.pop())))
    plan = plan_launch(config, flags)
    launcher = _launcher(store, plan, len(states))
    _preflight([s.spec for s in states], locate_run, plan)
    raise typer.Exit(_launch(store, requeue(states), "the resumed runs", plan, launcher))


def _states(run_dirs: list[Path], skip_damaged: bool = False) -> list:
    """Run states from their folders; a damaged spec.json is an error, or with
    ``skip_damaged`` a warning (one bad folder must not stop `resume --failed`)."""
    from engine.config.locate import SpecError
    from engine.launch.state import state_of

    out = []
    for run_dir in run_dirs:
        try:
            out.append(state_of(run_dir))
        except SpecError as exc:
            if not skip_damaged:
                raise
            warn(f"skipped {exc}")
    return out


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(help="run id or unique prefix")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the run ends")] = False,
    db: DbOption = None,
) -> None:
    """A run's worker log (what its process printed: progress, evaluations, errors)."""
    import time

    from engine.runs.layout import WORKER_LOG
    from engine.runs.status import TERMINAL, RunStatus
    from engine.runs.tail import LogTail

    (run_dir,) = _run_dirs(_store(db), [run_id])
    path, next_check = run_dir / WORKER_LOG, 0.0
    tail = LogTail(path)
    try:
        while True:
            if chunk := tail.read():
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()
            if not follow:
                break
            (state,) = _states([run_dir])
            if state.status in TERMINAL:
                break
            if time.monotonic() >= next_check:  # a cluster run's liveness costs a scheduler call
                next_check = time.monotonic() + (30.0 if state.on_cluster else 0.0)
                if (state.status is RunStatus.RUNNING or state.on_cluster) and not state.is_alive():
                    break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    if not path.exists() and not follow:
        err_console.print(Text(f"{run_id}: no worker log yet (the run has not started)", style="dim"))


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
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--compare",
            metavar="A B",
            help="two schedules of EXPERIMENT paired by seed: the change in PPL, TEff and alignment, with a verdict",
        ),
    ] = None,
) -> None:
    """The paper's tables for an experiment: PPL and TEff per language, alignment per layer and component.

    Every value is the mean over seeds with its 95% interval and the number of seeds; TEff
    uses the experiment's monolingual scaling law (refitted whenever a run finishes) and
    its interval includes the law's error.
    """
    from xling_tui.cli.figures import figures_unavailable
    from xling_tui.report import build_report, print_tables, to_csv, to_markdown

    if figures is not None and (why := figures_unavailable()):
        raise UserError(why)
    store = _results(db)
    known = [r[0] for r in store.query("SELECT name FROM experiments ORDER BY name").rows]
    if experiment is not None and experiment not in known:
        raise UserError(f"no experiment named {experiment!r} in {store.db_path}; known: {', '.join(known) or 'none'}")
    if compare is not None:
        reports = [_comparison(store, experiment, compare)]
        figures = None  # the figures are the experiment's, not a comparison's
    else:
        reports = [build_report(store, name) for name in ([experiment] if experiment else known)]
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
            from engine.runs.layout import name_problem
            from xling_tui.cli.figures import write_figures

            problem = name_problem(rep.experiment) if len(reports) > 1 else None
            if problem:  # names in the database come from run folders: never a path unchecked
                warn(f"no figures for this experiment: {problem}")
                continue
            target = figures / rep.experiment if len(reports) > 1 else figures
            for path in write_figures(store, rep, target):
                err_console.print(Text(f"wrote {path}"))


def _comparison(store, experiment: str | None, names: tuple[str, str]):
    """The paired comparison of two finished schedules; a clear exit 2 for a wrong name."""
    from db.paired import schedule_names
    from xling_tui.report import build_comparison

    if experiment is None:
        raise UserError("--compare needs the experiment: xling report EXPERIMENT --compare A B")
    done = schedule_names(store, experiment)
    for name in names:
        if name not in done:
            raise UserError(
                f"--compare: no finished schedule named {name!r} in experiment {experiment!r}; "
                f"finished: {', '.join(repr(n) for n in done) or 'none yet'}"
            )
    if names[0] == names[1]:
        raise UserError("--compare needs two different schedules")
    return build_comparison(store, experiment, *names)


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
