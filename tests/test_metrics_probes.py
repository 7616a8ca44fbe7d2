"""Stable rank and decision-region similarity against naive implementations."""

import numpy as np
import pytest
import torch

from repalign.metrics import drs, stable_rank, triplet_planes

D = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def test_stable_rank_matches_singular_values_and_kernel_form():
    a = _rand(12, 7)
    s = np.linalg.svd(a.numpy(), compute_uv=False)
    assert float(stable_rank(a)) == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-12)
    k = a @ a.T
    lam = np.linalg.eigvalsh(k.numpy())
    assert float(stable_rank(k, hermitian=True)) == pytest.approx((lam**2).sum() / lam.max() ** 2, rel=1e-10)
    assert float(stable_rank(k, hermitian=True)) == pytest.approx(float(stable_rank(k)), rel=1e-10)
    assert float(stable_rank(torch.eye(5, dtype=D))) == pytest.approx(5.0)
    v = _rand(6, 1, seed=1)
    assert float(stable_rank(v @ v.T, hermitian=True)) == pytest.approx(1.0)
    assert stable_rank(_rand(3, 4, 5, seed=2)).shape == (3,)


def test_triplet_planes_lie_in_the_plane_and_cover_the_triplet():
    triplets = _rand(4, 3, 2, 3, 3, seed=3)
    planes = triplet_planes(triplets, resolution=9, margin=0.1)
    assert planes.shape == (4, 81, 2, 3, 3)
    for p in range(4):
        x0, x1, x2 = (t.reshape(-1) for t in triplets[p])
        basis = torch.linalg.qr(torch.stack([x1 - x0, x2 - x0], 1))[0]
        offsets = planes[p].reshape(81, -1) - x0
        residual = offsets - offsets @ basis @ basis.T
        assert float(residual.abs().max()) < 1e-10
        coords = offsets @ basis  # the grid's bounding box must contain all three points
        for point in (x0, x1, x2):
            c = (point - x0) @ basis
            assert bool((coords.min(0).values <= c + 1e-12).all() and (coords.max(0).values >= c - 1e-12).all())


def test_drs_matches_loop_and_bounds():
    planes = _rand(5, 30, 4, seed=4)
    w_a, w_b = _rand(4, 3, seed=5), _rand(4, 3, seed=6)
    probe_a, probe_b = (lambda z: z @ w_a), (lambda z: z @ w_b)
    agree = [int((planes[p, g] @ w_a).argmax() == (planes[p, g] @ w_b).argmax()) for p in range(5) for g in range(30)]
    assert float(drs(probe_a, probe_b, planes)) == pytest.approx(np.mean(agree))
    assert float(drs(probe_a, probe_a, planes)) == 1.0
    assert float(drs(probe_a, probe_b, iter(planes))) == pytest.approx(np.mean(agree))
    ticks = torch.arange(-5, 5, dtype=D) + 0.5
    grid = torch.cartesian_prod(ticks, ticks).unsqueeze(0)  # one plane, 100 points, none on an axis
    by_x = lambda z: torch.stack([z[:, 0], -z[:, 0]], 1)  # noqa: E731 - class = sign of x
    by_y = lambda z: torch.stack([z[:, 1], -z[:, 1]], 1)  # noqa: E731 - class = sign of y
    assert float(drs(by_x, by_y, grid)) == 0.5  # agree in two of four quadrants
    with pytest.raises(ValueError):
        drs(probe_a, probe_b, [])
