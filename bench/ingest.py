"""Metric ingestion into DuckDB, and what reporting costs a training step.

Targets (issue): (a) xling's ingest path (workers append JSON lines to events.jsonl
through ``EventLog``; ``Store.ingest()`` bulk-loads them) >= 10x the rows/s of a naive
row-by-row ``executemany`` INSERT into the same tables; (b) reporting (per-step
accumulation, a TrainMetric line every ``log_every`` steps, a heartbeat every 5 s)
< 1% of a training step, with the launcher's periodic ``Store.try_ingest()`` (another
process) reported separately.

    python bench/ingest.py [--runs 8] [--events 20000]
    python bench/ingest.py --naive-rows 0      # naive path on every row (slow: minutes)

The naive INSERT runs at only ~1,000 rows/s, so by default it loads a prefix of the
same rows (``--naive-rows``) and its rate is compared per row; its JSON parsing is timed
on all the logs. Absolute times on a shared machine are noise; the ratios are measured
in one process and are what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.bulk import utc_timestamp  # noqa: E402
from db.store import SCHEMA_SQL, Store  # noqa: E402
from engine.config.spec import ExperimentConfig, expand_runs  # noqa: E402
from engine.runs.events import EvalResult, EventLog, Heartbeat, Queued, Started, TrainMetric
from engine.runs.layout import EVENTS_FILE, SPEC_FILE
from engine.train import HEARTBEAT_SECONDS, Trainer, lr_at  # noqa: E402

LANGS = ("EN1", "EN2")
LOG_EVERY = 10  # engine.config.spec's default train.log_every
EVAL_EVERY = 2_000  # train lines between evaluations (one row per language each)
BEAT_EVERY = 3  # train lines between heartbeats: ~2 s per line at 0.2 s/step and log_every 10
INGEST_PERIOD = 2.0  # engine.launch.launcher.Launcher's sync_every
TRAIN_COLS = "run_id, step, tokens, lr, loss, lang_loss, tokens_per_s, time"
EVAL_COLS = "run_id, step, tokens, language, loss, ppl, char_ppl, accuracy, n_tokens, time"


# --- (a) ingestion throughput ---------------------------------------------------------


@dataclass
class Logs:
    """The run folder written by simulated workers, and what it holds."""

    store: Store
    lines: int
    train_rows: int
    eval_rows: int
    bytes: int
    emit_s: float  # workers' time in EventLog.emit, all lines

    @property
    def rows(self) -> int:
        return self.train_rows + self.eval_rows

    def paths(self) -> list[Path]:
        return sorted(self.store.root.glob(f"runs/*/{EVENTS_FILE}"))


def _spec(run_id: str, n: int, events: int) -> dict[str, Any]:
    steps = events * LOG_EVERY
    return {
        "run_id": run_id,
        "experiment": "bench",
        "name": f"run{n}",
        "kind": "mix",
        "model": "cpu-xs",
        "seed": n,
        "languages": list(LANGS),
        "total_steps": steps,
        "total_tokens": steps * 32 * 128,
    }


def _run_events(run_id: str, events: int, rng: random.Random) -> list[Any]:
    """One run's log as a worker writes it: realistic fields, a falling loss, noisy rates."""
    steps = events * LOG_EVERY
    out: list[Any] = [Queued(run_id), Started(run_id, "cpu", "bench", 4242, steps, steps * 4096)]
    for i in range(1, events + 1):
        step = i * LOG_EVERY
        loss = 8.0 * (1 + step) ** -0.15 + rng.gauss(0, 0.02)
        out.append(
            TrainMetric(
                run_id,
                step=step,
                tokens=step * 4096,
                lr=lr_at(step, steps, 1e-3, 1e-4, 500),
                loss=loss,
                lang_loss={lang: loss + rng.gauss(0, 0.05) for lang in LANGS},
                tokens_per_s=rng.uniform(9e4, 1.1e5),
            )
        )
        if i % BEAT_EVERY == 0:
            out.append(Heartbeat(run_id, step, 4242))
        if i % EVAL_EVERY == 0:
            for lang in LANGS:
                el = loss + rng.gauss(0.1, 0.02)
                out.append(
                    EvalResult(
                        run_id,
                        step=step,
                        tokens=step * 4096,
                        language=lang,
                        loss=el,
                        ppl=2.718281828**el,
                        char_ppl=1.5**el,
                        accuracy=rng.random(),
                        n_tokens=65536,
                    )
                )
    return out


