"""Training-step throughput: xling's trainer against nanoGPT as written, side by side.

Target (issue 2, anchored honestly in issue 17): xling >= 1.3x the tokens/s of
nanoGPT's own model and step (fused qkv, scaled_dot_product_attention, an untied head
as in the paper), for two CPU presets; < 2% of xling's step time outside the model
(batch assembly, schedule lookup, metric bookkeeping). Also printed per preset:

- the fraction of this machine's fp32 matmul peak that xling's step reaches (model
  FLOPs per second, counted as nanoGPT's estimate_mfu does, over a large sgemm timed in
  the same process with the same threads);
- bf16 autocast against fp32 for xling's step (the CPU's native bf16, if any), and
  what ``precision = "auto"`` picks from it (bf16 only at >= 1.1x).

With ``--ppl`` it also trains the default experiments' first full run in fp32 and in
bf16 and prints both PPL trajectories (target: bf16's final PPL within 1% of fp32's).

    python bench/train_throughput.py [--steps 30] [--presets cpu-xs,cpu-s] [--compile] [--ppl]
    python bench/train_throughput.py --device cuda --presets tiny,small --batch 32 --context 512

Absolute times on a shared machine are noise; the ratios are measured in one process,
alternating the implementations, and are what to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import precision  # noqa: E402
from engine.config.presets import PRESETS  # noqa: E402
from engine.config.spec import ExperimentConfig, expand_runs, load_experiments  # noqa: E402
from engine.runs.events import EventLog, iter_events  # noqa: E402
from engine.train import Trainer, lr_at  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# --- the reference: nanoGPT's model.py, with the paper's untied head -----------------


class NanoAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.width = c.n_head, c.n_head * c.head_dim
        self.c_attn = nn.Linear(c.d_model, 3 * self.width)
        self.c_proj = nn.Linear(self.width, c.d_model)

    def forward(self, x):
        B, T, _ = x.size()
        q, k, v = self.c_attn(x).split(self.width, dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, self.width))


class NanoMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Linear(c.d_ff, c.d_model)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class NanoBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(c.d_model), NanoAttention(c)
        self.ln_2, self.mlp = nn.LayerNorm(c.d_model), NanoMLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    """nanoGPT's GPT with ``lm_head`` untied from ``wte`` (the paper unties them)."""

    def __init__(self, c, vocab, ctx):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c.d_model), nn.Embedding(ctx, c.d_model)
        self.h = nn.ModuleList(NanoBlock(c) for _ in range(c.n_layer))
        self.ln_f, self.lm_head = nn.LayerNorm(c.d_model), nn.Linear(c.d_model, vocab, bias=False)

    def forward(self, idx, targets):
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


