"""``xling report``: an experiment's results in the paper's table layouts, with their uncertainty.

Table 1/3 layout (run type, tokens, p(L) per language with schedule arrows, PPL and
TEff per language), Table 2 (hidden-state similarity per layer), gradient
similarity per component and embedding similarity against its control, and the
downstream probe. Every cell is a measure over the seeds of one schedule, as
``db.summary`` computes it: ``mean [95% interval] n=seeds`` (PPL and TEff: geometric
mean, interval on the log scale; a TEff's includes its law's error). Extrapolated TEff
values keep their marks (">2.10"), impossible ones say so: nothing is silently a number.
``build_comparison`` is ``--compare A B``: the two schedules paired seed by seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from db.paired import Comparison, needed_text
from db.summary import GRADIENT_MEAN, MEASURES, SummaryRow, split_probe_detail
from engine.analysis.scaling import format_tokens
from engine.config.schedule import Schedule


@dataclass
class ReportRow:
    """One line of the main table: a schedule or baseline, its seeds taken together."""

    name: str
    kind: str
    seeds: int
    tokens: int
    share: dict[str, str]  # language -> "90%" / "90%↘10%" / "—"
    ppl: dict[str, float] = field(default_factory=dict)  # geometric mean over seeds
    teff: dict[str, str] = field(default_factory=dict)  # language -> the cell, "3.22 [2.87, 3.61] n=3"
    teff_value: dict[str, float | None] = field(default_factory=dict)  # geometric mean over seeds
    ppl_interval: dict[str, list[float] | None] = field(default_factory=dict)  # [lo, hi], None with one seed
    teff_interval: dict[str, list[float] | None] = field(default_factory=dict)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    experiment: str
    languages: list[str]
    runs: list[ReportRow]
    tables: list[Table]
    notes: list[str]
    summaries: list[SummaryRow] = field(default_factory=list)  # every cell's numbers (the summary table)
    comparison: Comparison | None = None  # --compare A B

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, default=str)


Cells = dict[tuple[str, str, str, str], SummaryRow]  # (name, measure, language, detail) -> row

INTERVAL_NOTE = (
    "cells: mean [95% interval] n=seeds. PPL and TEff: geometric mean, t interval on log values; a TEff's "
    "interval includes its scaling law's error (bootstrap over the baseline runs), so with n=1 it is the law's "
    "alone. Similarities and accuracies: t interval. '!': the interval spans more than a factor 2 (too uncertain "
    "to answer); '[?]': the law's error is unknown (as many baselines as parameters)."
)


def _cell(cells: Cells, name: str, measure: str, language: str, detail: str = "") -> str:
    row = cells.get((name, measure, language, detail))
    return row.text if row is not None else "—"


def build_report(store, experiment: str) -> Report:
    from db import queries
    from db.summary import experiment_summary

    summaries = experiment_summary(store, experiment)
    cells: Cells = {(r.name, r.measure, r.language, r.detail): r for r in summaries}
    grouped: dict[str, dict] = {}
    languages: list[str] = []
    for r in queries.report_runs(store, experiment).dicts():
        spec = json.loads(r["spec"])
        languages = spec["languages"]
        g = grouped.setdefault(
            r["name"], {"kind": r["kind"], "tokens": r["total_tokens"], "spec": spec, "seeds": set()}
        )
        g["seeds"].add(r["seed"])
    runs = [_run_row(name, g, cells) for name, g in grouped.items()]
    runs.sort(key=lambda row: (row.kind != "baseline", -row.tokens if row.kind == "baseline" else 0))
    tables = [_main_table(runs, languages, cells)]
    tables += _alignment_tables(summaries, cells)
    tables += _probe_tables(summaries, cells)
    notes = _tokenizer_notes(store, experiment) + _law_notes(store, experiment) + [INTERVAL_NOTE]
    return Report(experiment, languages, runs, tables, notes, summaries)


def _interval(row: SummaryRow | None) -> list[float] | None:
    return None if row is None or row.lo is None or row.hi is None else [row.lo, row.hi]


def _run_row(name: str, g: dict, cells: Cells) -> ReportRow:
    spec = g["spec"]
    schedule = Schedule.from_dict(spec["schedule"])
    share = {lang: schedule.share_label(lang) for lang in spec["languages"]}
    row = ReportRow(name=name, kind=g["kind"], seeds=len(g["seeds"]), tokens=g["tokens"], share=share)
    for lang in spec["languages"]:
        ppl = cells.get((name, "ppl", lang, ""))
        if ppl is not None and ppl.mean is not None:
            row.ppl[lang], row.ppl_interval[lang] = ppl.mean, _interval(ppl)
        teff = cells.get((name, "teff", lang, ""))
        if teff is not None:
            row.teff[lang], row.teff_value[lang], row.teff_interval[lang] = teff.text, teff.mean, _interval(teff)
    return row


def _main_table(runs: list[ReportRow], languages: list[str], cells: Cells) -> Table:
    cols = [
        "run",
        "type",
        "tokens",
        *[f"p({l})" for l in languages],
        *[f"PPL {l}" for l in languages],
        *[f"TEff {l}" for l in languages],
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
                *[_cell(cells, r.name, "ppl", l) for l in languages],
                *[r.teff.get(l, "—") for l in languages],
            ]
        )
    return Table("Perplexity and token efficiency (Table 1/3 layout)", cols, rows)


def _keys(summaries: list[SummaryRow], measure: str) -> dict[tuple[str, str], list[SummaryRow]]:
    """(run name, language pair) -> its rows of ``measure``, in the summaries' order."""
    out: dict[tuple[str, str], list[SummaryRow]] = {}
    for r in summaries:
        if r.measure == measure:
            out.setdefault((r.name, r.language), []).append(r)
    return out