def write_logs(root: Path, runs: int, events: int) -> Logs:
    """Creates the database first (as the launcher does), then the workers write their logs."""
    store = Store(root / "xling.duckdb")
    store.ingest()  # an empty folder: builds the file only, outside the timed ingest
    rng = random.Random(0)
    lines = train = evals = 0
    emit_s = 0.0
    for n in range(runs):
        run_id = f"{n:04d}benchrun"
        run_dir = store.run_dir(run_id)
        run_dir.mkdir(parents=True)
        (run_dir / SPEC_FILE).write_text(json.dumps(_spec(run_id, n, events)), encoding="utf-8")
        evs = _run_events(run_id, events, rng)
        with EventLog(run_dir) as log:
            t0 = time.perf_counter()
            for ev in evs:
                log.emit(ev)
            emit_s += time.perf_counter() - t0
        lines += len(evs)
        train += sum(isinstance(e, TrainMetric) for e in evs)
        evals += sum(isinstance(e, EvalResult) for e in evs)
    size = sum(p.stat().st_size for p in store.root.glob(f"runs/*/{EVENTS_FILE}"))
    return Logs(store, lines, train, evals, size, emit_s)


def xling_ingest(logs: Logs) -> float:
    """Seconds for one ``Store.ingest()`` of every log: read, parse, coerce, bulk load, commit."""
    t0 = time.perf_counter()
    stats = logs.store.ingest()
    dt = time.perf_counter() - t0
    if stats.train_rows != logs.train_rows or stats.eval_rows != logs.eval_rows:
        print(
            f"  WARNING: ingest wrote {stats.train_rows} + {stats.eval_rows} rows, "
            f"expected {logs.train_rows} + {logs.eval_rows}"
        )
    return dt


def naive_parse(paths: list[Path]) -> tuple[list[tuple], list[tuple]]:
    """What a naive loader does before inserting: every line through json.loads, into tuples."""
    train: list[tuple] = []
    evals: list[tuple] = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                ev = json.loads(line)
                kind = ev["kind"]
                if kind == "train":
                    train.append(
                        (
                            ev["run_id"],
                            ev["step"],
                            ev["tokens"],
                            ev["lr"],
                            ev["loss"],
                            ev["lang_loss"],
                            ev["tokens_per_s"],
                            utc_timestamp(ev["time"]),
                        )
                    )
                elif kind == "eval":
                    evals.append(
                        (
                            ev["run_id"],
                            ev["step"],
                            ev["tokens"],
                            ev["language"],
                            ev["loss"],
                            ev["ppl"],
                            ev["char_ppl"],
                            ev["accuracy"],
                            ev["n_tokens"],
                            utc_timestamp(ev["time"]),
                        )
                    )
    return train, evals


def naive_insert(db: Path, train: list[tuple], evals: list[tuple]) -> float:
    """Seconds for row-by-row executemany into a fresh file with the same schema.

    Given every advantage: one transaction (autocommit is ~10x slower again) and plain
    INSERT (INSERT OR REPLACE, which a resumed run's repeated steps need, is ~3x slower)."""
    con = duckdb.connect(str(db))
    try:
        con.execute(SCHEMA_SQL)
        t0 = time.perf_counter()
        con.begin()
        con.executemany(f"INSERT INTO train_metrics ({TRAIN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", train)
        if evals:
            con.executemany(f"INSERT INTO evals ({EVAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", evals)
        con.commit()
        return time.perf_counter() - t0
    finally:
        con.close()


def same_rows(naive_db: Path, xling_db: Path) -> bool:
    """Every row the naive path wrote is in xling's table with identical values."""
    con = duckdb.connect(str(naive_db))
    try:
        con.execute(f"ATTACH '{xling_db}' AS x (READ_ONLY)")
        missing = 0
        for table, cols in (("train_metrics", TRAIN_COLS), ("evals", EVAL_COLS)):
            row = con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM {table} EXCEPT SELECT {cols} FROM x.{table})"
            ).fetchone()
            missing += row[0] if row else 0
        return missing == 0
    finally:
        con.close()


