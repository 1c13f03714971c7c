"""experiments.toml as the schedule designer reads and writes it, comments and layout kept.

The designer edits one experiment at a time as an ``ExperimentDraft`` (its languages,
model preset, token budget, seeds, anchors and schedule grids). Saving re-reads the
file, changes only the values that differ from what it says (a value that comes from
``[defaults]`` and was not changed stays there), validates the whole result with
``engine.config.spec`` and only then replaces the file, so a save can never leave an
experiments.toml that ``xling run`` would refuse. New values are written in the
file's own style (``2_500_000``, ``{ EN1 = [90], EN2 = [10] }``), and a comment at
the end of a line survives its value being replaced.
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel
from tomlkit.items import AoT, Comment, Item, Table, Whitespace

from engine.config.locate import SpecError
from engine.config.spec import DataConfig, ExperimentConfig, TrainConfig, merge_tables, parse_experiments
from engine.errors import XlingError
from engine.runs.files import atomic_write


@dataclass
class ScheduleDraft:
    """One schedule grid; ``source`` is its index in the file (None: new)."""

    name: str
    languages: list[str]
    ends: list[float]
    percents: list[list[float]]  # [language][stage], in %
    source: int | None = None
    ends_written: bool = True  # the file gave ``ends`` (else: equal stages, left implicit)


@dataclass
class ExperimentDraft:
    name: str
    languages: list[str]
    model: str
    tokens: int
    seeds: list[int]
    anchors: float
    schedules: list[ScheduleDraft] = field(default_factory=list)
    batch_size: int = TrainConfig.model_fields["batch_size"].default  # read only: for the marginal token counts
    context: int = TrainConfig.model_fields["context"].default
    is_new: bool = False

    @classmethod
    def new(cls, name: str, languages: list[str], tokens: int) -> ExperimentDraft:
        """An experiment not in the file yet, with engine.config.spec's defaults."""
        return cls(
            name,
            languages,
            _default(ExperimentConfig, "model"),
            tokens,
            _default(ExperimentConfig, "seeds"),
            _default(DataConfig, "anchors"),
            is_new=True,
        )


class DraftError(XlingError, ValueError):
    """The draft cannot be written (the message says why, for the user)."""


# -- reading ------------------------------------------------------------------------


