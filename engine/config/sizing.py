"""The least memory a run needs, so that a size that cannot fit is refused before
anything is queued (``tokens = 1e15`` once asked for a 14 TiB array, one run at a time).

A lower bound, not a forecast: the weights with their gradients and Adam's two moments
(16 bytes a parameter), the activations one training step keeps for its backward pass
(at 2 bytes a value, as under bf16, and without attention scores or logits, which
fused kernels need not keep), and the per-sequence language labels of the whole run.
A run over this bound cannot train on the machine; one under it still may not.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config.presets import GPTConfig, preset

BYTES_PER_PARAM = 16  # fp32 weight, gradient, Adam's m and v
ACTIVATION_BYTES = 2  # bf16, the smallest a step keeps
VALUES_PER_LAYER = 8  # per token and model dimension: the residual, two layer norms, q/k/v, output
LABEL_BYTES = {"cloned": 1, "real": 17}  # int8 label; real adds an int64 rank and window per sequence


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes of each part, and the field a user would change to shrink the largest."""

    params: int  # weights, gradients, Adam moments
    activations: int  # one training step's, kept for the backward pass
    labels: int  # the language of every sequence of the run
    culprit: str  # "tokens", "train.batch_size", "train.context" or "model"

    @property
    def device(self) -> int:
        """What lives where the model trains (a GPU's memory, or RAM on the CPU)."""
        return self.params + self.activations

    @property
    def total(self) -> int:
        return self.params + self.activations + self.labels

    def describe(self) -> str:
        return (
            f"at least {human_bytes(self.total)}: weights and optimiser {human_bytes(self.params)}, "
            f"one step's activations {human_bytes(self.activations)}, "
            f"per-sequence labels {human_bytes(self.labels)}"
        )


def param_count(cfg: GPTConfig) -> int:
    """Parameters of engine.model.GPT with this shape (untied input and output embeddings)."""
    d, a, f, v = cfg.d_model, cfg.attn_width, cfg.d_ff, cfg.vocab_size
    block = (d * 3 * a + 3 * a) + (a * d + d) + (d * f + f) + (f * d + d) + 4 * d
    return v * d + cfg.context * d + cfg.n_layer * block + 2 * d + (d * v + v)


def model_vocab(data: dict, n_languages: int) -> int:
    """The model's vocabulary rows, at least: cloned languages have V rows each; real ones
    at least the largest language's own vocabulary (anchored and joint ones share rows)."""
    if data.get("kind", "cloned") == "cloned":
        return int(data["vocab_size"]) * n_languages
    sizes = [c.get("vocab_size") or data["vocab_size"] for c in (data.get("corpora") or {}).values()]
    return int(max(sizes, default=data["vocab_size"]))


def memory_need(model: str, data: dict, n_languages: int, batch_size: int, context: int, steps: int) -> MemoryNeed:
    cfg = preset(model, model_vocab(data, n_languages), context)
    params = param_count(cfg)
    parts = {
        "params": BYTES_PER_PARAM * params,
        "activations": ACTIVATION_BYTES * VALUES_PER_LAYER * batch_size * context * cfg.d_model * cfg.n_layer,
        "labels": LABEL_BYTES[data.get("kind", "cloned")] * steps * batch_size,
    }
    largest = max(parts, key=lambda k: parts[k])
    if largest == "labels":
        culprit = "tokens"
    elif largest == "activations":  # whichever is further above its default
        culprit = "train.batch_size" if batch_size / 32 >= context / 128 else "train.context"
    else:  # the position table grows with the context, the rest with the preset
        culprit = "train.context" if 2 * context * cfg.d_model > params else "model"
    return MemoryNeed(**parts, culprit=culprit)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
