"""SepConv: ego and neighbour blocks, one linear map of their concatenation."""

from __future__ import annotations

import numpy as np
import torch

from gnn import CSRAdjacency, SepConv


def test_sep_conv_is_linear_map_of_ego_and_neighbour_means() -> None:
    torch.manual_seed(0)
    src, dst = np.array([0, 1, 2, 2, 3]), np.array([1, 2, 0, 1, 0])
    a_in = CSRAdjacency.from_edges(src, dst, 4)
    a_out = CSRAdjacency.from_edges(dst, src, 4)
    conv = SepConv(3, 5, num_relations=2)
    x = torch.randn(4, 3)
    expected = conv.lin(torch.cat([x, a_in.to_dense() @ x, a_out.to_dense() @ x], dim=1))
    torch.testing.assert_close(conv(x, [a_in, a_out]), expected)
    assert repr(conv) == "SepConv(3, 5, num_relations=2, root_weight=True)"


def test_reset_parameters_changes_weights() -> None:
    torch.manual_seed(0)
    conv = SepConv(4, 4)
    before = conv.lin.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin.weight)
