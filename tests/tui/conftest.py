"""Fixtures for the TUI tests: the fixture database, fake GPUs, a fixed clock.

Everything a snapshot shows must be the same on every machine and every run: times
come from ``fixed_clock`` (never the wall clock), GPUs from ``engine.launch.devices.FakeSource``
(never NVML), and animations and the cursor blink are off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# For apps in subprocesses; pytest-textual-snapshot imports textual (which reads this once)
# before any conftest, so apps made here also set ``animation_level`` themselves.
os.environ["TEXTUAL_ANIMATIONS"] = "none"

FIXED_NOW = 1_767_225_600.0 + 30 * 3600.0  # 2026-01-02 06:00 UTC: after every fixture event


@pytest.fixture
def fixture_db(tmp_path: Path) -> Path:
    """A fresh copy of the deterministic results database (tests may change it)."""
    from tests.tui.fixture_db import build_fixture_db

    return build_fixture_db(tmp_path)


@pytest.fixture
def fixture_config(tmp_path: Path) -> Path:
    """The fixture's experiments.toml (with comments), beside the database."""
    from tests.tui.fixture_db import FIXTURE_CONFIG

    path = tmp_path / "experiments.toml"
    path.write_text(FIXTURE_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def fixed_clock() -> Callable[[], float]:
    """What the app reads instead of time.time(), so ages and ETAs are the same on every run."""
    return lambda: FIXED_NOW


def _fake_gpus():
    from engine.launch.devices import FakeSource, fake_gpu

    return FakeSource(
        [
            fake_gpu(
                0,
                name="NVIDIA H100 80GB HBM3",
                memory_used_mb=40_960.0,
                utilization=87.0,
                temperature=71.0,
                power_w=512.0,
                power_limit_w=700.0,
                processes=[
                    {"pid": 4_194_000, "used_memory_mb": 40_000.0, "name": "python -m engine.worker", "ours": True}
                ],
            ),
            fake_gpu(
                1,
                name="NVIDIA H100 80GB HBM3",
                memory_used_mb=20_480.0,
                utilization=35.0,
                temperature=55.0,
                power_w=230.0,
                power_limit_w=700.0,
                processes=[{"pid": 31337, "used_memory_mb": 20_000.0, "name": "python train_other.py"}],
            ),
        ]
    )


@pytest.fixture
def fake_gpus():
    """Two busy GPUs: one running a fixture run (ours), one someone else's job (foreign)."""
    return _fake_gpus()


@pytest.fixture
def no_gpus():
    """A machine without NVML: the app must show its CPU-mode panel."""
    from engine.launch.devices import FakeSource

    return FakeSource([], reason="no NVIDIA driver (NVML not found)")


@pytest.fixture
def make_app(fixture_db: Path, fixture_config: Path, fake_gpus, fixed_clock):
    """Builds an XlingApp on the fixture data; keyword arguments override the defaults."""

    def make(**kwargs):
        from xling_tui.app import XlingApp

        options = {"gpu_source": fake_gpus, "clock": fixed_clock, "refresh_every": 3600.0, "gpu_every": 3600.0} | kwargs
        app = XlingApp(fixture_config, fixture_db, **options)
        app.animation_level = "none"
        return app

    return make
