"""What a run's matmuls compute in: fp32, or bf16 autocast with fp32 weights and loss.

``precision = "auto"`` (the default) means the fastest precision that keeps the
paper's numbers: on CUDA bf16 autocast where the GPU has it; on a CPU bf16 autocast
only where the CPU does bf16 natively (avx512_bf16 or AMX, as torch reports it) *and*
a training step of this model shape is measurably faster with it. Native bf16 alone is
not enough: oneDNN's avx512_bf16 kernels lose to MKL's fp32 ones at these matrix sizes
on some CPUs (bench/train_throughput.py prints the ratio per preset).

The CPU measurement is made once per (CPU model, torch version, model shape), under a
file lock so concurrent workers wait for one answer, and kept in
``$XLING_CACHE/cpu-precision.json``: every run of a shape on a host then trains in the
same precision, never in one picked by a noisy moment or by its granted thread count,
so seeds of an experiment stay alike.
Master weights, optimiser state, the loss and evaluation stay fp32 on CPU.
``XLING_CPU_AUTO_PRECISION=fp32`` (or ``bf16``) makes ``auto`` skip the measurement
on a CPU with native bf16 (the test suite pins fp32 so its numbers do not depend on a timing).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from filelock import FileLock

from engine.config.presets import GPTConfig
from engine.runs.files import atomic_write
from engine.runs.layout import cache_dir

CPU_BF16_MIN_SPEEDUP = 1.1  # below this, bf16's rounding is not worth it
CACHE_FILE = "cpu-precision.json"
AUTO_ENV = "XLING_CPU_AUTO_PRECISION"  # measure (default), fp32 or bf16: what auto means on a native-bf16 CPU
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """avx512_bf16 or AMX tiles, as torch's CPU feature checks report them."""
    cpu = getattr(torch, "cpu", None)
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, check, None)
        try:
            if fn is not None and fn():
                return True
        except RuntimeError:
            continue
    return False


def resolve_precision(requested: str, device: str, cfg: GPTConfig, batch: int, context: int) -> str:
    """``requested`` (auto/fp32/bf16/fp16) -> what this device will run: fp32, bf16 or fp16.

    fp16 needs a GPU (its loss scaling is CUDA's), and bf16 on a CPU without native
    bf16 would be emulated and slow: both fall back to fp32 there."""
    if device.startswith("cuda"):
        if requested == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return requested
    if requested in ("fp32", "fp16") or not cpu_has_native_bf16():
        return "fp32"
    if requested == "bf16":
        return "bf16"
    pinned = os.environ.get(AUTO_ENV, "measure")
    if pinned in ("fp32", "bf16"):
        return pinned
    return "bf16" if cpu_bf16_speedup(cfg, batch, context) >= CPU_BF16_MIN_SPEEDUP else "fp32"


def cpu_bf16_speedup(cfg: GPTConfig, batch: int, context: int) -> float:
    """fp32 step time over bf16 step time for this shape, measured once per host and kept."""
    key = _key(cfg, batch, context)
    path = cache_dir() / CACHE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        known = _read(path)
        if isinstance(known.get(key), (int, float)):
            return float(known[key])
        ratio = measure_cpu_bf16_speedup(cfg, batch, context)
        atomic_write(path, json.dumps(known | {key: round(ratio, 3)}, indent=1, sort_keys=True))
    return ratio


def measure_cpu_bf16_speedup(cfg: GPTConfig, batch: int, context: int, reps: int = 3) -> float:
    """Forward + fused loss + backward of a fresh model, fp32 and bf16 alternating (so
    load from elsewhere hits both alike); the ratio of the medians."""
    from engine.losses import linear_cross_entropy
    from engine.model import GPT

    gen = torch.Generator().manual_seed(0)
    model = GPT(cfg)
    b = max(1, min(batch, 16))
    x = torch.randint(0, cfg.vocab_size, (b, context), generator=gen)
    y = torch.randint(0, cfg.vocab_size, (b * context,), generator=gen)

    def step(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = model.features(x).flatten(0, 1)
        linear_cross_entropy(h.float(), model.head.weight, model.head.bias, y).mean().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    step(False), step(True)  # warm the kernels up
    fp32, bf16 = [], []
    for _ in range(reps):
        fp32.append(step(False))
        bf16.append(step(True))
    return statistics.median(fp32) / statistics.median(bf16)


def _key(cfg: GPTConfig, batch: int, context: int) -> str:
    shape = f"{cfg.n_layer}x{cfg.d_model}x{cfg.d_ff}x{cfg.n_head}x{cfg.head_dim}v{cfg.vocab_size}"
    return f"{_cpu_model()}|torch {torch.__version__}|{shape}|{batch}x{context}"


def _cpu_model() -> str:
    """The CPU's name (a cache on a shared filesystem serves several kinds of node)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
