"""One fold of a run's log: the launcher's RunState and the database's runs row agree.

The launcher folds a run's events to decide what to start or mark failed; the ingest
folds them into ``runs``. Both use ``engine.runs.fold.RunFold``; these tests hold them to
the same answer for any log, read in any pieces, malformed lines included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.bulk import stamp
from db.ingest import _FOLD_COLUMNS, _STATE_COLUMNS
from db.store import Store
from engine.config.spec import RunSpec, load_experiments
from engine.launch.state import RunState
from engine.runs.events import read_events
from engine.runs.fold import RunFold
from engine.runs.layout import EVENTS_FILE, SPEC_FILE
from engine.runs.status import LIVE, TERMINAL, RunStatus
from tests.conftest import TINY

T0 = 1_700_000_000.0
TIMES = ("queued", "started", "finished", "last_seen")


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> RunSpec:
    toml = tmp_path_factory.mktemp("spec") / "experiments.toml"
    toml.write_text(TINY.format(corpus=tiny_corpus))
    return load_experiments(toml)[0].runs[0]


def new_run(root: Path, spec: RunSpec) -> Path:
    run_dir = root / "runs" / spec.run_id
    run_dir.mkdir(parents=True)
    (run_dir / SPEC_FILE).write_text(spec.to_json())
    return run_dir


def fold_of(state: RunFold) -> dict[str, Any]:
    """The folded fields as the database stores them (times as timestamps, status as its string)."""
    out = {name: getattr(state, name) for name in _FOLD_COLUMNS}
    for name in TIMES:
        out[name] = stamp(out[name])
    out["status"] = None if out["status"] is None else str(out["status"])
    return out


def row_of(store: Store, run_id: str) -> dict[str, Any]:
    row = store.query(f"SELECT {', '.join(_FOLD_COLUMNS)} FROM runs WHERE run_id = ?", [run_id]).dicts()[0]
    for name in TIMES:
        row[name] = None if row[name] is None else row[name].isoformat(sep=" ", timespec="microseconds")
    return row


# -- any log, any pieces ------------------------------------------------------------------

_time = st.floats(T0, T0 + 1e6, allow_nan=False)
_step = st.one_of(st.integers(0, 50), st.none(), st.just("7"), st.just(2**70))
_word = st.one_of(st.none(), st.sampled_from(["local", "slurm", "ray"]), st.integers(1, 99), st.just(["x"]))
_status = st.one_of(st.sampled_from(list(RunStatus)), st.sampled_from(["paused", "DONE", ""]), st.none(), st.just(3))

_event = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("queued"), "time": _time}, optional={"message": st.one_of(st.none(), st.just("no slot"))}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("submitted"), "backend": _word, "job_id": _word, "host": st.just("login"), "time": _time}
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("job_state"),
            "job_id": _word,
            "state": st.one_of(st.sampled_from(["RUNNING", "PENDING (Priority)"]), st.none()),
            "time": _time,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("started"),
            "device": st.sampled_from(["cpu", "cuda:0"]),
            "host": st.sampled_from(["a", "b"]),
            "pid": st.one_of(st.integers(1, 99), st.just(2**40), st.none()),
            "total_steps": st.integers(1, 50),
            "total_tokens": st.integers(1, 5000),
            "resumed_from": st.one_of(st.none(), st.integers(0, 50)),
            "time": _time,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("status"),
            "status": _status,
            "message": st.one_of(st.none(), st.text(max_size=4)),
            "step": _step,
            "time": _time,
        }
    ),
    st.fixed_dictionaries({"kind": st.just("train"), "step": _step, "tokens": _step, "loss": st.floats(0, 9)}),
    st.fixed_dictionaries({"kind": st.just("heartbeat"), "step": _step, "pid": st.integers(1, 99), "time": _time}),
    st.fixed_dictionaries({"kind": st.just("eval"), "language": st.just("EN1"), "ppl": st.floats(1, 99)}),
    st.fixed_dictionaries({"kind": st.just("status"), "time": st.one_of(st.just("soon"), st.just(1e300))}),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, max_size=20), cuts=st.lists(st.floats(0, 1), max_size=4))
def test_any_log_in_any_pieces_folds_to_the_same_state_in_the_launcher_and_the_database(
    tmp_path_factory: pytest.TempPathFactory, spec: RunSpec, events: list[dict], cuts: list[float]
) -> None:
    store = Store(tmp_path_factory.mktemp("fold") / "results.duckdb")
    run_dir = new_run(store.root, spec)
    state = RunState(spec=spec, run_dir=run_dir)
    data = "".join(json.dumps({"run_id": spec.run_id, **ev}) + "\n" for ev in events).encode()
    done = 0
    with open(run_dir / EVENTS_FILE, "ab") as fh:
        for cut in sorted(int(c * len(data)) for c in cuts) + [len(data)]:
            fh.write(data[done:cut])  # cuts fall mid-line too: a torn line waits for its end
            fh.flush()
            done = cut
            store.ingest()
            state.refresh()
    in_one_go = RunFold()  # the whole log read at once (a status xling does not know is a skipped line)
    for ev in read_events(run_dir / EVENTS_FILE)[0]:
        in_one_go.apply(ev)
    assert fold_of(state) == fold_of(in_one_go)
    row = row_of(store, spec.run_id)
    if not events:  # no log: the row has only its spec
        assert row["status"] is None and row["total_steps"] == spec.total_steps
        return
    expected = fold_of(state)
    expected["total_steps"] = expected["total_steps"] or spec.total_steps  # the spec's until a worker starts
    expected["total_tokens"] = expected["total_tokens"] or spec.total_tokens
    assert row == expected


def test_the_database_columns_are_the_fold_fields() -> None:
    assert list(_STATE_COLUMNS) == ["run_id", *_FOLD_COLUMNS]


# -- the rules where launcher and database used to differ -----------------------------------


def fold(*events: dict) -> RunFold:
    state = RunFold()
    for ev in events:
        state.apply(ev)
    return state


def test_a_queued_event_ends_the_previous_job_but_slurms_requeue_keeps_it() -> None:
    submitted = {"kind": "submitted", "backend": "slurm", "job_id": "123", "time": T0}
    requeued = fold(submitted, {"kind": "status", "status": "queued", "message": "requeued by Slurm", "time": T0 + 1})
    assert (requeued.status, requeued.backend, requeued.job_id) == (RunStatus.QUEUED, "slurm", "123")
    back_in_xling = fold(submitted, {"kind": "queued", "time": T0 + 1})
    assert (back_in_xling.status, back_in_xling.backend, back_in_xling.job_id) == (RunStatus.QUEUED, None, None)


def test_a_local_submission_after_a_cluster_one_has_no_job_id() -> None:
    state = fold({"kind": "submitted", "backend": "slurm", "job_id": "123"}, {"kind": "submitted", "backend": "local"})
    assert (state.backend, state.job_id) == ("local", None)


def test_a_jobs_state_is_its_own_until_xling_queues_the_run_again() -> None:
    submitted = {"kind": "submitted", "backend": "slurm", "job_id": "123", "time": T0}
    assert fold(submitted).job_state == "SUBMITTED"  # until the scheduler is first asked
    running = {"kind": "job_state", "job_id": "123", "state": "RUNNING", "time": T0 + 1}
    assert fold(submitted, running).job_state == "RUNNING"
    stale = {"kind": "job_state", "job_id": "99", "state": "PENDING (Priority)", "time": T0 + 2}
    assert fold(submitted, running, stale).job_state == "RUNNING"  # another job's word is not this one's
    assert fold(submitted, running, {"kind": "queued", "time": T0 + 3}).job_state is None
    assert fold(submitted, {"kind": "submitted", "backend": "local"}).job_state is None


def test_an_unknown_status_is_never_a_status(tmp_path: Path, spec: RunSpec) -> None:
    store = Store(tmp_path / "results.duckdb")
    run_dir = new_run(store.root, spec)
    lines = [
        {"kind": "started", "device": "cpu", "host": "h", "pid": 5, "total_steps": 9, "total_tokens": 9, "time": T0},
        {"kind": "status", "status": "paused", "message": "?", "step": 3, "time": T0 + 1},
        {"kind": "status", "status": None, "time": T0 + 2},
    ]
    (run_dir / EVENTS_FILE).write_text("".join(json.dumps({"run_id": spec.run_id, **ev}) + "\n" for ev in lines))
    store.ingest()
    state = RunState(spec=spec, run_dir=run_dir)
    state.refresh()
    assert state.status is RunStatus.RUNNING and state.step == 0 and state.message is None
    assert store.query("SELECT status, step FROM runs").rows == [("running", 0)]


def test_a_malformed_line_does_not_stop_the_launcher(tmp_path: Path, spec: RunSpec) -> None:
    run_dir = new_run(tmp_path, spec)
    lines = [{"kind": "train"}, {"kind": "eval", "language": 3}, {"kind": "heartbeat", "step": "x"}, {"kind": 7}]
    (run_dir / EVENTS_FILE).write_text("".join(json.dumps(ev) + "\n" for ev in lines))
    state = RunState(spec=spec, run_dir=run_dir)
    state.refresh()
    assert state.step is None and state.best_ppl == {} and state.progress == 0.0


def test_status_sets() -> None:
    assert TERMINAL | LIVE == set(RunStatus) and not TERMINAL & LIVE
    assert RunStatus.DONE == "done" and json.dumps({"s": RunStatus.FAILED}) == '{"s": "failed"}'
    assert RunStatus.parse("cancelled") is RunStatus.CANCELLED and RunStatus.parse("Done") is None
    assert RunStatus.RUNNING.live and RunStatus.CANCELLED.terminal and not RunStatus.QUEUED.terminal
