"""Model shapes, kept free of torch so configs validate without loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class GPTConfig:
    n_layer: int
    d_model: int
    d_ff: int
    n_head: int
    head_dim: int
    vocab_size: int = 2048
    context: int = 128

    @property
    def attn_width(self) -> int:
        return self.n_head * self.head_dim

    def to_dict(self) -> dict:
        return asdict(self)


# layers / d_model / FFN / heads x head_dim. The paper's four, then CPU-sized ones
# for tests and the default experiments (DESIGN.md measured cpu-xs at ~30k tokens/s).
PRESETS: dict[str, GPTConfig] = {
    "mini": GPTConfig(4, 512, 2048, 8, 32),
    "tiny": GPTConfig(4, 768, 3072, 12, 64),
    "small": GPTConfig(12, 768, 3072, 12, 64),
    "medium": GPTConfig(24, 1024, 4096, 16, 64),
    "cpu-s": GPTConfig(2, 128, 512, 4, 32),
    "cpu-xs": GPTConfig(2, 64, 256, 4, 16),
    "cpu-xxs": GPTConfig(1, 32, 64, 2, 16),
}


def preset(name: str, vocab_size: int, context: int) -> GPTConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], vocab_size=vocab_size, context=context)


PRESET_NAMES = tuple(PRESETS)


def flops_per_token(cfg: GPTConfig) -> float:
    """Training FLOPs per token (forward and backward): 6 x the weights a token passes
    through (blocks and output layer; the input embedding is a lookup) plus attention
    over the context. An estimate for planning (``xling plan``), not a measurement."""
    attn = cfg.n_head * cfg.head_dim
    per_block = 4 * cfg.d_model * attn + 2 * cfg.d_model * cfg.d_ff
    weights = cfg.n_layer * per_block + cfg.d_model * cfg.vocab_size
    return 6.0 * weights + 12.0 * cfg.n_layer * cfg.context * attn
