"""A built-in synthetic language family, so xling runs without any downloaded corpus.

The experiments need text that a tiny GPT can learn in minutes on a CPU yet that has
the statistics that matter for the paper's question: a Zipfian lexicon, inflectional
morphology with long-distance agreement, recursive syntax and semantic selection (so
that bigram counts alone do not predict the next word).

The design separates *meaning* from *surface*:

* A sentence's meaning is drawn from a random stream seeded only by ``(seed, i)``: which
  lexemes (numbered concepts), which grammatical features, which clause structure.
  Every language of a family with the same ``seed`` therefore says the same thing in
  sentence ``i``: sibling corpora are perfectly parallel, sentence by sentence.
* A language is a mapping from lexemes to surface forms (its lexicon, drawn from
  ``language_seed``) plus a linearisation (``word_order`` and ``adjective_order``).
  ``shared_words`` of the lexicon keep the base language's forms, which is the knob
  for "how many anchor tokens do two languages share".

Randomness comes only from ``random.Random`` seeded with integers packed from the
seed and sentence index (never ``hash()``, never set or dict order), so text is
identical across runs, processes and machines, and any slice ``[start, start + n)``
can be generated on its own.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "ADJECTIVE_ORDERS",
    "CONTENT_POS",
    "WORD_ORDERS",
    "ParsedToken",
    "SyntheticSpec",
    "generate_parsed",
    "generate_sentences",
    "generate_text",
    "is_content",
    "iter_paragraphs",
]

WORD_ORDERS = ("SVO", "SOV", "VSO")
ADJECTIVE_ORDERS = ("AN", "NA")

# Parts of speech (first component of a tag) that carry lexical meaning; the rest are
# the closed class. Translations have the same number of these.
CONTENT_POS = frozenset({"NOUN", "NAME", "VERB", "ADJ", "ADV"})

_MIN_LEXICON = 100


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines a synthetic corpus.

    ``seed`` fixes the family: its meanings, phonology and the base language's
    lexicon. ``language_seed=None`` is that base language; any other value is a
    sibling whose lexicon is redrawn (avoiding the base forms) except for a
    deterministic ``shared_words`` fraction of each word class, which keeps the base
    forms. ``shared_words`` is ignored by the base language.
    """

    seed: int = 0
    lexicon_size: int = 2000
    zipf_exponent: float = 1.1
    word_order: str = "SVO"
    adjective_order: str = "AN"
    shared_words: float = 0.0
    language_seed: int | None = None

    def __post_init__(self) -> None:
        if self.word_order not in WORD_ORDERS:
            raise ValueError(f"word_order must be one of {WORD_ORDERS}, got {self.word_order!r}")
        if self.adjective_order not in ADJECTIVE_ORDERS:
            raise ValueError(f"adjective_order must be one of {ADJECTIVE_ORDERS}, got {self.adjective_order!r}")
        if self.lexicon_size < _MIN_LEXICON:
            raise ValueError(f"lexicon_size must be at least {_MIN_LEXICON}")
        if not self.zipf_exponent > 0:
            raise ValueError("zipf_exponent must be positive")
        if not 0.0 <= self.shared_words <= 1.0:
            raise ValueError("shared_words must lie in [0, 1]")


class ParsedToken(NamedTuple):
    """One token with the structure behind it, for tests and analyses.

    ``role`` marks the first token of a clause's constituents: "S" (subject; a
    relative pronoun is its clause's subject), "V" (verb group), "O" (object) or "AUX"
    (fronted auxiliary of a question); "" elsewhere. ``clause`` numbers the clause
    (in order of generation, 0 = the first main clause) on those tokens, -1 elsewhere.
    ``agr`` is the subject's agreement class ("1SG", "2SG", "3SG", "PL") on "S"
    tokens, so agreement can be checked without reconstructing the noun phrase. ``lemma`` names the
    language-independent lexeme, so it is equal across translations.
    """

    form: str
    tag: str
    lemma: str
    role: str
    clause: int
    agr: str


def is_content(tag: str) -> bool:
    """Whether a tag belongs to a content word (what translations preserve)."""
    return tag.split(".", 1)[0] in CONTENT_POS


# ---------------------------------------------------------------------------
# Seeding


_M64 = (1 << 64) - 1
_DOMAIN_SENTENCE = 1
_DOMAIN_LEXICON = 2
_DOMAIN_MEANING = 3
_DOMAIN_SHARE = 4
_DOMAIN_PHONOLOGY = 5


def _key(*parts: int) -> int:
    """Pack integers into one seed so that distinct tuples never share a stream.

    ``random.Random(int)`` is stable across Python versions and platforms, unlike
    seeding from strings or tuples (which goes through ``hash``).
    """
    key = 0
    for part in parts:
        key = (key << 64) | (part & _M64)
    return key | (len(parts) << (64 * len(parts)))


