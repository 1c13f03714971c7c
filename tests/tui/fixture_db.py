"""A deterministic results database for the TUI tests, built the way real runs build one.

Runs are written as real run folders (``spec.json`` from ``engine.config.spec``, events through
``engine.runs.events.EventLog``) and loaded with ``db.store.Store.ingest``, so the real
``db.analysis`` fits the monolingual scaling law and computes TEff. The numbers are
synthetic and fixed (a power law with chosen token efficiencies per run), every time
is a fixed offset from 2026-01-01 00:00 UTC, and nothing depends on the wall clock.

The experiment ``table1`` holds four monolingual baselines and three finished or live
mixes: 50/50 and 90/10 (done, with alignment), 90→10 / 10→90 (still running, 60%
through) and a 4-stage schedule that failed. ``quick`` has no runs yet.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

from db.analysis import tokens_seen
from db.store import Store
from engine.config.spec import RunSpec, parse_experiments
from engine.launch.queue import write_experiment
from engine.runs import layout
from engine.runs.events import (
    AlignEmbedding,
    AlignGradient,
    AlignHidden,
    EvalResult,
    EventLog,
    Heartbeat,
    ProbeResult,
    Queued,
    Started,
    Status,
    TrainMetric,
)

FIXTURE_CONFIG = """\
# Experiments for the TUI tests: synthetic, not measurements.
#
# A schedule is a grid: one row per language, one column per stage.

[defaults]
model = "cpu-xs"   # a CPU-sized preset
seeds = [0]
scaling_law = "power"  # the form that fits short baselines

[defaults.train]
batch_size = 32
context = 128
log_every = 10  # steps between training metrics

[defaults.eval]
every = 0.25  # evaluate every quarter of training

# The paper's Table 1 at CPU scale.
[experiments.table1]
description = "Cloned EN1/EN2 (fixture)"
languages = ["EN1", "EN2"]
tokens = 2_457_600  # 600 steps of 32 x 128 tokens
baselines = [1.0, 0.5, 0.25, 0.1]

[[experiments.table1.schedules]]
name = "50/50"
mix = { EN1 = [50], EN2 = [50] }  # balanced

