"""Fuzzing experiments.toml: whatever the file holds, loading it and every check made
before queueing either succeed or raise one SpecError that names the file (and its
line, wherever the file has one to name) - never another exception, never a traceback.

Two mutators: bytes (cut, insert, overwrite, duplicate a line) and structure (a value
replaced by one of another type or an extreme, a key dropped or misspelt), over a
file exercising defaults, a cloned and a real-language experiment.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.config.locate import SpecError
from engine.config.spec import check_inputs, load_experiments
from engine.launch.preflight import check_memory, data_jobs, locate_in

SEED_FILE = """\
[defaults]
model = "cpu-xxs"
seeds = [0]

[defaults.train]
batch_size = 8
context = 32

[experiments.cloned]
languages = ["EN1", "EN2"]
tokens = 100_000
baselines = [1.0, 0.5]
data = { corpus = "builtin:synthetic", vocab_size = 256, anchors = 0.1 }
eval = { every = 0.5, probe = { steps = 5 } }

[[experiments.cloned.schedules]]
name = "90/10"
ends = [0.5, 1.0]
mix = { EN1 = [90, 10], EN2 = [10, 90] }

[experiments.real]
languages = ["A", "B"]
tokens = 50_000
baselines = [1.0]
scaling_law = "power"

[experiments.real.data]
kind = "real"
tokenizer = "anchored"
vocab_size = 256
corpora.A = { path = "builtin:family" }
corpora.B = { path = "builtin:family", family = { like = "far" } }

[[experiments.real.schedules]]
name = "skewed"
mix = { A = [80], B = [20] }
"""

ODD_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 2**63 - 1, 10**15, 10**9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "../../x", "/etc/passwd", "builtin:family", "[bold]x[/]", "EN1", "far"]),
    st.booleans(),
    st.lists(st.one_of(st.integers(-5, 200), st.floats(allow_nan=True), st.text(max_size=4)), max_size=4),
    st.dictionaries(st.sampled_from(["EN1", "EN2", "A", "like", "path", "x"]), st.integers(-1, 100), max_size=3),
)


def _check(path: Path) -> None:
    """What `xling run` does before queueing, without training."""
    try:
        experiments = load_experiments(path)
        check_inputs(experiments)
        specs = [r for e in experiments for r in e.runs]
        check_memory(specs, locate_in(experiments), host_bytes=2**40)
        list(data_jobs(specs))
    except SpecError as exc:
        message = str(exc)
        assert message.startswith(f"{path}"), message
        if "no experiments defined" not in message:
            assert re.match(rf"{re.escape(str(path))}:\d+: ", message), message


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED_FILE.encode())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "insert", "overwrite", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if op == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"[", b"]", b'"', b"=", b"\n", b"."])
            )
        elif op == "overwrite" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def _leaves(node, path=()):
    """Paths to every value of a tomlkit document (tables and arrays included)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from _leaves(value, (*path, key))


@st.composite
def structure_mutations(draw: st.DrawFn) -> str:
    doc = tomllib.loads(SEED_FILE)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_leaves(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["replace", "replace", "drop", "misspell"]))
        key = path[-1]
        if op == "replace":
            parent[key] = draw(ODD_VALUES)
        elif op == "drop":
            del parent[key]
        elif isinstance(key, str):
            parent[key[:-1] + draw(st.sampled_from(["", "s", "x", "_"]))] = parent.pop(key)
    try:
        return tomlkit.dumps(doc)
    except (TypeError, ValueError):  # a value TOML cannot hold where it was put
        assume(False)
        raise


fast = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_N", 120)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def test_the_seed_file_is_valid(tmp_path):
    path = tmp_path / "experiments.toml"
    path.write_text(SEED_FILE)
    experiments = load_experiments(path)
    check_inputs(experiments)
    assert {e.name for e in experiments} == {"cloned", "real"}


@fast
@given(data=byte_mutations())
def test_mutated_bytes_load_or_give_one_located_error(tmp_path, data):
    path = tmp_path / "experiments.toml"
    path.write_bytes(data)
    _check(path)


@fast
@given(text=structure_mutations())
def test_mutated_structure_loads_or_gives_one_located_error(tmp_path, text):
    path = tmp_path / "experiments.toml"
    path.write_text(text, encoding="utf-8")
    _check(path)
