"""bench/gpu_paper_slice.py without a GPU: the CPU stand-in runs the whole pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_without_cuda_the_stand_in_trains_reports_and_says_it_measures_nothing(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu_paper_slice.py"),
            str(tmp_path / "out"),
            *("--ratios", "50,99", "--seeds", "0", "--baselines", "1,0.5"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("gpu_paper_slice: no CUDA device: the CPU stand-in runs")
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    assert "ratio=50" in report and "ratio=99" in report  # one row per point of the sweep
    header = (out / "report.csv").read_text().splitlines()[0]
    assert "PPL EN1" in header and "TEff EN2" in header
    assert (out / "slice.duckdb").exists() and not (out / "plan.txt").exists()  # no rate measured on a CPU


def test_the_budget_fills_the_minutes_given():
    sys.path.insert(0, str(ROOT))
    from bench.gpu_paper_slice import BASELINES, budget_for

    fast, slow = budget_for(1e6, 7, "cuda", 3, 2), budget_for(3e5, 7, "cuda", 3, 2)
    assert fast > 3 * slow * 0.95  # a third of the rate, a third of the tokens
    train_tokens = 2 * (3 + sum(BASELINES)) * fast
    assert 3 * 60 < train_tokens / 1e6 < 7 * 60  # training leaves time for the overheads
