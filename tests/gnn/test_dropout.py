"""fast_dropout: inverted dropout with the right rate and scale, identity in eval."""

from __future__ import annotations

import torch

from gnn.benchmarks._dropout import FastDropout, fast_dropout


def test_rate_scale_and_eval_identity() -> None:
    torch.manual_seed(0)
    x = torch.ones(200, 500)
    y = fast_dropout(x, 0.4, training=True)
    zero = (y == 0).float().mean().item()
    assert abs(zero - 0.4) < 0.01
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / 0.6))
    assert abs(y.mean().item() - 1.0) < 0.02
    assert fast_dropout(x, 0.4, training=False) is x
    module = FastDropout(0.3).eval()
    assert module(x) is x and repr(module) == "FastDropout(p=0.3)"
