"""The built-in synthetic language family: deterministic, parallel, tunable similarity."""

from __future__ import annotations

import pytest

from engine.data.family import PRESETS, FamilyLanguage, family_text, parallel_sentences, probe_examples


def _words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


def test_text_is_deterministic_and_depends_on_the_language():
    far = {"like": "far"}
    assert family_text(far, 5_000) == family_text(far, 5_000)
    assert family_text({}, 5_000) != family_text(far, 5_000)
    # the base language is the built-in corpus (builtin:synthetic) itself
    from engine.data.synthetic import SyntheticSpec, generate_text

    assert family_text({}, 5_000) == generate_text(SyntheticSpec(seed=0), 5_000)


def test_siblings_are_parallel_line_by_line():
    base = family_text({}, 20_000).splitlines()
    near = family_text({"like": "near"}, 20_000).splitlines()
    n = min(len(base), len(near))
    assert n > 10
    # the same paragraph breaks: each line holds the same number of sentences
    for a, b in zip(base[:n], near[:n]):
        assert a.count(".") + a.count("?") == b.count(".") + b.count("?")


def test_similarity_runs_from_cloned_to_far():
    pairs = {name: parallel_sentences([{}, {"like": name}], 300) for name in PRESETS}
    base_words = _words(" ".join(pairs["base"][0]))
    overlap = {name: len(base_words & _words(" ".join(p[1]))) / len(base_words) for name, p in pairs.items()}
    assert pairs["base"][0] == pairs["base"][1]  # the base language against itself: a clone
    assert overlap["base"] == 1.0
    assert overlap["base"] > overlap["near"] > overlap["mid"] > overlap["far"]


def test_probe_labels_are_meaning_level():
    l1 = probe_examples({}, 200)
    l2 = probe_examples({"like": "far"}, 200)
    assert [y for _, y in l1] == [y for _, y in l2]
    assert [t for t, _ in l1] != [t for t, _ in l2]
    share = sum(y for _, y in l1) / len(l1)
    assert 0.2 < share < 0.8  # both classes are common


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown family preset"):
        FamilyLanguage.from_dict({"like": "martian"})
    with pytest.raises(ValueError, match="unknown family setting"):
        FamilyLanguage.from_dict({"lexicon": 10})
    with pytest.raises(ValueError, match="word_order"):
        FamilyLanguage.from_dict({"word_order": "OVS"}).synthetic()
