"""PNG figures for ``xling report --figures DIR`` (matplotlib, Agg: no display needed).

matplotlib is optional (``pip install 'xling[figures]'``): nothing else needs it.

The paper's figures at the scale of an experiment: PPL and TEff against the language
ratio (Fig. 1/3), the fitted scaling laws with their points and each multilingual
language placed at its (tokens seen, PPL) (Fig. 5), embedding similarity against the
random control by frequency (Fig. 6/7), and hidden-state similarity per layer.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path


def figures_unavailable() -> str | None:
    """Why figures cannot be drawn here, for the user; None when matplotlib is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--figures needs matplotlib, which is not installed: pip install 'xling[figures]'"
    return None


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_figures(store, report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for make in (_ratio_figure, _law_figure, _embedding_figure, _hidden_figure):
        path = make(store, report, folder)
        if path is not None:
            written.append(path)
    return written


def _constant_share(label: str) -> float | None:
    m = re.fullmatch(r"([0-9.]+)%", label)
    return float(m.group(1)) if m else None


def _ratio_figure(store, report, folder: Path) -> Path | None:
    """PPL and TEff per language against the second language's share (constant mixes only)."""
    if len(report.languages) != 2:
        return None
    l1, l2 = report.languages
    points = [
        (s, r) for r in report.runs if r.kind != "baseline" if (s := _constant_share(r.share.get(l2, ""))) is not None
    ]
    if not points:
        return None
    points.sort(key=lambda p: p[0])
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for lang, marker in ((l1, "o"), (l2, "s")):
        xs = [s for s, _ in points]
        for ax, centre, interval in (
            (ax1, [r.ppl.get(lang) for _, r in points], [r.ppl_interval.get(lang) for _, r in points]),
            (ax2, [r.teff_value.get(lang) for _, r in points], [r.teff_interval.get(lang) for _, r in points]),
        ):
            ax.errorbar(xs, _nan(centre), yerr=_yerr(centre, interval), marker=marker, capsize=3, label=lang)
    ax1.set(xlabel=f"share of {l2} in training (%)", ylabel="test PPL", title="Perplexity (95% interval over seeds)")
    ax2.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax2.set(xlabel=f"share of {l2} in training (%)", ylabel="TEff", title="Token efficiency")
    for ax in (ax1, ax2):
        ax.legend()
    return _save(fig, folder / "ppl_teff_vs_ratio.png")


def _nan(values: list) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _yerr(centre: list, intervals: list) -> list[list[float]]:
    """Matplotlib's asymmetric error bars from [lo, hi] (none where a value has no interval)."""
    lower, upper = [], []
    for c, iv in zip(centre, intervals):
        ok = c is not None and iv is not None and all(map(math.isfinite, iv))
        lower.append(c - iv[0] if ok else 0.0)
        upper.append(iv[1] - c if ok else 0.0)
    return [lower, upper]


def _law_figure(store, report, folder: Path) -> Path | None:
    from db import queries
    from engine.analysis.scaling import ScalingLaw

    laws = [r for r in queries.report_laws(store, report.experiment).dicts() if r["law"]]
    if not laws:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    runs = queries.report_runs(store, report.experiment).dicts()
    seen = [row["tokens_seen"] for row in runs if row["kind"] != "baseline" and row["tokens_seen"]]
    for r in laws:
        law = ScalingLaw.from_dict(json.loads(r["law"]) if isinstance(r["law"], str) else r["law"])
        lo, hi = law.token_range
        # drawn over every multilingual point too: outside the fitted range it is an extrapolation
        xs, ys = zip(*law.curve(n=60, lo=min([lo, *seen]), hi=max([hi, *seen])))
        ax.plot(xs, ys, label=f"law {r['model']}/{r['language']} ({law.form})")
        ax.axvspan(lo, hi, color="grey", alpha=0.08, lw=0)
        ax.scatter(law.tokens, law.ppl, color="black", zorder=3, label="monolingual runs")
    for row in runs:
        if row["kind"] != "baseline" and row["tokens_seen"]:
            ax.scatter([row["tokens_seen"]], [row["ppl"]], marker="x", zorder=4)
            ax.annotate(
                f"{row['name']} {row['language']}",
                (row["tokens_seen"], row["ppl"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tokens seen in the language",
        ylabel="test PPL",
        title="Monolingual law (shaded: fitted range), multilingual runs",
    )
    ax.legend(fontsize=7)
    return _save(fig, folder / "scaling_laws.png")


def _embedding_figure(store, report, folder: Path) -> Path | None:
    from db import queries

    rows = [r for r in queries.report_embeddings(store, report.experiment).dicts() if r["matrix"] == "input"]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        bins = [b for b in (json.loads(r["bins"]) if isinstance(r["bins"], str) else r["bins"] or []) if b["hi"] > 0]
        if not bins:
            continue
        xs = [(b["lo"] * b["hi"]) ** 0.5 for b in bins]
        (line,) = ax.plot(xs, [b["similarity"] for b in bins], marker="o", label=f"{r['name']} s{r['seed']}")
        ax.plot(xs, [b["control"] for b in bins], ls="--", color=line.get_color(), alpha=0.6)
    ax.set(
        xscale="log",
        xlabel="training count of the rarer copy",
        ylabel="cosine similarity",
        title="Input embeddings: equivalent subwords (solid) vs all pairs (dashed)",
    )
    ax.legend(fontsize=7)
    return _save(fig, folder / "embedding_similarity.png")


def _hidden_figure(store, report, folder: Path) -> Path | None:
    """Mean over seeds per layer, with the 95% interval as error bars."""
    series: dict[str, list] = {}
    for r in report.summaries:
        if r.measure == "hidden_similarity":
            series.setdefault(f"{r.name} {r.language}", []).append(r)
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in series.items():
        rows.sort(key=lambda r: int(r.detail))
        centre = [r.mean for r in rows]
        intervals = [None if r.lo is None else [r.lo, r.hi] for r in rows]
        xs = [int(r.detail) for r in rows]
        ax.errorbar(xs, _nan(centre), yerr=_yerr(centre, intervals), marker="o", capsize=3, label=name)
    ax.set(xlabel="layer (0 = embedding)", ylabel="mean cosine", title="Hidden-state similarity per layer (95%)")
    ax.legend(fontsize=7)
    return _save(fig, folder / "hidden_similarity.png")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path
