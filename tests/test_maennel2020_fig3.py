"""maennel2020 Fig 3 and App. D.1's weights table: the eigenvector match of filters against patches.

The match must fail on the two errors of a public reproduction that it touches: a filter
flattening order other than the (C, kh, kw) order of ``patch_covariance``, and eigenvectors
read from the rows instead of the columns of ``eigh``'s matrix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repalign.experiments.maennel2020 import eigen, filter_alignment as fa, protocol
from repalign.metrics import patch_covariance
from repalign.models import build
from repalign.results import Result
from repalign.train import ModelStack


def _aligned_filters(n: int = 4000):
    """Smooth, channel-correlated images, their 5×5 patch covariance Σ_x, and a conv whose filters are
    drawn from N(0, Σ_w) with Σ_w sharing Σ_x's eigenvectors (geometric eigenvalues, distinct gaps)."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(200, 3, 20, 20, generator=g, dtype=torch.float64)
    images = F.avg_pool2d(noise, 3, stride=1, padding=1)  # spatial correlation
    images = torch.einsum("dc,bchw->bdhw", torch.tensor([[1.0, 0, 0], [0.8, 0.6, 0], [0.3, 0.5, 0.4]],
                                                        dtype=torch.float64), images)
    data_cov = patch_covariance(images, 5)
    _, v_x = protocol.eigenbasis(data_cov)
    tau = 0.75 ** torch.arange(75, dtype=torch.float64)
    flat = torch.randn(n, 75, generator=g, dtype=torch.float64) * tau.sqrt() @ v_x.T  # rows ~ N(0, V diag(τ) Vᵀ)
    conv = nn.Conv2d(3, n, 5, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(flat.reshape(n, 3, 5, 5))
    return conv, data_cov


def _min_match(filters: torch.Tensor, data_cov: torch.Tensor) -> float:
    result = Result()
    fa.filter_alignment(filters, data_cov, "", result)
    return result.metrics["weight_eigvec_match.min_top10"]


def test_eigenvector_match_needs_the_patch_flattening_order():
    conv, data_cov = _aligned_filters()
    assert _min_match(protocol.filter_matrix(conv), data_cov) > 0.95
    channels_last = conv.weight.detach().permute(0, 2, 3, 1).reshape(conv.weight.shape[0], -1)  # (kh, kw, C)
    assert _min_match(channels_last, data_cov) < 0.7


def test_eigenvector_match_fails_on_rows_of_the_eigenvector_matrix():
    conv, data_cov = _aligned_filters()
    tau_sq, _, v_w, v_x, overlaps = fa.eigvec_overlaps(protocol.weight_covariance(protocol.filter_matrix(conv)),
                                                       data_cov)
    assert fa.match_scores(overlaps[:10])[0].min() > 0.95
    rows = v_w.T @ v_x.T  # rows of eigh's matrices taken as the eigenvectors
    assert fa.match_scores(rows.T[:10])[0].min() < 0.7
    torch.testing.assert_close(protocol.weight_covariance(protocol.filter_matrix(conv)) @ v_w[:, 0],
                               tau_sq[0] * v_w[:, 0])


def test_isotropic_filters_stay_below_the_threshold():
    """The baseline of the claim: random (initial) filters do not reach Fig 3's 0.4."""
    _, data_cov = _aligned_filters(10)
    filters = torch.randn(4000, 75, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert _min_match(filters, data_cov) < 0.4


def test_combined_match_is_the_projection_on_the_matching_data_eigenvectors():
    overlaps = torch.tensor([[0.6, 0.6, 0.1, 0.0], [0.9, 0.1, 0.1, 0.0], [0.3, 0.3, 0.3, 0.3]],
                            dtype=torch.float64)
    best, combined = fa.match_scores(overlaps)
    torch.testing.assert_close(best, torch.tensor([0.6, 0.9, 0.3], dtype=torch.float64))
    torch.testing.assert_close(combined, torch.tensor([0.72 ** 0.5, 0.9, 0.0], dtype=torch.float64))


def test_weight_groups_are_disjoint_runs_and_too_few_runs_is_a_clear_error():
    filters = torch.arange(5 * 2 * 3, dtype=torch.float64).reshape(5, 2, 3)  # 5 runs x 2 filters x 3
    first, second = eigen.weight_groups(filters, 2)
    torch.testing.assert_close(first, filters[:2].reshape(4, 3))
    torch.testing.assert_close(second, filters[2:4].reshape(4, 3))
    with pytest.raises(ValueError, match="weight_group=3 runs, but wrn_filters has 5 runs"):
        eigen.weight_groups(filters, 3)


def test_a_stack_fits_each_run_as_it_would_alone():
    """``protocol.fit`` on a ModelStack: each member's batches come from its own seed."""
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (300, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.stack([protocol.random_labels(300, 10, s) for s in (4, 5)])

    def make(seed):
        return build("simple_cnn", 10, seed=seed, n_conv=1, filters=4, units=8)

    stack = ModelStack(make, [4, 5])
    losses = protocol.fit(stack, x, labels, 3, 0.05, seed=0)
    assert losses.shape == (3, 2)
    alone = make(5)
    protocol.fit(alone, x, labels[1], 3, 0.05, seed=5)
    torch.testing.assert_close(stack.member(1).conv1.weight, alone.conv1.weight, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(stack.member(0).conv1.weight, alone.conv1.weight)
