"""The fused output-layer cross-entropy equals the eager computation, value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.losses import linear_cross_entropy


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_matches_eager_cross_entropy(chunk):
    torch.manual_seed(0)
    h = torch.randn(64, 16, requires_grad=True)
    w = torch.randn(50, 16, requires_grad=True)
    b = torch.randn(50, requires_grad=True)
    t = torch.randint(0, 50, (64,))
    ref_tok = F.cross_entropy(h @ w.t() + b, t, reduction="none")
    ref = ref_tok.view(8, 8).mean(1).mean()  # the trainer's mean of sequence means
    g_ref = torch.autograd.grad(ref, (h, w, b))
    tok = linear_cross_entropy(h, w, b, t, chunk=chunk)
    out = tok.view(8, 8).mean(1).mean()
    g = torch.autograd.grad(out, (h, w, b))
    torch.testing.assert_close(tok, ref_tok.detach(), rtol=1e-5, atol=1e-6)
    for a, c in zip(g, g_ref):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)


def test_refuses_unequal_token_weights():
    h = torch.randn(4, 3, requires_grad=True)
    w, b = torch.randn(5, 3, requires_grad=True), torch.zeros(5, requires_grad=True)
    tok = linear_cross_entropy(h, w, b, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(RuntimeError, match="weights every token equally"):
        (tok * torch.tensor([1.0, 2.0, 1.0, 1.0])).sum().backward()


def test_trainer_uses_it_on_cpu_only():
    from engine.config.spec import ExperimentConfig, expand_runs
    from engine.train import resolve_runtime

    cfg = ExperimentConfig.model_validate({"languages": ["A"], "tokens": 10_000, "baselines": [1.0]})
    spec = expand_runs("x", cfg)[0]
    assert resolve_runtime(spec, "cpu").fused_loss
    assert resolve_runtime(spec, "cpu").amp_dtype is None  # no autocast on CPU