def load_document(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return tomlkit.document()
    except tomlkit.exceptions.ParseError as exc:
        raise DraftError(f"{path}: not valid TOML: {exc}") from None


def experiment_names(doc: tomlkit.TOMLDocument) -> list[str]:
    experiments = doc.get("experiments")
    return [n for n, v in experiments.items() if isinstance(v, dict)] if isinstance(experiments, dict) else []


def _effective(doc: tomlkit.TOMLDocument, name: str) -> dict[str, Any]:
    """The experiment's values with ``[defaults]`` filled in (what engine.config.spec will see)."""
    plain = doc.unwrap()
    return merge_tables(plain.get("defaults", {}), plain.get("experiments", {}).get(name, {}))


def _default(model: type[BaseModel], field_name: str) -> Any:
    """A setting's default, from the one place it is defined (engine.config.spec)."""
    return model.model_fields[field_name].get_default(call_default_factory=True)


def read_draft(doc: tomlkit.TOMLDocument, name: str) -> ExperimentDraft:
    """The experiment ``name`` as the designer shows it (defaults applied)."""
    raw = _effective(doc, name)
    languages = [str(x) for x in raw.get("languages") or ["EN1", "EN2"]]
    train = raw["train"] if isinstance(raw.get("train"), dict) else {}
    data = raw["data"] if isinstance(raw.get("data"), dict) else {}
    draft = ExperimentDraft(
        name=name,
        languages=languages,
        model=str(raw.get("model", _default(ExperimentConfig, "model"))),
        tokens=int(raw.get("tokens", 1_000_000)),
        seeds=[int(s) for s in raw.get("seeds", _default(ExperimentConfig, "seeds"))],
        anchors=float(data.get("anchors", _default(DataConfig, "anchors"))),
        batch_size=int(train.get("batch_size", _default(TrainConfig, "batch_size"))),
        context=int(train.get("context", _default(TrainConfig, "context"))),
        is_new=name not in experiment_names(doc),
    )
    for i, sc in enumerate(raw.get("schedules") or []):
        draft.schedules.append(_read_schedule(sc, languages, i))
    return draft


def _read_schedule(sc: dict, languages: list[str], index: int) -> ScheduleDraft:
    mix = sc.get("mix") or {}
    width = max((len(v) for v in mix.values() if isinstance(v, list)), default=1)
    ends = sc.get("ends")
    written = ends is not None
    if not isinstance(ends, list) or len(ends) != width:
        ends = equal_ends(width)
    percents = []
    for lang in languages:
        row = mix.get(lang, [0.0] * width)
        row = [float(x) if isinstance(x, (int, float)) else 0.0 for x in row][:width]
        percents.append(row + [0.0] * (width - len(row)))
    return ScheduleDraft(
        str(sc.get("name", f"schedule {index + 1}")),
        list(languages),
        [float(e) for e in ends],
        percents,
        source=index,
        ends_written=written,
    )


def equal_ends(stages: int) -> list[float]:
    return [(s + 1) / stages for s in range(stages)]


# -- writing ------------------------------------------------------------------------


def format_number(x: float) -> str:
    """TOML text for a share or end point: 90, 0.5, and 50/9 exactly (never rounded)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def parse_int(text: str) -> int:
    """'2_500_000', '2,500,000' or '2.5e6' -> 2500000; ValueError for anything else."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    try:
        return int(cleaned)
    except ValueError:
        value = float(cleaned)
        if not value.is_integer():
            raise ValueError(f"{text!r} is not a whole number") from None
        return int(value)


def _format_int(n: int) -> str:
    return f"{n:_}" if abs(n) >= 10_000 else str(n)


def _value(text: str) -> Item:
    """An item formatted exactly as ``text`` (tomlkit keeps the raw form it parsed)."""
    return tomlkit.parse(f"v = {text}\n")["v"]


def _set(table: Table, key: str, text: str) -> None:
    """Replaces or adds ``key``, keeping the comment at the end of its line."""
    new = _value(text)
    old = table.get(key) if hasattr(table, "get") else None
    if isinstance(old, Item) and old.trivia.comment:
        new.trivia.comment = old.trivia.comment
        new.trivia.comment_ws = old.trivia.comment_ws or "  "
    table[key] = new


def _list_text(values: list, fmt=format_number) -> str:
    return "[" + ", ".join(fmt(v) for v in values) + "]"


def _mix_text(sc: ScheduleDraft) -> str:
    def key(lang: str) -> str:
        return (
            lang
            if lang.replace("_", "").replace("-", "").isalnum() and lang.isascii()
            else tomlkit.string(lang).as_string()
        )

    return "{ " + ", ".join(f"{key(l)} = {_list_text(row)}" for l, row in zip(sc.languages, sc.percents)) + " }"


def apply_draft(doc: tomlkit.TOMLDocument, draft: ExperimentDraft, original: ExperimentDraft | None) -> None:
    """Writes into ``doc`` what ``draft`` changed relative to ``original`` (all of it when None)."""
    if "experiments" not in doc:
        doc["experiments"] = tomlkit.table(is_super_table=True)
    experiments = doc["experiments"]
    if draft.name not in experiments:
        experiments[draft.name] = tomlkit.table()
        original = None
    exp = experiments[draft.name]
    base = original or read_draft(doc, draft.name)
    if original is None or draft.languages != base.languages:
        _set(exp, "languages", "[" + ", ".join(tomlkit.string(l).as_string() for l in draft.languages) + "]")
    if original is None or draft.model != base.model:
        _set(exp, "model", tomlkit.string(draft.model).as_string())
    if original is None or draft.tokens != base.tokens:
        _set(exp, "tokens", _format_int(draft.tokens))
    if original is None or draft.seeds != base.seeds:
        _set(exp, "seeds", _list_text(draft.seeds, str))
    if draft.anchors != base.anchors or (original is None and draft.anchors):
        _set_anchors(exp, draft.anchors)
    _apply_schedules(exp, draft, base if original is not None else None)


def _set_anchors(exp: Table, anchors: float) -> None:
    data = exp.get("data")
    if isinstance(data, Table):
        _set(data, "anchors", format_number(anchors))
    else:
        _set(exp, "data", "{ anchors = " + format_number(anchors) + " }")


def _apply_schedules(exp: Table, draft: ExperimentDraft, original: ExperimentDraft | None) -> None:
    aot = exp.get("schedules")
    if not isinstance(aot, AoT):
        aot = None
    before = {s.source: s for s in original.schedules} if original else {}
    kept = {s.source for s in draft.schedules if s.source is not None}
    if aot is not None:
        for index in sorted(range(len(aot)), reverse=True):
            if index not in kept:
                _remove_table(aot, index)
        survivors = sorted(kept)
        for sc in draft.schedules:
            if sc.source is None:
                continue
            table = aot[survivors.index(sc.source)]
            _write_schedule(table, sc, before.get(sc.source))
    new = [sc for sc in draft.schedules if sc.source is None]
    if not new:
        return
    if aot is None or len(aot) == 0:
        exp["schedules"] = tomlkit.aot()
        aot = exp["schedules"]
    for sc in new:
        table = tomlkit.table()
        _write_schedule(table, sc, None)
        _append_table(aot, table)


def _write_schedule(table: Table, sc: ScheduleDraft, before: ScheduleDraft | None) -> None:
    if before is None or sc.name != before.name:
        _set(table, "name", tomlkit.string(sc.name).as_string())
    equal = all(math.isclose(a, b) for a, b in zip(sc.ends, equal_ends(len(sc.ends))))
    ends_changed = before is None or sc.ends != before.ends
    if ends_changed and (not equal or "ends" in table):
        _set(table, "ends", _list_text(sc.ends, lambda e: repr(float(e))))
    if before is None or sc.percents != before.percents or sc.languages != before.languages:
        _set(table, "mix", _mix_text(sc))


def _trailing(table: Table) -> list[tuple]:
    """Blank lines and comments at the end of a table's body: they introduce what follows."""
    body = table.value.body
    out: list[tuple] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], (Comment, Whitespace)):
        out.insert(0, body.pop())
    return out


