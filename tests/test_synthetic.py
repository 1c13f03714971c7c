"""The built-in synthetic language family: determinism, statistics, grammar, siblings."""

from __future__ import annotations

import collections
import hashlib
import itertools
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.synthetic import (
    ParsedToken,
    SyntheticSpec,
    generate_parsed,
    generate_sentences,
    generate_text,
    is_content,
    iter_paragraphs,
)

BASE = SyntheticSpec()
REPO = Path(__file__).resolve().parents[1]


def _content(sentence: list[ParsedToken]) -> list[ParsedToken]:
    return [t for t in sentence if is_content(t.tag)]


def _pos(token: ParsedToken) -> str:
    return token.tag.split(".", 1)[0]


@pytest.fixture(scope="module")
def parsed() -> list[list[ParsedToken]]:
    return generate_parsed(BASE, 3000)


# -- determinism --------------------------------------------------------------------


def test_same_spec_gives_identical_text() -> None:
    assert generate_text(BASE, 20_000) == generate_text(SyntheticSpec(), 20_000)


def test_text_does_not_depend_on_hash_randomisation() -> None:
    code = (
        "import hashlib; from engine.data.synthetic import SyntheticSpec, generate_text; "
        "print(hashlib.sha256(generate_text(SyntheticSpec(language_seed=3, shared_words=0.3), 20000)"
        ".encode()).hexdigest())"
    )
    expected = hashlib.sha256(
        generate_text(SyntheticSpec(language_seed=3, shared_words=0.3), 20_000).encode()
    ).hexdigest()
    for hash_seed in ("1", "987"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


@settings(max_examples=25, deadline=None)
@given(start=st.integers(0, 10_000), n=st.integers(0, 40), cut=st.integers(0, 40))
def test_slices_agree_with_a_longer_generation(start: int, n: int, cut: int) -> None:
    cut = min(cut, n)
    whole = generate_sentences(BASE, n, start=start)
    assert generate_sentences(BASE, n - cut, start=start + cut) == whole[cut:]


def test_text_is_whole_paragraphs_of_the_sentence_stream() -> None:
    text = generate_text(BASE, 5_000, start=7)
    lines = text.split("\n")
    n_sentences = sum(len(re.findall(r"[.?](?: |$)", line)) for line in lines)
    assert " ".join(lines) == " ".join(generate_sentences(BASE, n_sentences, start=7))
    paragraphs = iter_paragraphs(BASE, start=7)
    assert [next(paragraphs)[1] for _ in lines] == lines


def test_text_reaches_requested_length_and_stops_soon_after() -> None:
    text = generate_text(BASE, 200_000)
    assert len(text) >= 200_000
    last = text.rsplit("\n", 1)[-1]
    assert len(text) - len(last) - 1 < 200_000  # one paragraph too few would be short
    assert generate_text(BASE, 0) == text.split("\n", 1)[0]


def test_different_seeds_differ() -> None:
    a = generate_sentences(BASE, 50)
    b = generate_sentences(SyntheticSpec(seed=1), 50)
    assert sum(x != y for x, y in zip(a, b)) >= 45
    assert generate_sentences(BASE, 50, start=1) != a


# -- surface -----------------------------------------------------------------------


def test_sentences_are_capitalised_and_punctuated() -> None:
    for sentence in generate_sentences(BASE, 500):
        assert sentence[0].isupper()
        assert sentence[-1] in ".?"
        assert "  " not in sentence and " ," not in sentence


def test_questions_invert_and_subordinates_take_commas(parsed: list[list[ParsedToken]]) -> None:
    kinds = collections.Counter()
    for sentence in parsed:
        if sentence[-1].form == "?":
            kinds["question"] += 1
            assert sentence[0].role == "AUX" and _pos(sentence[0]) in ("AUX", "MODAL")
        if any(_pos(t) == "SUB" for t in sentence):
            kinds["subordinate"] += 1
            assert any(t.form == "," for t in sentence)
    assert kinds["question"] > 0.05 * len(parsed)
    assert kinds["subordinate"] > 0.1 * len(parsed)


def test_forms_are_syllabic_and_inflection_is_regular(parsed: list[list[ParsedToken]]) -> None:
    forms: dict[tuple[str, str], str] = {}
    for sentence in parsed:
        for t in sentence:
            if t.tag != "PUNCT":
                forms[(t.lemma, t.tag)] = t.form
                assert re.fullmatch(r"[aeiou]?([^aeiou][aeiou])*([aeiou][^aeiou])*", t.form.lower()), t.form
    # Every plural is its singular plus one suffix shared by all nouns.
    plural_suffixes = {
        form[len(forms[(lemma, "NOUN.SG")]) :]
        for (lemma, tag), form in forms.items()
        if tag == "NOUN.PL" and (lemma, "NOUN.SG") in forms and form.startswith(forms[(lemma, "NOUN.SG")])
    }
    n_pairs = sum(1 for lemma, tag in forms if tag == "NOUN.PL" and (lemma, "NOUN.SG") in forms)
    assert n_pairs > 50 and len(plural_suffixes) == 1
    # A language never spells two different words alike.
    owners = collections.defaultdict(set)
    for key, form in forms.items():
        owners[form].add(key)
    assert all(len(keys) == 1 for keys in owners.values())


def test_frequent_words_are_shorter(parsed: list[list[ParsedToken]]) -> None:
    counts = collections.Counter((t.lemma, t.form) for s in parsed for t in s if t.tag == "NOUN.SG")
    ranked = [form for (_, form), _ in counts.most_common()]
    assert np.mean([len(f) for f in ranked[:30]]) < np.mean([len(f) for f in ranked[-100:]]) - 1


# -- statistics ----------------------------------------------------------------------


def _slope(counts: collections.Counter, top: int) -> float:
    freqs = np.array(sorted(counts.values(), reverse=True)[:top], dtype=float)
    ranks = np.arange(1, len(freqs) + 1)
    return float(np.polyfit(np.log(ranks), np.log(freqs), 1)[0])


@pytest.mark.parametrize("exponent", [0.9, 1.1, 1.4])
def test_rank_frequency_follows_zipf(exponent: float) -> None:
    spec = SyntheticSpec(seed=5, zipf_exponent=exponent)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    n_words, start = 0, 0
    while n_words < 200_000:
        for sentence in generate_parsed(spec, 2000, start=start):
            for t in sentence:
                if t.tag != "PUNCT":
                    n_words += 1
                    counts[_pos(t)][t.lemma] += 1
        start += 2000
    for pos in ("NOUN", "VERB", "ADJ"):
        assert _slope(counts[pos], top=100) == pytest.approx(-exponent, abs=0.2), pos


def test_verbs_select_their_objects(parsed: list[list[ParsedToken]]) -> None:
    """Knowing the verb must say much more about the object than word frequency does."""
    pairs = []
    for sentence in parsed:
        verb = None
        for i, t in enumerate(sentence):
            if t.role == "V":
                verb = next(x.lemma for x in sentence[i:] if _pos(x) == "VERB")
            if t.role == "O" and verb is not None:
                head = next((x for x in sentence[i:] if _pos(x) == "NOUN"), None)
                if head is not None:
                    pairs.append((verb, head.lemma))
                verb = None
    assert len(pairs) > 1000
    nouns = collections.Counter(n for _, n in pairs)
    by_verb = collections.Counter(v for v, _ in pairs)
    joint = collections.Counter(pairs)
    h_noun = -sum(c / len(pairs) * math.log2(c / len(pairs)) for c in nouns.values())
    h_noun_given_verb = -sum(c / len(pairs) * math.log2(c / by_verb[v]) for (v, _), c in joint.items())
    # Plug-in conditional entropy is biased low, so compare against a shuffled baseline.
    rng = np.random.default_rng(0)
    shuffled = list(zip([v for v, _ in pairs], rng.permutation([n for _, n in pairs])))
    joint_shuffled = collections.Counter(shuffled)
    h_shuffled = -sum(c / len(pairs) * math.log2(c / by_verb[v]) for (v, _), c in joint_shuffled.items())
    assert h_noun_given_verb < h_shuffled - 0.5
    assert h_shuffled <= h_noun


# -- grammar -------------------------------------------------------------------------


_EXPECTED_FORM = {
    # (tense, subject agreement) -> verb or auxiliary form
    ("PRES", "1SG"): "BARE",
    ("PRES", "2SG"): "BARE",
    ("PRES", "3SG"): "PRES.3SG",
    ("PRES", "PL"): "PRES.PL",
    ("PAST", "1SG"): "PAST.SG",
    ("PAST", "2SG"): "PAST.SG",
    ("PAST", "3SG"): "PAST.SG",
    ("PAST", "PL"): "PAST.PL",
}


def _finite_forms(sentence: list[ParsedToken]) -> dict[int, str]:
    """Clause -> the tense/agreement form of its finite verb or auxiliary."""
    out = {}
    for _i, t in enumerate(sentence):
        if t.role in ("AUX", "V") and _pos(t) in ("VERB", "AUX") and t.clause not in out:
            if (
                t.role == "V"
                and t.tag.endswith("BARE")
                and any(x.role == "AUX" and x.clause == t.clause for x in sentence)
            ):
                continue
            out[t.clause] = t.tag.split(".", 1)[1]
    return out


def test_verbs_agree_with_their_subjects(parsed: list[list[ParsedToken]]) -> None:
    checked = collections.Counter()
    for sentence in parsed:
        subjects = {t.clause: t.agr for t in sentence if t.role == "S"}
        for clause, form in _finite_forms(sentence).items():
            agr = subjects[clause]
            tense = "PAST" if form.startswith("PAST") else "PRES"
            if form == "BARE":
                assert agr in ("1SG", "2SG")
            else:
                assert form == _EXPECTED_FORM[(tense, agr)]
            checked[agr] += 1
    assert min(checked[a] for a in ("1SG", "2SG", "3SG", "PL")) > 20


def test_plural_subject_nouns_take_plural_verbs(parsed: list[list[ParsedToken]]) -> None:
    """Through the surface tags alone: a plural head noun forces a plural verb."""
    seen = 0
    for sentence in parsed:
        finite = _finite_forms(sentence)
        for i, t in enumerate(sentence):
            if t.role == "S" and _pos(t) == "DET":
                head = next(x for x in sentence[i:] if _pos(x) == "NOUN")  # first noun heads the NP
                if head.tag == "NOUN.PL" and t.clause in finite:
                    assert finite[t.clause].endswith("PL")
                    seen += 1
    assert seen > 100


def test_relative_and_subordinate_clauses_nest(parsed: list[list[ParsedToken]]) -> None:
    assert any(any(_pos(t) == "REL" for t in s) for s in parsed)
    assert any(_pos(t) == "CONJ" and _pos(s[i - 1]) == "NOUN" for s in parsed for i, t in enumerate(s))
    assert max(max((t.clause for t in s), default=0) for s in parsed) >= 3


def _main_clause_order(spec: SyntheticSpec, n: int = 400) -> collections.Counter:
    orders = collections.Counter()
    for sentence in generate_parsed(spec, n):
        if sentence[-1].form == "?" or _pos(sentence[0]) == "SUB":
            continue
        roles = [t.role for t in sentence if t.clause == 0 and t.role in ("S", "V", "O")]
        if len(roles) == 3:
            orders["".join(roles)] += 1
    return orders


@pytest.mark.parametrize("order", ["SVO", "SOV", "VSO"])
def test_word_order_is_visible_in_the_parse(order: str) -> None:
    orders = _main_clause_order(SyntheticSpec(word_order=order, language_seed=2))
    assert set(orders) == {order} and orders[order] > 100


def test_adjective_order_knob(parsed: list[list[ParsedToken]]) -> None:
    def adjective_positions(sentences: list[list[ParsedToken]]) -> collections.Counter:
        out = collections.Counter()
        for s in sentences:
            for a, b in zip(s, s[1:]):
                if _pos(a) == "ADJ" and _pos(b) == "NOUN":
                    out["AN"] += 1
                if _pos(a) == "NOUN" and _pos(b) == "ADJ":
                    out["NA"] += 1
        return out

    assert set(adjective_positions(parsed[:500])) == {"AN"}
    after = generate_parsed(SyntheticSpec(adjective_order="NA"), 500)
    assert set(adjective_positions(after)) == {"NA"}


# -- sibling languages ----------------------------------------------------------------


def test_siblings_are_parallel() -> None:
    sibling = SyntheticSpec(language_seed=1, word_order="SOV", adjective_order="NA", shared_words=0.2)
    base, other = generate_parsed(BASE, 500, start=100), generate_parsed(sibling, 500, start=100)
    assert len(base) == len(other)
    for a, b in zip(base, other):
        assert len(_content(a)) == len(_content(b))
        assert sorted(t.lemma for t in a) == sorted(t.lemma for t in b)
        assert a[-1].form == b[-1].form
    assert generate_sentences(BASE, 20) != generate_sentences(sibling, 20)
    # Paragraph breaks fall after the same sentences, so texts align line by line.
    firsts = [i for i, _ in itertools.islice(iter_paragraphs(BASE), 30)]
    assert firsts == [i for i, _ in itertools.islice(iter_paragraphs(sibling), 30)]


def test_fully_shared_sibling_is_the_base_language() -> None:
    sibling = SyntheticSpec(language_seed=9, shared_words=1.0)
    assert generate_text(sibling, 30_000) == generate_text(BASE, 30_000)


def _content_forms(spec: SyntheticSpec, n: int = 3000) -> dict[str, str]:
    return {t.lemma + t.tag: t.form for s in generate_parsed(spec, n) for t in _content(s)}


def test_unshared_siblings_have_disjoint_content_words() -> None:
    base = _content_forms(BASE)
    sibling = _content_forms(SyntheticSpec(language_seed=1, shared_words=0.0))
    assert base.keys() == sibling.keys()
    assert not set(base.values()) & set(sibling.values())


def test_shared_fraction_controls_overlap() -> None:
    base = _content_forms(BASE)
    fractions = []
    previous: set = set()
    for shared in (0.25, 0.5, 0.75):
        sibling = _content_forms(SyntheticSpec(language_seed=1, shared_words=shared))
        same = [k for k in base if base[k] == sibling[k]]
        fractions.append(len(same) / len(base))
        assert fractions[-1] == pytest.approx(shared, abs=0.1)
        if len(fractions) > 1:  # nested: raising the fraction only adds shared words
            assert set(same) >= previous
        previous = set(same)
    assert generate_text(SyntheticSpec(language_seed=1, shared_words=0.5), 1000) != generate_text(BASE, 1000)


def test_invalid_specs_are_refused() -> None:
    for bad in (
        {"word_order": "OVS"},
        {"adjective_order": "XY"},
        {"shared_words": 1.5},
        {"lexicon_size": 10},
        {"zipf_exponent": 0.0},
    ):
        with pytest.raises(ValueError):
            SyntheticSpec(**bad)
    with pytest.raises(ValueError):
        generate_sentences(BASE, 3, start=-1)