# ---------------------------------------------------------------------------
# Grammar constants (meaning level, identical for every language of a family)

_N_CLASSES = 4  # semantic classes; class 0 is "person-like" (names, he/she, I/you)
_HUMAN = 0
_MAX_DEPTH = 2  # nesting of PP / relative clauses / NP coordination

# Agreement classes; index 0 is "none" (used in markers).
_A1SG, _A2SG, _A3SG, _APL = 1, 2, 3, 4
_AGR_NAMES = ("", "1SG", "2SG", "3SG", "PL")

# Verb (and auxiliary) forms, as offsets from the bare form's code.
_BARE, _PRES3SG, _PRESPL, _PASTSG, _PASTPL = range(5)
_VERB_FORM_TAGS = ("BARE", "PRES.3SG", "PRES.PL", "PAST.SG", "PAST.PL")
# _FORM[past][agr]: the agreement rule the model has to learn.
_FORM = (
    (_BARE, _BARE, _BARE, _PRES3SG, _PRESPL),
    (_BARE, _PASTSG, _PASTSG, _PASTSG, _PASTPL),
)

# Morphemes (suffix slots); PAST.PL stacks PAST and VPL so morphology is compositional.
_M_NPL, _M_V3SG, _M_VPL, _M_PAST = range(4)
_VERB_SUFFIXES = ((), (_M_V3SG,), (_M_VPL,), (_M_PAST,), (_M_PAST, _M_VPL))

# Closed class inventories: (lemma, weight when singular NP, weight when plural NP).
_DETERMINERS = (
    ("the", 0.42, 0.45),
    ("a", 0.30, 0.0),
    ("this", 0.07, 0.0),
    ("these", 0.0, 0.10),
    ("some", 0.0, 0.20),
    ("every", 0.05, 0.0),
    ("my", 0.09, 0.12),
    ("no", 0.07, 0.13),
)
# Personal pronouns: (name, agreement, weight as person-like NP, weight as other NP).
_PRONOUNS = (
    ("1SG", _A1SG, 0.20, 0.0),
    ("2SG", _A2SG, 0.14, 0.0),
    ("3SG.M", _A3SG, 0.20, 0.0),
    ("3SG.F", _A3SG, 0.20, 0.0),
    ("3SG.N", _A3SG, 0.0, 0.70),
    ("1PL", _APL, 0.10, 0.0),
    ("2PL", _APL, 0.05, 0.0),
    ("3PL", _APL, 0.11, 0.30),
)
_CASES = ("NOM", "ACC")
_N_PREPOSITIONS = 10
_N_SUBORDINATORS = 4
_N_CONJUNCTIONS = 2
_N_MODALS = 3

# Share of the content lexicon per word class (names are content words too).
_CONTENT_SHARES = (
    ("NOUN", 0.40),
    ("TVERB", 0.14),
    ("IVERB", 0.08),
    ("ADJ", 0.20),
    ("ADV", 0.08),
    ("NAME", 0.10),
)
# Rough share of running tokens per class, only used to rank lexemes by expected
# frequency so that frequent words get short forms across classes.
_TOKEN_SHARES = {"NOUN": 0.22, "TVERB": 0.10, "IVERB": 0.05, "ADJ": 0.07, "ADV": 0.02, "NAME": 0.02}

# Sentence-level probabilities.
_P_QUESTION = 0.10
_P_FRONT_SUB = 0.10
_P_TRAIL_SUB = 0.08
_P_COORD_S = 0.10
_P_PARAGRAPH_END = 0.25
# Clause-level.
_P_TRANSITIVE = 0.65
_P_PAST = 0.40
_P_MODAL = 0.08
_P_VP_PP = 0.20
_P_ADV = 0.15
_P_CLASS_NOISE = 0.10
# NP-level.
_P_NAME = 0.15
_P_PRON_HUMAN = 0.20
_P_PRON_OTHER = 0.10
_P_COORD_NP = 0.05
_P_PLURAL = 0.30
_P_ADJ1 = 0.28
_P_ADJ2 = 0.08
_P_NP_PP = 0.10
_P_REL = 0.08


# ---------------------------------------------------------------------------
# Samplers


class _Table(NamedTuple):
    """Cumulative probabilities (last exactly 1.0) and what each slot yields."""

    cum: list[float]
    items: list[int]


def _table(items: Sequence[int], weights: Sequence[float]) -> _Table:
    total = float(sum(weights))
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cum.append(acc)
    cum[-1] = 1.0  # bisect_right(cum, x) < len(cum) for every x in [0, 1)
    return _Table(cum, list(items))


def _draw(table: _Table, x: float) -> int:
    return table.items[bisect_right(table.cum, x)]


def _zipf_table(items: Sequence[int], ranks: Sequence[int], exponent: float) -> _Table:
    """Zipf over a class's words using their rank in the whole word class.

    Sampling a class member in proportion to its *global* rank weight makes every
    class a thinned copy of one power law, so the word class as a whole still has
    rank-frequency slope ``-exponent`` however often each semantic class is chosen.
    """
    return _table(items, [(r + 1.0) ** -exponent for r in ranks])


def _interleaved_classes(n: int, pattern: Sequence[int], rng: random.Random) -> list[int]:
    """Classes for ranks 0..n-1, each block of ranks getting a shuffled ``pattern``.

    Blocks keep every class represented among frequent and rare words alike, which
    keeps the class-conditional Zipf tables balanced.
    """
    out: list[int] = []
    while len(out) < n:
        block = list(pattern)
        rng.shuffle(block)
        out.extend(block)
    return out[:n]


# ---------------------------------------------------------------------------
# The family's inventory: codes, tags, lemmas and samplers (language independent)


class _Grammar:
    """Lexemes and their inflected codes, with the samplers that draw meanings.

    A *code* is one inflected word (or punctuation mark); sentences are generated as
    code lists, and a language only maps codes to strings. Surface building needs,
    per code, the lexeme whose stem it uses and its suffix morphemes.
    """

    def __init__(self, seed: int, lexicon_size: int, zipf_exponent: float) -> None:
        self.tags: list[str] = []
        self.lemmas: list[str] = []
        self.code_lexeme: list[int] = []  # -1 for punctuation
        self.code_suffixes: list[tuple[int, ...]] = []
        self.code_capital: list[bool] = []
        # Lexemes (what a lexicon gives a stem): word class and expected frequency.
        self.lexeme_class: list[str] = []
        self.lexeme_freq: list[float] = []
        self.class_lexemes: dict[str, list[int]] = {}
        rng = random.Random(_key(_DOMAIN_MEANING, seed))
        self._build_punctuation()
        self._build_closed_class()
        self._build_content(lexicon_size, zipf_exponent, rng)

    # -- registration --------------------------------------------------------

    def _lexeme(self, word_class: str, freq: float) -> int:
        lex = len(self.lexeme_class)
        self.lexeme_class.append(word_class)
        self.lexeme_freq.append(freq)
        self.class_lexemes.setdefault(word_class, []).append(lex)
        return lex

    def _code(self, tag: str, lemma: str, lexeme: int, suffixes: tuple[int, ...] = (), capital: bool = False) -> int:
        self.tags.append(tag)
        self.lemmas.append(lemma)
        self.code_lexeme.append(lexeme)
        self.code_suffixes.append(suffixes)
        self.code_capital.append(capital)
        return len(self.tags) - 1

    def _verb_codes(self, tag: str, lemma: str, lexeme: int) -> int:
        """Five consecutive codes (bare, 3sg, pl, past sg, past pl); returns the bare one."""
        codes = [
            self._code(f"{tag}.{form_tag}", lemma, lexeme, suffixes)
            for form_tag, suffixes in zip(_VERB_FORM_TAGS, _VERB_SUFFIXES)
        ]
        return codes[0]

    # -- closed class -----------------------------------------------------------

    def _build_punctuation(self) -> None:
        self.punct_surface: dict[int, str] = {}
        for mark in (",", ".", "?"):
            self.punct_surface[self._code("PUNCT", mark, -1)] = mark
        self.COMMA, self.PERIOD, self.QMARK = self.punct_surface

    def _build_closed_class(self) -> None:
        # Expected frequency keys above every content word: function words are the
        # most frequent words of any language, hence the shortest.
        def lex(word_class: str, weight: float) -> int:
            return self._lexeme(word_class, 10.0 + weight)

        det_codes = [self._code("DET", f"DET.{name}", lex("FUNC", w + p)) for name, w, p in _DETERMINERS]
        self.dets_sg = _table(det_codes, [w for _, w, _ in _DETERMINERS])
        self.dets_pl = _table(det_codes, [p for _, _, p in _DETERMINERS])

        self.pron_code: list[int] = []
        self.pron_agr = [agr for _, agr, _, _ in _PRONOUNS]
        for name, _, w_h, w_o in _PRONOUNS:
            for case in _CASES:
                lexeme = lex("FUNC", 0.5 * (w_h + w_o))
                self.pron_code.append(self._code(f"PRON.{name}.{case}", f"PRON.{name}.{case}", lexeme))
        indices = list(range(len(_PRONOUNS)))
        self.prons_human = _table(indices, [w for _, _, w, _ in _PRONOUNS])
        self.prons_other = _table(indices, [w for _, _, _, w in _PRONOUNS])

        preps = [self._code("PREP", f"PREP{k}", lex("FUNC", 0.3 / (k + 1))) for k in range(_N_PREPOSITIONS)]
        self.preps = _table(preps, [1.0 / (k + 1) for k in range(_N_PREPOSITIONS)])
        # Each preposition selects a semantic class for its object ("in" wants places).
        self.prep_class = {code: k % _N_CLASSES for k, code in enumerate(preps)}

        self.REL = self._code("REL", "REL", lex("FUNC", 0.2))
        conj = [self._code("CONJ", f"CONJ{k}", lex("FUNC", 0.3 / (k + 1))) for k in range(_N_CONJUNCTIONS)]
        self.AND = conj[0]
        self.conjs = _table(conj, [0.7, 0.3])
        subs = [self._code("SUB", f"SUB{k}", lex("FUNC", 0.1 / (k + 1))) for k in range(_N_SUBORDINATORS)]
        self.subs = _table(subs, [1.0 / (k + 1) for k in range(_N_SUBORDINATORS)])
        self.AUX = self._verb_codes("AUX", "AUX", lex("FUNC", 0.1))
        modals = [self._code("MODAL", f"MODAL{k}", lex("FUNC", 0.05 / (k + 1))) for k in range(_N_MODALS)]
        self.modals = _table(modals, [1.0 / (k + 1) for k in range(_N_MODALS)])

    # -- content words ------------------------------------------------------------

    def _build_content(self, lexicon_size: int, s: float, rng: random.Random) -> None:
        sizes = _class_sizes(lexicon_size)
        codes: dict[str, list[int]] = {}
        for word_class, n in sizes.items():
            codes[word_class] = [self._content_lexeme(word_class, r, s) for r in range(n)]
        ranks = {wc: list(range(n)) for wc, n in sizes.items()}

        noun_cls = _interleaved_classes(sizes["NOUN"], range(_N_CLASSES), rng)
        self.nouns = [self._class_table(codes["NOUN"], noun_cls, k, s) for k in range(_N_CLASSES)]
        adj_cls = _interleaved_classes(sizes["ADJ"], range(_N_CLASSES), rng)
        self.adjs = [self._class_table(codes["ADJ"], adj_cls, k, s) for k in range(_N_CLASSES)]
        adv_cls = _interleaved_classes(sizes["ADV"], range(_N_CLASSES), rng)
        self.advs = [self._class_table(codes["ADV"], adv_cls, k, s) for k in range(_N_CLASSES)]
        self.names = _zipf_table(codes["NAME"], ranks["NAME"], s)

        # Verbs: transitive ones select an object class (their "verb class", which
        # also picks their adverbs) and a subject class, mostly person-like;
        # intransitive ones select a subject class, which doubles as verb class.
        subj_pattern = (0, 0, 0, 0, 1, 1, 2, 3)
        self.verb_subj: dict[int, int] = {}
        self.verb_obj: dict[int, int] = {}
        tv_subj = _interleaved_classes(sizes["TVERB"], subj_pattern, rng)
        tv_obj = _interleaved_classes(sizes["TVERB"], range(_N_CLASSES), rng)
        iv_subj = _interleaved_classes(sizes["IVERB"], subj_pattern, rng)
        for code, sc, oc in zip(codes["TVERB"], tv_subj, tv_obj):
            self.verb_subj[code], self.verb_obj[code] = sc, oc
        for code, sc in zip(codes["IVERB"], iv_subj):
            self.verb_subj[code], self.verb_obj[code] = sc, sc
        self.tverbs = _zipf_table(codes["TVERB"], ranks["TVERB"], s)
        self.iverbs = _zipf_table(codes["IVERB"], ranks["IVERB"], s)
        self.tverbs_by_subj = [
            self._class_table(codes["TVERB"], tv_subj, k, s, fallback=self.tverbs) for k in range(_N_CLASSES)
        ]
        self.iverbs_by_subj = [
            self._class_table(codes["IVERB"], iv_subj, k, s, fallback=self.iverbs) for k in range(_N_CLASSES)
        ]

    def _content_lexeme(self, word_class: str, rank: int, s: float) -> int:
        freq = _TOKEN_SHARES[word_class] * (rank + 1.0) ** -s
        lexeme = self._lexeme(word_class, freq)
        pos = "VERB" if word_class in ("TVERB", "IVERB") else word_class
        lemma = f"{word_class}{rank}"
        if pos == "NOUN":
            code = self._code("NOUN.SG", lemma, lexeme)
            self._code("NOUN.PL", lemma, lexeme, (_M_NPL,))
            return code
        if pos == "VERB":
            return self._verb_codes("VERB", lemma, lexeme)
        return self._code(pos, lemma, lexeme, capital=pos == "NAME")

    @staticmethod
    def _class_table(codes: list[int], classes: list[int], k: int, s: float, fallback: _Table | None = None) -> _Table:
        members = [r for r, c in enumerate(classes) if c == k]
        if not members:
            if fallback is None:
                raise ValueError("lexicon too small for every semantic class")
            return fallback
        return _zipf_table([codes[r] for r in members], members, s)


