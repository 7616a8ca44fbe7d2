"""imani2022 alignment metrics against explicit numpy loops and analytic cases."""

import numpy as np
import pytest
import torch

from repalign.metrics import (
    alignment_auc,
    alignment_curve,
    gd_learning_curve,
    label_projection_spectrum,
    normalize_representation,
)

D = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def _rank_deficient(n=40, seed=0):
    """[n, 6] representation of rank 4: two duplicated columns."""
    base = _rand(n, 4, seed=seed)
    return torch.cat([base, base[:, :2] * 2.0], 1)


def test_normalize_representation_matches_loop():
    phi = _rand(30, 5)
    out = normalize_representation(phi)
    for i in range(30):
        row = np.append(phi[i].numpy(), 1.0)
        np.testing.assert_allclose(out[i].numpy(), row / np.sqrt((row**2).sum()), rtol=1e-12)
    no_bias = normalize_representation(phi, add_bias=False)
    np.testing.assert_allclose(torch.linalg.vector_norm(no_bias, dim=1).numpy(), 1.0, rtol=1e-12)
    assert no_bias.shape == (30, 5) and out.shape == (30, 6)


def test_normalize_representation_zero_rows():
    phi = _rand(5, 3)
    phi[2] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        normalize_representation(phi, add_bias=False)
    out = normalize_representation(phi)  # the bias column rescues it
    np.testing.assert_allclose(out[2].numpy(), [0, 0, 0, 1])


def test_label_projection_spectrum_matches_numpy_and_batches():
    phi, y = _rand(3, 20, 7), _rand(3, 20, seed=1)
    s, p = label_projection_spectrum(phi, y)
    for b in range(3):
        u, s_np, _ = np.linalg.svd(phi[b].numpy(), full_matrices=False)
        np.testing.assert_allclose(s[b].numpy(), s_np, rtol=1e-12)
        np.testing.assert_allclose(p[b].numpy(), (u.T @ y[b].numpy()) ** 2, rtol=1e-10, atol=1e-12)


def test_alignment_curve_matches_loop_over_the_full_svd():
    """Eq. 2 literally: the n left singular vectors of the full SVD, n − d of them with σ = 0."""
    phi = normalize_representation(_rand(50, 8))
    y = torch.sign(_rand(50, seed=2))
    taus = torch.linspace(0, 8, 41, dtype=D)
    curve = alignment_curve(phi, y, taus)
    u, s, _ = np.linalg.svd(phi.numpy(), full_matrices=True)
    s = np.concatenate([s, np.zeros(50 - len(s))])
    for t, value in zip(taus.numpy(), curve.numpy()):
        expected = sum((u[:, i] @ y.numpy()) ** 2 for i in range(50) if s[i] >= t)
        assert value == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("phi", [_rand(40, 6, seed=12), _rank_deficient()], ids=["n>d", "rank-deficient"])
def test_alignment_curve_starts_at_norm_of_y_then_drops_to_the_projection(phi):
    """§4.2: "All the curves start at 200, because at a threshold of 0 all singular values are ≥ 0"."""
    y = _rand(40, seed=3)
    taus = torch.linspace(0, 20, 200, dtype=D)
    curve = alignment_curve(phi, y, taus)
    assert float(curve[0]) == pytest.approx(float(y @ y), rel=1e-12)
    assert bool((curve[1:] <= curve[:-1] + 1e-12).all())
    proj = phi @ torch.linalg.pinv(phi) @ y
    just_above_zero = alignment_curve(phi, y, torch.tensor([1e-9], dtype=D))
    assert float(just_above_zero[0]) == pytest.approx(float(proj @ proj), rel=1e-10)
    assert float(proj @ proj) < 0.5 * float(y @ y)  # y is mostly outside the column space
    assert float(curve[-1]) == 0.0
    batched = alignment_curve(phi.expand(3, -1, -1), y.expand(3, -1), taus[:2])
    torch.testing.assert_close(batched, curve[:2].expand(3, -1))


