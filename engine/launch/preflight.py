"""What ``xling run`` and ``xling resume`` check before anything is queued.

A value that cannot work must be one error naming its field (exit 2), not one failed
run per run, and never runs left "queued" with no worker to take them. So sizes are
checked against this machine's memory, every distinct corpus is tokenised, the
context is checked against the training streams and the files a run reads at its end
are read, all before the first ``queued`` event is written.

Errors name their place through a ``Locate``: the experiments file's line for
``xling run``, the run's id for ``xling resume`` (whose specs come from run folders).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from engine.config.locate import SpecError
from engine.config.sizing import human_bytes, memory_need
from engine.config.spec import Experiment, RunSpec
from engine.errors import DataError

Locate = Callable[[RunSpec, tuple[str, ...]], str]  # (run, field path) -> "file:line: experiments.x.field"


def locate_in(experiments: Iterable[Experiment]) -> Locate:
    """Fields of runs expanded from an experiments file, at the line that set them."""
    by_name = {e.name: e for e in experiments}
    return lambda spec, loc: by_name[spec.experiment].at(*loc)


def locate_run(spec: RunSpec, loc: tuple[str, ...]) -> str:
    """Fields of a run known only from its folder (resume)."""
    return f"run {spec.run_id} ({spec.experiment}/{spec.name}): {'.'.join(loc)}"


def machine_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def check_memory(specs: Iterable[RunSpec], locate: Locate, host_bytes: int, device_bytes: int | None = None) -> None:
    """Refuses a run whose least memory (``engine.config.sizing``) exceeds this machine's:
    all of it against RAM on the CPU; on a GPU the model and one step's activations
    against the smallest GPU's memory, the labels against RAM."""
    seen = set()
    for spec in specs:
        t, data = spec.train, spec.to_dict()["data"]
        key = (spec.model, json.dumps(data, sort_keys=True), len(spec.languages), t.batch_size, t.context)
        if (key, spec.total_steps) in seen:
            continue
        seen.add((key, spec.total_steps))
        need = memory_need(spec.model, data, len(spec.languages), t.batch_size, t.context, spec.total_steps)
        if device_bytes is not None and need.device > device_bytes:
            field = need.culprit if need.culprit != "tokens" else "train.batch_size"
            raise SpecError(
                f"{locate(spec, tuple(field.split('.')))}: {spec.name!r} cannot fit on the GPU: its model and "
                f"one step need at least {human_bytes(need.device)}; the smallest GPU here has "
                f"{human_bytes(device_bytes)}"
            )
        host = need.labels if device_bytes is not None else need.total
        if host > host_bytes:
            raise SpecError(
                f"{locate(spec, tuple(need.culprit.split('.')))}: {spec.name!r} cannot fit in memory: it needs "
                f"{need.describe()}; this machine has {human_bytes(host_bytes)}"
            )


@dataclass
class DataJob:
    """One distinct dataset of a set of runs: tokenised once, checked for each of its runs."""

    what: str  # for a progress line
    specs: list[RunSpec]


def data_jobs(specs: Iterable[RunSpec]) -> Iterator[DataJob]:
    jobs: dict[str, DataJob] = {}
    for spec in specs:
        data = spec.data
        key = json.dumps([data.model_dump(mode="json"), spec.languages, spec.budget_tokens], sort_keys=True)
        if key not in jobs:
            what = data.corpus if data.kind == "cloned" else ", ".join(spec.languages)
            jobs[key] = DataJob(f"{what} (vocab {data.vocab_size})", [])
        jobs[key].specs.append(spec)
    yield from jobs.values()


def prepare(job: DataJob, locate: Locate) -> None:
    """Tokenises (or finds cached) the job's data; then, per run, the context against
    the shortest training stream and the files the run reads at its end."""
    from engine.data.prepare import prepare_run_data
    from engine.data.tasks import check_end_inputs

    first = job.specs[0]
    cloned = first.data.kind == "cloned"
    data_field = ("data", "corpus") if cloned else ("data", "corpora")
    try:
        data = prepare_run_data(first.data_recipe(), log=lambda m: None)
    except DataError as exc:
        raise SpecError(f"{locate(first, data_field)}: {exc}") from None
    langs = ["the corpus"] if cloned else first.languages  # cloned languages share one stream
    streams = [data.token_data(i).train for i in range(len(langs))]
    shortest = min(range(len(streams)), key=lambda i: len(streams[i]))
    n_tokens = len(streams[shortest])
    checked = set()
    for spec in job.specs:
        context = spec.train.context
        if context + 1 > n_tokens:
            of = langs[shortest] if len(langs) > 1 else "the corpus"
            raise SpecError(
                f"{locate(spec, ('train', 'context'))}: context {context} is longer than the training "
                f"text: {of} has {n_tokens} tokens (a sequence needs context + 1)"
            )
        probe = spec.eval.probe
        ends = json.dumps([spec.to_dict()["data"], probe.model_dump(mode="json") if probe else None], sort_keys=True)
        if ends not in checked:
            checked.add(ends)
            try:
                check_end_inputs(spec.data_recipe(), probe.task if probe else None)
            except (DataError, ValueError) as exc:
                raise SpecError(f"{locate(spec, ('eval',))}: {exc}") from None
