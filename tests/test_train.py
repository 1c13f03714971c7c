"""Training: the LR schedule, learning at all, and exact resume."""

from __future__ import annotations

import math

import pytest

from engine.config.spec import load_experiments
from engine.runs.events import EventLog, iter_events
from engine.train import Trainer, eval_steps, lr_at


def test_lr_warmup_then_cosine_to_min():
    lrs = [lr_at(s, 100, 1e-3, 1e-5, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[9] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lr_at(100, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-5)


def test_eval_steps_include_untrained_and_end():
    assert eval_steps(100, 0.25) == [0, 25, 50, 75, 100]
    assert eval_steps(7, 0) == [0, 7]


def _spec(tiny_toml, name="90/10"):
    (exp,) = load_experiments(tiny_toml)
    return next(r for r in exp.runs if r.name == name)


def _losses(run_dir):
    """Last logged loss per step (a resumed run re-logs steps after its checkpoint)."""
    out = {}
    for e in iter_events(run_dir / "events.jsonl"):
        if e["kind"] == "train":
            out[e["step"]] = (e["loss"], tuple(sorted(e["lang_loss"].items())))
    return out


def test_training_beats_untrained_and_reports_per_language(tmp_path, tiny_toml):
    spec = _spec(tiny_toml)
    with EventLog(tmp_path) as log:
        assert Trainer(spec, tmp_path).run(log) == "done"
    events = list(iter_events(tmp_path / "events.jsonl"))
    evals = [e for e in events if e["kind"] == "eval"]
    first = {e["language"]: e["ppl"] for e in evals if e["step"] == 0}
    last = {e["language"]: e["ppl"] for e in evals if e["step"] == spec.total_steps}
    assert set(first) == set(last) == {"EN1", "EN2"}
    # untrained ~ uniform over both copies of the vocabulary
    assert first["EN1"] > 0.5 * 2 * 256
    assert last["EN1"] < first["EN1"] / 3
    assert last["EN1"] < last["EN2"]  # the 90% language learns faster
    e = evals[-1]
    assert 0 <= e["accuracy"] <= 1 and e["char_ppl"] > 1 and e["n_tokens"] > 100
    assert (tmp_path / "model.pt").exists() and not (tmp_path / "checkpoint.pt").exists()
    statuses = [e["status"] for e in events if e["kind"] == "status"]
    assert statuses == ["done"]


def test_resume_gives_the_same_loss_trajectory(tmp_path, tiny_toml):
    spec = _spec(tiny_toml)
    straight, stopped = tmp_path / "a", tmp_path / "b"
    straight.mkdir(), stopped.mkdir()
    with EventLog(straight) as log:
        Trainer(spec, straight).run(log)
    with EventLog(stopped) as log:
        assert Trainer(spec, stopped).run(log, stop_after=7) == "cancelled"
    assert (stopped / "checkpoint.pt").exists()
    with EventLog(stopped) as log:  # a fresh trainer, as a new worker process would build
        assert Trainer(spec, stopped).run(log) == "done"
    a, b = _losses(straight), _losses(stopped)
    assert a.keys() == b.keys() and len(a) >= spec.total_steps // 2
    for step in a:
        assert a[step][0] == pytest.approx(b[step][0], rel=1e-6, abs=1e-7), step
        assert [x for _, x in a[step][1]] == pytest.approx([x for _, x in b[step][1]], rel=1e-6)
    kinds = [e.get("resumed_from") for e in iter_events(stopped / "events.jsonl") if e["kind"] == "started"]
    assert kinds == [None, 7]


def test_baseline_trains_only_its_language(tmp_path, tiny_toml):
    spec = _spec(tiny_toml, "mono EN1 50%")
    with EventLog(tmp_path) as log:
        Trainer(spec, tmp_path).run(log)
    langs = {e["language"] for e in iter_events(tmp_path / "events.jsonl") if e["kind"] == "eval"}
    assert langs == {"EN1"}
    train = [e for e in iter_events(tmp_path / "events.jsonl") if e["kind"] == "train"]
    assert all(set(e["lang_loss"]) == {"EN1"} for e in train)
    assert train[-1]["tokens"] == spec.total_tokens
    assert all(math.isfinite(e["loss"]) for e in train)


def test_failure_reasons_name_out_of_memory_and_data_errors():
    import torch

    from engine.errors import DataError
    from engine.worker import failure_reason

    assert "out of GPU memory" in failure_reason(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert failure_reason(DataError("corpus 'x' is too small")) == "corpus 'x' is too small"
    assert failure_reason(ValueError("boom")) == "ValueError: boom"


def test_alignment_at_evals_when_asked(tmp_path, tiny_toml):
    tiny_toml.write_text(tiny_toml.read_text().replace("every = 0.5 }", "every = 0.5, alignment_at_evals = true }"))
    spec = _spec(tiny_toml)
    with EventLog(tmp_path) as log:
        Trainer(spec, tmp_path).run(log)
    steps = {e["step"] for e in iter_events(tmp_path / "events.jsonl") if e["kind"] == "align_hidden"}
    assert steps == {round(spec.total_steps / 2), spec.total_steps}


def test_alignment_frequency_bins_count_only_the_steps_trained_so_far(tmp_path, tiny_toml):
    tiny_toml.write_text(tiny_toml.read_text().replace("every = 0.5 }", "every = 0.5, alignment_at_evals = true }"))
    spec = _spec(tiny_toml)
    with EventLog(tmp_path) as log:
        Trainer(spec, tmp_path).run(log)
    totals = {}
    for e in iter_events(tmp_path / "events.jsonl"):
        if e["kind"] == "align_embedding" and e["matrix"] == "input":
            totals[e["step"]] = sum(b["n"] * b["lo"] for b in e["bins"])  # grows with the counts
    half, end = sorted(totals)
    assert totals[half] < totals[end]
