"""The ``xling`` command line: headless runs, SQL over results, status.

Every user mistake (bad config, unknown experiment, bad SQL, busy database) ends as
one red line and exit code 2; a traceback means a bug in xling. Exit codes: 0
success, 1 some runs failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

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
    Path | None,
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


def _resolve_device(device: Device) -> str:
    if device == Device.cpu:
        return "cpu"
    from engine.launch.devices import cuda_device_count

    n = cuda_device_count()
    if device == Device.cuda and n == 0:
        raise UserError("--device cuda: no CUDA GPU is visible (NVML found none); use --device cpu")
    return "cuda" if n > 0 else "cpu"


GpusOption = Annotated[
    str | None, typer.Option("--gpus", help="only these GPU indices, e.g. 0,2 (PCI order)", show_default=False)
]
RunsPerGpuOption = Annotated[int, typer.Option("--runs-per-gpu", min=1, help="runs sharing one GPU")]
MaxParallelOption = Annotated[
    int | None, typer.Option(min=1, help="runs at once [default: 1 on CPU, one per GPU slot]", show_default=False)
]
DeviceOption = Annotated[Device, typer.Option(help="where to train")]


class BackendName(str, Enum):
    local = "local"
    slurm = "slurm"
    ray = "ray"


_CLUSTER = "Cluster (\\[cluster.slurm] / \\[cluster.ray] in the experiments file; flags override)"
BackendOption = Annotated[
    BackendName | None,
    typer.Option(
        "--backend",
        help="where runs train: local processes, Slurm jobs (submitit), Ray tasks "
        "\\[default: local; resume: where the run last went]",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]
PartitionOption = Annotated[
    str | None, typer.Option(help="Slurm partition", show_default=False, rich_help_panel=_CLUSTER)
]
GpusPerRunOption = Annotated[
    int | None,
    typer.Option(
        "--gpus-per-run",
        min=0,
        help="GPUs per run (Slurm job or Ray task); 0 trains on CPUs \\[default: 1]",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]
CpusPerRunOption = Annotated[
    int | None,
    typer.Option(
        "--cpus-per-run",
        min=1,
        help="CPU cores per run \\[default: Slurm 8, Ray 1]",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]
TimeOption = Annotated[
    str | None,
    typer.Option(
        "--time",
        help="Slurm time limit per job: minutes, HH:MM:SS or D-HH:MM:SS; a run that needs longer is "
        "checkpointed and requeued \\[default: 4:00:00]",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]
AccountOption = Annotated[str | None, typer.Option(help="Slurm account", show_default=False, rich_help_panel=_CLUSTER)]
SbatchOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sbatch",
        help="extra sbatch option KEY=VALUE, e.g. constraint=a100 (repeatable)",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address", help="Ray cluster to join \\[default: auto]", show_default=False, rich_help_panel=_CLUSTER
    ),
]
DetachOption = Annotated[
    bool,
    typer.Option(
        "--detach", help="Slurm: submit every run and return; `xling status` follows the jobs", rich_help_panel=_CLUSTER
    ),
]


def _cluster(config: Path, backend: BackendName | None, device: Device, detach: bool, **flags):
    """The cluster backend and placement, or None for local runs (errors as UserError)."""
    from engine.backends.base import BackendError
    from engine.config.locate import SpecError
    from xling_tui.cli.cluster import ClusterUsageError, cluster_backend

    name = (backend or BackendName.local).value
    if detach and name != "slurm":
        raise UserError("--detach needs --backend slurm (Ray runs live as long as their xling run)")
    try:
        return cluster_backend(config, name, device.value, flags)
    except (SpecError, ClusterUsageError, BackendError) as exc:
        raise UserError(str(exc)) from None


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="experiments file")] = DEFAULT_CONFIG,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="run only this experiment (repeatable)")
    ] = None,
    db: DbOption = None,
    device: DeviceOption = Device.auto,
    max_parallel: MaxParallelOption = None,
    gpus: GpusOption = None,
    runs_per_gpu: RunsPerGpuOption = 1,
    backend: BackendOption = None,
    partition: PartitionOption = None,
    gpus_per_run: GpusPerRunOption = None,
    cpus_per_run: CpusPerRunOption = None,
    time: TimeOption = None,
    account: AccountOption = None,
    sbatch: SbatchOption = None,
    ray_address: RayAddressOption = None,
    detach: DetachOption = False,
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
        cluster = _cluster(
            config,
            backend,
            device,
            detach,
            partition=partition,
            gpus_per_run=gpus_per_run,
            cpus_per_run=cpus_per_run,
            time=time,
            account=account,
            sbatch=sbatch,
            ray_address=ray_address,
        )
        dev = cluster[1].device if cluster else _resolve_device(device)
        allowed = _parse_gpus(gpus)
    except (SpecError, UserError) as exc:
        raise fail(str(exc))
    from engine.launch.queue import enqueue

    store = _store(db)
    states = enqueue(store.root, experiments)
    names = ", ".join(e.name for e in experiments)
    _launch(store, states, names, dev, max_parallel, allowed, runs_per_gpu, cluster, detach)


def _parse_gpus(gpus: str | None) -> list[int] | None:
    if gpus is None:
        return None
    try:
        return [int(g) for g in gpus.split(",") if g.strip()]
    except ValueError:
        raise UserError(f"--gpus {gpus!r}: give GPU indices separated by commas, e.g. 0,2") from None


def _launch(
    store,
    states,
    what: str,
    dev: str,
    max_parallel: int | None,
    allowed: list[int] | None,
    runs_per_gpu: int,
    cluster=None,
    detach: bool = False,
) -> None:
    """Shared by run and resume: prepare data, start workers, show progress, exit with a code."""
    from engine.launch.launcher import Launcher
    from engine.launch.pools import ClusterPool, CpuPool, GpuPool
    from xling_tui.cli.progress import RunProgress

    todo = [s for s in states if not s.skipped]
    on = f" on [bold]{cluster[0].name}[/]" if cluster else ""
    console.print(
        f"[bold]{len(states)}[/] runs in {what}: {len(todo)} to run, {len(states) - len(todo)} finished or "
        f"running elsewhere · device [bold]{dev}[/]{on}\n[dim]db {store.db_path}[/]"
    )
    if todo:
        try:
            _prepare_data(todo)
        except ValueError as exc:
            raise fail(str(exc))
    launcher = Launcher(store.root, sink=store)
    if cluster:
        backend, placement = cluster
        launcher = Launcher(store.root, sink=store, backend=backend, detach=detach)
        launcher.max_parallel = max_parallel or max(1, len(todo))
        launcher.pool = ClusterPool(placement, launcher.max_parallel)
    elif dev == "cuda":
        launcher.pool = GpuPool(allowed, runs_per_gpu, our_pids=launcher.our_pids)
        launcher.max_parallel = max_parallel or launcher.pool.capacity
    else:
        launcher.max_parallel = max_parallel or 1
        launcher.pool = CpuPool(launcher.max_parallel)
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
    raise typer.Exit(1 if summary.failed else 0)


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
    from engine.data.real_languages import prepare_run_data

    seen = set()
    for s in states:
        key = json.dumps([s.spec.data, s.spec.languages, s.spec.budget_tokens], sort_keys=True)
        if key not in seen:
            seen.add(key)
            what = (
                s.spec.data["corpus"] if s.spec.data.get("kind", "cloned") == "cloned" else ", ".join(s.spec.languages)
            )
            with console.status(f"preparing data: {what} (vocab {s.spec.data['vocab_size']})"):
                prepare_run_data(s.spec.data, s.spec.languages, s.spec.budget_tokens, log=lambda m: None)


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
        from db.export import csv_text

        sys.stdout.write(csv_text(columns, rows))
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
    """One line per run at any width (columns left out first: where, tokens, device; the
    experiment when all runs share one; where last of those when runs are on a cluster,
    since the job id is how to find them); --format csv/json gives every column."""
    from xling_tui.cli.cluster import where
    from xling_tui.cli.progress import STATUS_STYLE
    from xling_tui.fit_width import Column, print_fitted

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
            _cell(r["experiment"]),
            _cell(r["name"]),
            f"[{STATUS_STYLE.get(r['status'], '')}]{r['status']}[/]",
            f"{100 * (r['progress'] or 0):.0f}%",
            _human(r["tokens"]),
            _cell(r["device"] or ""),
            _cell(where(r)),
            r["best_ppl"] or "",
        ]
        for r in rows
    ]
    print_fitted(console, columns, table_rows)
    for r in rows:  # why a run stopped: its own line, never wrapped into the table
        if r["message"] and r["status"] in ("failed", "cancelled"):
            console.print(f"[dim]{r['run_id'][:8]} {_cell(r['name'])}: {_cell(r['message'])}[/]", highlight=False)
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
def resume(
    runs: Annotated[list[str] | None, typer.Argument(help="run ids or unique prefixes")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="every failed or cancelled run in the database")] = False,
    db: DbOption = None,
    device: DeviceOption = Device.auto,
    max_parallel: MaxParallelOption = None,
    gpus: GpusOption = None,
    runs_per_gpu: RunsPerGpuOption = 1,
    config: Annotated[
        Path, typer.Option("--config", help="experiments file whose [cluster] settings apply", rich_help_panel=_CLUSTER)
    ] = DEFAULT_CONFIG,
    backend: BackendOption = None,
    partition: PartitionOption = None,
    gpus_per_run: GpusPerRunOption = None,
    cpus_per_run: CpusPerRunOption = None,
    time: TimeOption = None,
    account: AccountOption = None,
    sbatch: SbatchOption = None,
    ray_address: RayAddressOption = None,
    detach: DetachOption = False,
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
        states = [state_of(d) for d in _run_dirs(store, runs)]
    if not states:
        console.print("nothing to resume: no failed or cancelled runs")
        raise typer.Exit(0)
    if backend is None:  # where the runs last went, when they agree
        last = {s.backend for s in states if s.backend}
        backend = BackendName(last.pop()) if len(last) == 1 else None
    try:
        cluster = _cluster(
            config,
            backend,
            device,
            detach,
            partition=partition,
            gpus_per_run=gpus_per_run,
            cpus_per_run=cpus_per_run,
            time=time,
            account=account,
            sbatch=sbatch,
            ray_address=ray_address,
        )
        dev = cluster[1].device if cluster else _resolve_device(device)
        allowed = _parse_gpus(gpus)
    except UserError as exc:
        raise fail(str(exc))
    _launch(store, requeue(states), "the resumed runs", dev, max_parallel, allowed, runs_per_gpu, cluster, detach)


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
    from xling_tui.report import build_report, print_tables, to_csv, to_markdown

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

app.add_typer(data_app, name="data")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
