"""``xling data``: build the tokenizers and token arrays of experiments ahead of time, and describe them.

``xling run`` prepares data by itself; ``prepare`` lets a user do it once, with a
progress display, before a batch of runs (or on a login node), and ``info`` answers
"how big is it, how many tokens does each language have, how much do the
vocabularies overlap" before anything is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

data_app = typer.Typer(
    name="data",
    help="Prepare and describe experiments' corpora and tokenizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

ConfigArg = Annotated[Path, typer.Argument(help="experiments file")]
ExperimentOpt = Annotated[
    list[str] | None, typer.Option("--experiment", "-e", help="only this experiment (repeatable)")
]


def _experiments(config: Path, only: list[str] | None):
    from engine.config.spec import load_experiments

    return load_experiments(config, only or None)


def _distinct_data(experiments) -> list[tuple[str, dict, list[str], int]]:
    """(experiment, data, languages, budget) once per distinct preparation."""
    seen, out = set(), []
    for exp in experiments:
        for run in exp.runs:
            key = json.dumps([run.data, run.languages, run.budget_tokens], sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((exp.name, run.data, run.languages, run.budget_tokens))
    return out


@data_app.command()
def prepare(config: ConfigArg = Path("experiments.toml"), experiment: ExperimentOpt = None) -> None:
    """Build and cache the tokenizers and token arrays of the experiments in CONFIG (once per corpus)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from engine.data.real_languages import prepare_run_data, prepare_steps
    from engine.data.tasks import check_end_inputs

    experiments = _experiments(config, experiment)
    todo = _distinct_data(experiments)
    runs = list({json.dumps([r.data, r.eval], sort_keys=True): r for e in experiments for r in e.runs}.values())
    steps = [
        (name, label, fn) for name, data, langs, budget in todo for label, fn in prepare_steps(data, langs, budget)
    ]
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("[bold]all corpora[/]", total=len(steps) + len(todo))
        for name, label, fn in steps:
            task = progress.add_task(f"{name}: {label}", total=1)
            fn(lambda msg, task=task, name=name: progress.update(task, description=f"{name}: {msg}"))
            progress.update(task, completed=1, description=f"{name}: {label}")
            progress.advance(overall)
        for _name, data, langs, budget in todo:  # combines vocabularies; everything is cached by now
            prepare_run_data(data, langs, budget, log=lambda m: None)
            progress.advance(overall)
    for spec in runs:  # parallel pairs and probe tasks: their errors now, not after training
        check_end_inputs(spec)
    console.print(f"[green]prepared[/] {len(todo)} data configuration(s) of {len({t[0] for t in todo})} experiment(s)")


@data_app.command()
def info(
    config: ConfigArg = Path("experiments.toml"),
    experiment: ExperimentOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Sizes, tokens per language and vocabulary overlap (anchors) of the experiments' data.

    Builds whatever is not cached yet (as `xling data prepare` would).
    """
    from engine.data.real_languages import prepare_run_data, summarize

    out = []
    for name, data, langs, budget in _distinct_data(_experiments(config, experiment)):
        with console.status(f"{name}: loading data"):
            prepared = prepare_run_data(data, langs, budget, log=lambda m: None)
        out.append({"experiment": name, "budget_tokens": budget, **summarize(data, langs, prepared)})
    if as_json:
        print(json.dumps(out, indent=1))
        return
    for s in out:
        _print_summary(s)


def _print_summary(s: dict) -> None:
    from engine.analysis.scaling import format_tokens

    title = (
        f"{s['experiment']}: {s['mode']} · model vocabulary {s['vocab_size']:,} · {s['n_anchors']:,} anchors · "
        f"{s['identical_pieces']:,} identical pieces · budget {format_tokens(s['budget_tokens'])} tokens"
    )
    table = Table(
        "language",
        "corpus",
        "vocab",
        "train tokens",
        "test tokens",
        "train lines",
        "chars/token",
        title=title,
        title_justify="left",
        header_style="bold",
    )
    for r in s["languages"]:
        cpt = f"{r['chars_per_token']:.2f}" if r["chars_per_token"] else "—"
        table.add_row(
            r["language"],
            str(r["corpus"]),
            f"{r['vocab_size']:,}",
            f"{r['train_tokens']:,}",
            f"{r['test_tokens']:,}",
            f"{r['train_lines'] or 0:,}",
            cpt,
        )
    console.print(table)
