"""Tests for engine.config.schedule: the paper's conditions, error messages, and exactness."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config.schedule import Schedule, ScheduleError

HALF = [0.5, 1.0]
QUARTERS = [0.25, 0.5, 0.75, 1.0]


# ----------------------------------------------------------------------------- paper rows


@pytest.mark.parametrize(
    "mix, ends, labels",
    [
        ({"EN1": [50], "EN2": [50]}, None, {"EN1": "50%", "EN2": "50%"}),
        ({"EN1": [90], "EN2": [10]}, None, {"EN1": "90%", "EN2": "10%"}),
        ({"EN1": [10], "EN2": [90]}, None, {"EN1": "10%", "EN2": "90%"}),
        ({"EN": [100], "FR": [0]}, None, {"EN": "100%", "FR": "0%"}),
        ({"EN": [90, 10], "FR": [10, 90]}, HALF, {"EN": "90%↘10%", "FR": "10%↗90%"}),
        ({"EN": [90, 10], "FR": [10, 90]}, None, {"EN": "90%↘10%", "FR": "10%↗90%"}),
        ({"EN": [100, 0], "FR": [0, 100]}, HALF, {"EN": "100%↘0%", "FR": "0%↗100%"}),
        (
            {"EN": [90, 10, 90, 10], "FR": [10, 90, 10, 90]},
            QUARTERS,
            {"EN": "90%↘10%↗90%↘10%", "FR": "10%↗90%↘10%↗90%"},
        ),
        (
            {"EN": [100, 0, 100, 0], "FR": [0, 100, 0, 100]},
            QUARTERS,
            {"EN": "100%↘0%↗100%↘0%", "FR": "0%↗100%↘0%↗100%"},
        ),
        (
            {"EN": [90, 90, 10, 10], "FR": [10, 10, 90, 90]},
            QUARTERS,
            {"EN": "90%↘10%", "FR": "10%↗90%"},
        ),
        (
            {"EN": [10, 50, 90], "FR": [90, 50, 10]},
            None,
            {"EN": "10%↗50%↗90%", "FR": "90%↘50%↘10%"},
        ),
    ],
)
def test_paper_rows(mix: dict, ends: list | None, labels: dict) -> None:
    schedule = Schedule.from_mix(mix, ends)
    assert schedule.labels() == labels
    assert sum(schedule.marginal_fractions().values()) == pytest.approx(1.0)


def test_swap_half_way_is_balanced_overall() -> None:
    schedule = Schedule.from_mix({"EN": [90, 10], "FR": [10, 90]}, HALF)
    assert schedule.marginal_fractions() == pytest.approx({"EN": 0.5, "FR": 0.5})
    assert schedule.sequence_counts(1000, 8) == [4000, 4000]
    assert schedule.probs(0, 1000) == pytest.approx((0.9, 0.1))
    assert schedule.probs(499, 1000) == pytest.approx((0.9, 0.1))
    assert schedule.probs(500, 1000) == pytest.approx((0.1, 0.9))
    assert schedule.probs(999, 1000) == pytest.approx((0.1, 0.9))


def test_ten_languages_with_a_main_language() -> None:
    names = ["EN"] + [f"L{i}" for i in range(1, 10)]
    mix = {"EN": [50.0]} | {name: [50.0 / 9] for name in names[1:]}
    schedule = Schedule.from_mix(mix)
    assert schedule.label("EN") == "50%"
    assert schedule.label("L1") == "5.56%"
    counts = schedule.sequence_counts(100, 9)
    assert counts[0] == 450 and counts[1:] == [50] * 9
    fractions = schedule.marginal_fractions()
    assert fractions["EN"] == pytest.approx(0.5)
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_rounded_ninths_validate_within_tolerance() -> None:
    mix = {"EN": [50.0]} | {f"L{i}": [5.5555555] for i in range(9)}
    Schedule.from_mix(mix)  # 50 + 9 × 5.5555555 = 99.9999995
    mix["L0"] = [5.555]
    with pytest.raises(ScheduleError, match="stage 1"):
        Schedule.from_mix(mix)


def test_monolingual() -> None:
    schedule = Schedule.monolingual(["EN", "FR"], "FR")
    assert schedule.percents == ((0.0,), (100.0,))
    assert schedule.sequence_counts(10, 4) == [0, 40]
    assert set(np.unique(schedule.sequence_languages(10, 4, seed=0))) == {1}
    with pytest.raises(ScheduleError, match="DE"):
        Schedule.monolingual(["EN", "FR"], "DE")


# ----------------------------------------------------------------------------- errors


def test_column_sum_error_names_stage_and_sum() -> None:
    with pytest.raises(ScheduleError) as info:
        Schedule.from_mix({"EN1": [50, 45], "EN2": [50, 50]}, HALF)
    assert str(info.value) == "stage 2 (ends at 100%) sums to 95% (EN1 45% + EN2 50%), not 100%"


def test_near_miss_sum_is_shown_precisely() -> None:
    with pytest.raises(ScheduleError, match=r"stage 1 .* sums to 99\.999%"):
        Schedule.from_mix({"A": [49.999], "B": [50]})


@pytest.mark.parametrize(
    "schedule, pattern",
    [
        (Schedule((), (1.0,), ()), "at least one language"),
        (Schedule(("EN", "EN"), (1.0,), ((50,), (50,))), "'EN' appears more than once"),
        (Schedule(("EN", ""), (1.0,), ((50,), (50,))), "empty"),
        (Schedule(("EN", "FR"), (), ((), ())), "at least one stage"),
        (Schedule(("EN", "FR"), (1.0,), ((50, 50), (50,))), "EN has 2 cells but there are 1 stages"),
        (Schedule(("EN", "FR"), (1.0,), ((100,),)), "1 rows but there are 2 languages"),
        (Schedule(("EN", "FR"), (1.0,), ((110,), (-10,))), "FR in stage 1 is -10%"),
        (Schedule(("EN", "FR"), (1.0,), ((float("nan"),), (50,))), "EN in stage 1 is nan"),
        (Schedule(("EN", "FR"), (1.0,), (("50",), (50,))), "not a number"),
        (Schedule(("EN", "FR"), (0.5, 0.9), ((50, 50), (50, 50))), "must end at 1.0"),
        (Schedule(("EN", "FR"), (0.6, 0.5, 1.0), ((50,) * 3, (50,) * 3)), "strictly increasing"),
        (Schedule(("EN", "FR"), (0.0, 1.0), ((50,) * 2, (50,) * 2)), r"in \(0, 1\]"),
        (Schedule(("EN", "FR"), (0.5, 1.5), ((50,) * 2, (50,) * 2)), r"in \(0, 1\]"),
    ],
)
def test_validate_rejects(schedule: Schedule, pattern: str) -> None:
    with pytest.raises(ScheduleError, match=pattern):
        schedule.validate()
    with pytest.raises(ScheduleError):
        schedule.sequence_counts(10, 2)  # computing methods refuse invalid grids too


def test_from_mix_ragged_without_ends() -> None:
    with pytest.raises(ScheduleError, match="different numbers of stages"):
        Schedule.from_mix({"EN": [90, 10], "FR": [100]})
    with pytest.raises(ScheduleError, match="at least one language"):
        Schedule.from_mix({})


def test_schedule_error_is_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


# ----------------------------------------------------------------------------- steps & rounding


def test_stage_bounds_round_and_allow_empty_stages() -> None:
    schedule = Schedule.from_mix({"EN": [90, 10, 90, 10], "FR": [10, 90, 10, 90]}, QUARTERS)
    assert schedule.stage_bounds(100) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert schedule.stage_bounds(2) == [(0, 0), (0, 1), (1, 2), (2, 2)]  # round(0.5), round(1.5)
    assert schedule.stage_bounds(0) == [(0, 0)] * 4
    tiny = Schedule.from_mix({"EN": [100, 0], "FR": [0, 100]}, [0.001, 1.0])
    assert tiny.stage_bounds(100) == [(0, 0), (0, 100)]
    assert tiny.sequence_counts(100, 3) == [0, 300]
    assert tiny.probs(0, 100) == (0.0, 1.0)


def test_probs_rejects_steps_outside_the_run() -> None:
    schedule = Schedule.from_mix({"EN": [50], "FR": [50]})
    with pytest.raises(ValueError):
        schedule.probs(10, 10)
    with pytest.raises(ValueError):
        schedule.probs(-1, 10)


def test_largest_remainder_ties_favour_language_order() -> None:
    third = 100 / 3
    schedule = Schedule.from_mix({"A": [third], "B": [third], "C": [third]})
    assert schedule.sequence_counts(1, 1) == [1, 0, 0]
    assert schedule.sequence_counts(1, 2) == [1, 1, 0]
    assert schedule.sequence_counts(1, 4) == [2, 1, 1]
    assert schedule.sequence_counts(1, 3) == [1, 1, 1]


def test_zero_share_never_gets_a_remainder() -> None:
    schedule = Schedule.from_mix({"A": [50], "B": [50], "C": [0]})
    assert schedule.sequence_counts(1, 3) == [2, 1, 0]


def test_marginal_tokens() -> None:
    schedule = Schedule.from_mix({"EN": [90], "FR": [10]})
    assert schedule.marginal_tokens(100, 10, 128) == {"EN": 900 * 128, "FR": 100 * 128}


# ----------------------------------------------------------------------------- realisation


def test_seeds_reproduce_and_differ() -> None:
    schedule = Schedule.from_mix({"EN": [90, 10], "FR": [10, 90]}, HALF)
    a = schedule.sequence_languages(200, 16, seed=1)
    assert a.shape == (200, 16) and a.dtype == np.int8
    assert np.array_equal(a, schedule.sequence_languages(200, 16, seed=1))
    assert not np.array_equal(a, schedule.sequence_languages(200, 16, seed=2))


def test_labels_are_shuffled_within_each_stage() -> None:
    schedule = Schedule.from_mix({"EN": [50], "FR": [50]})
    labels = schedule.sequence_languages(100, 10, seed=0).ravel()
    assert not np.array_equal(labels, np.sort(labels))
    assert labels[:500].sum() not in (0, 500)  # not all of one language up front


def test_many_languages_use_int16() -> None:
    names = [f"L{i}" for i in range(200)]
    schedule = Schedule.from_mix({name: [0.5] for name in names})
    labels = schedule.sequence_languages(10, 20, seed=3)
    assert labels.dtype == np.int16
    assert np.bincount(labels.ravel(), minlength=200).tolist() == [1] * 200


def test_full_size_run_is_fast_and_exact() -> None:
    schedule = Schedule.from_mix({"EN": [90, 10, 90, 10], "FR": [10, 90, 10, 90]}, QUARTERS)
    start = time.perf_counter()
    labels = schedule.sequence_languages(20_000, 256, seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0
    assert labels.shape == (20_000, 256)
    assert np.bincount(labels.ravel(), minlength=2).tolist() == schedule.sequence_counts(20_000, 256)
    first_stage = np.bincount(labels[:5000].ravel(), minlength=2)
    assert first_stage.tolist() == [1_152_000, 128_000]


def test_round_trip_through_json() -> None:
    schedule = Schedule.from_mix({"EN": [90, 10, 90, 10], "FR": [10, 90, 10, 90]}, QUARTERS)
    data = json.loads(json.dumps(schedule.to_dict()))
    assert data == {
        "languages": ["EN", "FR"],
        "ends": QUARTERS,
        "percents": [[90, 10, 90, 10], [10, 90, 10, 90]],
    }
    assert Schedule.from_dict(data) == schedule
    assert hash(Schedule.from_dict(data)) == hash(schedule)
    with pytest.raises(ScheduleError, match="missing ends"):
        Schedule.from_dict({"languages": ["EN"], "percents": [[100]]})


# ----------------------------------------------------------------------------- properties


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """Random valid grids: integer weights per column scaled to percentages."""
    n_langs = draw(st.integers(1, 6))
    n_stages = draw(st.integers(1, 5))
    cuts = draw(st.lists(st.integers(1, 999), min_size=n_stages - 1, max_size=n_stages - 1, unique=True))
    ends = [c / 1000 for c in sorted(cuts)] + [1.0]
    columns = []
    for _ in range(n_stages):
        weights = draw(st.lists(st.integers(0, 20), min_size=n_langs, max_size=n_langs))
        if sum(weights) == 0:
            weights[draw(st.integers(0, n_langs - 1))] = 1
        columns.append([100 * w / sum(weights) for w in weights])
    percents = tuple(tuple(col[i] for col in columns) for i in range(n_langs))
    names = tuple(f"L{i}" for i in range(n_langs))
    schedule = Schedule(names, tuple(ends), percents)
    schedule.validate()
    return schedule


run_sizes = st.tuples(st.integers(0, 120), st.integers(1, 12))
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(schedules(), run_sizes, st.integers(0, 2**32))
def test_counts_are_exact_and_match_realisation(schedule: Schedule, size: tuple, seed: int) -> None:
    total_steps, batch_size = size
    counts = schedule.sequence_counts(total_steps, batch_size)
    assert sum(counts) == total_steps * batch_size
    labels = schedule.sequence_languages(total_steps, batch_size, seed)
    assert labels.shape == (total_steps, batch_size)
    assert np.bincount(labels.ravel(), minlength=len(schedule.languages)).tolist() == counts


@fast
@given(schedules(), run_sizes, st.integers(0, 1000))
def test_per_stage_counts_follow_probabilities(schedule: Schedule, size: tuple, seed: int) -> None:
    total_steps, batch_size = size
    bounds = schedule.stage_bounds(total_steps)
    assert bounds[0][0] == 0 and bounds[-1][1] == total_steps
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    labels = schedule.sequence_languages(total_steps, batch_size, seed)
    for s, (start, stop) in enumerate(bounds):
        n = (stop - start) * batch_size
        got = np.bincount(labels[start:stop].ravel(), minlength=len(schedule.languages))
        p = np.array([row[s] for row in schedule.percents]) / 100
        assert np.all(np.abs(got - p * n) < 1 + 1e-9)
        assert np.all(got[p == 0] == 0)
        if start < stop:
            assert sum(schedule.probs(start, total_steps)) == pytest.approx(1.0)
            assert schedule.probs(stop - 1, total_steps) == pytest.approx(tuple(p))


@fast
@given(schedules())
def test_fractions_labels_and_round_trip(schedule: Schedule) -> None:
    fractions = schedule.marginal_fractions()
    assert list(fractions) == list(schedule.languages)
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert all(f >= 0 for f in fractions.values())
    for name in schedule.languages:
        assert schedule.label(name).endswith("%")
    assert Schedule.from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule
