"""GPT-2-style decoder as the paper trains it (Languini Kitchen presets).

Pre-LN blocks, a final LayerNorm, learned absolute positions, token embeddings
scaled by sqrt(d_model), input embedding and output layer untied, biases on, GELU
(tanh), no dropout; init N(0, 0.02) with the MLP output projection at
0.02/sqrt(2·layers). Kept as plain as nanoGPT so the paper's numbers can be
checked against it line by line.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.config.presets import PRESETS, GPTConfig, preset

__all__ = ["GPT", "GPTConfig", "PRESETS", "preset"]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.attn_width)
        self.proj = nn.Linear(cfg.attn_width, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.head_dim, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.context, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.emb_scale = math.sqrt(cfg.d_model)
        self.apply(self._init)
        for block in self.blocks:
            assert isinstance(block, Block)
            nn.init.normal_(block.mlp.proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.tok_emb(idx) * self.emb_scale + self.pos_emb(pos)

    def features(self, idx: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """Final-LayerNorm states (B, T, d); appends each block's residual stream to ``hidden``."""
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
            if hidden is not None:
                hidden.append(x)
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor, return_hidden: bool = False):
        """Logits (B, T, V); with ``return_hidden`` also the residual stream after each block."""
        hidden: list | None = [] if return_hidden else None
        logits = self.head(self.features(idx, hidden))
        return (logits, hidden) if return_hidden else logits

    def non_embedding_params(self) -> int:
        skip = {id(p) for p in (self.tok_emb.weight, self.pos_emb.weight, self.head.weight, self.head.bias)}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)
