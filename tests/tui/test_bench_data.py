"""bench/tui_startup.py writes its databases straight into the tables: they must stay
what xling itself would have written, or the bench times something that cannot happen
(it once stopped building at all when `experiments` gained its `members` column)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("tui_startup", ROOT / "bench" / "tui_startup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_experiment_bench_database_reads_as_an_experiment_with_its_law(tmp_path):
    from xling_tui.screens.experiment import fetch_experiment, table_rows

    db = _bench().build_experiment_db(tmp_path, runs=25, points=400)
    data = fetch_experiment(db, "bench")
    assert data.error is None, data.error
    names = {r.name for r in data.runs}
    assert len(data.runs) == 25 and {"mix 0", "mix 20"} <= names
    assert {r.status for r in data.runs} == {"done"}
    _, rows = table_rows(data.report, data.runs)
    assert len(rows) == len(names)  # a row per schedule and baseline, every one with its numbers
    assert data.law is not None and data.law.curve and len(data.law.baselines) == 4
