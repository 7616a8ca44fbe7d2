"""Every torch metric runs in float32, keeps the dtype, and agrees with its float64 result."""

import pytest
import torch
from torch import nn

import repalign.metrics as M

g = torch.Generator().manual_seed(0)
PHI, Y = torch.randn(30, 6, generator=g, dtype=torch.float64), torch.randn(30, generator=g, dtype=torch.float64)
X2, Y2 = torch.randn(24, 5, generator=g, dtype=torch.float64), torch.randn(24, 4, generator=g, dtype=torch.float64)
IMAGES = torch.randn(4, 2, 6, 6, generator=g, dtype=torch.float64)
COV = torch.cov(torch.randn(200, 18, generator=g, dtype=torch.float64).T)
W = torch.randn(40, 18, generator=g, dtype=torch.float64)
ONEHOT = torch.eye(3, dtype=torch.float64)[torch.arange(24) % 3]


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).double()


CASES = {
    "normalize_representation": lambda c: M.normalize_representation(c(PHI)),
    "alignment_curve": lambda c: M.alignment_curve(c(PHI), c(Y), c(torch.linspace(0, 3, 7))),
    "alignment_auc": lambda c: M.alignment_auc(c(PHI), c(Y)),
    "label_projection_spectrum": lambda c: torch.cat(M.label_projection_spectrum(c(PHI), c(Y))),
    "gd_learning_curve": lambda c: M.gd_learning_curve(c(PHI), c(Y), 0.01, 5),
    "patch_covariance": lambda c: M.patch_covariance(c(IMAGES), 3),
    "misalignment": lambda c: M.misalignment(c(COV), c(torch.cov(W.T))),
    "transfer_function": lambda c: torch.cat(M.transfer_function(c(COV), c(W))),
    "covariance_filters": lambda c: M.covariance_filters(c(COV), c(torch.ones(3)), 3, "eigen").abs(),
    "activation_fractions": lambda c: torch.cat(M.activation_fractions(c(X2))),
    "linear_cka": lambda c: M.linear_cka(c(X2), c(Y2)),
    "linear_cka_unbiased": lambda c: M.linear_cka(c(X2), c(Y2), unbiased=True),
    "minibatch_cka": lambda c: M.minibatch_cka(c(X2), c(Y2), batch_size=8),
    "cka_matrix": lambda c: M.cka_matrix(M.centered_normalized_gram(c(t)) for t in (X2, Y2)),
    "kernel_alignment": lambda c: M.kernel_alignment(c(X2 @ X2.T), c(Y2 @ Y2.T), centered=True),
    "cumulative_power": lambda c: M.cumulative_power(c(torch.exp(-torch.cdist(X2, X2))), c(Y2)),
    "stable_rank": lambda c: M.stable_rank(c(X2)),
    "layer_tangent_alignment": lambda c: torch.stack(
        list(M.layer_tangent_alignment(c(_mlp()), c(X2), c(ONEHOT)).values())
    ),
    "traced_ntk": lambda c: M.traced_ntk(c(_mlp()), c(X2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_matches_float64(name):
    def to32(t):
        return t.float()

    def to64(t):
        return t.double()

    low, high = CASES[name](to32), CASES[name](to64)
    assert low.dtype == torch.float32 and high.dtype == torch.float64
    torch.testing.assert_close(low.double(), high, rtol=2e-4, atol=2e-5)