def _class_sizes(lexicon_size: int) -> dict[str, int]:
    sizes = {wc: max(_N_CLASSES, int(round(share * lexicon_size))) for wc, share in _CONTENT_SHARES}
    sizes["NOUN"] += lexicon_size - sum(sizes.values())  # exact total
    return sizes


@lru_cache(maxsize=16)
def _grammar(seed: int, lexicon_size: int, zipf_exponent: float) -> _Grammar:
    return _Grammar(seed, lexicon_size, zipf_exponent)


# ---------------------------------------------------------------------------
# Phonology and lexicons (language specific)


_CONSONANTS = "bdfghjklmnprstvwz"
_VOWELS = "aeiou"
_P_ONSETLESS = 0.12
_SYLLABLE_BASE = 7.0  # one more syllable per factor-7 drop in frequency rank


class _Phonology(NamedTuple):
    consonants: str
    consonant_cum: list[float]
    vowels: str
    vowel_cum: list[float]


@lru_cache(maxsize=16)
def _phonology(seed: int) -> _Phonology:
    """A family-wide sound inventory with skewed sound frequencies, like real ones.

    Stems are strict consonant-vowel syllables (optionally one leading vowel) and
    every suffix is vowel-consonant, so a word splits uniquely at its first pair of
    adjacent vowels: inflected forms can never collide with other words.
    """
    rng = random.Random(_key(_DOMAIN_PHONOLOGY, seed))
    consonants = "".join(sorted(rng.sample(_CONSONANTS, 13)))
    c_weights = [rng.uniform(0.3, 1.0) for _ in consonants]
    v_weights = [rng.uniform(0.4, 1.0) for _ in _VOWELS]
    return _Phonology(consonants, _cumulative(c_weights), _VOWELS, _cumulative(v_weights))


