"""xling's GPU path, checked and timed in under five minutes on a CUDA machine.

1. A tiny `xling run --device cuda` end to end: it must finish (exit 0) with every run
   on ``cuda:N``, in bf16 autocast (precision = auto) and compiled (compile = auto).
2. Training tokens/s of the cpu-s and mini presets: nanoGPT's own step in fp32 as the
   anchor, then xling in fp32, bf16 autocast, and bf16 + torch.compile (its default on
   a GPU), with the compile warm-up time.

    python bench/gpu_check.py [--steps 30] [--presets cpu-s,mini] [--skip-run]

Without a CUDA device (a CPU build of torch, no driver, no GPU) it says so and exits 0
having checked nothing: the CPU path is what the test suite covers.
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

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXPERIMENT = """\
[experiments.gpu]
languages = ["EN1", "EN2"]
model = "cpu-s"
tokens = 400_000
baselines = [1.0]
data = { vocab_size = 512 }
train = { batch_size = 32, context = 128, warmup = 10, log_every = 10 }
eval = { context = 128, stride = 32, max_tokens = 5000, every = 0.5 }

[[experiments.gpu.schedules]]
name = "90/10"
mix = { EN1 = [90], EN2 = [10] }
"""

SHAPES = {"cpu-s": (32, 128), "mini": (32, 512)}  # batch x context per preset


def no_cuda_reason() -> str | None:
    """Why this machine cannot run the check, or None when it can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build (install the CUDA build of the same version)"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device (no NVIDIA driver or GPU, or CUDA_VISIBLE_DEVICES hides them)"
    return None


def check_run(work: Path) -> bool:
    """A tiny `xling run --device cuda`; True when every run finished on a GPU in bf16, compiled."""
    toml = work / "experiments.toml"
    toml.write_text(EXPERIMENT)
    db = work / "gpu.duckdb"
    env = dict(os.environ, XLING_CACHE=str(work / "cache"), PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "xling_tui.cli", "run", str(toml), "--db", str(db), "--device", "cuda"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    ok = proc.returncode == 0
    print(f"xling run --device cuda: exit {proc.returncode} in {wall:.0f} s")
    for events in sorted(db.with_name("gpu.runs").glob("runs/*/events.jsonl")):
        kinds = [json.loads(line) for line in events.read_text().splitlines()]
        started = next((e for e in kinds if e["kind"] == "started"), {})
        status = [e for e in kinds if e["kind"] == "status"]
        rates = [e["tokens_per_s"] for e in kinds if e["kind"] == "train"][2:]
        evals = {e["language"]: e["ppl"] for e in kinds if e["kind"] == "eval"}
        final = status[-1]["status"] if status else "no status"
        on_gpu = str(started.get("device", "")).startswith("cuda")
        run_ok = final == "done" and on_gpu and started.get("precision") == "bf16" and started.get("compiled")
        ok = ok and run_ok
        print(
            f"  run {events.parent.name}: {final} on {started.get('device')} in {started.get('precision')}"
            f"{', compiled' if started.get('compiled') else ', not compiled'} "
            f"| {max(rates, default=0):,.0f} tok/s | final PPL "
            + " ".join(f"{k} {v:.2f}" for k, v in sorted(evals.items()))
            + ("" if run_ok else "   <-- expected done on cuda, in bf16, compiled")
        )
    if not ok:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    return ok


def throughput(presets: list[str], steps: int) -> None:
    """tokens/s per preset: nanoGPT fp32 (anchor), xling fp32, bf16, bf16 + compile."""
    from bench.train_throughput import make_trainer, reference_steps, xling_steps

    print(f"{'preset':8s} {'B x T':>9s} {'nanoGPT fp32':>13s} {'xling fp32':>11s} {'bf16':>11s} {'bf16+compile':>13s}")
    for preset in presets:
        batch, context = SHAPES.get(preset, (32, 128))
        tokens = batch * context
        fp32 = make_trainer(preset, False, "cuda", batch, context, "fp32")
        ref = reference_steps(fp32, steps)
        eager32 = xling_steps(fp32, steps)[0]
        del fp32
        bf16 = make_trainer(preset, False, "cuda", batch, context, "bf16")
        eager16 = xling_steps(bf16, steps)[0]
        del bf16
        compiled = make_trainer(preset, True, "cuda", batch, context, "bf16")
        t0 = time.perf_counter()
        compiled.train_step(1e-3)
        torch.cuda.synchronize()
        warm = time.perf_counter() - t0
        fast = xling_steps(compiled, steps)[0]
        del compiled
        torch.cuda.empty_cache()
        cells = [tokens / t for t in (ref, eager32, eager16, fast)]
        print(
            f"{preset:8s} {batch:>4d}x{context:<4d} {cells[0]:13,.0f} {cells[1]:11,.0f} {cells[2]:11,.0f} "
            f"{cells[3]:13,.0f}  (tokens/s; compile warm-up {warm:.0f} s; bf16+compile {cells[3] / cells[1]:.2f}x fp32)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--presets", default="cpu-s,mini")
    ap.add_argument("--skip-run", action="store_true", help="only the tokens/s table")
    args = ap.parse_args()
    why = no_cuda_reason()
    if why:
        print(f"gpu_check skipped: no CUDA device: {why}. Nothing was checked; run it on a machine with an NVIDIA GPU.")
        return 0
    props = torch.cuda.get_device_properties(0)
    print(
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), {torch.cuda.device_count()} GPU(s); "
        f"GPU 0: {props.name}, {props.total_memory / 2**30:.0f} GiB, bf16 {torch.cuda.is_bf16_supported()}"
    )
    t0 = time.perf_counter()
    ok = True
    if not args.skip_run:
        ok = check_run(Path(tempfile.mkdtemp(prefix="xling-gpu-check-")))
    throughput(args.presets.split(","), args.steps)
    print(f"gpu_check {'passed' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
