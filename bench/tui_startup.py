"""xling-tui: cold start to first frame, and one dashboard refresh at 100 runs x 10k points.

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
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STARTUP_TARGET = 0.5
REFRESH_TARGET = 0.050

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
    med = statistics.median
    print(f"\n{'measure':<46}{'median':>10}{'min':>10}{'target':>10}{'ratio':>8}")
    rows = [
        ("cold start -> first frame (fresh process)", frames, STARTUP_TARGET),
        ("cold start -> runs on screen", data, None),
        (f"refresh: UI thread busy, CPU ({args.runs} runs)", times["ui cpu"], REFRESH_TARGET),
        ("refresh: UI update to repainted, wall clock", times["ui update"], REFRESH_TARGET),
        ("refresh: worker fetch, every run changed", times["fetch"], None),
        ("idle poll: worker fetch, nothing changed", times["idle poll"], None),
        ("first fill of the table (UI thread)", times["ui first fill"], None),
    ]
    for name, values, target in rows:
        if not values:
            print(f"{name:<46}{'n/a':>10}")
            continue
        ratio = f"{med(values) / target:.2f}" if target else ""
        print(
            f"{name:<46}{med(values) * 1000:>8.0f}ms{min(values) * 1000:>8.0f}ms"
            f"{(f'{target * 1000:.0f}ms' if target else ''):>10}{ratio:>8}"
        )
    print(
        f"\nratio = median / target (below 1 meets the target); load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