def _sample(train: list[tuple], evals: list[tuple], n: int) -> tuple[list[tuple], list[tuple]]:
    """A prefix of n rows with the logs' own train/eval mix; n <= 0 means all of them."""
    total = len(train) + len(evals)
    if n <= 0 or n >= total:
        return train, evals
    k_eval = round(n * len(evals) / total)
    return train[: n - k_eval], evals[:k_eval]


def _rate(label: str, rows_per_s: float, note: str) -> None:
    print(f"    {label:36s} {rows_per_s:10,.0f} rows/s  ({note})")


def bench_ingest(tmp: Path, runs: int, events: int, naive_rows: int) -> Logs:
    """Part (a): prints rates and ratios; returns the ingested folder for part (b)."""
    logs = write_logs(tmp, runs, events)
    print(
        f"(a) ingest: {runs} runs x {events:,} train events (+ evals, heartbeats): {logs.lines:,} log lines, "
        f"{logs.bytes / 1e6:.1f} MB, {logs.rows:,} metric rows ({logs.train_rows:,} train + {logs.eval_rows:,} eval)"
    )
    print(f"    workers' EventLog.emit: {1e6 * logs.emit_s / logs.lines:.1f} us/line (in the workers, not the ingest)")

    t_xling = xling_ingest(logs)
    t0 = time.perf_counter()
    train, evals = naive_parse(logs.paths())
    t_parse = time.perf_counter() - t0
    s_train, s_evals = _sample(train, evals, naive_rows)
    n_sample = len(s_train) + len(s_evals)
    naive_db = tmp / "naive.duckdb"
    t_insert = naive_insert(naive_db, s_train, s_evals)

    r_xling = logs.rows / t_xling
    r_insert = n_sample / t_insert
    r_naive = 1 / (t_parse / logs.rows + t_insert / n_sample)  # per row: parse + insert
    sample = "all rows" if n_sample == logs.rows else f"first {n_sample:,} of the same rows"
    _rate("xling Store.ingest() end to end", r_xling, f"{t_xling:.2f} s: read + parse + load + commit")
    _rate("naive json.loads + tuples", logs.rows / t_parse, f"{t_parse:.2f} s, all lines")
    _rate("naive executemany INSERT alone", r_insert, f"{t_insert:.2f} s, {sample}, one transaction")
    _rate("naive end to end (parse + INSERT)", r_naive, "per row: parse + INSERT")
    print(f"    rows identical in both databases: {'yes' if same_rows(naive_db, logs.store.db_path) else 'NO'}")
    print(
        f"    ratio xling / naive end to end {r_xling / r_naive:6.1f}x | xling / naive INSERT alone "
        f"{r_xling / r_insert:6.1f}x (target >= 10x)"
    )
    return logs


# --- (b) reporting overhead on a training step --------------------------------------------


def make_trainer(run_dir: Path) -> Trainer:
    """cpu-xs, batch 32 x 128, built-in synthetic corpus: as bench/train_throughput.py."""
    cfg = ExperimentConfig.model_validate(
        {
            "languages": list(LANGS),
            "model": "cpu-xs",
            "tokens": 2_000_000,
            "data": {"corpus": "builtin:synthetic", "vocab_size": 2048},
            "train": {"batch_size": 32, "context": 128, "log_every": LOG_EVERY},
            "schedules": [{"name": "90/10", "mix": {"EN1": [90], "EN2": [10]}}],
        }
    )
    spec = expand_runs("bench", cfg)[0]
    return Trainer(spec, run_dir, device="cpu", log=lambda m: None)


def step_time(trainer: Trainer, steps: int) -> float:
    """Median seconds of ``Trainer.train_step`` (which includes ``_accumulate``)."""
    t = trainer.spec.train
    times = []
    for step in range(steps + 2):
        trainer.step = step
        t0 = time.perf_counter()
        trainer.train_step(lr_at(step, trainer.spec.total_steps, t.lr, t.min_lr, t.warmup))
        times.append(time.perf_counter() - t0)
        trainer.step = step + 1
    return statistics.median(times[2:])


