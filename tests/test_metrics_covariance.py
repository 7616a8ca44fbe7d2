"""maennel2020 covariance metrics against explicit loops and analytic cases."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from repalign.metrics import (
    activation_fractions,
    covariance_filters,
    misalignment,
    patch_covariance,
    transfer_function,
)

D = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _random_spd(d, seed, distinct=True):
    g = _gen(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=D, generator=g))
    evals = torch.linspace(0.5, 3.0, d, dtype=D) if distinct else torch.ones(d, dtype=D)
    return q @ torch.diag(evals) @ q.T, q


def test_patch_covariance_matches_explicit_patch_loop():
    images = torch.randn(5, 2, 6, 7, dtype=D, generator=_gen(0))
    k, stride = 3, 2
    rows = []
    for img in images:
        for top in range(0, 6 - k + 1, stride):
            for left in range(0, 7 - k + 1, stride):
                rows.append([img[c, top + a, left + b].item() for c in range(2) for a in range(k) for b in range(k)])
    expected = np.cov(np.array(rows).T)
    got = patch_covariance(images, k, stride=stride, chunk_size=2)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_patch_covariance_chunking_and_streams_agree():
    images = torch.randn(11, 3, 8, 8, dtype=D, generator=_gen(1)) + 5.0  # offset: stress the merge
    whole = patch_covariance(images, 3, chunk_size=100)
    np.testing.assert_allclose(patch_covariance(images, 3, chunk_size=3).numpy(), whole.numpy(), rtol=1e-10)
    stream = (images[i : i + 4] for i in range(0, 11, 4))
    np.testing.assert_allclose(patch_covariance(stream, 3).numpy(), whole.numpy(), rtol=1e-10)


def test_patch_order_matches_conv_weight_layout():
    images = torch.randn(6, 3, 9, 9, dtype=D, generator=_gen(2))
    cov = patch_covariance(images, 3)
    weights = torch.randn(4, 3, 3, 3, dtype=D, generator=_gen(3))
    outputs = F.conv2d(images, weights)  # [6, 4, 7, 7]
    for o in range(4):
        variance = outputs[:, o].reshape(-1).var()
        w = weights[o].reshape(-1)
        assert float(w @ cov @ w) == pytest.approx(float(variance), rel=1e-10)


def test_misalignment_matches_appendix_formula_loop():
    a, _ = _random_spd(6, 4)
    b, _ = _random_spd(6, 5)
    evals, vecs = np.linalg.eigh(a.numpy())
    b_np, b_inv = b.numpy(), np.linalg.inv(b.numpy())
    expected = sum(np.sqrt((v @ b_np @ v) * (v @ b_inv @ v)) - 1 for v in vecs.T)
    assert float(misalignment(a, b)) == pytest.approx(expected, rel=1e-10)
    assert float(misalignment(a, b)) > 0.01


def test_misalignment_is_the_infimum_of_definition_2():
    a, q = _random_spd(5, 6)
    b, _ = _random_spd(5, 7)
    b_inv = torch.linalg.inv(b)

    def objective(log_s):  # Σ aligned with A: same eigenvectors, eigenvalues exp(log_s)
        sigma = q @ torch.diag(torch.tensor(np.exp(log_s), dtype=D)) @ q.T
        return float(0.5 * torch.trace(torch.linalg.solve(sigma, b) + b_inv @ sigma) - 5)

    best = minimize(objective, np.zeros(5), method="BFGS", options={"gtol": 1e-10})
    assert float(misalignment(a, b)) == pytest.approx(best.fun, abs=1e-7)


def test_misalignment_zero_iff_aligned_and_scale_invariant():
    a, q = _random_spd(7, 8)
    aligned = q @ torch.diag(torch.rand(7, dtype=D, generator=_gen(9)) + 0.1) @ q.T
    assert abs(float(misalignment(a, aligned))) < 1e-10
    assert abs(float(misalignment(a, a @ a + torch.eye(7, dtype=D)))) < 1e-10
    b, _ = _random_spd(7, 10)
    assert float(misalignment(a, b)) > 0
    assert float(misalignment(3 * a, 0.2 * b)) == pytest.approx(float(misalignment(a, b)), rel=1e-10)


def test_misalignment_degenerate_eigenspace():
    a = torch.diag(torch.tensor([1.0, 1.0, 2.0], dtype=D))
    assert abs(float(misalignment(a, torch.diag(torch.tensor([3.0, 3.0, 5.0], dtype=D))))) < 1e-12
    rot = torch.tensor([[0.6, -0.8, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=D)
    b = rot @ torch.diag(torch.tensor([3.0, 4.0, 5.0], dtype=D)) @ rot.T  # not scalar on span(e1, e2)
    expected = np.sqrt(7 * (1 / 3 + 1 / 4)) + 1 - 3  # sqrt(tr B|V tr B⁻¹|V) per eigenspace
    assert float(misalignment(a, b)) == pytest.approx(expected, rel=1e-10)
    eye = torch.eye(3, dtype=D)
    expected_eye = np.sqrt(12 * (1 / 3 + 1 / 4 + 1 / 5)) - 3
    assert float(misalignment(eye, b)) == pytest.approx(expected_eye, rel=1e-10)


def test_transfer_function_matches_loop_and_recovers_aligned_taus():
    data_cov, q = _random_spd(4, 11)
    weights = torch.randn(50, 4, dtype=D, generator=_gen(12)) * 2 + 1.0
    sigma, tau = transfer_function(data_cov, weights)
    evals, vecs = np.linalg.eigh(data_cov.numpy())
    order = np.argsort(evals)[::-1]
    np.testing.assert_allclose(sigma.numpy(), np.sqrt(evals[order]), rtol=1e-12)
    for i, idx in enumerate(order):
        proj = weights.numpy() @ vecs[:, idx]
        assert float(tau[i]) == pytest.approx(np.std(proj, ddof=1), rel=1e-10)
    true_tau = torch.tensor([0.3, 2.0, 1.0, 0.7], dtype=D)
    draws = torch.randn(200_000, 4, dtype=D, generator=_gen(13))
    eig_order = torch.argsort(torch.linalg.eigvalsh(data_cov), descending=True)
    filters = (draws * true_tau) @ q[:, eig_order].T  # eigenvalue τ_i² on the i-th largest data axis
    np.testing.assert_allclose(transfer_function(data_cov, filters)[1].numpy(), true_tau.numpy(), rtol=0.01)


def test_covariance_filters_eigen_and_sample_modes():
    data_cov, _ = _random_spd(6, 14)
    taus = torch.tensor([2.0, 1.0, 0.5], dtype=D)
    filt = covariance_filters(data_cov, taus, 3, mode="eigen")
    np.testing.assert_allclose(torch.linalg.vector_norm(filt, dim=1).numpy(), taus.numpy(), rtol=1e-12)
    evals = torch.linalg.eigvalsh(data_cov).flip(0)
    for i in range(3):
        np.testing.assert_allclose((data_cov @ filt[i]).numpy(), (evals[i] * filt[i]).numpy(), atol=1e-12)
    sample = covariance_filters(data_cov, taus, 100_000, generator=_gen(15))
    evals_all, vecs = torch.linalg.eigh(data_cov)
    top = vecs.flip(1)[:, :3]
    np.testing.assert_allclose((sample.T @ sample / 100_000).numpy(), (top * taus**2 @ top.T).numpy(), atol=0.02)
    again = covariance_filters(data_cov, taus, 100_000, generator=_gen(15))
    assert torch.equal(sample, again)
    with pytest.raises(ValueError):
        covariance_filters(data_cov, taus, 4, mode="eigen")
    with pytest.raises(ValueError):
        covariance_filters(data_cov, taus, 4, mode="pca")


def test_activation_fractions_matches_loops():
    acts = torch.relu(torch.randn(7, 3, 2, 2, dtype=D, generator=_gen(16)))
    per_unit, per_example = activation_fractions(acts)
    flat = acts.reshape(7, -1)
    for u in range(flat.shape[1]):
        assert float(per_unit[u]) == pytest.approx(sum(flat[i, u] > 0 for i in range(7)).item() / 7)
    for i in range(7):
        assert float(per_example[i]) == pytest.approx(sum(flat[i, u] > 0 for u in range(12)).item() / 12)
