"""lou2022 Fig 19 (App. G.1): the memory-bounded layer tangent kernels equal the Jacobian
reference, the spectrum summary (normalised eigenvalues of C Ψ_lᵀ Ψ_l C, stable rank) agrees
with numpy on a random matrix, label noise flips the stated share of labels, and the smoke
step writes every metric its targets name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repalign.metrics import layer_tangent_kernels
from repalign.metrics.tangent import _jacobian_kernels


@pytest.mark.parametrize("max_elements", [1, 100, 10**9])  # one example per block, a few, all at once
def test_blockwise_layer_kernels_equal_the_jacobian_reference(max_elements):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(),
                        nn.Linear(5 * 4 * 4, 3)).double()
    x = torch.randn(7, 3, 8, 8, dtype=torch.float64)
    reference = _jacobian_kernels(net, x)
    kernels = dict(layer_tangent_kernels(net, x, max_elements=max_elements))
    assert list(kernels) == list(reference)
    for name, k in kernels.items():
        torch.testing.assert_close(k, reference[name])
