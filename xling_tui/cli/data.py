"""``xling data``: build the tokenizers and token arrays of experiments ahead of time, and describe them.

``xling run`` prepares data by itself; ``prepare`` lets a user do it once, with a
progress display, before a batch of runs (or on a login node), and ``info`` answers
"how big is it, how many tokens does each language have, how much do the
vocabularies overlap" before anything is trained.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from xling_tui.cli.output import console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from engine.config.spec import Experiment
    from engine.data.recipe import DataRecipe

data_app = typer.Typer(
    name="data",
    help="Prepare and describe experiments' corpora and tokenizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ConfigArg = Annotated[Path, typer.Argument(help="experiments file")]
ExperimentOpt = Annotated[
    list[str] | None, typer.Option("--experiment", "-e", help="only this experiment (repeatable)")
]


def _experiments(config: Path, only: list[str] | None):
    from engine.config.spec import check_inputs, load_experiments

    experiments = load_experiments(config, only or None)
    check_inputs(experiments)
    return experiments


def _describe(progress: Progress, task: TaskID, name: str, message: str) -> None:
    progress.update(task, description=f"{name}: {message}")


def _distinct_data(experiments: list[Experiment]) -> list[tuple[str, DataRecipe]]:
    """(experiment, data recipe) once per distinct preparation."""
    seen, out = set(), []
    for exp in experiments:
        for run in exp.runs:
            key = json.dumps([run.data.model_dump(mode="json"), run.languages, run.budget_tokens], sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((exp.name, run.data_recipe()))
    return out


@data_app.command()
def prepare(config: ConfigArg = Path("experiments.toml"), experiment: ExperimentOpt = None) -> None:
    """Build and cache the tokenizers and token arrays of the experiments in CONFIG (once per corpus)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from engine.data.prepare import prepare_run_data, prepare_steps
    from engine.data.tasks import check_end_inputs

    experiments = _experiments(config, experiment)
    todo = _distinct_data(experiments)
    runs = {
        json.dumps([r.data.model_dump(mode="json"), r.eval.model_dump(mode="json")], sort_keys=True): r
        for e in experiments
        for r in e.runs
    }
    steps = [(name, label, fn) for name, recipe in todo for label, fn in prepare_steps(recipe)]
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
            fn(functools.partial(_describe, progress, task, name))
            progress.update(task, completed=1, description=f"{name}: {label}")
            progress.advance(overall)
        for _name, recipe in todo:  # combines vocabularies; everything is cached by now
            prepare_run_data(recipe, log=lambda m: None)
            progress.advance(overall)
    for spec in runs.values():  # parallel pairs and probe tasks: their errors now, not after training
        probe = spec.eval.probe
        check_end_inputs(spec.data_recipe(), probe.task if probe else None)
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
    from engine.data.prepare import prepare_run_data, summarize

    out = []
    for name, recipe in _distinct_data(_experiments(config, experiment)):
        with console.status(f"{name}: loading data"):
            prepared = prepare_run_data(recipe, log=lambda m: None)
        out.append({"experiment": name, "budget_tokens": recipe.budget_tokens, **summarize(prepared)})
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