def _cumulative(weights: Sequence[float]) -> list[float]:
    return _table(range(len(weights)), weights).cum


def _pick(letters: str, cum: list[float], rng: random.Random) -> str:
    return letters[bisect_right(cum, rng.random())]


def _stem(n_syllables: int, ph: _Phonology, rng: random.Random) -> str:
    parts = []
    if rng.random() < _P_ONSETLESS:  # a leading onsetless syllable, like "a-" or "o-"
        parts.append(_pick(ph.vowels, ph.vowel_cum, rng))
        n_syllables -= 1
    for _ in range(n_syllables):
        parts.append(_pick(ph.consonants, ph.consonant_cum, rng))
        parts.append(_pick(ph.vowels, ph.vowel_cum, rng))
    return "".join(parts)


def _syllable_count(freq_rank: int, rng: random.Random) -> int:
    """Zipf's law of abbreviation: frequent words are short."""
    base = 1 + int(math.log(freq_rank + 1.0) / math.log(_SYLLABLE_BASE))
    jitter = rng.random()
    return max(1, base - 1 if jitter < 0.2 else base + 1 if jitter > 0.8 else base)


def _draw_stems(g: _Grammar, ph: _Phonology, rng: random.Random, taken: set[str]) -> list[str]:
    """One unique stem per lexeme, in order of expected frequency, avoiding ``taken``."""
    order = sorted(range(len(g.lexeme_freq)), key=lambda lex: (-g.lexeme_freq[lex], lex))
    stems = [""] * len(order)
    for freq_rank, lex in enumerate(order):
        n_syl = _syllable_count(freq_rank, rng)
        attempts = 0
        while True:
            stem = _stem(n_syl + attempts // 6, ph, rng)
            attempts += 1
            if stem not in taken:
                break
        taken.add(stem)
        stems[lex] = stem
    return stems


def _draw_suffixes(ph: _Phonology, rng: random.Random, taken: set[str]) -> list[str]:
    suffixes: list[str] = []
    while len(suffixes) < 4:
        suffix = _pick(ph.vowels, ph.vowel_cum, rng) + _pick(ph.consonants, ph.consonant_cum, rng)
        if suffix not in taken:
            taken.add(suffix)
            suffixes.append(suffix)
    return suffixes


class _Lexicon(NamedTuple):
    """Per lexeme, its stem and the suffixes (indexed by morpheme) it inflects with."""

    stems: list[str]
    suffixes: list[list[str]]


@lru_cache(maxsize=16)
def _base_lexicon(seed: int, lexicon_size: int, zipf_exponent: float) -> _Lexicon:
    g = _grammar(seed, lexicon_size, zipf_exponent)
    ph = _phonology(seed)
    rng = random.Random(_key(_DOMAIN_LEXICON, seed))
    stems = _draw_stems(g, ph, rng, set())
    suffixes = _draw_suffixes(ph, rng, set())
    return _Lexicon(stems, [suffixes] * len(stems))


def _shared_mask(seed: int, word_class: str, n: int, fraction: float) -> list[bool]:
    """Which members of a word class (by frequency rank) keep the base form.

    A golden-ratio sequence spreads the shared words evenly over frequency ranks, so
    the shared share of *tokens* is close to the shared share of *types*, and the
    sets are nested as ``fraction`` grows. It depends on the family seed only, so
    every sibling shares the same anchor words with the base language.
    """
    offset = random.Random(_key(_DOMAIN_SHARE, seed, _class_id(word_class))).random()
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    return [((offset + r * golden) % 1.0) < fraction for r in range(n)]


def _class_id(word_class: str) -> int:
    """A stable integer for a word class name (``hash`` is salted per process)."""
    return int.from_bytes(word_class.encode(), "big") & _M64


@lru_cache(maxsize=32)
def _lexicon(seed: int, lexicon_size: int, zipf_exponent: float, language_seed: int | None, shared: float) -> _Lexicon:
    """A sibling's lexicon: its own stems and suffixes, except for shared words.

    A shared word is borrowed whole, inflections included, so that every form of it
    is spelled as in the base language: what matters for cross-lingual transfer is
    identical tokens. Own stems avoid all base stems, so unshared words never
    coincide with base words (forms split uniquely into stem and suffixes).
    """
    base = _base_lexicon(seed, lexicon_size, zipf_exponent)
    if language_seed is None:
        return base
    g = _grammar(seed, lexicon_size, zipf_exponent)
    ph = _phonology(seed)
    rng = random.Random(_key(_DOMAIN_LEXICON, seed, language_seed, 1))
    stems = _draw_stems(g, ph, rng, set(base.stems))
    own_suffixes = _draw_suffixes(ph, rng, set(base.suffixes[0]))
    suffixes = [own_suffixes] * len(stems)
    for word_class, members in g.class_lexemes.items():
        for lex, keep in zip(members, _shared_mask(seed, word_class, len(members), shared)):
            if keep:
                stems[lex], suffixes[lex] = base.stems[lex], base.suffixes[lex]
    return _Lexicon(stems, suffixes)


@lru_cache(maxsize=32)
def _surfaces(spec: SyntheticSpec) -> list[str]:
    """The string of every code in this language."""
    g = _grammar(spec.seed, spec.lexicon_size, spec.zipf_exponent)
    language_seed = spec.language_seed
    lex = _lexicon(spec.seed, spec.lexicon_size, spec.zipf_exponent, language_seed, spec.shared_words)
    out: list[str] = []
    for code, lexeme in enumerate(g.code_lexeme):
        if lexeme < 0:
            out.append(g.punct_surface[code])
            continue
        suffixes = lex.suffixes[lexeme]
        form = lex.stems[lexeme] + "".join(suffixes[m] for m in g.code_suffixes[code])
        out.append(form.capitalize() if g.code_capital[code] else form)
    return out


# ---------------------------------------------------------------------------
# Sentence generation


_ORDERS = {"SVO": (0, 1, 2), "SOV": (0, 2, 1), "VSO": (1, 0, 2)}
_ROLE_S, _ROLE_V, _ROLE_O, _ROLE_AUX = 1, 2, 3, 4
_ROLE_NAMES = ("", "S", "V", "O", "AUX")


class _Maker:
    """Draws sentence meanings and linearises them as code lists.

    Random draws happen in meaning order whatever the word order, so two languages
    of a family consume the same stream and say the same thing. With ``mark`` set,
    negative marker codes precede constituents (for ``generate_parsed``); the text
    path leaves them out rather than filtering them, to stay fast.
    """

    def __init__(self, spec: SyntheticSpec, mark: bool = False) -> None:
        self.g = _grammar(spec.seed, spec.lexicon_size, spec.zipf_exponent)
        self.seed = spec.seed
        self.order = _ORDERS[spec.word_order]
        self.verb_final = spec.word_order == "SOV"
        self.adj_first = spec.adjective_order == "AN"
        self.mark = mark
        self.rng = random.Random()
        self.u = self.rng.random
        self.clause = 0

    def sentence(self, i: int) -> tuple[list[int], bool]:
        """Codes of sentence ``i`` (ending in punctuation) and whether a paragraph ends."""
        self.rng.seed(_key(_DOMAIN_SENTENCE, self.seed, i))
        self.clause = 0
        g, u = self.g, self.u
        r = u()
        if r < _P_QUESTION:
            out = self._clause(0, question=True)
            out.append(g.QMARK)
        elif r < _P_QUESTION + _P_FRONT_SUB:
            out = [_draw(g.subs, u())] + self._clause(1)
            out.append(g.COMMA)
            out += self._clause(0)
            out.append(g.PERIOD)
        elif r < _P_QUESTION + _P_FRONT_SUB + _P_TRAIL_SUB:
            out = self._clause(0)
            out += (g.COMMA, _draw(g.subs, u()))
            out += self._clause(1)
            out.append(g.PERIOD)
        elif r < _P_QUESTION + _P_FRONT_SUB + _P_TRAIL_SUB + _P_COORD_S:
            out = self._clause(0)
            out.append(_draw(g.conjs, u()))
            out += self._clause(0)
            out.append(g.PERIOD)
        else:
            out = self._clause(0)
            out.append(g.PERIOD)
        return out, u() < _P_PARAGRAPH_END

    @staticmethod
    def _marker(clause: int, role: int, agr: int = 0) -> int:
        return -(1 + clause * 64 + role * 8 + agr)

    def _class(self, preferred: int) -> int:
        """Selectional preference with a little noise, as in real usage."""
        u = self.u
        return preferred if u() >= _P_CLASS_NOISE else int(u() * _N_CLASSES)

    def _clause(self, depth: int, question: bool = False) -> list[int]:
        g, u = self.g, self.u
        clause = self.clause
        self.clause += 1
        transitive = u() < _P_TRANSITIVE
        verb = _draw(g.tverbs if transitive else g.iverbs, u())
        past = 1 if u() < _P_PAST else 0
        modal = _draw(g.modals, u()) if u() < _P_MODAL else -1
        subj, agr = self._np(self._class(g.verb_subj[verb]), depth, 0)
        obj = self._np(self._class(g.verb_obj[verb]), depth, 1)[0] if transitive else []
        tail = self._pp(depth + 1) if u() < _P_VP_PP else []
        if u() < _P_ADV:
            tail.append(_draw(g.advs[g.verb_obj[verb]], u()))

        front: list[int] = []
        if modal >= 0:
            group = [verb] if question else [modal, verb]
            front = [modal] if question else []
        elif question:
            group = [verb]
            front = [g.AUX + _FORM[past][agr]]
        else:
            group = [verb + _FORM[past][agr]]
        if self.mark:
            subj = [self._marker(clause, _ROLE_S, agr)] + subj
            group = [self._marker(clause, _ROLE_V)] + group
            if obj:
                obj = [self._marker(clause, _ROLE_O)] + obj
            if front:
                front = [self._marker(clause, _ROLE_AUX)] + front
        parts = (subj, group, obj)
        a, b, c = self.order
        return front + parts[a] + parts[b] + parts[c] + tail

    def _relative(self, head_class: int, agr: int, depth: int) -> list[int]:
        """A subject relative ("that chases the cat"): its verb agrees with the head."""
        g, u = self.g, self.u
        clause = self.clause
        self.clause += 1
        transitive = u() < _P_TRANSITIVE
        table = g.tverbs_by_subj if transitive else g.iverbs_by_subj
        verb = _draw(table[head_class], u())
        past = 1 if u() < _P_PAST else 0
        obj = self._np(self._class(g.verb_obj[verb]), depth, 1)[0] if transitive else []
        group = [verb + _FORM[past][agr]]
        rel = [g.REL]
        if self.mark:
            rel = [self._marker(clause, _ROLE_S, agr), g.REL]
            group = [self._marker(clause, _ROLE_V)] + group
            if obj:
                obj = [self._marker(clause, _ROLE_O)] + obj
        return rel + obj + group if self.verb_final else rel + group + obj

    def _pp(self, depth: int) -> list[int]:
        g = self.g
        prep = _draw(g.preps, self.u())
        return [prep] + self._np(self._class(g.prep_class[prep]), depth, 1)[0]

    def _np(self, cls: int, depth: int, case: int) -> tuple[list[int], int]:
        """A noun phrase of semantic class ``cls`` and its agreement class."""
        g, u = self.g, self.u
        r = u()
        if cls == _HUMAN:
            if r < _P_NAME:
                return [_draw(g.names, u())], _A3SG
            if r < _P_NAME + _P_PRON_HUMAN:
                p = _draw(g.prons_human, u())
                return [g.pron_code[2 * p + case]], g.pron_agr[p]
        elif r < _P_PRON_OTHER:
            p = _draw(g.prons_other, u())
            return [g.pron_code[2 * p + case]], g.pron_agr[p]
        if depth < _MAX_DEPTH and r > 1.0 - _P_COORD_NP:
            left = self._noun_phrase(cls, depth + 1)[0]
            right = self._noun_phrase(self._class(cls), depth + 1)[0]
            return left + [g.AND] + right, _APL
        return self._noun_phrase(cls, depth)

    def _noun_phrase(self, cls: int, depth: int) -> tuple[list[int], int]:
        g, u = self.g, self.u
        plural = 1 if u() < _P_PLURAL else 0
        det = _draw(g.dets_pl if plural else g.dets_sg, u())
        noun = _draw(g.nouns[cls], u()) + plural
        r = u()
        if r < _P_ADJ2:
            adjs = [_draw(g.adjs[self._class(cls)], u()), _draw(g.adjs[self._class(cls)], u())]
        elif r < _P_ADJ2 + _P_ADJ1:
            adjs = [_draw(g.adjs[self._class(cls)], u())]
        else:
            adjs = []
        words = [det] + adjs + [noun] if self.adj_first else [det, noun] + adjs
        agr = _APL if plural else _A3SG
        if depth < _MAX_DEPTH:
            r = u()
            if r < _P_NP_PP:
                words += self._pp(depth + 1)
            elif r < _P_NP_PP + _P_REL:
                words += self._relative(cls, agr, depth + 1)
        return words, agr


# ---------------------------------------------------------------------------
# Realisation and public API


def _realise(codes: list[int], surface: list[str]) -> str:
    """Spaces between words, none before punctuation, a capital first letter."""
    words = [surface[c] for c in codes]
    first = words[0]
    words[0] = first[0].upper() + first[1:]
    return " ".join(words[:-1]).replace(" ,", ",") + words[-1]


def _check_range(n: int, start: int) -> None:
    if n < 0 or start < 0:
        raise ValueError("n and start must be non-negative")


def generate_sentences(spec: SyntheticSpec, n: int, start: int = 0) -> list[str]:
    """Sentences ``start .. start+n-1``; each depends only on the family and its index."""
    _check_range(n, start)
    maker = _Maker(spec)
    surface = _surfaces(spec)
    sentence = maker.sentence
    return [_realise(sentence(i)[0], surface) for i in range(start, start + n)]


def iter_paragraphs(spec: SyntheticSpec, start: int = 0) -> Iterator[tuple[int, str]]:
    """Endless ``(index of first sentence, paragraph)`` pairs from sentence ``start``.

    Paragraph breaks are drawn in each sentence's own stream, so siblings break at
    the same sentences and their texts align line by line.
    """
    _check_range(0, start)
    maker = _Maker(spec)
    surface = _surfaces(spec)
    sentence = maker.sentence
    i = start
    while True:
        first = i
        parts: list[str] = []
        end = False
        while not end:
            codes, end = sentence(i)
            parts.append(_realise(codes, surface))
            i += 1
        yield first, " ".join(parts)


def generate_text(spec: SyntheticSpec, n_chars: int, start: int = 0) -> str:
    """Whole paragraphs from sentence ``start``, one per line, until >= ``n_chars``."""
    _check_range(n_chars, start)
    lines: list[str] = []
    total = -1  # no newline before the first line
    for _, paragraph in iter_paragraphs(spec, start):
        lines.append(paragraph)
        total += len(paragraph) + 1
        if total >= n_chars:
            break
    return "\n".join(lines)


def generate_parsed(spec: SyntheticSpec, n: int, start: int = 0) -> list[list[ParsedToken]]:
    """Sentences as tokens with tags, lemmas and clause roles (see ``ParsedToken``).

    Forms are as in ``generate_sentences`` except that punctuation is separate and
    the first word is not capitalised.
    """
    _check_range(n, start)
    maker = _Maker(spec, mark=True)
    g = maker.g
    surface = _surfaces(spec)
    out: list[list[ParsedToken]] = []
    for i in range(start, start + n):
        codes, _ = maker.sentence(i)
        tokens: list[ParsedToken] = []
        role, clause, agr = 0, -1, 0
        for code in codes:
            if code < 0:
                packed = -code - 1
                clause, role, agr = packed // 64, (packed // 8) % 8, packed % 8
                continue
            tokens.append(
                ParsedToken(surface[code], g.tags[code], g.lemmas[code], _ROLE_NAMES[role], clause, _AGR_NAMES[agr])
            )
            role, clause, agr = 0, -1, 0
        out.append(tokens)
    return out
