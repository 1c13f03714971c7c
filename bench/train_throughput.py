"""Training-step throughput: xling's trainer against nanoGPT as written, side by side.

Target (issue 2, anchored honestly in issue 17): xling >= 1.3x the tokens/s of
nanoGPT's own model and step (fused qkv, scaled_dot_product_attention, an untied head
as in the paper), for two CPU presets; < 2% of xling's step time outside the model
(batch assembly, schedule lookup, metric bookkeeping). Also printed per preset:

- the fraction of this machine's fp32 matmul rate that xling's step reaches (model
  FLOPs per second, counted as nanoGPT's estimate_mfu does, over a 2048^3 sgemm timed
  in the same process, same threads, step by step beside it);
- bf16 autocast against fp32 for xling's step (the CPU's native bf16, if any), and
  what ``precision = "auto"`` picks from it (bf16 only at >= 1.1x).

With ``--ppl`` it also trains the default experiments' first full run in fp32 and in
bf16 and prints both PPL trajectories (target: bf16's final PPL within 1% of fp32's).

    python bench/train_throughput.py [--steps 30] [--presets cpu-xs,cpu-s] [--compile] [--ppl]
    python bench/train_throughput.py --device cuda --presets tiny,small --batch 32 --context 512

Absolute times on a shared machine are noise; the ratios are measured in one process,
the implementations called in turn step by step, and are what to read.
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


class Reference:
    """nanoGPT's model and training step on a trainer's batches (loss.item() only at its
    log interval, as train.py does; AdamW, fused on CUDA). ``step(i)`` times step i."""

    def __init__(self, trainer: Trainer) -> None:
        c, ctx = PRESETS[trainer.spec.model], trainer.T
        self.trainer, self.dev = trainer, trainer.rt.device
        self.model = NanoGPT(c, trainer.model.cfg.vocab_size, ctx).to(self.dev)
        cuda = self.dev.startswith("cuda")
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.0, fused=cuda or None
        )

    def step(self, i: int) -> float:
        t0 = time.perf_counter()
        x, y, _ = self.trainer.batches.get(i)
        loss = self.model(torch.from_numpy(x).to(self.dev), torch.from_numpy(y).to(self.dev))
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if i % 10 == 0:
            loss.item()
        _sync(self.dev)
        return time.perf_counter() - t0


def xling_step(trainer: Trainer, i: int) -> tuple[float, float]:
    """Seconds of xling's step i, and of its non-model parts timed on their own."""
    t = trainer.spec.train
    trainer.step = i
    t0 = time.perf_counter()
    trainer.train_step(lr_at(i, 1000, t.lr, t.min_lr, t.warmup))
    _sync(trainer.rt.device)
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    x, y, langs = trainer.batches.get(i)
    torch.from_numpy(x), torch.from_numpy(y)
    trainer._accumulate(torch.zeros(len(langs), dtype=torch.float64, device=trainer.rt.device), langs)
    _sync(trainer.rt.device)
    return total, time.perf_counter() - t1


def reference_steps(trainer: Trainer, steps: int) -> float:
    """Median seconds per step of nanoGPT's step (the first two warm up)."""
    ref = Reference(trainer)
    return statistics.median([ref.step(i) for i in range(steps)][2:])


def xling_steps(trainer: Trainer, steps: int) -> tuple[float, float]:
    """Median seconds per step of xling's step, and of the part spent outside the model."""
    total, outside = zip(*(xling_step(trainer, i) for i in range(steps)))
    return statistics.median(total[2:]), statistics.median(outside[2:])


def side_by_side(sides: dict[str, object], steps: int) -> dict[str, float]:
    """Median seconds per call of each side, called in turn step by step, so load from
    elsewhere on a shared machine falls on every side alike."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(steps):
        for name, fn in sides.items():
            times[name].append(fn(i))
    return {name: statistics.median(ts[2:]) for name, ts in times.items()}


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


def matmul_seconds(device: str, n: int = 2048):
    """A large fp32 matmul to time beside the steps: what the machine's BLAS attains now."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def once(i: int) -> float:
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        return time.perf_counter() - t0

    return once, 2 * n**3


def throughput(args: argparse.Namespace) -> None:
    cpu = not args.device.startswith("cuda")
    bf16 = not cpu or precision.cpu_has_native_bf16()
    for preset in args.presets.split(","):
        trainer = make_trainer(preset, False, args.device, args.batch, args.context)
        half = make_trainer(preset, False, args.device, args.batch, args.context, "bf16") if bf16 else None
        ref = Reference(trainer)
        matmul, matmul_flops = matmul_seconds(args.device)
        outside: list[float] = []

        def ours(i: int, trainer=trainer, outside=outside) -> float:
            total, out = xling_step(trainer, i)
            outside.append(out)
            return total

        sides = {"nanoGPT": ref.step, "xling": ours, "matmul": matmul}
        if half is not None:
            sides["bf16"] = lambda i, half=half: xling_step(half, i)[0]
        t = side_by_side(sides, args.steps)
        tokens = trainer.B * trainer.T
        peak = matmul_flops / t["matmul"]
        mfu = flops_per_token(trainer) * tokens / t["xling"] / peak
        mode = "xling" if not cpu else "xling eager"
        print(
            f"{preset:8s} nanoGPT {tokens / t['nanoGPT']:9,.0f} tok/s | {mode} {tokens / t['xling']:9,.0f} tok/s "
            f"| ratio {t['nanoGPT'] / t['xling']:4.2f}x (target >= 1.3x) "
            f"| outside the model {100 * statistics.median(outside[2:]) / t['xling']:4.2f}% (target < 2%) "
            f"| {100 * mfu:4.1f}% of the fp32 matmul rate ({peak / 1e9:,.0f} GFLOP/s beside it)"
        )
        if half is not None:
            speedup = t["xling"] / t["bf16"]
            pick = "bf16" if speedup >= precision.CPU_BF16_MIN_SPEEDUP or not cpu else "fp32"
            print(
                f"{preset:8s} bf16 autocast {tokens / t['bf16']:9,.0f} tok/s | speed-up over fp32 {speedup:4.2f}x "
                f"| precision = auto here: {pick}"
            )
        if args.compile:
            compiled = make_trainer(preset, True, args.device, args.batch, args.context)
            t0 = time.perf_counter()
            compiled.train_step(1e-3)
            warm = time.perf_counter() - t0
            ours_c, _ = xling_steps(compiled, args.steps)
            print(
                f"{preset:8s} xling compiled {tokens / ours_c:9,.0f} tok/s | ratio {t['nanoGPT'] / ours_c:4.2f}x "
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
    print(
        f"torch {torch.__version__}, {where}, batch {args.batch} x {args.context} tokens, vocab 2x2048; "
        f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    throughput(args)
    if args.ppl:
        ppl_trajectories(args.device)


if __name__ == "__main__":
    main()