def per_call(fn: Callable[[], None], n: int, setup: Callable[[], None] = lambda: None) -> float:
    """Median seconds of fn over n calls, each after an untimed setup."""
    times = []
    for _ in range(n):
        setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reporting_costs(trainer: Trainer, n: int) -> tuple[float, float, float]:
    """Seconds per call of: the per-step accumulation, a TrainMetric line, a heartbeat."""
    _, _, langs = trainer.batches.get(0)
    seq_loss = torch.rand(len(langs))
    accumulate = per_call(lambda: trainer._accumulate(seq_loss, langs), n)
    with EventLog(trainer.run_dir) as log:
        metric = per_call(
            lambda: trainer._emit_metric(log, 1e-3, 1e5), n, setup=lambda: trainer._accumulate(seq_loss, langs)
        )
        beat = per_call(lambda: log.emit(Heartbeat(trainer.spec.run_id, trainer.step, os.getpid())), n)
    return accumulate, metric, beat


def launcher_ingest(logs: Logs, step_s: float, n: int) -> float:
    """Median seconds of ``Store.try_ingest()`` picking up what one run writes in a period,
    against the database from part (a) (all its rows already in)."""
    run_dir = logs.store.run_dir(f"{0:04d}benchrun")
    per_period = max(1, round(INGEST_PERIOD / (step_s * LOG_EVERY)))
    rng = random.Random(1)
    step = logs.train_rows // len(logs.paths()) * LOG_EVERY
    times = []
    with EventLog(run_dir) as log:
        for _ in range(n):
            for _ in range(per_period):
                step += LOG_EVERY
                log.emit(
                    TrainMetric(
                        run_dir.name,
                        step=step,
                        tokens=step * 4096,
                        lr=1e-4,
                        loss=2.0,
                        lang_loss={lang: 2.0 + rng.random() for lang in LANGS},
                        tokens_per_s=1e5,
                    )
                )
            log.emit(Heartbeat(run_dir.name, step, os.getpid()))
            t0 = time.perf_counter()
            stats = logs.store.try_ingest()
            times.append(time.perf_counter() - t0)
            if stats is None:
                print("    WARNING: try_ingest found the database busy")
    return statistics.median(times)


def bench_reporting(tmp: Path, logs: Logs, steps: int, calls: int) -> None:
    """Part (b): one step against what reporting adds to it, amortised at xling's defaults."""
    trainer = make_trainer(tmp / "trainer")
    step_s = step_time(trainer, steps)
    accumulate, metric, beat = reporting_costs(trainer, calls)
    beats_per_step = min(1.0, step_s / HEARTBEAT_SECONDS)  # the loop checks once per step
    per_step = accumulate + metric / LOG_EVERY + beat * beats_per_step
    ingest = launcher_ingest(logs, step_s, max(5, calls // 100))
    ingest_per_step = ingest * step_s / INGEST_PERIOD
    print(
        f"(b) reporting: cpu-xs, batch 32 x 128, {torch.get_num_threads()} threads, log_every {LOG_EVERY}, "
        f"heartbeat every {HEARTBEAT_SECONDS:g} s, ingest every {INGEST_PERIOD:g} s"
    )
    print(f"    train_step {1e3 * step_s:8.1f} ms (median of {steps})")
    print(
        f"    _accumulate {1e6 * accumulate:7.1f} us/step | TrainMetric line {1e6 * metric:7.1f} us "
        f"(/{LOG_EVERY}) | heartbeat {1e6 * beat:6.1f} us (every {1 / beats_per_step:.0f} steps)"
    )
    print(
        f"    worker reporting {1e6 * per_step:7.1f} us/step = {100 * per_step / step_s:.3f}% of the step (target < 1%)"
    )
    print(
        f"    launcher try_ingest {1e3 * ingest:6.1f} ms per {INGEST_PERIOD:g} s (one run's new lines, "
        f"database of {logs.rows:,} rows) = {1e3 * ingest_per_step:.2f} ms per worker step "
        f"= {100 * ingest_per_step / step_s:.2f}% (launcher process: that share of a core, whatever the step)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--events", type=int, default=20_000, help="train events per run")
    ap.add_argument("--naive-rows", type=int, default=5_000, help="rows the naive INSERT loads (0: all)")
    ap.add_argument("--steps", type=int, default=10, help="training steps timed")
    ap.add_argument("--calls", type=int, default=1_000, help="calls per reporting operation timed")
    args = ap.parse_args()
    print(f"duckdb {duckdb.__version__}, torch {torch.__version__}, {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory(prefix="xling-bench-ingest-") as tmp:
        logs = bench_ingest(Path(tmp), args.runs, args.events, args.naive_rows)
        bench_reporting(Path(tmp), logs, args.steps, args.calls)


if __name__ == "__main__":
    main()
