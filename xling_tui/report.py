"""``xling report``: an experiment's results in the paper's table layouts.

Table 1/3 layout (run type, tokens, p(L) per language with schedule arrows, PPL and
TEff per language), Table 2 (hidden-state similarity per layer), gradient
similarity per component and embedding similarity against its control. Seeds of the
same run are averaged; the number of seeds is shown. Extrapolated TEff values keep
their marks (">2.10"), impossible ones say so: nothing is silently a number.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from statistics import mean

from engine.analysis.scaling import format_tokens
from engine.config.schedule import Schedule


@dataclass
class RunRow:
    name: str
    kind: str
    seeds: int
    tokens: int
    share: dict[str, str]  # language -> "90%" / "90%↘10%" / "—"
    ppl: dict[str, float] = field(default_factory=dict)
    teff: dict[str, str] = field(default_factory=dict)  # language -> mark
    teff_value: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    experiment: str
    languages: list[str]
    runs: list[RunRow]
    tables: list[Table]
    notes: list[str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, default=str)


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}"


def _teff_mark(marks: list[str], values: list[float | None], statuses: list[str]) -> str:
    """One seed: its own mark. Several: the mean, flagged if any seed was out of range."""
    if len(marks) == 1:
        return marks[0] or "—"
    known = [v for v in values if v is not None]
    if not known:
        return "n/a"
    flag = ">" if "above" in statuses else "<" if "below" in statuses else ""
    return f"{flag}{mean(known):.2f}" + ("*" if "impossible" in statuses else "")


def build_report(store, experiment: str) -> Report:
    from db import queries

    result = queries.report_runs(store, experiment)
    grouped: dict[str, dict] = {}
    languages: list[str] = []
    for r in result.dicts():
        spec = json.loads(r["spec"])
        languages = spec["languages"]
        g = grouped.setdefault(
            r["name"],
            {"kind": r["kind"], "tokens": r["total_tokens"], "spec": spec, "seeds": set(), "ppl": {}, "teff": {}},
        )
        g["seeds"].add(r["seed"])
        g["ppl"].setdefault(r["language"], []).append(r["ppl"])
        g["teff"].setdefault(r["language"], []).append((r["teff_mark"], r["teff"], r["teff_status"]))
    runs = [_run_row(name, g) for name, g in grouped.items()]
    runs.sort(key=lambda row: (row.kind != "baseline", -row.tokens if row.kind == "baseline" else 0))
    tables = [_main_table(runs, languages)]
    tables += _alignment_tables(store, experiment)
    tables += _probe_tables(store, experiment)
    notes = _tokenizer_notes(store, experiment) + _law_notes(store, experiment)
    return Report(experiment, languages, runs, tables, notes)


def _run_row(name: str, g: dict) -> RunRow:
    spec = g["spec"]
    schedule = Schedule.from_dict(spec["schedule"])
    share = {lang: schedule.share_label(lang) for lang in spec["languages"]}
    row = RunRow(name=name, kind=g["kind"], seeds=len(g["seeds"]), tokens=g["tokens"], share=share)
    for lang, ppls in g["ppl"].items():
        row.ppl[lang] = mean(p for p in ppls if p is not None)
        marks, values, statuses = zip(*g["teff"][lang])
        row.teff[lang] = (
            _teff_mark([m for m in marks if m], list(values), [s for s in statuses if s])
            if any(m for m in marks)
            else "—"
        )
        known = [v for v in values if v is not None]
        row.teff_value[lang] = mean(known) if known else None
    return row


def _main_table(runs: list[RunRow], languages: list[str]) -> Table:
    seeds = any(r.seeds > 1 for r in runs)  # a column only when some run has several
    cols = [
        "run",
        "type",
        "tokens",
        *[f"p({l})" for l in languages],
        *[f"PPL {l}" for l in languages],
        *[f"TEff {l}" for l in languages],
        *(["seeds"] if seeds else []),
    ]
    rows = []
    for r in runs:
        kind = "mono" if r.kind == "baseline" else "multi"
        rows.append(
            [
                r.name,
                kind,
                format_tokens(r.tokens),
                *[r.share.get(l, "—") for l in languages],
                *[_fmt(r.ppl.get(l)) for l in languages],
                *[r.teff.get(l, "—") for l in languages],
                *([str(r.seeds)] if seeds else []),
            ]
        )
    return Table("Perplexity and token efficiency (Table 1/3 layout)", cols, rows)


def _by_run(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["name"], r["lang_b"]), []).append(r)
    return out


def _alignment_tables(store, experiment: str) -> list[Table]:
    from db import queries

    tables = []
    hidden = _by_run(queries.report_hidden(store, experiment).dicts())
    if hidden:
        n_layers = max(r["layer"] for rows in hidden.values() for r in rows) + 1
        cols = ["run", "pair", "emb", *[str(i) for i in range(1, n_layers)]]
        body = []
        for (name, lang_b), rows in hidden.items():
            per_layer = [mean(r["similarity"] for r in rows if r["layer"] == i) for i in range(n_layers)]
            body.append([name, f"{rows[0]['lang_a']}–{lang_b}", *[_fmt(v, 2) for v in per_layer]])
        tables.append(Table("Hidden-state similarity per layer (Table 2 layout)", cols, body))
    emb = _by_run(queries.report_embeddings(store, experiment).dicts())
    if emb:
        body = []
        for (name, lang_b), rows in emb.items():
            get = {m: [r for r in rows if r["matrix"] == m] for m in ("input", "output")}
            body.append(
                [
                    name,
                    f"{rows[0]['lang_a']}–{lang_b}",
                    *[
                        _fmt(mean(r[k] for r in get[m]), 3) if get[m] else "—"
                        for m in ("input", "output")
                        for k in ("similarity", "control")
                    ],
                ]
            )
        cols = ["run", "pair", "input sim", "input control", "output sim", "output control"]
        tables.append(Table("Embedding similarity of equivalent subwords vs all-pairs control", cols, body))
    grads = _by_run(queries.report_gradients(store, experiment).dicts())
    if grads:
        # One column per run and one row per component: there are more components than runs.
        components = sorted({r["component"] for rows in grads.values() for r in rows})
        per = {
            key: {c: mean(r["similarity"] for r in rows if r["component"] == c) for c in components}
            for key, rows in grads.items()
        }
        cols = ["component", *[f"{name} {rows[0]['lang_a']}–{lang_b}" for (name, lang_b), rows in grads.items()]]
        body = [["mean", *[_fmt(mean(p.values()), 3) for p in per.values()]]]
        body += [[c, *[_fmt(p[c], 2) for p in per.values()]] for c in components]
        tables.append(Table("Gradient similarity (unweighted mean over tensors, then per component)", cols, body))
    return tables


def _probe_tables(store, experiment: str) -> list[Table]:
    """One row per run and task: accuracy in each language (seeds averaged) and chance."""
    from db import queries

    rows = queries.report_probes(store, experiment).dicts()
    if not rows:
        return []
    langs = list(dict.fromkeys(r["language"] for r in rows))
    grouped: dict[tuple, dict[str, list]] = {}
    for r in rows:
        g = grouped.setdefault((r["name"], r["task"], r["train_language"]), {"chance": []})
        g.setdefault(r["language"], []).append(r["accuracy"])
        g["chance"].append(r["chance"])
    body = [
        [name, task, train, *[_fmt(mean(g[l]), 3) if l in g else "—" for l in langs], _fmt(mean(g["chance"]), 3)]
        for (name, task, train), g in grouped.items()
    ]
    cols = ["run", "task", "fine-tuned in", *[f"acc {l}" for l in langs], "chance"]
    return [Table("Downstream probe: fine-tuned in one language, zero-shot in the others (Fig. 1 right)", cols, body)]


def _tokenizer_notes(store, experiment: str) -> list[str]:
    from db import queries

    notes = []
    for r in queries.report_tokenizers(store, experiment).dicts():
        langs = json.loads(r["languages"]) if r["languages"] else {}
        sizes = " + ".join(f"{l} {v.get('vocab_size')}" for l, v in langs.items())
        notes.append(
            f"tokenizer {r['mode']}: model vocabulary {r['vocab_size']} ({sizes}); "
            f"{r['n_anchors']} anchors; {r['runs']} run(s)"
        )
    return notes


def _law_notes(store, experiment: str) -> list[str]:
    from db import queries

    notes = []
    for r in queries.report_laws(store, experiment).dicts():
        where = f"scaling law {r['model']}/{r['language']} ({r['form']})"
        if r["error"]:
            notes.append(f"{where}: no fit: {r['error']}")
            continue
        params = json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]
        worst = max((abs(x) for x in r["residuals"] or []), default=0.0)
        text = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        notes.append(
            f"{where}: {text}; {r['n_points']} runs, tokens {format_tokens(int(r['token_min']))}–"
            f"{format_tokens(int(r['token_max']))}; max |log residual| {worst:.3f}"
        )
        notes += [f"  warning: {w}" for w in r["warnings"] or []]
    if not notes:
        notes.append("no scaling law yet: TEff needs finished monolingual baselines (baselines = [...])")
    notes.append(
        "TEff marks: '>x' / '<x' extrapolate beyond / below the fitted token range; "
        "'n/a' means the PPL is below the law's asymptote (no monolingual token count reaches it)."
    )
    return notes


# -- rendering --------------------------------------------------------------------


def to_markdown(report: Report) -> str:
    out = [f"# {report.experiment}", ""]
    for t in report.tables:
        out += [f"## {t.title}", "", "| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.rows]
        out.append("")
    out += [f"- {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def to_csv(report: Report) -> str:
    """The main table only: one line per run, ready for a spreadsheet."""
    from db.export import csv_text

    main = report.tables[0]
    return csv_text(main.columns, main.rows)


# How long a report column survives a narrow terminal (lower goes first); by header.
_PRIORITY = (("type", 10), ("tokens", 20), ("seeds", 30), ("chance", 35), ("fine-tuned in", 30), ("p(", 40))
_ESSENTIAL = ("run", "component", "task")


def report_columns(headers: list[str]) -> list:
    """``fit_width`` columns for a report table: the run (or component) stays, the kind
    of run and its token count go first, then seeds and shares; results stay longest."""
    from xling_tui.fit_width import Column

    def priority(header: str) -> int:
        return next((p for prefix, p in _PRIORITY if header.startswith(prefix)), 70)

    return [Column(h, priority=priority(h), essential=h in _ESSENTIAL) for h in headers]


def print_tables(report: Report, console) -> None:
    """Each table with one line per row at the console's width (see ``xling_tui.fit_width``)."""
    from xling_tui.fit_width import print_fitted

    console.print(f"[bold]{report.experiment}[/]")
    for t in report.tables:
        console.print(f"[bold]{t.title.replace('[', chr(92) + '[')}[/]", highlight=False)
        if not t.rows:
            console.print("[dim](no finished runs yet)[/]")
            continue
        print_fitted(console, report_columns(t.columns), [[c.replace("[", r"\[") for c in row] for row in t.rows])
    for n in report.notes:
        console.print(f"[dim]{n.replace('[', chr(92) + '[')}[/]")