def _append_table(aot: AoT, table: Table) -> None:
    """After the last table, moving the comments that introduce the next section below it."""
    if len(aot):
        trailing = _trailing(aot[-1])
        aot[-1].value.body.append((None, Whitespace("\n")))
        aot.append(table)
        table.value.body.extend(trailing)
    else:
        aot.append(table)


def _remove_table(aot: AoT, index: int) -> None:
    trailing = _trailing(aot[index])
    del aot[index]
    if index == len(aot) and len(aot):  # it was the last: its trailing comments belong to what follows
        _trailing(aot[-1])
        aot[-1].value.body.extend(trailing)


# -- saving -------------------------------------------------------------------------


def render(path: Path, draft: ExperimentDraft, original: ExperimentDraft | None) -> str:
    """The new file text: the file as it is on disk now, with the draft applied, validated."""
    doc = load_document(path)
    apply_draft(doc, draft, original if not draft.is_new else None)
    text = tomlkit.dumps(doc)
    validate(text, path)
    return text


def validate(text: str, path: Path) -> None:
    """Raises SpecError exactly as ``xling run`` would on this text."""
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    parse_experiments(parsed, text, str(path))


def save(path: Path, draft: ExperimentDraft, original: ExperimentDraft | None) -> str:
    """Validates, then replaces ``path`` atomically; returns the text written."""
    path = Path(path)
    text = render(path, draft, original)
    atomic_write(path, text)
    return text


def snapshot(draft: ExperimentDraft) -> ExperimentDraft:
    """A deep copy to compare later edits against."""
    return copy.deepcopy(draft)
