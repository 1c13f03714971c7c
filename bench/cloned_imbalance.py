"""The paper's cloned-language result at CPU scale, on real English (Table 1 rows 1-5, 9).

Monolingual baselines (100/50/25/10% of the budget) for the scaling law, then EN1/EN2
clones at 50/50, 90/10 and 90%->10% / 10%->90%, each for two seeds; prints PPL and
TEff per language, embedding similarity against its all-pairs control, and the wall
time. Reads ../shared/corpora/en/train.txt.gz (or $XLING_SHARED/corpora/...) and
skips cleanly when it is absent.

    python bench/cloned_imbalance.py [--tokens 2000000] [--model cpu-xs] [--seeds 0,1] [--db PATH]
    python bench/cloned_imbalance.py --device cuda --model mini --tokens 10000000 --batch 64 --context 256

The paper's direction: the rarer language (EN2 at 10%) gains far more from the main
one than either gains at 50/50 (TEff EN2 2.08 at 90/10 vs 0.89 at 50/50).
"""

from __future__ import annotations

import argparse
import os
import statistics
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

RESULTS = """
SELECT r.name, r.seed, e.language, e.ppl, t.tokens_seen, t.teff, t.teff_mark
FROM runs r JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
LEFT JOIN teff t ON t.run_id = r.run_id AND t.language = e.language AND t.step = e.step
WHERE r.experiment = 'cloned_en' AND r.status = 'done'
ORDER BY r.kind, r.name, e.language, r.seed
"""

EMBEDDINGS = """
SELECT r.name, r.seed, a.similarity, a.control
FROM align_embeddings a JOIN runs r USING (run_id)
WHERE r.experiment = 'cloned_en' AND a.matrix = 'input' AND a.step = r.total_steps
ORDER BY r.name, r.seed
"""


def corpus_path() -> Path | None:
    shared = Path(os.environ.get("XLING_SHARED", ROOT.parent / "shared"))
    path = shared / "corpora" / "en" / "train.txt.gz"
    return path if path.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2_000_000)
    ap.add_argument("--model", default="cpu-xs")
    ap.add_argument("--seeds", default="0,1")
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


def report(db: Path, wall: float, args) -> None:
    from db.store import Store

    store = Store(db)
    store.ingest()
    rows = store.query(RESULTS).dicts()
    print(
        f"\ncloned English, model {args.model} on {args.device}, budget {args.tokens:,} tokens "
        f"(batch {args.batch} x {args.context}), seeds {args.seeds}; "
        f"wall time {wall / 60:.1f} min for {len({(r['name'], r['seed']) for r in rows})} runs"
    )
    print(f"{'run':18s} {'lang':4s} {'PPL per seed':>22s} {'TEff per seed':>22s} {'mean TEff':>9s}")
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["name"], r["language"]), []).append(r)
    for (name, lang), rs in groups.items():
        ppl = " / ".join(f"{r['ppl']:.1f}" for r in rs)
        teff = " / ".join(r["teff_mark"] or "—" for r in rs)
        known = [r["teff"] for r in rs if r["teff"] is not None]
        avg = f"{statistics.mean(known):.2f}" if known else "—"
        print(f"{name:18s} {lang:4s} {ppl:>22s} {teff:>22s} {avg:>9s}")
    print("\ninput-embedding similarity of equivalent subwords vs all-pairs control:")
    for r in store.query(EMBEDDINGS).dicts():
        print(f"  {r['name']:18s} seed {r['seed']}: {r['similarity']:+.3f} vs control {r['control']:+.3f}")
    for name, laws in (
        (
            "scaling law",
            store.query("SELECT language, params, residuals FROM scaling_fits WHERE experiment = 'cloned_en'").rows,
        ),
    ):
        for lang, params, residuals in laws:
            print(f"{name} {lang}: {params}; log residuals {[round(x, 3) for x in residuals]}")


if __name__ == "__main__":
    sys.exit(main())
