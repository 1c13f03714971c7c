"""xling-tui: cold start to first frame, a dashboard refresh, the experiment view and the
compare x-axis switch, at 100 runs x 10k points.

    python bench/tui_startup.py [--runs 100] [--points 10000] [--repeat 5]

1. Cold start: a fresh ``python`` process imports the app, builds the dashboard and
   paints its first frame (Textual's headless driver: the same compositor work as a
   terminal, without the terminal). Measured from just before the process is spawned,
   so interpreter start-up counts. Also reported: when the first runs are on screen
   (the database is read on a thread worker after the first frame). Target < 0.5 s.
2. One refresh: a database of ``--runs`` runs with ``--points`` training points each
   (written straight into DuckDB; this bench needs no corpus), every run advanced by
   one logging step, then: the worker-thread fetch (``DashboardSource.fetch``: the
   fingerprint poll, the changed runs' rows and their loss sparklines) and the UI-thread
   update (``DashboardScreen.apply``: the table diff and the repaint). Target < 50 ms
   for the UI-thread update (the part that could stall the interface), as CPU time of
   that thread and as wall time until the repaint is done (which also counts Textual's
   frame pacing and, on a busy machine, other processes); the fetch runs off the UI
   thread and is printed beside it, with the idle poll (nothing changed). The machine's
   load average is printed with the figures: on a shared box they are worth reading with it.
3. The experiment view (``v``) of an experiment of ``--runs`` runs (4 baselines and
   schedules over seeds, specs from ``engine.config.spec``, every full run ``--points``
   training steps logged, evaluations at 21 points, the law and TEff computed by
   ``db.analysis``): UI-thread time from pushing the screen to its table and law drawn
   (CPU time of that thread: the mount, then the data message and its paint); the read
   runs on a worker and is printed beside it, and so is the floor under any screen
   (pushing one with a single line). Target < 100 ms. The garbage collector is held off
   while a screen opens (``xling_tui/collector.py``); what it then does half a second
   later is printed too, with the collections that fell inside the openings (none).
4. The compare view of all those runs: switching the x axis (step, tokens, tokens seen
   in the language) with the held-out PPL and with the training PPL (each run's
   training curve cut to 400 points in SQL), UI-thread CPU time of the switch and its
   repaint. Target < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STARTUP_TARGET = 0.5
REFRESH_TARGET = 0.050
VIEW_TARGET = 0.100  # the experiment view's opening, a compare x-axis switch: UI-thread time

CHILD = r"""
import sys, time
from pathlib import Path
from xling_tui.app import XlingApp
from engine.launch.devices import FakeSource

class Bench(XlingApp):
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self._painted)

    def _painted(self):
        print(f"FIRST_FRAME {time.time():.6f}", flush=True)
        self.set_interval(0.005, self._data)

    def _data(self):
        if getattr(self.screen, "data", None) is not None:
            print(f"FIRST_DATA {time.time():.6f}", flush=True)
            self.exit()

