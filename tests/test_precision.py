"""CPU bf16: auto follows a once-per-shape measurement, fp32 stays fp32, a CPU without
native bf16 changes nothing, bf16 autocast keeps fp32 weights and loss, and a resumed
run keeps the precision it started in."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from engine import precision
from engine.config.presets import preset
from engine.config.spec import load_experiments
from engine.runs.events import EventLog, iter_events
from engine.train import Trainer

SHAPE = preset("cpu-xxs", 512, 32)


@pytest.fixture
def measured(monkeypatch):
    """auto measures (not the suite's pinned fp32) on a CPU that says it has bf16; the
    measurement's answer is set by the test and its calls counted."""
    state = {"answer": 1.5, "calls": []}
    monkeypatch.delenv(precision.AUTO_ENV)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)

    def fake(cfg, batch, context):
        state["calls"].append((cfg.d_model, batch, context))
        return state["answer"]

    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", fake)
    return state


def test_auto_uses_bf16_where_measured_faster_and_measures_once(measured, token_cache):
    calls = measured["calls"]
    assert precision.resolve_precision("auto", "cpu", SHAPE, 8, 32) == "bf16"
    assert precision.resolve_precision("auto", "cpu", SHAPE, 8, 32) == "bf16"
    assert calls == [(32, 8, 32)]  # the second run of this shape reads the kept answer
    kept = json.loads((token_cache / precision.CACHE_FILE).read_text())
    assert list(kept.values()) == [1.5]
    measured["answer"] = 0.7  # another shape where bf16 is slower (as avx512_bf16 is on small matrices)
    assert precision.resolve_precision("auto", "cpu", SHAPE, 16, 32) == "fp32"
    assert precision.resolve_precision("fp32", "cpu", SHAPE, 8, 32) == "fp32"
    assert len(calls) == 2


def test_a_cpu_without_native_bf16_changes_nothing(monkeypatch):
    monkeypatch.delenv(precision.AUTO_ENV)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", lambda *a: pytest.fail("measured"))
    for asked in ("auto", "bf16", "fp16", "fp32"):
        assert precision.resolve_precision(asked, "cpu", SHAPE, 8, 32) == "fp32"


def test_the_measurement_times_both_precisions():
    ratio = precision.measure_cpu_bf16_speedup(SHAPE, 4, 32, reps=1)
    assert 0.01 < ratio < 100


def _spec(tiny_toml, **train):
    (exp,) = load_experiments(tiny_toml)
    spec = next(r for r in exp.runs if r.name == "90/10")
    return dataclasses.replace(spec, train=spec.train.model_copy(update=train))


def test_bf16_autocast_runs_the_blocks_in_bf16_with_fp32_weights_and_loss(tmp_path, tiny_toml, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # autocast works anywhere, only slower
    runs = {}
    for name in ("fp32", "bf16"):
        run_dir = tmp_path / name
        run_dir.mkdir()
        trainer = Trainer(_spec(tiny_toml, precision=name), run_dir, log=lambda m: None)
        assert trainer.rt.precision == name
        seen = []
        trainer.model.blocks[0].mlp.fc.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.dtype))
        with EventLog(run_dir) as log:
            assert trainer.run(log, stop_after=12) == "cancelled"
        assert seen[-1] == (torch.bfloat16 if name == "bf16" else torch.float32)
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        events = list(iter_events(run_dir / "events.jsonl"))
        assert next(e for e in events if e["kind"] == "started")["precision"] == name
        runs[name] = [e["loss"] for e in events if e["kind"] == "train"]
    assert runs["bf16"] != runs["fp32"]
    assert runs["bf16"][-1] == pytest.approx(runs["fp32"][-1], rel=0.03)


def test_a_resumed_run_keeps_the_precision_it_started_in(tmp_path, tiny_toml, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    spec = _spec(tiny_toml)  # precision = "auto"
    monkeypatch.setenv(precision.AUTO_ENV, "bf16")
    with EventLog(tmp_path) as log:
        assert Trainer(spec, tmp_path, log=lambda m: None).run(log, stop_after=5) == "cancelled"
    monkeypatch.setenv(precision.AUTO_ENV, "fp32")  # auto would now choose fp32 (another host, say)
    resumed = Trainer(spec, tmp_path, log=lambda m: None)
    assert resumed.rt.precision == "fp32"
    with EventLog(tmp_path) as log:
        assert resumed.run(log) == "done"
    assert resumed.rt.precision == "bf16"
    started = [e for e in iter_events(tmp_path / "events.jsonl") if e["kind"] == "started"]
    assert [e["precision"] for e in started] == ["bf16", "bf16"]
