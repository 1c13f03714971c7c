"""The paper's Table 3 at CPU scale: English and French, anchored vs disjoint vocabularies.

Runs ``examples/table3.toml`` (or a subset of it, chosen by flags) on the English and
French novels of ../shared/corpora (or $XLING_SHARED/corpora) and prints, per schedule,
PPL and TEff per language for the disjoint and the anchored vocabulary side by side,
the number of anchors, and the mean gradient similarity on the Tatoeba pairs. Skips
cleanly when the corpora are absent.

    python bench/real_languages.py                                   # 50/50 and 90/10, 1M tokens
    python bench/real_languages.py --tokens 300000 --model cpu-xxs --vocab 1024 --baselines 1,0.5 \
        --eval-every 0 --eval-tokens 10000 --max-chars 3000000      # a few minutes on a free 2-core CPU
    python bench/real_languages.py --schedules all --tokens 2000000  # every Table 3 row
    python bench/real_languages.py --tokenizers anchored --baselines 1,0.5,0.25,0.1 --db t3.duckdb

The paper's direction (Table 3): the rarer language still gains from the frequent one
(TEff FR at 90/10 above its 50/50 value), and anchoring helps both languages.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "examples" / "table3.toml"

RESULTS = """
SELECT r.experiment, r.name, r.kind, r.seed, e.language, e.ppl, t.teff, t.teff_mark
FROM runs r JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
LEFT JOIN teff t ON t.run_id = r.run_id AND t.language = e.language AND t.step = e.step
WHERE r.status = 'done'
ORDER BY r.kind, r.name, e.language, r.seed
"""

SUMMARY = """
SELECT r.experiment, r.name, k.n_anchors AS anchors, k.vocab_size AS vocab, g.grad, h.hidden
FROM runs r
LEFT JOIN tokenizers k USING (run_id)
LEFT JOIN (SELECT run_id, step, avg(similarity) AS grad FROM align_gradients GROUP BY ALL) g
       ON g.run_id = r.run_id AND g.step = r.total_steps
LEFT JOIN (SELECT run_id, step, avg(similarity) AS hidden FROM align_hidden WHERE layer > 0 GROUP BY ALL) h
       ON h.run_id = r.run_id AND h.step = r.total_steps