def reference_steps(trainer: Trainer, steps: int) -> float:
    """Seconds per step of nanoGPT's training loop on the same batches (loss.item() only
    at its log interval, as train.py does; AdamW, fused on CUDA)."""
    c, ctx = PRESETS[trainer.spec.model], trainer.T
    dev = trainer.rt.device
    model = NanoGPT(c, trainer.model.cfg.vocab_size, ctx).to(dev)
    cuda = dev.startswith("cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.0, fused=cuda or None)
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        x, y, _ = trainer.batches.get(step)
        loss = model(torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 10 == 0:
            loss.item()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def xling_steps(trainer: Trainer, steps: int) -> tuple[float, float]:
    """Seconds per step of xling's step, and the seconds of it spent outside the model."""
    total, outside = [], []
    t = trainer.spec.train
    for step in range(steps):
        trainer.step = step
        t0 = time.perf_counter()
        trainer.train_step(lr_at(step, 1000, t.lr, t.min_lr, t.warmup))
        _sync(trainer.rt.device)
        total.append(time.perf_counter() - t0)
        # the non-model parts of the step, timed on their own
        t1 = time.perf_counter()
        x, y, langs = trainer.batches.get(step)
        torch.from_numpy(x), torch.from_numpy(y)
        trainer._accumulate(torch.zeros(len(langs), dtype=torch.float64, device=trainer.rt.device), langs)
        _sync(trainer.rt.device)
        outside.append(time.perf_counter() - t1)
    return statistics.median(total[2:]), statistics.median(outside[2:])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_trainer(preset: str, compile_: bool, device: str, batch: int, context: int, prec: str = "fp32") -> Trainer:
    cfg = ExperimentConfig.model_validate(
        {
            "languages": ["EN1", "EN2"],
            "model": preset,
            "tokens": 2_000_000,
            "data": {"corpus": "builtin:synthetic", "vocab_size": 2048},
            "train": {
                "batch_size": batch,
                "context": context,
                "compile": "on" if compile_ else "auto",
                "precision": prec,
            },
            "schedules": [{"name": "90/10", "mix": {"EN1": [90], "EN2": [10]}}],
        }
    )
    spec = expand_runs("bench", cfg)[0]
    return Trainer(spec, Path(tempfile.mkdtemp()), device=device, log=lambda m: None)


def flops_per_token(trainer: Trainer) -> float:
    """nanoGPT's estimate_mfu count: 6 x matmul parameters (embedding lookups are not
    matmuls) + 12 x layers x attention width x context for the attention itself."""
    c = trainer.model.cfg
    n = sum(m.weight.numel() for m in trainer.model.modules() if isinstance(m, nn.Linear))
    return 6 * n + 12 * c.n_layer * c.attn_width * c.context


def fp32_matmul_peak(device: str, n: int = 2048, reps: int = 5) -> float:
    """FLOP/s of a large fp32 matmul here and now: the machine's attainable peak."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def throughput(args: argparse.Namespace, peak: float) -> None:
    cpu = not args.device.startswith("cuda")
    bf16 = not cpu or precision.cpu_has_native_bf16()
    for preset in args.presets.split(","):
        trainer = make_trainer(preset, False, args.device, args.batch, args.context)
        half = make_trainer(preset, False, args.device, args.batch, args.context, "bf16") if bf16 else None
        tokens = trainer.B * trainer.T
        refs, ours, halves, outside = [], [], [], []
        for _ in range(2):  # alternating, so drift on a shared machine hits every side alike
            refs.append(reference_steps(trainer, args.steps))
            step, out = xling_steps(trainer, args.steps)
            ours.append(step)
            outside.append(out)
            if half is not None:
                halves.append(xling_steps(half, args.steps)[0])
        ref, mine = min(refs), min(ours)
        mfu = flops_per_token(trainer) * tokens / mine / peak
        mode = "xling" if not cpu else "xling eager"
        print(
            f"{preset:8s} nanoGPT {tokens / ref:9,.0f} tok/s | {mode} {tokens / mine:9,.0f} tok/s "
            f"| ratio {ref / mine:4.2f}x (target >= 1.3x) "
            f"| outside the model {100 * min(outside) / mine:4.2f}% (target < 2%) "
            f"| {100 * mfu:4.1f}% of the fp32 matmul peak"
        )
        if half is not None:
            speedup = mine / min(halves)
            pick = "bf16" if speedup >= precision.CPU_BF16_MIN_SPEEDUP or not cpu else "fp32"
            print(
                f"{preset:8s} bf16 autocast {tokens / min(halves):9,.0f} tok/s | speed-up over fp32 {speedup:4.2f}x "
                f"| precision = auto here: {pick}"
            )
        if args.compile:
            compiled = make_trainer(preset, True, args.device, args.batch, args.context)
            t0 = time.perf_counter()
            compiled.train_step(1e-3)
            warm = time.perf_counter() - t0
            ours_c, _ = xling_steps(compiled, args.steps)
            print(
                f"{preset:8s} xling compiled {tokens / ours_c:9,.0f} tok/s | ratio {ref / ours_c:4.2f}x "
                f"| first step (compile) {warm:.1f}s"
            )
    if cpu and not precision.cpu_has_native_bf16():
        print("this CPU has no native bf16 (avx512_bf16 / AMX): precision = auto stays fp32, bf16 not timed")


def ppl_trajectories(device: str) -> None:
    """The default experiments' first full-budget run in fp32 and in bf16: every eval's PPL."""
    (exp,) = load_experiments(ROOT / "experiments.toml", ["table1"])
    spec = next(r for r in exp.runs if r.kind != "baseline")
    spec = dataclasses.replace(spec, eval=spec.eval.model_copy(update={"alignment": False}))
    curves: dict[str, dict[tuple[int, str], float]] = {}
    for prec in ("fp32", "bf16"):
        run = dataclasses.replace(spec, train=spec.train.model_copy(update={"precision": prec}))
        folder = Path(tempfile.mkdtemp(prefix=f"xling-ppl-{prec}-"))
        t0 = time.perf_counter()
        trainer = Trainer(run, folder, device=device, log=lambda m: None)
        with EventLog(folder) as log:
            trainer.run(log)
        evals = [e for e in iter_events(folder / "events.jsonl") if e["kind"] == "eval"]
        curves[prec] = {(e["step"], e["language"]): e["ppl"] for e in evals}
        print(f"{spec.experiment}/{spec.name} in {trainer.rt.precision}: {time.perf_counter() - t0:.0f} s")
    print(f"{'step':>6s} {'lang':5s} {'fp32 PPL':>9s} {'bf16 PPL':>9s} {'diff':>7s}")
    for step, lang in sorted(curves["fp32"]):
        a, b = curves["fp32"][(step, lang)], curves["bf16"][(step, lang)]
        print(f"{step:6d} {lang:5s} {a:9.3f} {b:9.3f} {100 * (b - a) / a:+6.2f}%")
    last = max(step for step, _ in curves["fp32"])
    worst = max(abs(curves["bf16"][k] / curves["fp32"][k] - 1) for k in curves["fp32"] if k[0] == last)
    print(f"final PPL: bf16 within {100 * worst:.2f}% of fp32 (target <= 1%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--presets", default="cpu-xs,cpu-s")
    ap.add_argument("--compile", action="store_true", help="also time xling with torch.compile on CPU")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--ppl", action="store_true", help="also train a full default run in fp32 and bf16")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    peak = fp32_matmul_peak(args.device)
    print(
        f"torch {torch.__version__}, {where}, batch {args.batch} x {args.context} tokens, vocab 2x2048; "
        f"fp32 matmul peak {peak / 1e9:,.0f} GFLOP/s; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    throughput(args, peak)
    if args.ppl:
        ppl_trajectories(args.device)


if __name__ == "__main__":
    main()
