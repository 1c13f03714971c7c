"""Combining per-language tokenizers into one model vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.data.vocab import anchored, disjoint, joint


@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=5))
def test_disjoint_ids_never_collide(sizes):
    v = disjoint(sizes)
    ids = np.concatenate([v.tables[i][:n] for i, n in enumerate(sizes)])
    assert len(np.unique(ids)) == len(ids) == v.size == sum(sizes)
    assert v.n_anchors == 0 and len(v.shared_ids()) == 0


def test_anchored_merges_identical_pieces_to_one_id():
    en = ["<unk>", "<s>", "</s>", "▁the", "▁cat", "s", "▁est"]
    fr = ["<unk>", "<s>", "</s>", "▁le", "▁chat", "s", "▁est", "▁la"]
    v = anchored([en, fr])
    assert v.n_anchors == 5  # <unk> <s> </s> s ▁est
    for local, piece in enumerate(fr):
        if piece in en:
            assert v.tables[1][local] == v.tables[0][en.index(piece)]
        else:
            assert v.tables[1][local] >= len(en)  # new ids from V up
    assert v.size == len(en) + 3
    assert list(v.tables[0][: len(en)]) == list(range(len(en)))
    assert sorted(v.shared_ids().tolist()) == sorted(en.index(p) for p in en if p in fr)


def test_anchored_three_languages_reuse_the_first_owner():
    v = anchored([["a", "b"], ["b", "c"], ["c", "a", "d"]])
    assert v.n_anchors == 3
    assert v.tables[2][0] == v.tables[1][1]  # "c" belongs to the second language
    assert v.tables[2][1] == v.tables[0][0]
    assert v.size == 4


def test_anchored_refuses_a_vocabulary_with_duplicates():
    with pytest.raises(ValueError):
        anchored([["a", "a"]])


def test_joint_anchors_are_pieces_seen_in_two_languages():
    v = joint(5, 2, counts=[np.array([3, 1, 0, 0, 2]), np.array([1, 0, 4, 0, 9])])
    assert v.n_anchors == 2  # ids 0 and 4
    assert (v.tables[0] == v.tables[1]).all()


def test_anchored_round_trips_real_tokenizers(tmp_path):
    """Text -> each language's pieces -> merged model ids -> back to local ids -> the same text."""
    import sentencepiece as spm

    from engine.data.family import family_text
    from engine.data.tokens import _train_tokenizer
    from engine.data.vocab import sentencepiece_pieces

    sps = []
    for name, settings in (("a", {}), ("b", {"like": "near"})):
        lines = family_text(settings, 60_000).splitlines()
        sps.append(_train_tokenizer(lines, 200, tmp_path / name))
    pieces = [sentencepiece_pieces(tmp_path / f"{n}.model") for n in "ab"]
    v = anchored(pieces)
    assert v.n_anchors > 3  # the near sibling shares most words
    for lang, (sp, settings) in enumerate(zip(sps, ({}, {"like": "near"}))):
        text = family_text(settings, 2_000).splitlines()[0]
        model_ids = v.to_model(lang, np.array(sp.encode(text)))
        inverse = {int(m): local for local, m in enumerate(v.tables[lang][: v.sizes[lang]])}
        assert sp.decode([inverse[int(m)] for m in model_ids]) == text
        # identical pieces share one id: the same string means the same row in both languages
        other = 1 - lang
        for local, m in zip(sp.encode(text), model_ids):
            piece = sp.id_to_piece(local)
            if piece in pieces[other]:
                assert v.tables[other][pieces[other].index(piece)] == m
    assert isinstance(sps[0], spm.SentencePieceProcessor)