WHERE r.status = 'done' AND r.kind = 'mix'
"""


def shared_corpora() -> Path | None:
    shared = Path(os.environ.get("XLING_SHARED", ROOT.parent / "shared")) / "corpora"
    needed = [shared / "en" / "train.txt.gz", shared / "fr" / "train.txt.gz", shared / "parallel" / "en-fr.tsv"]
    return shared if all(p.exists() for p in needed) else None


def build_config(args, corpora: Path) -> dict:
    """examples/table3.toml, cut down to the chosen tokenizers, schedules and budget."""
    doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    d = doc["defaults"]
    d.update(
        tokens=args.tokens,
        model=args.model,
        seeds=[int(s) for s in args.seeds.split(",")],
        baselines=[float(b) for b in args.baselines.split(",")],
    )
    d["data"]["parallel"]["path"] = str(corpora / "parallel" / "en-fr.tsv")
    for lang, sub in (("EN", "en"), ("FR", "fr")):
        d["data"]["corpora"][lang].update(path=str(corpora / sub / "train.txt.gz"), max_chars=args.max_chars)
    d["data"]["vocab_size"] = args.vocab
    d["eval"].update(max_tokens=args.eval_tokens, every=args.eval_every)
    wanted = None if args.schedules == "all" else set(args.schedules.split(","))
    experiments = {}
    for name, exp in doc["experiments"].items():
        if exp["data"]["tokenizer"] not in args.tokenizers.split(","):
            continue
        exp["schedules"] = [s for s in exp["schedules"] if wanted is None or s["name"] in wanted]
        experiments[name] = exp
    doc["experiments"] = experiments
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--model", default="cpu-xs")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--vocab", type=int, default=2048, help="BPE size per language")
    ap.add_argument("--baselines", default="1,0.5,0.25", help="monolingual fractions of the budget, per language")
    ap.add_argument("--schedules", default="50/50,90/10", help="names from examples/table3.toml, or 'all'")
    ap.add_argument("--tokenizers", default="disjoint,anchored")
    ap.add_argument("--max-chars", type=int, default=6_000_000, help="characters read per language")
    ap.add_argument("--eval-tokens", type=int, default=30_000, help="test tokens per language")
    ap.add_argument("--eval-every", type=float, default=0.5, help="fraction of training between evals; 0 = end only")
    ap.add_argument("--db", type=Path, default=None, help="keep the results here (default: a temporary folder)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    corpora = shared_corpora()
    if corpora is None:
        print(
            "skipped: ../shared/corpora/{en,fr}/train.txt.gz and parallel/en-fr.tsv not found "
            "(set XLING_SHARED to their parent folder)"
        )
        return 0
    import tomlkit

    folder = Path(tempfile.mkdtemp(prefix="xling-bench-real-"))
    db = args.db or folder / "bench.duckdb"
    toml = folder / "table3.toml"
    toml.write_text(tomlkit.dumps(build_config(args, corpora)), encoding="utf-8")
    t0 = time.perf_counter()
    prep = subprocess.run([sys.executable, "-m", "xling_tui.cli", "data", "prepare", str(toml)], cwd=ROOT)
    if prep.returncode != 0:
        return prep.returncode
    t_data = time.perf_counter() - t0
    proc = subprocess.run(
        [sys.executable, "-m", "xling_tui.cli", "run", str(toml), "--db", str(db), "--device", args.device], cwd=ROOT
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"xling run failed with exit code {proc.returncode}")
        return proc.returncode
    report(db, wall, t_data, args)
    return 0


def report(db: Path, wall: float, t_data: float, args) -> None:
    from db.store import Store

    store = Store(db)
    store.ingest()
    rows = store.query(RESULTS).dicts()
    cell: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        cell.setdefault((r["name"], r["language"], r["experiment"].removeprefix("table3_")), []).append(r)
    tokenizers = args.tokenizers.split(",")
    print(
        f"\nEN/FR, model {args.model} on {args.device}, budget {args.tokens:,} tokens, vocab {args.vocab} per "
        f"language, seeds {args.seeds}; wall {wall / 60:.1f} min ({t_data / 60:.1f} min data) "
        f"for {len({(r['experiment'], r['name'], r['seed']) for r in rows})} runs"
    )
    head = "".join(f" | {'PPL ' + t:>15s} {'TEff ' + t:>15s}" for t in tokenizers)
    print(f"{'run':16s} {'lang':4s}{head}")
    for name, lang in dict.fromkeys((k[0], k[1]) for k in cell):
        parts = []
        for t in tokenizers:
            rs = cell.get((name, lang, t), [])
            ppl = statistics.mean(r["ppl"] for r in rs) if rs else None
            marks = " / ".join(r["teff_mark"] or "—" for r in rs) if rs else "—"
            parts.append(f" | {(f'{ppl:.1f}' if ppl else '—'):>15s} {marks:>15s}")
        print(f"{name:16s} {lang:4s}{''.join(parts)}")
    print(
        "\nmix runs: anchors, model vocabulary, mean gradient similarity and mean hidden-state similarity "
        "(blocks) on Tatoeba pairs"
    )
    for r in store.query(SUMMARY + " ORDER BY 1, 2").dicts():
        grad = f"{r['grad']:+.3f}" if r["grad"] is not None else "—"
        hidden = f"{r['hidden']:+.3f}" if r["hidden"] is not None else "—"
        print(
            f"  {r['experiment']:16s} {r['name']:16s} anchors {r['anchors']:>5} vocab {r['vocab']:>5} "
            f"gradient {grad} hidden {hidden}"
        )
    for lang, exp, params in store.query("SELECT language, experiment, params FROM scaling_fits ORDER BY 2, 1").rows:
        print(f"scaling law {exp} {lang}: {params}")


if __name__ == "__main__":
    sys.exit(main())