[[experiments.table1.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }

[[experiments.table1.schedules]]
name = "90→10 / 10→90"
ends = [0.5, 1.0]
mix = { EN1 = [90, 10], EN2 = [10, 90] }

[[experiments.table1.schedules]]
name = "4-stage"
ends = [0.25, 0.5, 0.75, 1.0]
mix = { EN1 = [90, 10, 90, 10], EN2 = [10, 90, 10, 90] }

# A small one with nothing run yet.
[experiments.quick]
description = "Tiny check"
languages = ["EN1", "EN2"]
tokens = 120_000
baselines = [1.0, 0.5]

[[experiments.quick.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }
"""

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
TOKENS_PER_S = 30_000.0
LAW_K, LAW_B = 110.0, 0.45  # monolingual PPL = K * (tokens / T) ** -B
UNTRAINED_PPL = 2100.0
FAKE_PID = 4_194_000  # above any pid this machine hands out by default

# Token efficiency each multilingual run reaches per language (what the analysis should find).
TEFF = {
    "50/50": {"EN1": 1.3, "EN2": 1.3},
    "90/10": {"EN1": 1.05, "EN2": 3.2},
    "90→10 / 10→90": {"EN1": 0.95, "EN2": 1.2},
    "4-stage": {"EN1": 1.0, "EN2": 1.0},
}
# A baseline's final point sits off the law by these factors, so the fit has residuals.
BASELINE_WOBBLE = {1.0: 1.00, 0.5: 1.02, 0.25: 0.98, 0.1: 1.01}
# Seeds other than 0 move every run of that seed together (same data order and initialisation),
# so paired comparisons see the shared part cancel: PPL x exp(SEED_SHIFT), similarities + SEED_SIM.
SEED_SHIFT = {0: 0.0, 1: 0.06, 2: -0.05, 3: 0.02}
SEED_SIM = {0: 0.0, 1: 0.03, 2: -0.02, 3: 0.01}
RUNNING = "90→10 / 10→90"
RUNNING_UNTIL = 0.6
FAILED = "4-stage"
FAILED_AT = 160
FAILED_MESSAGE = "loss diverged (nan) at step 160"
HIDDEN_SIM = {"50/50": [0.31, 0.22, 0.18], "90/10": [0.52, 0.41, 0.37]}
EMB_SIM = {"50/50": (0.02, 0.01), "90/10": (0.28, 0.21)}  # input, output
GRAD_SIM = {"50/50": 0.07, "90/10": 0.53}
PROBE_ACC = {"50/50": {"EN1": 0.9, "EN2": 0.62}, "90/10": {"EN1": 0.92, "EN2": 0.81}}
GRAD_COMPONENTS = (
    "ln1.weight",
    "ln1.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "ln2.weight",
    "ln2.bias",
    "mlp.fc.weight",
    "mlp.fc.bias",
    "mlp.proj.weight",
    "mlp.proj.bias",
)


def build_fixture_db(
    root: Path, config_text: str = FIXTURE_CONFIG, experiment: str = "table1", probes: bool = False
) -> Path:
    """Writes ``root/experiments.toml``, the run folders and ``root/fixture.duckdb``; returns the database.

    ``config_text``/``experiment``: another configuration and the experiment whose runs to
    write (its schedules must be named as in ``TEFF``); ``probes``: finished mixes also log
    the downstream probe (``PROBE_ACC``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "experiments.toml"
    config.write_text(config_text, encoding="utf-8")
    db_path = root / "fixture.duckdb"
    artefacts = layout.artefacts_root(db_path)
    import tomllib

    experiments = parse_experiments(tomllib.loads(config_text), config_text, str(config))
    for exp in experiments:
        write_experiment(artefacts, exp)
        os.utime(artefacts / "experiments" / f"{exp.name}.json", (T0, T0))
    written = next(e for e in experiments if e.name == experiment)
    for i, spec in enumerate(written.runs):
        _write_run(layout.run_dir(db_path, spec.run_id), spec, T0 + 3600.0 * i, probes)
    Store(db_path).ingest()
    return db_path


def _ppl(tokens: float, budget: float, teff: float = 1.0, wobble: float = 1.0) -> float:
    if tokens <= 0:
        return UNTRAINED_PPL
    return min(UNTRAINED_PPL, wobble * LAW_K * (teff * tokens / budget) ** -LAW_B)


def _write_run(run_dir: Path, spec: RunSpec, start: float, probes: bool = False) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    B, C = spec.train.batch_size, spec.train.context
    step_s = B * C / TOKENS_PER_S
    seen = tokens_seen(spec.to_dict())
    langs = spec.languages
    last = spec.total_steps
    if spec.name == RUNNING:
        last = round(RUNNING_UNTIL * spec.total_steps)
    elif spec.name == FAILED:
        last = FAILED_AT

    def ppl(lang: str, step: int) -> float:
        i = langs.index(lang)
        t = float(seen[i][step])
        own = 0.01 * spec.seed * ((zlib.crc32(spec.name.encode()) + i) % 3 - 1)  # what schedules do not share
        shift = math.exp(SEED_SHIFT[spec.seed] + own)
        if spec.kind == "baseline":
            if t == 0:
                return UNTRAINED_PPL
            wobble = BASELINE_WOBBLE.get(spec.fraction, 1.0) if step == spec.total_steps else 1.0
            return _ppl(t, spec.budget_tokens, wobble=wobble * shift)
        return _ppl(t, spec.budget_tokens, TEFF[spec.name][lang], wobble=shift)

    def at(step: int) -> float:
        return start + 5.0 + step * step_s

    eval_every = max(1, round(spec.eval.every * spec.total_steps))
    eval_langs = langs if spec.kind == "mix" else [langs[spec.schedule["percents"].index([100.0])]]
    with EventLog(run_dir) as log:
        log.emit(Queued(spec.run_id, time=start))
        log.emit(
            Started(
                spec.run_id,
                device="cpu",
                host="fixture-host",
                pid=FAKE_PID,
                total_steps=spec.total_steps,
                total_tokens=spec.total_tokens,
                time=start + 5.0,
            )
        )
        for step in range(0, last + 1):
            if step > 0 and (step % spec.train.log_every == 0 or step == last):
                probs = spec.schedule_obj().probs(step - 1, spec.total_steps)
                lang_loss = {lang: math.log(ppl(lang, step)) + 0.05 for lang, p in zip(langs, probs) if p > 0}
                loss = sum(p * lang_loss[lang] for lang, p in zip(langs, probs) if p > 0)
                log.emit(
                    TrainMetric(
                        spec.run_id,
                        step=step,
                        tokens=step * B * C,
                        lr=_lr(spec, step),
                        loss=loss,
                        lang_loss=lang_loss,
                        tokens_per_s=TOKENS_PER_S + 400.0 * math.sin(step),
                        time=at(step),
                    )
                )
            if step % eval_every == 0 or step == spec.total_steps:
                if spec.name == FAILED and step == last:
                    break
                for lang in eval_langs:
                    value = ppl(lang, step)
                    log.emit(
                        EvalResult(
                            spec.run_id,
                            step=step,
                            tokens=step * B * C,
                            language=lang,
                            loss=math.log(value),
                            ppl=value,
                            char_ppl=value**0.25,
                            accuracy=round(0.9 / math.log(value), 4),
                            n_tokens=20_000,
                            time=at(step) + 1.0,
                        )
                    )
        if spec.name == RUNNING:
            log.emit(Heartbeat(spec.run_id, step=last, pid=FAKE_PID, time=at(last) + 2.0))
        elif spec.name == FAILED:
            log.emit(Status(spec.run_id, "failed", FAILED_MESSAGE, step=last, time=at(last) + 2.0))
        else:
            if spec.kind == "mix":
                _write_alignment(log, spec, at(last) + 3.0)
                if probes:
                    _write_probes(log, spec, at(last) + 4.0)
            log.emit(Status(spec.run_id, "done", step=last, time=at(last) + 10.0))


def _lr(spec: RunSpec, step: int) -> float:
    t = spec.train
    if step < t.warmup:
        return t.lr * (step + 1) / max(1, t.warmup)
    progress = (step - t.warmup) / max(1, spec.total_steps - t.warmup)
    return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1 + math.cos(math.pi * progress))


def _write_alignment(log: EventLog, spec: RunSpec, when: float) -> None:
    shift = SEED_SIM[spec.seed]
    common = {
        "run_id": spec.run_id,
        "step": spec.total_steps,
        "tokens": spec.total_tokens,
        "lang_a": spec.languages[0],
        "lang_b": spec.languages[1],
        "time": when,
    }
    for matrix, sim in zip(("input", "output"), (s + shift for s in EMB_SIM[spec.name])):
        bins = [
            {"lo": 0.0, "hi": 0.0, "n": 40, "similarity": sim / 4, "control": 0.0},
            {"lo": 10.0, "hi": 17.8, "n": 300, "similarity": sim, "control": 0.01},
            {"lo": 100.0, "hi": 177.8, "n": 120, "similarity": sim * 1.5, "control": 0.01},
        ]
        log.emit(
            AlignEmbedding(**common, matrix=matrix, similarity=sim, control=0.01, n_ids=2048, n_anchors=0, bins=bins)
        )
    for layer, sim in enumerate(s + shift for s in HIDDEN_SIM[spec.name]):
        log.emit(AlignHidden(**common, layer=layer, similarity=sim, n_sequences=32))
    mean = GRAD_SIM[spec.name] + shift
    for block in range(2):
        for k, component in enumerate(GRAD_COMPONENTS):
            offset = 0.03 * ((k % 5) - 2) + 0.02 * block  # a fixed spread around the mean
            log.emit(AlignGradient(**common, tensor=f"blocks.{block}.{component}", similarity=mean + offset))


def _write_probes(log: EventLog, spec: RunSpec, when: float) -> None:
    for lang in spec.languages:
        log.emit(
            ProbeResult(
                spec.run_id,
                step=spec.total_steps,
                tokens=spec.total_tokens,
                task="builtin:synthetic",
                train_language=spec.languages[0],
                language=lang,
                accuracy=PROBE_ACC[spec.name][lang] + SEED_SIM[spec.seed],
                chance=0.5,
                n_examples=300,
                train_accuracy=0.95,
                time=when,
            )
        )


def screen_app(config_path: Path, db_path: Path, make_screen, refresh_every: float = 3600.0):
    """A bare App with the two attributes screens read, showing ``make_screen()``: screens tested alone."""
    from textual.app import App

    class ScreenApp(App):
        def __init__(self) -> None:
            super().__init__()
            self.config_path = Path(config_path)
            self.db_path = Path(db_path)
            self.refresh_every = refresh_every
            self.animation_level = "none"  # textual read TEXTUAL_ANIMATIONS before any conftest ran

        def on_mount(self) -> None:
            self.push_screen(make_screen())

    return ScreenApp()


async def until(pilot, condition, seconds: float = 20.0) -> bool:
    """Let the app run until ``condition()`` holds (True) or ``seconds`` pass (False):
    for what lands a few frames or a timer later, such as a worker's answer."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await pilot.pause(0.02)
    return condition()


async def settle(pilot) -> None:
    """Workers done, messages handled, plots drawn, cursors steady: ready for a snapshot.
    A figure waiting for its plot's redraw tick is drawn now, so what a snapshot shows
    never depends on where that tick fell."""
    from textual.widgets import Input

    from xling_tui.widgets.plots import XPlot

    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for plot in pilot.app.screen.query(XPlot):
        plot._flush()
    await pilot.pause()
