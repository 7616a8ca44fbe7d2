"""canatar2022 kernel-target alignment and cumulative power against naive formulas."""

import numpy as np
import pytest
import torch

from repalign.metrics import cumulative_power, kernel_alignment, linear_cka, spectrum_and_power, symmetric_eigh

D = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def test_kernel_alignment_matches_trace_formula():
    x, y = _rand(20, 5), _rand(20, 3, seed=1)
    k1, k2 = x @ x.T, y @ y.T
    a, b = k1.numpy(), k2.numpy()
    expected = np.trace(a @ b) / np.sqrt(np.trace(a @ a) * np.trace(b @ b))
    assert float(kernel_alignment(k1, k2)) == pytest.approx(expected, rel=1e-12)
    assert float(kernel_alignment(k1, 5 * k1)) == pytest.approx(1.0)


def test_centered_kernel_alignment_is_cka():
    x, y = _rand(30, 4, seed=2), _rand(30, 6, seed=3)
    got = kernel_alignment(x @ x.T, y @ y.T, centered=True)
    assert float(got) == pytest.approx(float(linear_cka(x, y)), rel=1e-10)
    # a constant offset in the kernel changes KTA but not CKA
    k, target = x @ x.T, y @ y.T
    assert float(kernel_alignment(k + 10, target, centered=True)) == pytest.approx(float(got), rel=1e-10)
    assert float(kernel_alignment(k + 10, target)) != pytest.approx(float(kernel_alignment(k, target)))


def test_kernel_alignment_batched():
    k = _rand(3, 8, 8, seed=4)
    k = k @ k.transpose(1, 2)
    out = kernel_alignment(k, k.flip(0), centered=True)
    assert out.shape == (3,)
    assert float(out[0]) == pytest.approx(float(kernel_alignment(k[0], k[2], centered=True)))


def test_cumulative_power_matches_loop():
    feats, targets = _rand(15, 20, seed=5), _rand(15, 3, seed=6)
    kernel = feats @ feats.T  # full rank, distinct eigenvalues: the mode order is unambiguous
    evals, vecs = np.linalg.eigh(kernel.numpy())
    order = np.argsort(evals)[::-1]
    power = [np.sum((vecs[:, i] @ targets.numpy()) ** 2) for i in order]
    expected = np.cumsum(power) / np.sum(power)
    got = cumulative_power(kernel, targets)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    assert float(got[-1]) == pytest.approx(1.0)
    assert bool((got[1:] >= got[:-1] - 1e-12).all())


def test_cumulative_power_target_on_top_mode():
    feats = _rand(12, 4, seed=7)
    kernel = feats @ feats.T
    top = torch.linalg.eigh(kernel)[1][:, -1]
    got = cumulative_power(kernel, 3 * top)  # 1-D targets allowed
    np.testing.assert_allclose(got.numpy(), 1.0, rtol=1e-10)


def test_spectrum_and_power_pairs_each_eigenvalue_with_its_mode():
    feats, targets = _rand(15, 20, seed=8), _rand(15, 2, seed=9)
    kernel = feats @ feats.T
    evals, cum = spectrum_and_power(kernel, targets)
    np.testing.assert_allclose(evals.numpy(), np.sort(np.linalg.eigvalsh(kernel.numpy()))[::-1], rtol=1e-10)
    np.testing.assert_allclose(cum.numpy(), cumulative_power(kernel, targets).numpy(), rtol=1e-12)
    # the target on the mode of the 3rd largest eigenvalue: C(ρ) jumps to 1 exactly at ρ = 3
    third = torch.linalg.eigh(kernel)[1][:, -3]
    _, cum = spectrum_and_power(kernel, third)
    np.testing.assert_allclose(cum.numpy()[:2], 0.0, atol=1e-10)
    np.testing.assert_allclose(cum.numpy()[2:], 1.0, rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_symmetric_eigh_matches_torch_eigh(dtype):
    feats = _rand(40, 60, seed=11).to(dtype)
    kernel = feats @ feats.T
    evals, vecs = symmetric_eigh(kernel)
    ref_evals, ref_vecs = torch.linalg.eigh(kernel)
    assert evals.dtype == dtype and vecs.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(evals.numpy(), ref_evals.numpy(), rtol=tol, atol=tol * float(ref_evals.max()))
    # distinct eigenvalues: the same eigenvectors up to sign
    np.testing.assert_allclose((vecs.T @ ref_vecs).abs().diagonal().numpy(), 1.0, atol=tol * 100)
    np.testing.assert_allclose((kernel @ vecs - vecs * evals).abs().max().item(), 0.0, atol=tol * float(evals.max()))


def test_symmetric_eigh_rejects_non_finite_kernel():
    kernel = torch.eye(4, dtype=torch.float64)
    kernel[1, 2] = kernel[2, 1] = float("nan")
    with pytest.raises(ValueError, match="infs or NaNs"):
        symmetric_eigh(kernel)
