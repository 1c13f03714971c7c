"""bench/gpu_check.py on a machine without CUDA: a clear message, exit 0, nothing run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def test_without_cuda_it_says_why_and_checks_nothing(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # a CUDA machine running the suite hides its GPUs here
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("gpu_check skipped: no CUDA device:")
    assert "Nothing was checked" in proc.stdout and not list(tmp_path.iterdir())


def test_a_cuda_build_without_a_device_is_told_apart(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import gpu_check

    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "sees no CUDA device" in gpu_check.no_cuda_reason()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu_check.no_cuda_reason() is None
