"""What an experiments file asks to train, before anything runs: runs asked for, runs shared.

A run is what it computes (``engine.config.spec.run_id``), so experiments and sweep
points that ask for the same run share it: ``xling plan`` shows, per experiment in
the file's order, how many runs it asks for, how many an experiment above it already
asks for, and the tokens and time left to train; its totals are the compute that
sharing saves. Times come from runs already measured (their wall time), else from a
throughput the user gives for one preset, scaled to the others by FLOPs per token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.config.presets import flops_per_token, preset
from engine.config.spec import Experiment, RunSpec


@dataclass
class ExperimentPlan:
    """One experiment's share of the plan."""

    name: str
    asked: int = 0  # runs its sweep points ask for (a baseline once per point that needs it)
    shared: int = 0  # of those, asked for before (by an experiment above it or another point): trained once
    done: int = 0  # of its new runs, already finished
    tokens: int = 0  # training tokens of its new runs
    seconds: float | None = 0.0  # their training time (None: some run has neither a measurement nor a rate)
    measured: int = 0  # new runs whose time is their measured wall time
    saved_tokens: int = 0  # tokens of its shared runs: not trained again
    saved_seconds: float | None = 0.0
    run_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Throughput:
    """Training tokens/s of one preset on the target machine; other shapes scaled by FLOPs per token.

    ``vocab_size`` (the model's rows) and ``context`` are those it was measured with; None: the
    same as the run's.
    """

    model: str
    tokens_per_s: float
    vocab_size: int | None = None
    context: int | None = None

    def seconds(self, spec: RunSpec) -> float:
        vocab, context = _vocab(spec), spec.train.context
        measured = flops_per_token(preset(self.model, self.vocab_size or vocab, self.context or context))
        return spec.total_tokens / self.tokens_per_s * flops_per_token(preset(spec.model, vocab, context)) / measured


def _vocab(spec: RunSpec) -> int:
    return spec.data.vocab_size * len(spec.languages)


def plan(
    experiments: Iterable[Experiment],
    durations: Mapping[str, float] | None = None,
    finished: Iterable[str] = (),
    rate: Throughput | None = None,
) -> list[ExperimentPlan]:
    """Each experiment's runs, in order; a run an earlier one asked for counts as shared.

    ``durations``: measured wall seconds of finished runs; ``finished``: their ids.
    """
    durations = durations or {}
    done = set(finished)
    seen: set[str] = set()
    out = []
    for exp in experiments:
        requests = exp.requests or exp.runs
        row = ExperimentPlan(exp.name, asked=len(requests), run_ids=[r.run_id for r in exp.runs])
        for spec in requests:
            secs = durations.get(spec.run_id)
            if secs is None and rate is not None:
                secs = rate.seconds(spec)
            if spec.run_id in seen:
                row.shared += 1
                row.saved_tokens += spec.total_tokens
                row.saved_seconds = _add(row.saved_seconds, secs)
                continue
            seen.add(spec.run_id)
            row.done += spec.run_id in done
            row.tokens += spec.total_tokens
            row.measured += spec.run_id in durations
            row.seconds = _add(row.seconds, secs)
        out.append(row)
    return out


def _add(total: float | None, secs: float | None) -> float | None:
    return None if total is None or secs is None else total + secs