def test_alignment_auc_equals_trapezoid_of_curve():
    phi = normalize_representation(_rand(60, 9))
    y = _rand(60, seed=5)
    s = torch.linalg.svdvals(phi)
    grid = torch.linspace(0, float(s[0]) * 1.01, 400_001, dtype=D)
    area = torch.trapezoid(alignment_curve(phi, y, grid), grid)
    expected = area / (y @ y * np.sqrt(60))  # unit rows: ‖Φ‖_F = sqrt(n)
    assert float(alignment_auc(phi, y)) == pytest.approx(float(expected), rel=1e-4)


def test_alignment_auc_batched_range_and_extremes():
    phi, y = normalize_representation(_rand(4, 2, 30, 5)), _rand(4, 2, 30, seed=6)
    auc = alignment_auc(phi, y)
    assert auc.shape == (4, 2)
    assert bool(((auc >= 0) & (auc <= 1)).all())
    for idx in np.ndindex(4, 2):
        assert float(auc[idx]) == pytest.approx(float(alignment_auc(phi[idx], y[idx])), rel=1e-12)
    u, s, _ = torch.linalg.svd(phi[0, 0], full_matrices=False)
    top = alignment_auc(phi[0, 0], u[:, 0])
    assert float(top) == pytest.approx(float(s[0]) / np.sqrt(30), rel=1e-10)


@pytest.mark.parametrize("shape", [(40, 6), (8, 20)])
def test_gd_learning_curve_equals_real_gd(shape):
    n, d = shape
    phi = normalize_representation(_rand(n, d - 1, seed=7))
    y = _rand(n, seed=8)
    lr, steps = 0.9 / float(torch.linalg.svdvals(phi)[0]) ** 2, 60
    w = torch.zeros(d, dtype=D)
    losses = []
    for _ in range(steps + 1):
        residual = phi @ w - y
        losses.append(float(residual @ residual))
        w = w - lr * phi.T @ residual
    np.testing.assert_allclose(gd_learning_curve(phi, y, lr, steps).numpy(), losses, rtol=0, atol=1e-8)


def test_gd_learning_curve_rank_deficient_keeps_outside_part():
    phi, y = _rank_deficient(seed=9), _rand(40, seed=10)
    lr = 0.5 / float(torch.linalg.svdvals(phi)[0]) ** 2
    w = torch.zeros(6, dtype=D)
    for _ in range(500):
        w = w - lr * phi.T @ (phi @ w - y)
    curve = gd_learning_curve(phi, y, lr, 500)
    assert float(curve[-1]) == pytest.approx(float(((phi @ w - y) ** 2).sum()), abs=1e-8)
    outside = y - phi @ torch.linalg.pinv(phi) @ y
    assert float(curve[0]) == pytest.approx(float(y @ y), rel=1e-12)
    assert float(curve[-1]) >= float(outside @ outside) - 1e-10


def test_float32_keeps_dtype():
    phi, y = _rand(20, 4).float(), _rand(20, seed=11).float()
    assert alignment_curve(phi, y, torch.tensor([0.0, 1.0])).dtype == torch.float32
    assert alignment_auc(phi, y).dtype == torch.float32
    assert gd_learning_curve(phi, y, 0.01, 3).dtype == torch.float32


def test_bias_column_before_normalisation_makes_the_feature_scale_matter():
    """The authors' order (bias column, then unit rows): small rows are dominated by the constant
    column, so the same features at a smaller scale are less aligned with centred labels."""
    phi = _rand(200, 8, seed=13)
    y = phi[:, 0] - phi[:, 0].mean()                     # a centred label the features carry
    aucs = [float(alignment_auc(normalize_representation(c * phi), y)) for c in (0.1, 0.5, 1.0, 5.0)]
    assert aucs == sorted(aucs) and aucs[0] < 0.5 * aucs[-1]
    no_bias = [float(alignment_auc(normalize_representation(c * phi, add_bias=False), y)) for c in (0.1, 5.0)]
    assert no_bias[0] == pytest.approx(no_bias[1], rel=1e-12)  # without the column the scale cancels
