"""The built-in synthetic language *family*: languages that say the same thing differently.

``engine.data.synthetic`` already separates meaning (drawn from ``(seed, sentence index)``)
from surface (a lexicon drawn from ``language_seed`` plus a word order); this module
turns that into something an experiment can name. A family language is a small dict
(``FamilyLanguage`` fields), usable as a corpus (``path = "builtin:family"``), as the
source of perfectly parallel sentence pairs (same indices, different languages) and
of a labelled downstream task whose labels are meaning-level, hence identical across
the family (see ``probe_examples``).

Similarity is a dial: the base language itself is a clone (same text), a sibling
with ``shared_words`` near 1 and the same word order is "near", and one with no
shared words, another word order and adjective order is "far". ``PRESETS`` names
points on that dial.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from engine.data.synthetic import SyntheticSpec, generate_parsed, generate_sentences, generate_text

# Sentence indices reserved for analyses: far beyond any training corpus (which starts at 0),
# so parallel pairs and probe examples are never training text.
PARALLEL_START = 50_000_000
PROBE_START = 60_000_000

# Named points from "cloned" to "far" (each relative to the base language, seed 0).
PRESETS: dict[str, dict] = {
    "base": {},
    "near": {"language_seed": 1, "shared_words": 0.8},
    "mid": {"language_seed": 2, "shared_words": 0.4, "word_order": "SOV"},
    "far": {"language_seed": 3, "shared_words": 0.0, "word_order": "VSO", "adjective_order": "NA"},
}


@dataclass(frozen=True)
class FamilyLanguage:
    """One language of a family; ``language_seed=None`` is the family's base language."""

    seed: int = 0
    language_seed: int | None = None
    shared_words: float = 0.0
    word_order: str = "SVO"
    adjective_order: str = "AN"
    lexicon_size: int = 2000
    zipf_exponent: float = 1.1

    @classmethod
    def from_dict(cls, settings: dict | None) -> FamilyLanguage:
        """A preset name under ``like`` is expanded first; explicit fields override it."""
        settings = dict(settings or {})
        like = settings.pop("like", None)
        if like is not None:
            if like not in PRESETS:
                raise ValueError(f"unknown family preset {like!r}; choose one of {', '.join(PRESETS)}")
            settings = {**PRESETS[like], **settings}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown family setting {unknown[0]!r}; known: like, {', '.join(sorted(known))}")
        return cls(**settings)

    def synthetic(self) -> SyntheticSpec:
        return SyntheticSpec(
            seed=self.seed,
            lexicon_size=self.lexicon_size,
            zipf_exponent=self.zipf_exponent,
            word_order=self.word_order,
            adjective_order=self.adjective_order,
            shared_words=self.shared_words,
            language_seed=self.language_seed,
        )


def family_text(settings: dict, n_chars: int) -> str:
    """Whole paragraphs of one family language from sentence 0; siblings align line by line."""
    return generate_text(FamilyLanguage.from_dict(settings).synthetic(), n_chars)


def parallel_sentences(settings: list[dict], n: int, start: int = PARALLEL_START) -> list[list[str]]:
    """``n`` sentences per language, translations of each other: one list per language."""
    return [generate_sentences(FamilyLanguage.from_dict(s).synthetic(), n, start) for s in settings]


def _past_tense(parsed) -> int:
    """1 when the first clause's verb group is in the past: a meaning, not a word form."""
    for tok in parsed:
        if tok.clause == 0 and tok.role in ("V", "AUX"):
            return int("PAST" in tok.tag)
    return 0


def probe_examples(settings: dict, n: int, start: int = PROBE_START) -> list[tuple[str, int]]:
    """The built-in downstream task: is the main clause in the past tense? (text, label) pairs.

    The label comes from the meaning stream, so sentence i has the same label in every
    language of the family while its surface (verb forms, suffixes, order) differs.
    """
    spec = FamilyLanguage.from_dict(settings).synthetic()
    texts = generate_sentences(spec, n, start)
    labels = [_past_tense(p) for p in generate_parsed(spec, n, start)]
    return list(zip(texts, labels))
