"""Shared fixtures: a private token cache and a tiny experiments file."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = """\
[experiments.tiny]
description = "a test-sized cloned-language experiment"
languages = ["EN1", "EN2"]
model = "cpu-xxs"
tokens = 24_576
baselines = [1.0, 0.5]
data = {{ corpus = "{corpus}", vocab_size = 256 }}
train = {{ batch_size = 8, context = 32, warmup = 4, log_every = 2, checkpoint_every = 5 }}
eval = {{ context = 32, stride = 16, max_tokens = 2000, every = 0.5 }}

[[experiments.tiny.schedules]]
name = "90/10"
mix = {{ EN1 = [90], EN2 = [10] }}
"""


@pytest.fixture(scope="session", autouse=True)
def token_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenizer cache for the whole session, never the user's ~/.cache."""
    path = tmp_path_factory.mktemp("xling-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("XLING_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session", autouse=True)
def cpu_precision() -> None:
    """precision = "auto" trains in fp32 here: a test's numbers must not hang on a timing
    (tests/test_precision.py asks for the measurement itself)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XLING_CPU_AUTO_PRECISION", "fp32")
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def cpu_slots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own CPU slot registry of two cores, never the host's: the workers
    of other tests, or of anyone else on the machine, must not decide a test's threads."""
    path = tmp_path_factory.mktemp("cpu-slots")
    monkeypatch.setenv("XLING_CPU_SLOTS", str(path))
    monkeypatch.setenv("XLING_CPUS", "2")
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated corpus as a plain-text file, exercising the file reader."""
    from engine.data.synthetic import SyntheticSpec, generate_text

    path = tmp_path_factory.mktemp("corpus") / "synthetic.txt"
    path.write_text(generate_text(SyntheticSpec(seed=3), 300_000))
    return path


@pytest.fixture
def tiny_toml(tmp_path: Path, tiny_corpus: Path) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(TINY.format(corpus=tiny_corpus))
    return path
