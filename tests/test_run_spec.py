"""A run's spec: typed settings past the worker boundary, the same JSON and run ids as ever."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config.locate import SpecError
from engine.config.spec import EvalConfig, RunSpec, TrainConfig, parse_experiments
from engine.launch.state import state_of

ROOT = Path(__file__).resolve().parent.parent

# Every run id of the shipped files, as computed before RunSpec held typed settings. A run
# id is a hash of the spec's JSON: if one of these changes, every user's finished runs of
# that experiment would silently run again. (table1's changed on purpose once, when it became
# 1.2M tokens with three seeds so the default run keeps its stated time.)
SHIPPED_IDS = {
    "experiments.toml": {
        ("table1", "50/50", 0): "a485e169c562",
        ("table1", "90/10", 0): "7d4bd3fa661e",
        ("table1", "90→10 / 10→90", 0): "86b6c51fee01",
        ("table1", "mono EN1 100%", 0): "e4e7c42c0359",
        ("table1", "mono EN1 50%", 0): "aed531ee9b5a",
        ("table1", "mono EN1 25%", 0): "1c88dfd1ea13",
        ("table1", "mono EN1 10%", 0): "5ca8dd1f19b4",
        ("quick", "50/50", 0): "8657fa1e8764",
        ("quick", "90/10", 0): "4a8bb804842f",
        ("quick", "mono EN1 100%", 0): "ca70357664d5",
        ("quick", "mono EN1 50%", 0): "47b2313975cc",
        ("quick", "mono EN1 25%", 0): "fbd020f00c08",
        ("family", "50/50", 0): "422c563d77c7",
        ("family", "90/10", 0): "c999487c1eb6",
    },
    "examples/table3.toml": {
        ("table3_disjoint", "50/50", 0): "33c5af76d319",
        ("table3_disjoint", "90/10", 0): "42c554b0c9b2",
        ("table3_disjoint", "10/90", 0): "90b22db9778d",
        ("table3_disjoint", "90→10 / 10→90", 0): "23d6df1787a4",
        ("table3_disjoint", "90→10→90→10", 0): "d48f763d1638",
        ("table3_disjoint", "10→90→10→90", 0): "eb87e346e6d0",
        ("table3_disjoint", "mono EN 100%", 0): "8ea37e58bbfb",
        ("table3_disjoint", "mono EN 50%", 0): "fd6bfe97cd1a",
        ("table3_disjoint", "mono EN 25%", 0): "050427cae621",
        ("table3_disjoint", "mono EN 10%", 0): "159943e6d600",
        ("table3_disjoint", "mono FR 100%", 0): "13aac5a58704",
        ("table3_disjoint", "mono FR 50%", 0): "cb958cc957ec",
        ("table3_disjoint", "mono FR 25%", 0): "04ceb727a838",
        ("table3_disjoint", "mono FR 10%", 0): "3f0f5eca8b9c",
        ("table3_anchored", "50/50", 0): "020a8a9dab89",
        ("table3_anchored", "90/10", 0): "f8211204e8b1",
        ("table3_anchored", "10/90", 0): "85604fe51fae",
        ("table3_anchored", "90→10 / 10→90", 0): "09812b5d5275",
        ("table3_anchored", "90→10→90→10", 0): "444f4c9cb0e2",
        ("table3_anchored", "10→90→10→90", 0): "83b63399682b",
        ("table3_anchored", "mono EN 100%", 0): "9c7e84fd00e1",
        ("table3_anchored", "mono EN 50%", 0): "63390b15015d",
        ("table3_anchored", "mono EN 25%", 0): "dacb0f2fc259",
        ("table3_anchored", "mono EN 10%", 0): "4ea5e8c65862",
        ("table3_anchored", "mono FR 100%", 0): "0d2634ddbdcc",
        ("table3_anchored", "mono FR 50%", 0): "021b49959465",
        ("table3_anchored", "mono FR 25%", 0): "03e10c16f3f3",
        ("table3_anchored", "mono FR 10%", 0): "fb4bda79c046",
    },
}


def shipped_runs(name: str) -> list:
    """The file's runs as if it were checked out at /work/main: table3's relative corpus paths
    resolve against the file's folder, and the pinned ids hold those absolute paths."""
    text = (ROOT / name).read_text(encoding="utf-8")
    experiments = parse_experiments(tomllib.loads(text), text, f"/work/main/{name}")
    return [(e.name, run) for e in experiments for run in e.runs]


@pytest.mark.parametrize("name", sorted(SHIPPED_IDS))
def test_run_ids_of_the_shipped_files_are_unchanged(name):
    pinned = SHIPPED_IDS[name]
    got = {(exp, run.name, run.seed): run.run_id for exp, run in shipped_runs(name)}
    assert set(pinned) <= set(got), f"runs gone from {name}: {sorted(set(pinned) - set(got))}"
    assert {key: got[key] for key in pinned} == pinned


@pytest.mark.parametrize("name", sorted(SHIPPED_IDS))
def test_spec_json_round_trips(name):
    for _, run in shipped_runs(name):
        again = RunSpec.from_json(run.to_json())
        assert again == run and again.to_json() == run.to_json()


def test_settings_are_typed_frozen_and_resolved():
    (_, run), *_ = shipped_runs("experiments.toml")
    assert isinstance(run.train.batch_size, int) and run.train.min_lr == run.train.lr / 100
    assert run.eval.context == run.train.context and run.eval.stride == run.eval.context // 4
    assert run.eval.alignment is EvalConfig.model_fields["alignment"].default  # the one place defaults live
    with pytest.raises(ValidationError):
        run.train.lr = 1.0  # type: ignore[misc]
    assert run.data_recipe().cloned and run.data_recipe().sources[0].corpus == "builtin:synthetic"


def test_an_old_spec_json_without_newer_fields_still_loads(tmp_path):
    (_, run), *_ = shipped_runs("experiments.toml")
    old = run.to_dict()
    for part, key in (("train", "precision"), ("train", "compile"), ("eval", "alignment_at_evals")):
        del old[part][key]
    spec = RunSpec.from_json(json.dumps(old))
    assert spec.train.precision == TrainConfig.model_fields["precision"].default
    assert spec.eval.alignment_at_evals is False and spec.eval.probe is None
    assert spec.run_id == run.run_id


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: json.dumps([1, 2]), "not a run spec"),
        (lambda d: json.dumps(d | {"train": d["train"] | {"batch_size": "many"}}), "train.batch_size: Input should"),
        (lambda d: json.dumps(d | {"eval": d["eval"] | {"typo": 1}}), "eval.typo: unknown field 'typo'"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "seed"}), "not a run spec"),
    ],
)
def test_a_broken_spec_json_names_the_file_and_field(tmp_path, edit, message):
    (_, run), *_ = shipped_runs("experiments.toml")
    (tmp_path / "spec.json").write_text(edit(run.to_dict()), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        state_of(tmp_path)
    assert str(err.value).startswith(str(tmp_path / "spec.json")) and message in str(err.value)
