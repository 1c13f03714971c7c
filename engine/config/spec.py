"""experiments.toml -> validated, fully resolved run specs.

An experiment declares its languages, data, model preset, token budget, seeds, the
monolingual baselines the scaling law needs (as fractions of the budget) and a list
of schedules (grids of languages x stages). Each (schedule or baseline) x seed
becomes one ``RunSpec`` whose id is a hash of everything that changes its result, so
re-running skips finished runs and an edited spec becomes a new run.

Every mistake is reported as ``SpecError`` naming file, line, table and field.
"""

from __future__ import annotations

import codecs
import copy
import glob
import hashlib
import json
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.config.locate import SpecError, TomlLocator, describe_validation_error, did_you_mean, validation_problem
from engine.config.schedule import Schedule, ScheduleError
from engine.config.sweep import SweepConfig, clone_names, format_tokens, point_label, ratio_mix, uniform_mix
from engine.data.corpora import budget_sized_chars
from engine.data.recipe import FAMILY, CorpusSource, DataRecipe, ParallelSource
from engine.runs.layout import name_problem

SPEC_VERSION = 1
BUILTIN_CORPORA = ("builtin:synthetic", "builtin:pydocs")
MIN_STEPS = 10  # a run shorter than this has no warmup, no curve and no evaluation worth the name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorpusConfig(_Model):
    """One language's corpus in a real-language experiment."""

    path: str = Field(min_length=1, description="path/glob of .txt(.gz)/.jsonl/.parquet, or builtin:family")
    column: str = Field("text", description="text column of JSONL/Parquet files")
    max_chars: int | None = Field(None, gt=0, description="read at most this much of the corpus")
    vocab_size: int | None = Field(
        None, ge=64, le=65536, description="this language's BPE size (default data.vocab_size)"
    )
    family: dict[str, Any] | None = Field(None, description="builtin:family settings, e.g. {like = 'far'}")

    @model_validator(mode="after")
    def _family_only_for_builtin(self) -> CorpusConfig:
        from engine.data.family import FamilyLanguage

        if self.family is not None and self.path != FAMILY:
            raise ValueError(f"family settings only apply to path = {FAMILY!r}")
        if self.path == FAMILY:
            try:
                FamilyLanguage.from_dict(self.family).synthetic()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"family: {exc}") from None
        return self


class ParallelConfig(_Model):
    """Parallel sentences for hidden-state and gradient similarity of real languages."""

    path: str = Field(min_length=1, description="TSV, one pair per line, or builtin:family")
    columns: list[str] | None = Field(None, description="the language of each TSV column (default: the languages)")
    max_pairs: int = Field(64, ge=2, description="pairs used (a seeded sample of the file)")


