"""Training-step throughput: xling's trainer against a plain reference, side by side.

Target (issue 2): xling >= 1.3x the tokens/s of a nanoGPT-style eager step written
the obvious way, for two CPU presets; and < 2% of xling's step time spent outside
the model (batch assembly, schedule lookup, metric bookkeeping).

    python bench/train_throughput.py [--steps 30] [--presets cpu-xs,cpu-s] [--compile]
    python bench/train_throughput.py --device cuda --presets tiny,small --batch 32 --context 512

Absolute times on a shared machine are noise; the ratios are measured in one process,
alternating the two implementations, and are what to read.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config.presets import PRESETS  # noqa: E402
from engine.config.spec import ExperimentConfig, expand_runs  # noqa: E402
from engine.train import Trainer, lr_at  # noqa: E402

# --- the reference: written the obvious way ---------------------------------------


class RefAttention(nn.Module):
    def __init__(self, d, n_head, head_dim, ctx):
        super().__init__()
        self.n_head, self.head_dim = n_head, head_dim
        self.q = nn.Linear(d, n_head * head_dim)
        self.k = nn.Linear(d, n_head * head_dim)
        self.v = nn.Linear(d, n_head * head_dim)
        self.proj = nn.Linear(n_head * head_dim, d)
        self.register_buffer("mask", torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx))

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = (m(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2) for m in (self.q, self.k, self.v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, -1))


class RefBlock(nn.Module):
    def __init__(self, c, ctx):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attn = RefAttention(c.d_model, c.n_head, c.head_dim, ctx)
        self.fc, self.out = nn.Linear(c.d_model, c.d_ff), nn.Linear(c.d_ff, c.d_model)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class RefGPT(nn.Module):
    def __init__(self, c, vocab, ctx):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c.d_model), nn.Embedding(ctx, c.d_model)
        self.blocks = nn.ModuleList(RefBlock(c, ctx) for _ in range(c.n_layer))
        self.ln_f, self.head = nn.LayerNorm(c.d_model), nn.Linear(c.d_model, vocab)
        self.scale = math.sqrt(c.d_model)

    def forward(self, idx, targets):
        x = self.wte(idx) * self.scale + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def reference_steps(trainer: Trainer, steps: int) -> float:
    """Seconds per step of the reference on the same batches, with a per-step loss.item()."""
    c, ctx = PRESETS[trainer.spec.model], trainer.T
    dev = trainer.rt.device
    model = RefGPT(c, trainer.model.cfg.vocab_size, ctx).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        x, y, _ = trainer.batches.get(step)
        loss = model(torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev))
        loss.backward()
        opt.step()
        opt.zero_grad()
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


def make_trainer(preset: str, compile_: bool, device: str, batch: int, context: int) -> Trainer:
    cfg = ExperimentConfig.model_validate(
        {
            "languages": ["EN1", "EN2"],
            "model": preset,
            "tokens": 2_000_000,
            "data": {"corpus": "builtin:synthetic", "vocab_size": 2048},
            "train": {"batch_size": batch, "context": context, "compile": "on" if compile_ else "auto"},
            "schedules": [{"name": "90/10", "mix": {"EN1": [90], "EN2": [10]}}],
        }
    )
    spec = expand_runs("bench", cfg)[0]
    return Trainer(spec, Path(tempfile.mkdtemp()), device=device, log=lambda m: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--presets", default="cpu-xs,cpu-s")
    ap.add_argument("--compile", action="store_true", help="also time xling with torch.compile on CPU")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=128)
    args = ap.parse_args()
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, batch {args.batch} x {args.context} tokens, vocab 2x2048")
    for preset in args.presets.split(","):
        trainer = make_trainer(preset, False, args.device, args.batch, args.context)
        tokens = trainer.B * trainer.T
        ref = reference_steps(trainer, args.steps)
        ours, outside = xling_steps(trainer, args.steps)
        ref2 = reference_steps(trainer, args.steps)  # again, to bracket drift on a shared machine
        ref = min(ref, ref2)
        mode = "xling" if args.device.startswith("cuda") else "xling eager"
        print(
            f"{preset:8s} reference {tokens / ref:9,.0f} tok/s | {mode} {tokens / ours:9,.0f} tok/s "
            f"| ratio {ref / ours:4.2f}x (target >= 1.3x) "
            f"| outside the model {100 * outside / ours:4.2f}% (target < 2%)"
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


if __name__ == "__main__":
    main()
