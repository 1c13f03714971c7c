"""A slice of examples/paper.toml on one GPU in under 8 minutes: Fig. 1's ratio sweep.

The mini preset (the paper's shape: context 512, batch 128, lr 6e-4 -> 6e-6) on two
cloned languages at 50/50, 90/10 and 99/1, two seeds, with monolingual baselines at
1, 1/2, 1/4 and 1/10 of the budget for the law; the budget is sized from mini's tokens/s
measured first, so that the whole script takes about seven minutes and warmup (capped at
10% of a run) is far behind. Then it prints `xling report`'s table (PPL and TEff per language,
with the seed intervals where this xling has them), the measured tokens/s, and
`xling plan examples/paper.toml` at that rate: the GPU-hours to write beside
examples/paper.toml's experiments. Eager bf16, two runs sharing the GPU: a compile per
run would cost more than these short runs train.

    python bench/gpu_paper_slice.py OUT_DIR [--minutes 7] [--seeds 0,1] [--ratios 50,90,99]

OUT_DIR receives the DuckDB file and its run folders, the experiments file, the report
as CSV and markdown, and plan.txt. Without a CUDA device the same pipeline runs at CPU
scale (cpu-xxs, a few seconds per run) so that every step but the GPU is exercised; it
says so, and its numbers are no measurement of anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXPERIMENT = "fig1_slice"
BASELINES = [1.0, 0.5, 0.25, 0.1]
# What a run costs besides its training tokens (start, data, evaluations, alignment), in seconds,
# and how many runs share the GPU (their overheads overlap; their training does not).
OVERHEAD_S = {"cuda": 15.0, "cpu": 3.0}
RUNS_PER_GPU = 2
FIXED_S = 90.0  # the rate probe, text generation and tokenising, the report


def settings(device: str) -> dict:
    """The paper's shape on a GPU; a CPU-sized stand-in elsewhere."""
    if device == "cuda":
        return {
            "model": "mini",
            "data": {"corpus": "builtin:synthetic", "vocab_size": 2048, "max_chars": 20_000_000},
            # eager bf16: a compile per run process would cost more than these short runs train
            "train": {
                "batch_size": 128,
                "context": 512,
                "lr": 6e-4,
                "min_lr": 6e-6,
                "warmup": 200,
                "compile": "off",
                "precision": "bf16",
            },
            "eval": {"context": 512, "stride": 128, "max_tokens": 200_000, "every": 0.5},
        }
    return {
        "model": "cpu-xxs",
        "data": {"corpus": "builtin:synthetic", "vocab_size": 256, "max_chars": 300_000},
        "train": {"batch_size": 8, "context": 32, "lr": 3e-3, "warmup": 4},
        "eval": {"context": 32, "stride": 16, "max_tokens": 2000, "every": 0.5, "alignment_sequences": 8},
    }


def experiments_toml(
    device: str, tokens: int, ratios: list[int], seeds: list[int], baselines: list[float] = BASELINES
) -> str:
    s = settings(device)
    table = lambda d: "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"  # noqa: E731
    return f"""\
# {"GPU" if device == "cuda" else "CPU stand-in for the GPU"} slice of examples/paper.toml (bench/gpu_paper_slice.py)
[experiments.{EXPERIMENT}]
description = "Fig. 1 ratio sweep, {s["model"]}, {len(seeds)} seeds"
languages = ["EN1", "EN2"]
model = "{s["model"]}"
tokens = {tokens}
seeds = {json.dumps(seeds)}
baselines = {json.dumps(baselines)}
scaling_law = "power"
sweep.ratio = {json.dumps(ratios)}
data = {table(s["data"])}
train = {table(s["train"])}
eval = {table(s["eval"])}
"""


def measured_rate(device: str) -> float:
    """mini's training tokens/s at the slice's shape (bf16 eager, as the runs train), after warm-up."""
    from bench.train_throughput import make_trainer, xling_steps

    t = settings(device)["train"]
    trainer = make_trainer(settings(device)["model"], False, device, t["batch_size"], t["context"], "bf16")
    xling_steps(trainer, 3)  # warm-up: allocator, kernels
    per_step = xling_steps(trainer, 10)[0]
    return t["batch_size"] * t["context"] / per_step