def _alignment_tables(summaries: list[SummaryRow], cells: Cells) -> list[Table]:
    tables = []
    hidden = _keys(summaries, "hidden_similarity")
    if hidden:
        n_layers = max(int(r.detail) for rows in hidden.values() for r in rows) + 1
        cols = ["run", "pair", "emb", *[str(i) for i in range(1, n_layers)]]
        body = [
            [name, pair, *[_cell(cells, name, "hidden_similarity", pair, str(i)) for i in range(n_layers)]]
            for (name, pair) in hidden
        ]
        tables.append(Table("Hidden-state similarity per layer (Table 2 layout)", cols, body))
    emb = _keys(summaries, "embedding_similarity")
    if emb:
        body = [
            [
                name,
                pair,
                *[
                    _cell(cells, name, measure, pair, matrix)
                    for matrix in ("input", "output")
                    for measure in ("embedding_similarity", "embedding_control")
                ],
            ]
            for (name, pair) in emb
        ]
        cols = ["run", "pair", "input sim", "input control", "output sim", "output control"]
        tables.append(Table("Embedding similarity of equivalent subwords vs all-pairs control", cols, body))
    grads = _keys(summaries, "gradient_similarity")
    if grads:
        # One column per run and one row per component: there are more components than runs.
        components = sorted({r.detail for rows in grads.values() for r in rows} - {GRADIENT_MEAN})
        cols = ["component", *[f"{name} {pair}" for name, pair in grads]]
        body = [
            [c, *[_cell(cells, name, "gradient_similarity", pair, c) for name, pair in grads]]
            for c in (GRADIENT_MEAN, *components)
        ]
        tables.append(Table("Gradient similarity (unweighted mean over tensors, then per component)", cols, body))
    return tables


def _probe_tables(summaries: list[SummaryRow], cells: Cells) -> list[Table]:
    """One row per run and task: accuracy in each language (over seeds) and chance."""
    rows = [r for r in summaries if r.measure == "probe_accuracy"]
    if not rows:
        return []
    langs = list(dict.fromkeys(r.language for r in rows))
    keys = list(dict.fromkeys((r.name, r.detail) for r in rows))
    body = [
        [
            name,
            *split_probe_detail(detail),
            *[_cell(cells, name, "probe_accuracy", l, detail) for l in langs],
            _cell(cells, name, "probe_chance", langs[0], detail),
        ]
        for name, detail in keys
    ]
    cols = ["run", "task", "fine-tuned in", *[f"acc {l}" for l in langs], "chance"]
    return [Table("Downstream probe: fine-tuned in one language, zero-shot in the others (Fig. 1 right)", cols, body)]


# -- --compare A B ----------------------------------------------------------------


def measure_label(measure: str, language: str, detail: str) -> str:
    """'PPL EN2', 'hidden-state similarity EN1–EN2 layer 1', 'embedding similarity EN1–EN2 input'."""
    part = f"layer {detail}" if measure == "hidden_similarity" else detail
    return " ".join(x for x in (MEASURES[measure].label, language, part) if x)


def comparison_table(cmp: Comparison) -> Table:
    """The paired comparison as a table: A and B over seeds, A vs B seed by seed, a verdict."""
    cols = ["measure", cmp.a, cmp.b, "A vs B (95%)", "verdict", "seeds to resolve"]
    body = [
        [measure_label(r.measure, r.language, r.detail), r.a, r.b, r.change, r.verdict, needed_text(r)]
        for r in cmp.rows
    ]
    return Table(f"{cmp.a} (A) vs {cmp.b} (B), paired by seed", cols, body)


COMPARISON_NOTE = (
    "A vs B: per seed, A's value against B's (same seed: same data order and initialisation), then a t interval "
    "of those differences; PPL and TEff as a % change (log scale), similarities and accuracies as a difference. "
    "A TEff comparison includes the part of the law's error the two do not share. verdict: better/worse (or "
    "higher/lower) when the interval excludes no change. seeds to resolve: seeds at which a difference this size, "
    "at this spread, is resolved 4 times in 5 ('—': more seeds alone would not; the law's error dominates)."
)


def build_comparison(store, experiment: str, a: str, b: str) -> Report:
    """``xling report EXP --compare A B`` as a report whose first table is the paired one."""
    from db.paired import paired_comparison

    cmp = paired_comparison(store, experiment, a, b)
    return Report(experiment, [], [], [comparison_table(cmp)], [*cmp.notes, COMPARISON_NOTE], comparison=cmp)


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
# PPL goes before TEff: TEff is what the tables answer (a cell with its interval is
# about 22 columns wide, so an 80-column terminal holds a run and two or three).
_PRIORITY = (
    ("type", 10), ("tokens", 20), ("seeds", 30), ("chance", 35), ("fine-tuned in", 30), ("p(", 40), ("PPL", 60)
)  # fmt: skip
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