Bench(Path(sys.argv[1]), Path(sys.argv[2]), gpu_source=FakeSource([])).run(headless=True, size=(120, 40))
"""


def build_db(folder: Path, runs: int, points: int) -> Path:
    """Bench data written straight into the tables (a bench-only shortcut: real runs go
    through their event logs); times and values are synthetic."""
    import duckdb

    from db.store import Store

    db = folder / "bench.duckdb"
    Store(db).ingest()  # creates the schema
    con = duckdb.connect(str(db))
    con.execute(f"""
        INSERT INTO runs (run_id, experiment, name, kind, status, model, seed, languages, device, host, pid,
                          queued, started, last_seen, step, total_steps, tokens, total_tokens)
        SELECT printf('run%04d', i), 'bench', printf('mix %d', i), 'mix',
               CASE WHEN i % 4 = 0 THEN 'running' ELSE 'done' END, 'cpu-xs', i % 3, ['EN1', 'EN2'],
               printf('cuda:%d', i % 8), 'gpu-host', 100000 + i,
               TIMESTAMP '2026-01-01' + to_seconds(i), TIMESTAMP '2026-01-01' + to_seconds(i),
               TIMESTAMP '2026-01-02', {points} - 1, {points} + 2000, ({points} - 1) * 4096, ({points} + 2000) * 4096
        FROM range({runs}) t(i)""")
    con.execute(f"""
        INSERT INTO train_metrics
        SELECT printf('run%04d', i), s, s * 4096, 1e-3, 2.0 + 6.0 * exp(-s / 2000.0) + 0.01 * (i % 7),
               MAP(['EN1', 'EN2'], [2.0 + 6.0 * exp(-s / 2000.0), 2.5 + 6.0 * exp(-s / 1500.0)]),
               30000.0 + i, TIMESTAMP '2026-01-01' + to_seconds(s)
        FROM range({runs}) t(i), range({points}) u(s)""")
    con.execute(f"""
        INSERT INTO evals
        SELECT printf('run%04d', i), e * ({points} // 20), e * ({points} // 20) * 4096, lang,
               2.0 + 6.0 * exp(-e / 5.0), exp(2.0 + 6.0 * exp(-e / 5.0)), NULL, NULL, 20000,
               TIMESTAMP '2026-01-01' + to_seconds(e)
        FROM range({runs}) t(i), range(21) v(e), (VALUES ('EN1'), ('EN2')) l(lang)""")
    con.close()
    return db


def advance(db: Path, points: int) -> None:
    """What a logging step of every run looks like to the database: one more point each."""
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("""
        INSERT INTO train_metrics
        SELECT run_id, step + 1, (step + 1) * 4096, 1e-3, 2.0, NULL, 31000.0, last_seen + INTERVAL 1 SECOND
        FROM runs""")
    con.execute("UPDATE runs SET step = step + 1, tokens = tokens + 4096, last_seen = last_seen + INTERVAL 1 SECOND")
    con.close()


def cold_start(config: Path, db: Path, repeat: int) -> tuple[list[float], list[float]]:
    frames, data = [], []
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    for _ in range(repeat):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(config), str(db)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
        marks = dict(line.split() for line in out.stdout.splitlines() if line.startswith("FIRST_"))
        if "FIRST_FRAME" not in marks:
            raise SystemExit(f"the app did not paint:\n{out.stdout}\n{out.stderr}")
        frames.append(float(marks["FIRST_FRAME"]) - t0)
        if "FIRST_DATA" in marks:
            data.append(float(marks["FIRST_DATA"]) - t0)
    return frames, data


async def refresh(config: Path, db: Path, points: int, repeat: int) -> dict[str, list[float]]:
    from engine.launch.devices import FakeSource
    from xling_tui.app import XlingApp
    from xling_tui.data_source import DashboardSource

    source = DashboardSource(config, db, ingest=False)
    first = source.fetch()
    times: dict[str, list[float]] = {"fetch": [], "idle poll": [], "ui update": [], "ui cpu": [], "ui first fill": []}
    app = XlingApp(config, db, gpu_source=FakeSource([]), refresh_every=3600, gpu_every=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        board = app.screen
        for _ in range(400):
            if board.data is not None:
                break
            await pilot.pause(0.02)
        t = time.perf_counter()
        board.apply(first)
        await pilot.pause()
        times["ui first fill"].append(time.perf_counter() - t)
        for _ in range(repeat):
            advance(db, points)
            t = time.perf_counter()
            data = source.fetch()
            times["fetch"].append(time.perf_counter() - t)
            t = time.perf_counter()
            assert source.fetch() is None  # nothing new: the poll posts nothing
            times["idle poll"].append(time.perf_counter() - t)
            t, cpu = time.perf_counter(), time.thread_time()
            board.apply(data)
            await pilot.pause()
            times["ui update"].append(time.perf_counter() - t)
            times["ui cpu"].append(time.thread_time() - cpu)
    return times


EXPERIMENT = """\
[experiments.bench]
languages = ["EN1", "EN2"]
model = "cpu-xs"
tokens = {tokens}
seeds = {seeds}
baselines = [1.0, 0.5, 0.25, 0.1]
scaling_law = "power"
train = {{ batch_size = 32, context = 128, log_every = 1 }}
{schedules}
"""


def build_experiment_db(folder: Path, runs: int, points: int) -> Path:
    """An experiment of about ``runs`` runs (4 baselines and 21 schedules over seeds),
    written straight into the tables with real specs; the law and TEff come from
    ``db.analysis``. A bench-only shortcut: real runs go through their event logs."""
    import json
    import tomllib

    import duckdb

    from db.analysis import refresh
    from db.store import Store
    from engine.config.spec import parse_experiments

    n_seeds = max(1, runs // 25)
    schedules = "\n".join(
        f'[[experiments.bench.schedules]]\nname = "mix {k}"\nmix = {{ EN1 = [{95 - 4 * k}], EN2 = [{5 + 4 * k}] }}'
        for k in range(21)
    )
    text = EXPERIMENT.format(tokens=points * 32 * 128, seeds=list(range(n_seeds)), schedules=schedules)
    (exp,) = parse_experiments(tomllib.loads(text), text, str(folder / "bench.toml"))
    db = folder / "experiment.duckdb"
    Store(db).ingest()
    rows = []
    for spec in exp.runs:
        rows.append((spec.run_id, spec.name, spec.kind, spec.seed, spec.to_json(), spec.total_steps, spec.total_tokens))
    con = duckdb.connect(str(db))
    record = exp.to_record()
    members = [{**m, "point": json.dumps(m["point"]) if m["point"] else None} for m in record["runs"]]
    con.execute(
        "INSERT INTO experiments VALUES (?, ?, ?, ?, TIMESTAMP '2026-01-01', ?, ?)",
        ["bench", "", "bench.toml", json.dumps(record["config"]), [r[0] for r in rows], members],
    )
    con.executemany(
        """INSERT INTO runs (run_id, experiment, name, kind, status, spec, model, seed, languages, step, total_steps,
                            tokens, total_tokens, queued, started, finished, last_seen)
           VALUES (?, 'bench', ?, ?, 'done', ?, 'cpu-xs', ?, ['EN1', 'EN2'], ?, ?, ?, ?, TIMESTAMP '2026-01-01',
                   TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-02', TIMESTAMP '2026-01-02')""",
        [(rid, name, kind, json_spec, seed, steps, steps, tokens, tokens)
         for rid, name, kind, seed, json_spec, steps, tokens in rows],
    )  # fmt: skip
    con.execute("""
        INSERT INTO train_metrics
        SELECT r.run_id, s, s * 4096, 1e-3, 2.0 + 6.0 * exp(-s / 2000.0),
               MAP(['EN1', 'EN2'], [2.0 + 6.0 * exp(-s / 2000.0), 2.5 + 6.0 * exp(-s / 1500.0)]),
               30000.0, TIMESTAMP '2026-01-01' + to_seconds(s)
        FROM runs r, range(1, r.total_steps + 1) u(s)""")
    con.execute("""
        INSERT INTO evals
        SELECT r.run_id, e * (r.total_steps // 20) + CASE WHEN e = 20 THEN r.total_steps % 20 ELSE 0 END AS step,
               NULL, lang, NULL,
               110.0 * pow(greatest(step, 1) * 4096.0 / (r.spec->>'$.budget_tokens')::DOUBLE, -0.45)
                 * CASE WHEN lang = 'EN2' THEN 1.3 ELSE 1.0 END,
               NULL, NULL, 20000, TIMESTAMP '2026-01-01'
        FROM runs r, range(21) v(e), (VALUES ('EN1'), ('EN2')) l(lang)
        WHERE r.kind = 'mix' OR lang = 'EN1'""")
    con.execute("UPDATE evals SET tokens = step * 4096")
    refresh(con, ["bench"])
    con.close()
    return db


async def experiment_view(config: Path, db: Path, repeat: int) -> dict[str, list[float]]:
    """UI-thread cost of opening the experiment view and of switching the compare x axis.

    The opening is counted in its two UI-thread parts, the worker thread's read between
    them left out (it is timed on its own): mounting the screen up to its first paint,
    then handling the data message up to the paint that shows it. The screen is given
    its data by the bench rather than by its worker, so the two parts never overlap."""
    from engine.launch.devices import FakeSource
    from xling_tui.app import XlingApp
    from xling_tui.screens.compare import CompareScreen
    from xling_tui.screens.experiment import ExperimentScreen, fetch_experiment
    from xling_tui.widgets.plots import XPlot

    class Fed(ExperimentScreen):
        CSS_PATH = str(ROOT / "xling_tui" / "screens" / ExperimentScreen.CSS_PATH)  # relative to its own module

        def action_reload(self) -> None:  # the bench hands it the worker's result
            pass

    keys = ("empty screen", "open cpu", "open mount", "open data", "open read", "open gc", "open gc after")
    times: dict[str, list[float]] = {k: [] for k in (*keys, "axis eval", "axis train")}
    collections = _Collections()
    gc.callbacks.append(collections)
    app = XlingApp(config, db, gpu_source=FakeSource([]), refresh_every=3600, gpu_every=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(repeat):  # the floor under any screen: pushing one with a single line
            cpu = time.thread_time()
            app.push_screen(_Empty())
            await pilot.pause()
            times["empty screen"].append(time.thread_time() - cpu)
            app.pop_screen()
            await pilot.pause()
        for _ in range(repeat):
            wall = time.perf_counter()
            data = fetch_experiment(db, "bench")  # what the worker thread reads
            times["open read"].append(time.perf_counter() - wall)
            collected = collections.seconds
            cpu = time.thread_time()
            app.push_screen(Fed("bench"))
            screen = app.screen
            await pilot.pause()
            mounted = time.thread_time() - cpu
            cpu = time.thread_time()
            screen.on_experiment_data(data)
            await pilot.pause()
            shown = time.thread_time() - cpu
            times["open mount"].append(mounted)
            times["open data"].append(shown)
            times["open cpu"].append(mounted + shown)
            times["open gc"].append(collections.seconds - collected)
            collected = collections.seconds
            for _ in range(100):  # until the collector is back on, and a moment for what it does then
                if gc.isenabled():
                    break
                await pilot.pause(0.02)
            await pilot.pause(0.05)
            times["open gc after"].append(collections.seconds - collected)
            app.pop_screen()
            await pilot.pause()
        app.push_screen(CompareScreen([r[0] for r in _all_runs(db)]))
        screen = app.screen
        while screen.shown is None:
            await pilot.pause(0.01)
        await pilot.pause()
        plot = screen.query_one(XPlot)
        for metric in ("eval", "train"):
            if screen.view.metric != metric:
                screen.action_toggle_metric()
                plot._flush()
                await pilot.pause()
            for _ in range(3 * repeat):  # each axis in turn, several times
                cpu = time.thread_time()
                screen.action_next_axis()
                plot._flush()  # drawn now even within the throttle's interval
                await pilot.pause()
                times[f"axis {metric}"].append(time.thread_time() - cpu)
    gc.callbacks.remove(collections)
    return times


class _Collections:
    """UI-thread CPU time spent in the garbage collector (gc's callbacks, that thread only)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._thread = threading.get_ident()
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if threading.get_ident() != self._thread:
            return
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._start


def _Empty():
    from textual.screen import Screen
    from textual.widgets import Static

    class Empty(Screen):
        def compose(self):
            yield Static("empty")

    return Empty()


def _all_runs(db: Path) -> list[tuple]:
    from db.store import Store

    return Store(db).query("SELECT run_id FROM runs ORDER BY run_id").rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xling-tui-bench-") as tmp:
        folder = Path(tmp)
        config = folder / "experiments.toml"
        config.write_text((ROOT / "experiments.toml").read_text(encoding="utf-8"), encoding="utf-8")
        t = time.perf_counter()
        db = build_db(folder, args.runs, args.points)
        print(f"bench database: {args.runs} runs x {args.points} points ({time.perf_counter() - t:.1f} s to build)")
        frames, data = cold_start(config, db, args.repeat)
        times = asyncio.run(refresh(config, db, args.points, args.repeat))
        t = time.perf_counter()
        exp_db = build_experiment_db(folder, args.runs, args.points)
        print(f"experiment database: {args.runs} runs ({time.perf_counter() - t:.1f} s to build)")
        views = asyncio.run(experiment_view(config, exp_db, args.repeat))
    med = statistics.median
    print(f"\n{'measure':<52}{'median':>10}{'min':>10}{'max':>10}{'target':>10}{'ratio':>8}")
    rows = [
        ("cold start -> first frame (fresh process)", frames, STARTUP_TARGET),
        ("cold start -> runs on screen", data, None),
        (f"refresh: UI thread busy, CPU ({args.runs} runs)", times["ui cpu"], REFRESH_TARGET),
        ("refresh: UI update to repainted, wall clock", times["ui update"], REFRESH_TARGET),
        ("refresh: worker fetch, every run changed", times["fetch"], None),
        ("idle poll: worker fetch, nothing changed", times["idle poll"], None),
        ("first fill of the table (UI thread)", times["ui first fill"], None),
        ("a screen with one line: push to painted (the floor)", views["empty screen"], None),
        (f"experiment view: open, UI thread CPU ({args.runs} runs)", views["open cpu"], VIEW_TARGET),
        ("  of which: mount to first paint", views["open mount"], None),
        ("  of which: its data handled and painted", views["open data"], None),
        ("experiment view: the worker's read (wall)", views["open read"], None),
        (f"compare x-axis switch, {args.runs} runs, held-out PPL (UI CPU)", views["axis eval"], VIEW_TARGET),
        (f"compare x-axis switch, {args.runs} runs, training PPL (UI CPU)", views["axis train"], VIEW_TARGET),
    ]
    for name, values, target in rows:
        if not values:
            print(f"{name:<52}{'n/a':>10}")
            continue
        ratio = f"{med(values) / target:.2f}" if target else ""
        print(
            f"{name:<52}{med(values) * 1000:>8.0f}ms{min(values) * 1000:>8.0f}ms{max(values) * 1000:>8.0f}ms"
            f"{(f'{target * 1000:.0f}ms' if target else ''):>10}{ratio:>8}"
        )
    for what, key in (("inside the openings", "open gc"), ("left for later", "open gc after")):
        spent = views[key]
        print(
            f"experiment view, garbage collections {what}: {sum(spent) * 1000:.0f} ms of UI-thread CPU "
            f"over {len(spent)} openings ({sum(1 for x in spent if x > 0)} with one)"
        )
    print(
        "\nratio = median / target (below 1 meets the target; max: the slowest repeat); "
        f"load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
