"""Output layer and cross-entropy fused, chunk by chunk, for CPU training.

With untied embeddings over V·N ids the output layer and its softmax are most of a
small model's step, and on a CPU they are bound by memory traffic: the eager path
writes the (tokens x V·N) logits, reads them for log-softmax, writes that, zero-fills
a gradient of the same size and reads it all back. Here each chunk of tokens is
projected, turned into its softmax gradient in place while still in cache, and
multiplied straight into the input and weight gradients. The math is the same
(tested against ``F.cross_entropy``); the full logits never exist.

The weight gradients are formed in the forward pass, so the loss built on these
per-token losses must weight every token equally (a plain mean, or a mean of
equal-length sequence means), which ``backward`` checks.
"""

from __future__ import annotations

import torch


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        n = h.shape[0]
        losses = torch.empty(n, dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(weight)
        grad_b = torch.zeros_like(bias)
        for start in range(0, n, chunk):
            hc, tc = h[start : start + chunk], targets[start : start + chunk]
            rows = torch.arange(len(tc), device=h.device)
            logits = torch.addmm(bias, hc, weight.t())
            lse = torch.logsumexp(logits, dim=1)
            losses[start : start + chunk] = lse - logits[rows, tc]
            probs = logits.sub_(lse[:, None]).exp_()
            probs[rows, tc] -= 1.0  # d loss_i / d logits_i = softmax - onehot
            torch.mm(probs, weight, out=grad_h[start : start + chunk])
            grad_w.addmm_(probs.t(), hc)
            grad_b += probs.sum(dim=0)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        return losses

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        scale = grad_losses[0]
        if not torch.all(grad_losses == scale):
            raise RuntimeError("linear_cross_entropy needs a loss that weights every token equally")
        return grad_h * grad_losses[:, None], grad_w * scale, grad_b * scale, None, None


def linear_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor, chunk: int = 256
) -> torch.Tensor:
    """Per-token cross-entropy of ``h @ weight.T + bias`` against ``targets`` (h: (N, d))."""
    return _LinearCrossEntropy.apply(h, weight, bias, targets, chunk)