class ProbeConfig(_Model):
    """Zero-shot downstream probe: fine-tune a classifier in one language, evaluate in all."""

    task: str | dict[str, str] = Field(
        "builtin:synthetic", description="builtin:synthetic, a text<TAB>label TSV, or {LANG = TSV} per language"
    )
    train_language: str | None = Field(None, description="default: the first language")
    finetune: Literal["all", "head"] = "all"
    steps: int = Field(150, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    n_train: int = Field(2000, ge=2, description="training examples (at most)")
    n_test: int = Field(500, ge=2, description="test examples per language (at most)")


class DataConfig(_Model):
    corpus: str = "builtin:synthetic"
    kind: Literal["cloned", "real"] = "cloned"
    corpora: dict[str, CorpusConfig] | None = Field(None, description="real languages: one corpus per language")
    tokenizer: Literal["disjoint", "anchored", "joint"] = Field(
        "disjoint", description="real languages: ids offset, identical pieces merged, or one joint BPE"
    )
    parallel: ParallelConfig | None = None
    vocab_size: int = Field(2048, ge=64, le=65536)
    anchors: float = Field(0.0, ge=0.0, le=1.0, description="fraction of ids shared by all clones")
    anchor_seed: int = 0
    test_fraction: float = Field(0.02, gt=0.0, lt=0.5)
    max_chars: int | None = Field(None, gt=0, description="read at most this much of the corpus")
    text_field: str = "text"


class TrainConfig(_Model):
    batch_size: int = Field(32, ge=1)
    context: int = Field(128, ge=8)
    lr: float = Field(3e-3, gt=0)
    min_lr: float | None = Field(None, ge=0)
    warmup: int = Field(100, ge=0, description="steps; capped at 10% of a run's steps")
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    compile: Literal["auto", "on", "off"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"


class EvalConfig(_Model):
    context: int | None = Field(None, ge=8, description="defaults to the training context")
    stride: int | None = Field(None, ge=1, description="defaults to a quarter of the context")
    max_tokens: int = Field(50_000, ge=16)
    every: float = Field(0.25, ge=0.0, le=1.0, description="fraction of training between evals; 0 = end only")
    batch_size: int = Field(16, ge=1)
    alignment: bool = Field(True, description="embedding, hidden-state and gradient similarity at the end")
    alignment_sequences: int = Field(32, ge=2, description="test sequences for hidden/gradient similarity")
    alignment_at_evals: bool = Field(False, description="also run the alignment analyses at every evaluation")
    probe: ProbeConfig | None = Field(None, description="zero-shot downstream probe at the end")


class ResolvedTrain(TrainConfig):
    """A run's training settings: ``min_lr`` filled in and ``warmup`` capped (``_run_spec``)."""

    min_lr: float = Field(ge=0)


class ResolvedEval(EvalConfig):
    """A run's evaluation settings: ``context`` and ``stride`` filled in (``_run_spec``)."""

    context: int = Field(ge=8)
    stride: int = Field(ge=1)


class ScheduleConfig(_Model):
    name: str = Field(min_length=1)
    ends: list[float] | None = None
    mix: dict[str, list[float]]


class ExperimentConfig(_Model):
    description: str = ""
    languages: list[str] = Field(min_length=1)
    model: str = "cpu-xs"
    tokens: int = Field(gt=0, description="the experiment's full token budget T")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    baselines: list[float] | Literal["auto"] = Field(
        default_factory=list,
        description='monolingual runs, fractions of T; "auto": enough to cover every mix run\'s MLTE',
    )
    baseline_tokens: list[int] = Field(default_factory=list, description="monolingual runs, absolute token counts")
    max_baselines: int = Field(8, ge=2, description='cap on "auto" baselines per language (and sweep point)')
    baseline_languages: list[str] | None = None
    scaling_law: Literal["paper", "power"] = Field(
        "paper", description="form of the monolingual law: 1/PPL = c - a x^-b (paper) or PPL = k x^-b (power)"
    )
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    sweep: SweepConfig | None = Field(None, description="axes: one point per combination of their values")

    @model_validator(mode="before")
    @classmethod
    def _budget_from_sweep(cls, raw: Any) -> Any:
        """With ``sweep.tokens`` the experiment's own ``tokens`` may be left out: the largest is its T."""
        if isinstance(raw, dict) and "tokens" not in raw and isinstance(raw.get("sweep"), dict):
            budgets = raw["sweep"].get("tokens")
            if isinstance(budgets, list) and budgets and all(isinstance(t, int | float) for t in budgets):
                return raw | {"tokens": max(budgets)}
        return raw

    @field_validator("languages")
    @classmethod
    def _unique_languages(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("language names must be unique")
        return v

    @field_validator("model")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        from engine.config.presets import PRESET_NAMES

        if v not in PRESET_NAMES:
            raise ValueError(f"unknown model preset {v!r}; choose one of {', '.join(PRESET_NAMES)}")
        return v

    @field_validator("baselines")
    @classmethod
    def _fractions(cls, v: list[float] | str) -> list[float] | str:
        if isinstance(v, str):  # "auto" (the Literal says which strings)
            return v
        bad = [f for f in v if not 0 < f <= 1]
        if bad:
            raise ValueError(
                f"baseline fractions are shares of the budget, in (0, 1]; got {bad[0]:g} "
                "(baseline_tokens gives absolute counts, beyond the budget too)"
            )
        _no_repeats(v, "baseline fraction")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 0 <= s < 2**32]
        if bad:
            raise ValueError(f"seeds are integers from 0 to 2**32 - 1; got {bad[0]}")
        _no_repeats(v, "seed")
        return v

    @field_validator("baseline_tokens")
    @classmethod
    def _positive_counts(cls, v: list[int]) -> list[int]:
        if any(n <= 0 for n in v):
            raise ValueError("baseline token counts must be > 0")
        return v

    @model_validator(mode="after")
    def _languages_known(self) -> ExperimentConfig:
        for lang in self.baseline_languages or []:
            if lang not in self.languages:
                raise ValueError(f"baseline language {lang!r} is not one of {self.languages}")
        generated = self.sweep is not None and (self.sweep.ratio or self.sweep.languages)
        if not self.schedules and not self.baselines and not self.baseline_tokens and not generated:
            raise ValueError("an experiment needs at least one schedule or baseline (or sweep.ratio)")
        return self


def _no_repeats(values: list, what: str) -> None:
    """Two equal entries would be one run listed twice (one id, one folder)."""
    seen = set()
    for v in values:
        if v in seen:
            shown = f"{v:g}" if isinstance(v, float) else str(v)
            raise ValueError(f"{what} {shown} is listed twice (a repeated {what} is the same run)")
        seen.add(v)


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to train one run.

    ``data``, ``train`` and ``eval`` are the validated, frozen settings (defaults live
    in the pydantic models above, nowhere else); ``to_dict`` is the JSON written to
    spec.json and hashed into the run id, field for field what it has always been.
    """

    experiment: str
    name: str
    kind: str  # "baseline" | "mix"
    seed: int
    languages: list[str]
    schedule: dict[str, Any]
    model: str
    data: DataConfig
    train: ResolvedTrain
    eval: ResolvedEval
    budget_tokens: int
    fraction: float
    total_steps: int
    total_tokens: int
    run_id: str = ""
    # Added with sweeps, left out of the JSON while unset so older runs keep their ids:
    data_tokens: int | None = None  # the budget the data is sized for (a tokens sweep: its largest)
    point: dict[str, Any] = field(default_factory=dict)  # the sweep point, e.g. {"ratio": 90.0}

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        for key in ("data_tokens", "point"):
            if not out[key]:
                del out[key]
        out["data"] = _data_dict(self.data)
        out["train"] = self.train.model_dump(mode="json")
        out["eval"] = self.eval.model_dump(mode="json", exclude=_unset_new_fields(self.eval, ("probe",)))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "spec.json") -> RunSpec:
        """A spec from its JSON form; fields added since it was written take their defaults.

        Anything that is not a run spec is a ``SpecError`` naming ``source`` and the field.
        """
        typed: dict[str, Any] = {}
        for key, model in _TYPED_PARTS.items():
            try:
                typed[key] = model.model_validate(raw.get(key))
            except ValidationError as exc:
                raise SpecError(f"{source}: {describe_validation_error(exc, prefix=(key,))}") from None
        try:
            return cls(**raw | typed)
        except TypeError as exc:  # a missing or unknown top-level field
            raise SpecError(f"{source}: not a run spec ({exc})") from None

    @classmethod
    def from_json(cls, text: str, source: str = "spec.json") -> RunSpec:
        """A spec.json's run (see ``from_dict``)."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{source}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: not a run spec (a JSON object)")
        return cls.from_dict(raw, source)

    def schedule_obj(self) -> Schedule:
        return Schedule.from_dict(self.schedule)

    def marginal_tokens(self) -> dict[str, int]:
        return self.schedule_obj().marginal_tokens(self.total_steps, self.train.batch_size, self.train.context)

    def data_recipe(self) -> DataRecipe:
        """What engine.data reads: each language's corpus, tokenization, parallel sentences."""
        d = self.data
        budget = self.data_tokens or self.budget_tokens
        if d.kind == "cloned":
            source = CorpusSource(d.corpus, d.vocab_size, d.test_fraction, d.max_chars, d.text_field, False, None)
            return DataRecipe(tuple(self.languages), budget, "cloned", (source,), d.anchors, d.anchor_seed, None)
        corpora = d.corpora or {}
        sources = tuple(_corpus_source(d, corpora[lang]) for lang in self.languages)
        return DataRecipe(
            tuple(self.languages), budget, d.tokenizer, sources, d.anchors, d.anchor_seed, self._parallel()
        )

    def _parallel(self) -> ParallelSource | None:
        """As configured, or generated when every language is of the synthetic family."""
        par = self.data.parallel
        if par is not None:
            return ParallelSource(par.path, tuple(par.columns) if par.columns else None, par.max_pairs)
        corpora = self.data.corpora or {}
        if corpora and all(c.path == FAMILY for c in corpora.values()):
            return ParallelSource(FAMILY, None, self.eval.alignment_sequences)
        return None


_TYPED_PARTS: dict[str, type[BaseModel]] = {"data": DataConfig, "train": ResolvedTrain, "eval": ResolvedEval}


def _corpus_source(data: DataConfig, corpus: CorpusConfig) -> CorpusSource:
    """One real language's corpus: cleaned, with its own or the experiment's vocabulary size."""
    family = (corpus.family or {}) if corpus.path == FAMILY else None
    vocab = corpus.vocab_size or data.vocab_size
    return CorpusSource(corpus.path, vocab, data.test_fraction, corpus.max_chars, corpus.column, True, family)


@dataclass
class Experiment:
    name: str
    config: ExperimentConfig
    source: str
    runs: list[RunSpec] = field(default_factory=list)
    requests: list[RunSpec] = field(default_factory=list)  # every point's runs, repeats included
    where: TomlLocator | None = field(default=None, repr=False, compare=False)

    def at(self, *loc: str | int) -> str:
        """'file:line: experiments.NAME.FIELD' at the line that set the field: the
        experiment's own table, else ``[defaults]``, else the experiment's header."""
        return _place(self.where, self.source, self.name, loc, None)

    def to_record(self) -> dict:
        return {
            "name": self.name,
            "description": self.config.description,
            "source": self.source,
            "config": self.config.model_dump(mode="json"),
            "run_ids": [r.run_id for r in self.runs],
            # a run is shared by every experiment that asks for it: its name here, and its point
            "runs": [{"run_id": r.run_id, "name": r.name, "kind": r.kind, "point": r.point} for r in self.runs],
        }


# --- loading ---------------------------------------------------------------


def load_experiments(path: Path | str, only: list[str] | None = None) -> list[Experiment]:
    """Parse, validate and expand ``path``; ``only`` selects experiments by name."""
    path = Path(path)
    text = _read_text(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _toml_error_line(str(exc), text)
        at = f"{path}:{line}" if line else str(path)
        raise SpecError(f"{at}: not valid TOML: {exc}") from None
    return parse_experiments(doc, text, str(path), only)


def _read_text(path: Path) -> str:
    """The file as text; a file that is not UTF-8 gets the line of its first bad byte."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SpecError(f"{path}:1: the file is UTF-16 text; save it as UTF-8 (TOML files are UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "an experiments file is UTF-8 TOML"
        ) from None


def _toml_error_line(message: str, text: str) -> int | None:
    """tomllib (before 3.14) puts the place in its message: 'at line N' or 'at end of document'."""
    m = re.search(r"\(at line (\d+)", message)
    if m:
        return int(m.group(1))
    return len(text.splitlines()) or 1 if "at end of document" in message else None


TOP_LEVEL = ("defaults", "experiments", "cluster")  # [cluster]: engine.config.cluster reads it


def parse_experiments(doc: dict, text: str, source: str, only: list[str] | None = None) -> list[Experiment]:
    where = TomlLocator(text, source)
    unknown = set(doc) - set(TOP_LEVEL)
    if unknown:
        key = sorted(unknown)[0]
        raise SpecError(
            f"{where.at((key,))}: unknown top-level table or key {key!r}{did_you_mean(key, TOP_LEVEL)} "
            "(expected [defaults], [experiments.NAME] and [cluster.slurm|ray])"
        )
    experiments = doc.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise SpecError(f"{where.at(('experiments',))}: no experiments defined (add an [experiments.NAME] table)")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise SpecError(f"{where.at(('defaults',))}: defaults must be a table ([defaults])")
    if only:
        missing = [n for n in only if n not in experiments]
        if missing:
            raise SpecError(
                f"{source}: no experiment named {', '.join(map(repr, missing))}; defined: {', '.join(experiments)}"
            )
    out = []
    for name, raw in experiments.items():
        if only and name not in only:
            continue
        problem = name_problem(name)
        if problem:
            raise SpecError(f"{where.at(('experiments', name))}: {problem}")
        if not isinstance(raw, dict):
            raise SpecError(f"{where.at(('experiments', name))}: experiments.{name} must be a table")
        cfg = _validate(name, raw, defaults, where)
        _check_languages(name, cfg, where)
        _check_sweep(name, cfg, where)
        cfg = _resolve_paths(cfg, Path(source).expanduser().resolve().parent)
        exp = Experiment(name, cfg, source, where=where)
        exp.requests = expand_requests(name, cfg, where)
        exp.runs = unique_runs(exp.requests)
        _check_runs(exp)
        out.append(exp)
    return out


def merge_tables(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, table by table: how an experiment's keys override [defaults]."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validate(name: str, raw: dict, defaults: dict, where: TomlLocator) -> ExperimentConfig:
    """The experiment's table over ``[defaults]``; the first problem, at the line that
    caused it. A misspelt field is reported before the required field it left missing."""
    try:
        return ExperimentConfig.model_validate(merge_tables(defaults, raw))
    except ValidationError as exc:
        loc, msg = validation_problem(exc, _fields_at)
        n = len(exc.errors())
        more = f" (and {n - 1} more problem(s))" if n > 1 else ""
        in_defaults = not _has(raw, loc) and _has(defaults, loc)
        raise SpecError(f"{_place(where, where.source, name, loc, in_defaults)}: {msg}{more}") from None


def _place(where: TomlLocator | None, source: str, name: str, loc: tuple, in_defaults: bool | None) -> str:
    """'file:line: experiments.NAME.a.b' or, for a value set in [defaults], 'file:line: defaults.a.b'.
    ``in_defaults=None`` asks the source: the longest part of ``loc`` written under the
    experiment wins over one written under [defaults]."""
    own, shared = ("experiments", name, *loc), ("defaults", *loc)
    if in_defaults is None and where is not None:
        in_defaults = False
        for n in range(len(loc), 0, -1):
            if ("experiments", name, *loc[:n]) in where.lines:
                break
            if ("defaults", *loc[:n]) in where.lines:
                in_defaults = True
                break
    key = shared if in_defaults else own
    dotted = ".".join(str(p) for p in key)
    return f"{where.at(key) if where else source}: {dotted}"


def _has(tree: Any, loc: tuple) -> bool:
    for part in loc:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and 0 <= part < len(tree):
            tree = tree[part]
        else:
            return False
    return True


def _fields_at(path: tuple) -> list[str]:
    """The field names of the config table at ``path`` (list indices and dict keys skipped)."""
    model: Any = ExperimentConfig
    for part in path:
        if isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation) or model
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model inside an annotation such as ``X | None``, ``list[X]``, ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _check_languages(name: str, cfg: ExperimentConfig, where: TomlLocator) -> None:
    """Real-language corpora, parallel columns and the probe must name the experiment's languages."""
    data, langs = cfg.data, cfg.languages
    at = lambda *loc: f"{where.at(('experiments', name, *loc))}: experiments.{name}.{'.'.join(loc)}"  # noqa: E731
    if data.kind == "real":
        if not data.corpora:
            raise SpecError(
                f'{at("data", "corpora")}: kind = "real" needs one corpus per language, '
                f'e.g. corpora.{langs[0]} = {{ path = "..." }}'
            )
        if set(data.corpora) != set(langs):
            missing = [lang for lang in langs if lang not in data.corpora]
            extra = [lang for lang in data.corpora if lang not in langs]
            what = f"no corpus for {missing[0]!r}" if missing else f"{extra[0]!r} is not one of {langs}"
            raise SpecError(f"{at('data', 'corpora')}: {what}")
        if data.anchors:
            raise SpecError(
                f"{at('data', 'anchors')}: anchors are for cloned languages; real languages share "
                'ids through tokenizer = "anchored" (or "joint")'
            )
    elif data.corpora is not None or data.parallel is not None:
        key = "corpora" if data.corpora is not None else "parallel"
        raise SpecError(f'{at("data", key)}: only for kind = "real" (cloned languages share one corpus)')
    if data.parallel and data.parallel.columns is not None:
        bad = [c for c in data.parallel.columns if c not in langs]
        if bad or len(data.parallel.columns) < 2:
            raise SpecError(
                f"{at('data', 'parallel', 'columns')}: name at least two of {langs}"
                + (f"; {bad[0]!r} is not one" if bad else "")
            )
    probe = cfg.eval.probe
    if probe is None:
        return
    if probe.train_language is not None and probe.train_language not in langs:
        raise SpecError(f"{at('eval', 'probe', 'train_language')}: {probe.train_language!r} is not one of {langs}")
    if isinstance(probe.task, dict):
        bad = [k for k in probe.task if k not in langs]
        if bad or data.kind == "cloned":
            why = f"{bad[0]!r} is not one of {langs}" if bad else "cloned languages share one task file: give a path"
            raise SpecError(f"{at('eval', 'probe', 'task')}: {why}")
    elif probe.task == "builtin:synthetic":
        ok = (
            data.corpus == "builtin:synthetic"
            if data.kind == "cloned"
            else all(c.path == FAMILY for c in (data.corpora or {}).values())
        )
        if not ok:
            raise SpecError(
                f"{at('eval', 'probe', 'task')}: the built-in task needs the built-in corpus "
                "(builtin:synthetic, or builtin:family for every language); give a TSV of text<TAB>label"
            )


def _resolve_paths(cfg: ExperimentConfig, base: Path) -> ExperimentConfig:
    """Every path (corpus, corpora, parallel pairs, probe tasks) made absolute against
    the experiments file's folder: workers run elsewhere than the user's shell.
    ``builtin:`` names stay as they are."""

    def fix(path: str) -> str:
        if path.startswith("builtin:"):
            return path
        return os.path.normpath(os.path.join(base, os.path.expanduser(path)))

    data, ev = cfg.data, cfg.eval
    update: dict[str, Any] = {}
    if data.kind == "cloned":
        update["data"] = data.model_copy(update={"corpus": fix(data.corpus)})
    if data.corpora:
        corpora = {k: c.model_copy(update={"path": fix(c.path)}) for k, c in data.corpora.items()}
        update["data"] = data.model_copy(update={"corpora": corpora})
    if data.parallel:
        parallel = data.parallel.model_copy(update={"path": fix(data.parallel.path)})
        update["data"] = update.get("data", data).model_copy(update={"parallel": parallel})
    if ev.probe:
        task = ev.probe.task
        task = {k: fix(v) for k, v in task.items()} if isinstance(task, dict) else fix(task)
        update["eval"] = ev.model_copy(update={"probe": ev.probe.model_copy(update={"task": task})})
    return cfg.model_copy(update=update) if update else cfg


def input_files(cfg: ExperimentConfig) -> list[tuple[tuple[str, ...], str, bool]]:
    """(field path, path, is a glob) of every file an experiment reads; builtins left out."""
    data = cfg.data
    out: list[tuple[tuple[str, ...], str, bool]] = []
    if data.kind == "cloned":
        out.append((("data", "corpus"), data.corpus, True))
    for lang, corpus in (data.corpora or {}).items():
        out.append((("data", "corpora", lang, "path"), corpus.path, True))
    if data.parallel:
        out.append((("data", "parallel", "path"), data.parallel.path, False))
    probe = cfg.eval.probe
    if probe:
        tasks: typing.Iterable[tuple[str | None, str]] = (
            probe.task.items() if isinstance(probe.task, dict) else [(None, probe.task)]
        )
        for task_lang, task in tasks:
            out.append(((("eval", "probe", "task") + ((task_lang,) if task_lang else ())), task, False))
    return [(loc, path, is_glob) for loc, path, is_glob in out if not path.startswith("builtin:")]


def check_inputs(experiments: typing.Iterable[Experiment]) -> None:
    """Every corpus, parallel file and probe task exists: one located error before
    anything is queued, rather than one failed run per run."""
    for exp in experiments:
        for loc, path, is_glob in input_files(exp.config):
            found = any(os.path.isfile(p) for p in glob.glob(path)) if is_glob else os.path.isfile(path)
            if not found:
                what = "no file matches" if is_glob and glob.has_magic(path) else "no such file:"
                raise SpecError(f"{exp.at(*loc)}: {what} {path} (paths are relative to the experiments file's folder)")


# --- expansion ---------------------------------------------------------------


def expand_runs(name: str, cfg: ExperimentConfig, where: TomlLocator | None = None) -> list[RunSpec]:
    """The experiment's runs: every sweep point's schedules and baselines, each once per seed.

    A run requested by several points (the baselines of a ratio sweep) appears once.
    """
    return unique_runs(expand_requests(name, cfg, where))


def expand_requests(name: str, cfg: ExperimentConfig, where: TomlLocator | None = None) -> list[RunSpec]:
    """What every sweep point asks for, a run as often as it is asked for (``xling plan`` counts them)."""
    _check_schedule_names(name, cfg, where)
    if cfg.sweep is None:
        return _expand_point(name, cfg, where)
    data_tokens = max(cfg.sweep.tokens) if cfg.sweep.tokens else None
    return [
        spec
        for point in cfg.sweep.points()
        for spec in _expand_point(name, point_config(cfg, point), where, point, data_tokens)
    ]


def unique_runs(specs: list[RunSpec]) -> list[RunSpec]:
    """Each run once, as first asked for (its name there)."""
    runs: dict[str, RunSpec] = {}
    for spec in specs:
        runs.setdefault(spec.run_id, spec)
    return list(runs.values())


def point_config(cfg: ExperimentConfig, point: dict[str, Any]) -> ExperimentConfig:
    """The experiment's settings at one sweep point; its schedules named after the point.

    ``ratio`` generates the one schedule (the first language at that share, the others
    evenly); ``languages`` clones that many languages and, without a ratio or schedules
    of its own, trains them uniformly.
    """
    label = point_label(point)
    languages = clone_names(cfg.languages[0], point["languages"]) if "languages" in point else list(cfg.languages)
    if "ratio" in point:
        schedules = [ScheduleConfig(name=label, mix=ratio_mix(languages, point["ratio"]))]
    elif "languages" in point and not cfg.schedules:
        schedules = [ScheduleConfig(name=f"{label} uniform", mix=uniform_mix(languages))]
    else:
        schedules = [sc.model_copy(update={"name": f"{label} {sc.name}"}) for sc in cfg.schedules]
    update: dict[str, Any] = {"languages": languages, "schedules": schedules, "sweep": None}
    if "model" in point:
        update["model"] = point["model"]
    if "tokens" in point:
        update["tokens"] = point["tokens"]
    if "anchors" in point:
        update["data"] = cfg.data.model_copy(update={"anchors": point["anchors"]})
    return cfg.model_copy(update=update)


def _expand_point(
    name: str,
    cfg: ExperimentConfig,
    where: TomlLocator | None,
    point: dict[str, Any] | None = None,
    data_tokens: int | None = None,
) -> list[RunSpec]:
    """One point's schedules and baselines (a plain experiment is its one point)."""
    point = point or {}
    runs = []
    steps_full = cfg.tokens / (cfg.train.batch_size * cfg.train.context)
    for i, sc in enumerate(cfg.schedules):
        schedule = _schedule(name, i, sc, cfg.languages, where)
        for seed in cfg.seeds:
            runs.append(_run_spec(name, sc.name, "mix", seed, cfg, schedule, 1.0, steps_full, point, data_tokens))
    base_langs = cfg.baseline_languages or cfg.languages[:1]
    prefix = point_label(point, leave_out=("ratio",))  # a ratio does not change a baseline
    base_point = {axis: v for axis, v in point.items() if axis != "ratio"}
    sizes = [(f, _pct(f)) for f in baseline_fractions(cfg, [r.schedule_obj() for r in runs])]
    sizes += [(n / cfg.tokens, format_tokens(n)) for n in cfg.baseline_tokens]
    baselines = []
    for lang in base_langs:
        for frac, size in sizes:
            schedule = Schedule.monolingual(cfg.languages, lang)
            for seed in cfg.seeds:
                label = f"{prefix} {_baseline_name(lang, size)}".strip()
                spec = _run_spec(
                    name, label, "baseline", seed, cfg, schedule, frac, steps_full, base_point, data_tokens
                )
                baselines.append(spec)
    return baselines + runs  # baselines first: the law, and so TEff, can appear while the mixes train


def added_baselines(exp: Experiment, mix: RunSpec, language: str, tokens: int) -> list[RunSpec]:
    """Monolingual runs of ``tokens`` in ``language`` beside ``mix`` (its sweep point), one per seed.

    For ``baselines = "auto"``: when a mix run's MLTE falls outside the law's range, a
    baseline that long brings it inside. Nothing once the point has ``max_baselines`` runs
    in that language (per seed), or when it already has one that long.
    """
    cfg = point_config(exp.config, mix.point) if exp.config.sweep else exp.config
    data_tokens = max(exp.config.sweep.tokens) if exp.config.sweep and exp.config.sweep.tokens else None
    schedule = Schedule.monolingual(cfg.languages, language)
    steps_full = cfg.tokens / (cfg.train.batch_size * cfg.train.context)
    point = {axis: v for axis, v in mix.point.items() if axis != "ratio"}  # a ratio does not change a baseline
    have = [r for r in exp.runs if r.kind == "baseline" and r.point == point and r.schedule == schedule.to_dict()]
    label = f"{point_label(point)} {_baseline_name(language, format_tokens(tokens))}".strip()
    out = []
    for seed in cfg.seeds:
        frac = tokens / cfg.tokens
        spec = _run_spec(exp.name, label, "baseline", seed, cfg, schedule, frac, steps_full, point, data_tokens)
        mine = [r for r in have if r.seed == seed]
        if len(mine) < cfg.max_baselines and all(r.total_steps != spec.total_steps for r in mine):
            out.append(spec)
    return out


# "auto" without mixes to cover: the fractions of the paper's own laws (DESIGN.md).
_DEFAULT_FRACTIONS = [1.0, 0.5, 0.25, 0.1]


def baseline_fractions(cfg: ExperimentConfig, mixes: list[Schedule]) -> list[float]:
    """The fractions of T to train monolingual runs at: as given, or (``"auto"``) enough for the mixes.

    A mix run's MLTE in a language is its TEff times the tokens it saw there; the paper's
    TEffs lie between about 0.8 and 2, so "auto" spans from half the smallest share any mix
    gives a language up to the full budget, geometrically, at most ``max_baselines`` runs
    (about one per halving). Answers that still fall outside are flagged as extrapolations.
    """
    if cfg.baselines != "auto":
        return list(cfg.baselines)
    shares = [f for sched in mixes for f in sched.marginal_fractions().values() if f > 0]
    if not shares:
        return _DEFAULT_FRACTIONS[: cfg.max_baselines]
    smallest = min(1.0, min(shares) / 2)
    n = min(cfg.max_baselines, max(2, math.ceil(math.log2(1 / smallest)) + 1))
    return [round(smallest ** (i / (n - 1)), 6) for i in range(n)]


def _check_sweep(name: str, cfg: ExperimentConfig, where: TomlLocator) -> None:
    """Axes that cannot apply to this experiment, located at the axis."""
    sweep = cfg.sweep
    if sweep is None:
        return
    at = lambda axis: f"{where.at(('experiments', name, 'sweep', axis))}: experiments.{name}.sweep.{axis}"  # noqa: E731
    if sweep.ratio and cfg.schedules:
        raise SpecError(f"{at('ratio')}: a ratio sweep makes the schedules; remove the [[schedules]] or the axis")
    if sweep.ratio and not sweep.languages and len(cfg.languages) < 2:
        raise SpecError(f"{at('ratio')}: a ratio needs at least two languages")
    for axis in ("languages", "anchors"):
        if getattr(sweep, axis) and cfg.data.kind == "real":
            raise SpecError(f'{at(axis)}: only for cloned languages (data.kind = "cloned")')
    for lang in cfg.baseline_languages or []:
        smallest = min(sweep.languages or [len(cfg.languages)])
        if sweep.languages and lang not in clone_names(cfg.languages[0], smallest):
            raise SpecError(
                f"{at('languages')}: baseline language {lang!r} is not one of the "
                f"{smallest} languages of the smallest point"
            )


def _pct(frac: float) -> str:
    return f"{frac * 100:g}%"


def _baseline_name(lang: str, size: float | str) -> str:
    """'mono EN1 50%' (a fraction of T) or 'mono EN1 2M' (a token count, already written)."""
    return f"mono {lang} {size if isinstance(size, str) else _pct(size)}"


def _check_schedule_names(name: str, cfg: ExperimentConfig, where: TomlLocator | None) -> None:
    """Two schedules under one name would be reported as one row, the mean of both."""
    first: dict[str, int] = {}
    base_langs = cfg.baseline_languages or cfg.languages[:1]
    fractions = cfg.baselines if isinstance(cfg.baselines, list) else []
    baselines = {_baseline_name(lang, f) for lang in base_langs for f in fractions}
    for i, sc in enumerate(cfg.schedules):
        loc = ("experiments", name, "schedules", i, "name")
        at = f"{where.at(loc) if where else name}: experiments.{name}.schedules[{i}].name"
        if sc.name in first:
            raise SpecError(f"{at}: {sc.name!r} is already the name of schedules[{first[sc.name]}]; give each its own")
        if sc.name in baselines:
            raise SpecError(f"{at}: {sc.name!r} is the name of a baseline run; choose another")
        first[sc.name] = i


def _check_runs(exp: Experiment) -> None:
    """Every run trains at least MIN_STEPS steps, and no two schedules are one run
    (a run's id ignores its name, so the second would never reach the database)."""
    t = exp.config.train
    batch = t.batch_size * t.context
    if batch > exp.config.tokens:  # one batch is the whole budget: the batch is what is wrong
        field = "batch_size" if t.batch_size / 32 >= t.context / 128 else "context"
        raise SpecError(
            f"{exp.at('train', field)}: one batch of batch_size × context = {t.batch_size} × {t.context} "
            f"= {batch:,} tokens is more than the whole budget, tokens = {exp.config.tokens:,}"
        )
    for spec in exp.runs:
        if spec.total_steps < MIN_STEPS:  # the run's own budget: a sweep point's T
            least = math.ceil(MIN_STEPS * t.batch_size * t.context / spec.fraction)
            steps = spec.fraction * spec.budget_tokens / (t.batch_size * t.context)
            raise SpecError(
                f"{exp.at('tokens')}: {spec.name!r} would train {spec.fraction * spec.budget_tokens:,.0f} tokens, "
                f"{steps:.3g} step(s) of batch_size × context = {t.batch_size} × {t.context} tokens; "
                f"a run needs at least {MIN_STEPS} steps: give tokens ≥ {int(least):,} "
                "(or a smaller batch_size or context)"
            )
    # before sharing: two of one point's schedules that are one run (points themselves differ)
    seen: dict[str, int] = {}
    first_point = exp.requests[0].point if exp.requests else {}
    mixes = [r for r in exp.requests if r.kind == "mix" and r.seed == exp.config.seeds[0] and r.point == first_point]
    for i, spec in enumerate(mixes):
        if spec.run_id in seen:
            j = seen[spec.run_id]
            raise SpecError(
                f"{exp.at('schedules', i, 'mix')}: schedules[{i}] ({spec.name!r}) is the same run as "
                f"schedules[{j}] ({mixes[j].name!r}): same mix and stages (a name does not change a run); "
                "remove one"
            )
        seen[spec.run_id] = i


def _schedule(exp: str, i: int, sc: ScheduleConfig, languages: list[str], where: TomlLocator | None) -> Schedule:
    loc = ("experiments", exp, "schedules", i, "mix")
    unknown = [lang for lang in sc.mix if lang not in languages]
    if unknown:
        at = where.at(loc) if where else exp
        raise SpecError(
            f"{at}: experiments.{exp}.schedules[{i}] ({sc.name!r}): language {unknown[0]!r} is not one of {languages}"
        )
    n_stages = {len(v) for v in sc.mix.values()}
    width = max(n_stages) if n_stages else 1
    mix = {lang: sc.mix.get(lang, [0.0] * width) for lang in languages}
    try:
        return Schedule.from_mix(mix, sc.ends)
    except ScheduleError as exc:
        at = where.at(loc) if where else exp
        raise SpecError(f"{at}: experiments.{exp}.schedules[{i}] ({sc.name!r}): {exc}") from None


def _run_spec(
    exp: str,
    name: str,
    kind: str,
    seed: int,
    cfg: ExperimentConfig,
    schedule: Schedule,
    frac: float,
    steps_full: float,
    point: dict[str, Any] | None = None,
    data_tokens: int | None = None,
) -> RunSpec:
    t = cfg.train
    total_steps = max(1, round(frac * steps_full))
    train = ResolvedTrain.model_validate(
        t.model_dump()
        | {"min_lr": t.min_lr if t.min_lr is not None else t.lr / 100, "warmup": min(t.warmup, total_steps // 10)}
    )
    ev = cfg.eval
    ctx = min(ev.context or t.context, t.context)
    stride = ev.stride or max(1, ctx // 4)
    evaluation = ResolvedEval.model_validate(ev.model_dump() | {"context": ctx, "stride": stride})
    spec = RunSpec(
        experiment=exp,
        name=name,
        kind=kind,
        seed=seed,
        languages=list(cfg.languages),
        schedule=schedule.to_dict(),
        model=cfg.model,
        data=DataConfig.model_validate(_data_dict(cfg.data)),  # what the JSON holds, no more
        train=train,
        eval=evaluation,
        budget_tokens=cfg.tokens,
        fraction=frac,
        total_steps=total_steps,
        total_tokens=total_steps * t.batch_size * t.context,
        data_tokens=data_tokens,
        point=dict(point or {}),
    )
    return replace(spec, run_id=run_id(spec))


def _unset_new_fields(model: BaseModel, names: tuple[str, ...]) -> set[str]:
    """Fields added after SPEC_VERSION 1, left out while unset so older runs keep their ids."""
    return {n for n in names if getattr(model, n) is None}


def _data_dict(data: DataConfig) -> dict:
    """Cloned data keeps exactly its original fields (and run ids); real data carries its own."""
    if data.kind == "cloned":
        return data.model_dump(mode="json", exclude={"corpora", "tokenizer", "parallel"})
    return data.model_dump(mode="json", exclude=_unset_new_fields(data, ("parallel",)))


# What a run computes: its id hashes these, never the experiment that asked for it, its name
# there, or the budget T it was a fraction of (``total_steps`` says how long it trains).
_IDENTITY = ("languages", "schedule", "model", "data", "train", "eval", "seed", "total_steps")
# Bookkeeping that never changes a result (how often to log or checkpoint).
_TRAIN_NOT_HASHED = {"log_every", "checkpoint_every"}
IDENTITY_VERSION = 2


def run_id(spec: RunSpec) -> str:
    """The hash of what determines the run's result, so two experiments share one run.

    Besides the settings, the length of generated text the budget sizes (built-in corpora
    without ``max_chars``): runs on different text are different runs.
    """
    d = spec.to_dict()
    payload = {k: d[k] for k in _IDENTITY}
    payload["train"] = {k: v for k, v in payload["train"].items() if k not in _TRAIN_NOT_HASHED}
    recipe = spec.data_recipe()
    payload["text_chars"] = [budget_sized_chars(src, recipe.budget_tokens) for src in recipe.sources]
    payload["_v"] = IDENTITY_VERSION
    return _digest(payload)


# A monolingual law is the same law for runs that differ only in length: what sets the
# length (steps, the budget and fraction it came from, warmup capped at 10% of the steps)
# and what picks one run (seed, schedule, name) stay out of its key.
_LAW_TRAIN_FIELDS_OUT = _TRAIN_NOT_HASHED | {"warmup"}


def law_key(spec: RunSpec) -> str:
    """The key of the monolingual law a run belongs to: model, data, tokenizer, training
    settings other than length, evaluation (a law per language of it beside the key).

    Baselines of every experiment with this key are fitted together, in absolute tokens,
    so a sweep over budgets gets one law per model and a second experiment's baselines
    sharpen the first's.
    """
    d = spec.to_dict()
    payload = {k: d[k] for k in ("languages", "model", "data", "eval")}
    payload["train"] = {k: v for k, v in d["train"].items() if k not in _LAW_TRAIN_FIELDS_OUT}
    recipe = spec.data_recipe()
    payload["text_chars"] = [budget_sized_chars(src, recipe.budget_tokens) for src in recipe.sources]
    return "law-" + _digest(payload)


# Fields the first run ids (SPEC_VERSION 1) left out: they hashed everything else.
_LEGACY_NOT_HASHED = {"name", "run_id", "point", "data_tokens"}


def legacy_run_id(spec: RunSpec) -> str:
    """The id a run had before ids were content hashes (it hashed the experiment and T too).

    Kept so run folders made then keep their results: ``engine.launch.queue`` uses a
    run's legacy folder when it exists and the content-hashed one does not.
    """
    payload = {k: v for k, v in spec.to_dict().items() if k not in _LEGACY_NOT_HASHED}
    payload["train"] = {k: v for k, v in payload["train"].items() if k not in _TRAIN_NOT_HASHED}
    payload["_v"] = SPEC_VERSION
    return _digest(payload)


def _digest(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --- locating fields in the source -----------------------------------------------