def budget_for(rate: float, minutes: float, device: str, n_ratios: int, n_seeds: int) -> int:
    """The T whose runs train in about ``minutes``: mixes at T, baselines at their fractions of it."""
    runs = n_seeds * (n_ratios + len(BASELINES))
    train_s = max(60.0, minutes * 60 - FIXED_S - runs * OVERHEAD_S[device] / RUNS_PER_GPU)
    per_t = n_seeds * (n_ratios + sum(BASELINES))  # budgets of training per T
    t = settings(device)["train"]
    step_tokens = t["batch_size"] * t["context"]
    steps = max(50, int(rate * train_s / per_t / step_tokens))
    return steps * step_tokens


def xling(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xling_tui.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def tokens_per_s(db: Path) -> float | None:
    """Median training tokens/s of the slice's mix runs, from their logs (what the runs really did)."""
    rates = []
    for log in db.with_name(db.stem + ".runs").glob("runs/*/events.jsonl"):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        rates += [e["tokens_per_s"] for e in events if e["kind"] == "train" and e.get("tokens_per_s")][2:]
    rates.sort()
    return rates[len(rates) // 2] if rates else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for the database, the report and plan.txt")
    ap.add_argument("--minutes", type=float, default=7.0, help="wall time to fill (GPU), all of it")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--ratios", default="50,90,99")
    ap.add_argument("--tokens", type=int, default=None, help="the budget T (default: sized from the measured rate)")
    ap.add_argument("--baselines", default=",".join(map(str, BASELINES)), help="fractions of T for the law")
    args = ap.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    seeds = [int(s) for s in args.seeds.split(",")]
    ratios = [int(r) for r in args.ratios.split(",")]
    baselines = [float(f) for f in args.baselines.split(",")]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if device == "cpu":
        print("gpu_paper_slice: no CUDA device: the CPU stand-in runs (cpu-xxs); its numbers measure nothing")
        tokens = args.tokens or 24_576
        rate = None
    else:
        props = torch.cuda.get_device_properties(0)
        print(f"gpu_paper_slice on {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}")
        rate = measured_rate(device)
        tokens = args.tokens or budget_for(rate, args.minutes, device, len(ratios), len(seeds))
        print(f"mini: {rate:,.0f} tokens/s (bf16, batch 128 x 512); budget T = {tokens:,} tokens")
    toml = out / "experiments.toml"
    toml.write_text(experiments_toml(device, tokens, ratios, seeds, baselines))
    db = out / "slice.duckdb"
    env = dict(os.environ, XLING_CACHE=str(out / "cache"), PYTHONPATH=str(ROOT))
    share = ["--runs-per-gpu", str(RUNS_PER_GPU)] if device == "cuda" else []
    run = xling("run", str(toml), "--db", str(db), "--device", device, *share, env=env)
    print(f"xling run: exit {run.returncode} after {time.perf_counter() - t0:.0f} s")
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
        return 1
    report = xling("report", EXPERIMENT, "--db", str(db), "--format", "markdown", env=env)
    print(report.stdout)
    (out / "report.md").write_text(report.stdout)
    csv = xling("report", EXPERIMENT, "--db", str(db), "--format", "csv", env=env)
    (out / "report.csv").write_text(csv.stdout)
    shared = tokens_per_s(db)
    if shared:
        print(f"training tokens/s per run, {RUNS_PER_GPU if device == 'cuda' else 1} sharing a device: {shared:,.0f}")
    measured = rate  # one run alone on the GPU: what paper.toml's runs get
    if device == "cuda" and measured:
        from engine.config.plan import Throughput, plan
        from engine.config.spec import load_experiments

        vocab = settings(device)["data"]["vocab_size"] * 2
        rows = plan(load_experiments(ROOT / "examples" / "paper.toml"), rate=Throughput("mini", measured, vocab, 512))
        lines = [f"examples/paper.toml at mini = {measured:,.0f} tokens/s (measured here, one run alone):"]
        lines += [
            f"  {r.name}: {r.asked - r.shared} runs to train, {(r.seconds or 0) / 3600:.1f} GPU-hours" for r in rows
        ]
        total = sum(r.seconds or 0 for r in rows) / 3600
        lines.append(f"  total: {total:.1f} GPU-hours")
        (out / "plan.txt").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    print(f"gpu_paper_slice done in {time.perf_counter() - t0:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
