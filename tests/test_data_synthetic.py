"""Synthetic generators: Gaussian inputs (maennel2020 Fig 4) and the toy circle (imani2022 Fig 4)."""

from __future__ import annotations

import math

import pytest
import torch

from repalign.data.synthetic import gaussian_inputs, toy_circle, toy_circle_labels


def test_gaussian_inputs_covariance_is_diag_variances():
    variances = [4.0, 1.0, 0.25, 0.01]
    g = torch.Generator().manual_seed(0)
    x = gaussian_inputs(40_000, variances, g, dtype=torch.float64)
    assert x.shape == (40_000, 4) and x.dtype == torch.float64
    cov = torch.cov(x.T)
    target = torch.diag(torch.tensor(variances, dtype=torch.float64))
    scale = torch.sqrt(torch.outer(target.diagonal(), target.diagonal()))
    # sd of a sample covariance entry is about sqrt(v_i v_j / n) = scale / 200: allow 5 sd
    assert torch.all((cov - target).abs() <= 5 * scale / 200 + 1e-12), cov
    assert x.mean(0).abs().max() < 0.05
    again = gaussian_inputs(40_000, variances, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(x, again)
    assert gaussian_inputs(3, [1.0, 2.0]).dtype == torch.float32
    with pytest.raises(ValueError):
        gaussian_inputs(3, [1.0, -1.0])


def test_toy_circle_shapes_norms_and_clusters():
    g = torch.Generator().manual_seed(1)
    x, side = toy_circle(1001, 0.3, g, dtype=torch.float64)
    assert x.shape == (1001, 2) and side.shape == (1001,)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(1001, dtype=torch.float64))
    assert (side == 1).sum() == 500 and (side == -1).sum() == 501
    angle_pos = torch.atan2(x[side == 1, 1], x[side == 1, 0])
    assert abs(angle_pos.mean().item() - math.pi / 4) < 0.05
    assert abs(angle_pos.std().item() - 0.3) < 0.03
    mean_neg = x[side == -1].mean(0)
    assert torch.atan2(mean_neg[1], mean_neg[0]).item() == pytest.approx(-3 * math.pi / 4, abs=0.05)


def test_toy_circle_singular_values_and_labelings():
    g = torch.Generator().manual_seed(2)
    x, side = toy_circle(1000, 0.3, g, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    assert (s ** 2).sum().item() == pytest.approx(1000.0)
    # the paper's sigma2 / sigma1 = 2.84 / 9.58 = 0.296
    assert s[1] / s[0] == pytest.approx(0.296, abs=0.03)
    assert abs(vh[0] @ torch.tensor([1.0, 1.0], dtype=torch.float64)).item() == pytest.approx(math.sqrt(2), abs=0.01)

    left = toy_circle_labels(x, "pc1")
    right = toy_circle_labels(x, "right")
    assert left.dtype == torch.float64 and set(left.tolist()) == {-1.0, 1.0}
    assert torch.equal(left, side)  # split along v1 = which cluster
    assert abs(right.mean().item()) < 0.15  # both classes drawn from both clusters
    # both labelings are linearly separable (through the origin)
    for y, v in [(left, [1.0, 1.0]), (right, [-1.0, 1.0])]:
        assert torch.all(y * (x @ torch.tensor(v, dtype=torch.float64)) > 0)
    # label-vector energy: left mostly on u1 (high alignment), right mostly on u2
    n = 1000
    assert (u[:, 0] @ left) ** 2 / n > 0.9
    assert (u[:, 1] @ right) ** 2 / n > 0.55  # about 2/pi for Gaussian angle noise
    assert (u[:, 0] @ right) ** 2 / n < 0.1
    with pytest.raises(ValueError):
        toy_circle_labels(x, "diagonal")


def test_toy_circle_generator_and_dtype():
    a = toy_circle(10, 0.1, torch.Generator().manual_seed(3))
    b = toy_circle(10, 0.1, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and a[0].dtype == torch.float32 and a[1].dtype == torch.float32
