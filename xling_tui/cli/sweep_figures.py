"""``xling report --figures``: PPL and TEff per language along each axis of a sweep.

The paper's Fig. 1/3 (ratio), Fig. 2 (budget, model size) and Fig. 8 (anchors) at the
scale of an experiment: one PNG per axis, perplexity (log scale) and token efficiency
side by side, a line per language and per value of the other axes, each point the
geometric mean over seeds with the seeds' range as its error bar; hollow markers
where some seed's TEff was read outside its law's range (an extrapolation).
"""

from __future__ import annotations

from pathlib import Path

LABELS = {
    "ratio": "main language's share (%)",
    "languages": "number of languages",
    "anchors": "share of anchor ids",
    "model": "model preset",
    "tokens": "training tokens T",
}


def axis_figures(store, experiment: str, folder: Path, plt) -> list[Path]:
    from db.sweeps import axis_curves

    written = []
    for axis, curves in axis_curves(store, experiment).items():
        if not any(len(c.points) > 1 for c in curves):
            continue  # one value: no curve to draw
        fig, (ax_ppl, ax_teff) = plt.subplots(1, 2, figsize=(10, 3.8))
        for curve in curves:
            label = f"{curve.language} {curve.series}".strip()
            _draw(ax_ppl, curve, "ppl", label)
            _draw(ax_teff, curve, "teff", label)
        ax_ppl.set(xlabel=LABELS.get(axis, axis), ylabel="test PPL (log)", title=f"Perplexity along {axis}")
        ax_ppl.set_yscale("log")
        ax_teff.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax_teff.set(xlabel=LABELS.get(axis, axis), ylabel="TEff", title=f"Token efficiency along {axis}")
        if axis == "tokens":
            for ax in (ax_ppl, ax_teff):
                ax.set_xscale("log")
        for ax in (ax_ppl, ax_teff):
            ax.legend(fontsize="small")
        fig.tight_layout()
        path = folder / f"sweep_{axis}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _draw(ax, curve, measure: str, label: str) -> None:
    pts = [(p.x, getattr(p, measure)) for p in curve.points if getattr(p, measure).mean is not None]
    if not pts:
        return
    xs = [str(x) if isinstance(x, str) else x for x, _ in pts]
    means = [e.mean for _, e in pts]
    below = [m - e.low for m, (_, e) in zip(means, pts, strict=True)]
    above = [e.high - m for m, (_, e) in zip(means, pts, strict=True)]
    line = ax.errorbar(xs, means, yerr=[below, above], marker="o", capsize=3, label=label)
    hollow = [(x, m) for x, m, (_, e) in zip(xs, means, pts, strict=True) if e.extrapolated]
    if hollow:
        ax.scatter(*zip(*hollow, strict=True), s=60, facecolors="white", edgecolors=line[0].get_color(), zorder=3)
