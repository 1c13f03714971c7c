"""The paper's cloned-language result at CPU scale, on real English (Table 1 rows 1-5, 9).

Monolingual baselines (100/50/25/10% of the budget) for the scaling law, then EN1/EN2
clones at 50/50, 90/10 and 90%->10% / 10%->90%, each for two or more seeds; prints PPL
and TEff per language over seeds with 95% intervals (TEff's including the law's error),
embedding similarity against its all-pairs control, gradient similarity, the paired
verdicts of 90/10 against 50/50 (the rare language's PPL and TEff, embedding and
gradient similarity) and the wall time. Reads ../shared/corpora/en/train.txt.gz (or $XLING_SHARED/corpora/...) and
skips cleanly when it is absent.

    python bench/cloned_imbalance.py [--tokens 2000000] [--model cpu-xs] [--seeds 0,1,2] [--db PATH]
    python bench/cloned_imbalance.py --device cuda --model mini --tokens 10000000 --batch 64 --context 256

The paper's direction: the rarer language (EN2 at 10%) gains far more from the main
one than either gains at 50/50 (TEff EN2 2.08 at 90/10 vs 0.89 at 50/50).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXPERIMENT = """\
[experiments.cloned_en]
description = "Cloned English at CPU scale (bench/cloned_imbalance.py)"
languages = ["EN1", "EN2"]
model = "{model}"
tokens = {tokens}
seeds = [{seeds}]
baselines = [1.0, 0.5, 0.25, 0.1]
scaling_law = "power"
data = {{ corpus = "{corpus}", vocab_size = 2048, max_chars = {max_chars} }}
train = {{ batch_size = {batch}, context = {context}, lr = {lr}, warmup = 100 }}
eval = {{ context = {context}, stride = {stride}, max_tokens = 30000, every = 0.5 }}

[[experiments.cloned_en.schedules]]
name = "50/50"
mix = {{ EN1 = [50], EN2 = [50] }}

[[experiments.cloned_en.schedules]]
name = "90/10"
mix = {{ EN1 = [90], EN2 = [10] }}

[[experiments.cloned_en.schedules]]
name = "90->10 / 10->90"
ends = [0.5, 1.0]
mix = {{ EN1 = [90, 10], EN2 = [10, 90] }}
"""


def corpus_path() -> Path | None:
    shared = Path(os.environ.get("XLING_SHARED", ROOT.parent / "shared"))
    path = shared / "corpora" / "en" / "train.txt.gz"
    return path if path.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2_000_000)
    ap.add_argument("--model", default="cpu-xs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-chars", type=int, default=12_000_000)
    ap.add_argument("--db", type=Path, default=None, help="keep the results here (default: a temporary folder)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--runs-per-gpu", type=int, default=1)
    args = ap.parse_args()
    corpus = corpus_path()
    if corpus is None:
        print("skipped: ../shared/corpora/en/train.txt.gz not found (set XLING_SHARED to its parent folder)")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="xling-bench-"))
    db = args.db or folder / "bench.duckdb"
    toml = folder / "experiments.toml"
    toml.write_text(
        EXPERIMENT.format(
            model=args.model,
            tokens=args.tokens,
            seeds=args.seeds,
            corpus=corpus,
            max_chars=args.max_chars,
            batch=args.batch,
            context=args.context,
            lr=args.lr,
            stride=args.context // 4,
        )
    )
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "xling_tui.cli", "run", str(toml), "--db", str(db), "--device", args.device]
    if args.device != "cpu":
        cmd += ["--runs-per-gpu", str(args.runs_per_gpu)]
    proc = subprocess.run(cmd, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"xling run failed with exit code {proc.returncode}")
        return proc.returncode
    report(db, wall, args)
    return 0


MEASURES = ("ppl", "teff", "embedding_similarity", "embedding_control", "gradient_similarity")
VERDICTS = {  # (measure, language, detail) of the paired verdicts the paper's claims rest on
    ("ppl", "EN2", ""),
    ("teff", "EN2", ""),
    ("embedding_similarity", "EN1–EN2", "input"),
    ("gradient_similarity", "EN1–EN2", "mean"),
}


def report(db: Path, wall: float, args) -> None:
    """Over seeds, with 95% intervals (db.summary, as `xling report` shows them), then
    90/10 against 50/50 paired by seed: the rare language's PPL and TEff, embedding and
    gradient similarity, each with its verdict."""
    from db.paired import needed_text, paired_comparison
    from db.store import Store
    from db.summary import experiment_summary

    store = Store(db)
    store.ingest()
    summaries = experiment_summary(store, "cloned_en")
    runs = store.query("SELECT count(*) FROM runs WHERE experiment = 'cloned_en' AND status = 'done'").rows[0][0]
    print(
        f"\ncloned English, model {args.model} on {args.device}, budget {args.tokens:,} tokens "
        f"(batch {args.batch} x {args.context}), seeds {args.seeds}; wall time {wall / 60:.1f} min for {runs} runs"
    )
    print("mean [95% interval] n=seeds (PPL, TEff: log scale; TEff includes the law's error)")
    for r in summaries:
        if r.measure in MEASURES and (r.measure != "gradient_similarity" or r.detail == "mean"):
            what = " ".join(x for x in (r.measure, r.language, r.detail) if x)
            print(f"  {r.name:18s} {what:38s} {r.text}")
    for name, law in store.query(
        "SELECT language, law FROM scaling_fits WHERE experiment = 'cloned_en' AND law IS NOT NULL"
    ).rows:
        law = json.loads(law) if isinstance(law, str) else law
        print(f"scaling law {name}: {law['params']}; log residuals {[round(x, 3) for x in law['residuals']]}")
    cmp = paired_comparison(store, "cloned_en", "90/10", "50/50")
    print("\n90/10 (A) vs 50/50 (B), paired by seed:")
    for r in cmp.rows:
        if (r.measure, r.language, r.detail) in VERDICTS:
            what = " ".join(x for x in (r.measure, r.language, r.detail) if x)
            needed = needed_text(r)
            print(
                f"  {what:38s} A {r.a:26s} B {r.b:26s} A vs B {r.change:28s} {r.verdict}"
                + (f" (seeds to resolve: {needed})" if needed else "")
            )
    for note in cmp.notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    sys.exit(main())
