"""Linear CKA (biased, unbiased, minibatch, matrix) against naive formulas and invariances."""

import itertools

import numpy as np
import pytest
import torch

from repalign.metrics import (
    center_gram,
    centered_normalized_gram,
    cka_matrix,
    linear_cka,
    minibatch_cka,
)

D = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def _pair(n=40, p=8, q=6, seed=0):
    x = _rand(n, p, seed=seed)
    y = x @ _rand(p, q, seed=seed + 1) + 0.7 * _rand(n, q, seed=seed + 2)
    return x, y


def _naive_cka(x, y):
    x, y = x.numpy(), y.numpy()
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.trace(k @ l) / np.sqrt(np.trace(k @ k) * np.trace(l @ l))


def _naive_unbiased_hsic(k, l):
    """Sum of the three unbiased U-statistics of E[kl] + E[k]E[l] − 2E[k l'] over distinct indices."""
    n = k.shape[0]
    t1 = np.mean([k[i, j] * l[i, j] for i, j in itertools.permutations(range(n), 2)])
    t2 = np.mean([k[i, j] * l[a, b] for i, j, a, b in itertools.permutations(range(n), 4)])
    t3 = np.mean([k[i, j] * l[i, a] for i, j, a in itertools.permutations(range(n), 3)])
    return t1 + t2 - 2 * t3


def test_linear_cka_matches_gram_formula():
    x, y = _pair()
    assert float(linear_cka(x, y)) == pytest.approx(_naive_cka(x, y), rel=1e-12)


def test_unbiased_cka_matches_u_statistics():
    x, y = _pair(n=7, p=3, q=4, seed=3)
    k, l = (x @ x.T).numpy(), (y @ y.T).numpy()
    expected = _naive_unbiased_hsic(k, l) / np.sqrt(_naive_unbiased_hsic(k, k) * _naive_unbiased_hsic(l, l))
    assert float(linear_cka(x, y, unbiased=True)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_cka_invariances(unbiased):
    x, y = _pair(seed=5)
    base = float(linear_cka(x, y, unbiased=unbiased))
    q, _ = torch.linalg.qr(_rand(8, 8, seed=9))
    assert float(linear_cka(x @ q, 3.5 * y, unbiased=unbiased)) == pytest.approx(base, rel=1e-10)
    assert float(linear_cka(x + 4.0, y - 2.0, unbiased=unbiased)) == pytest.approx(base, rel=1e-8)
    assert float(linear_cka(x, x, unbiased=unbiased)) == pytest.approx(1.0, rel=1e-12)
    assert 0 < base < 1


def test_minibatch_cka_matches_batch_loop():
    x, y = _pair(n=50, seed=7)
    for unbiased in (False, True):
        hsic = []
        for b in range(4):
            xb, yb = x[b * 12 : (b + 1) * 12], y[b * 12 : (b + 1) * 12]
            k, l = (xb @ xb.T).numpy(), (yb @ yb.T).numpy()
            if unbiased:
                k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
                n = 12
                f = lambda a, c: (  # noqa: E731 - the unbiased estimator, written out
                    np.trace(a @ c) + a.sum() * c.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * a.sum(0) @ c.sum(1)
                ) / (n * (n - 3))
            else:
                h = np.eye(12) - 1 / 12
                f = lambda a, c: np.trace(h @ a @ h @ c)  # noqa: E731
            hsic.append([f(k, l), f(k, k), f(l, l)])
        kl, kk, ll = np.mean(hsic, 0)
        got = minibatch_cka(x, y, batch_size=12, unbiased=unbiased)  # 4 full batches, 2 rows dropped
        assert float(got) == pytest.approx(kl / np.sqrt(kk * ll), rel=1e-10)
    assert float(minibatch_cka(x, y, 12, n_batches=2)) != float(minibatch_cka(x, y, 12))


def test_minibatch_cka_single_batch_is_linear_cka_and_errors():
    x, y = _pair(n=30, seed=11)
    assert float(minibatch_cka(x, y, 30, unbiased=False)) == pytest.approx(float(linear_cka(x, y)), rel=1e-12)
    with pytest.raises(ValueError):
        minibatch_cka(x, y, batch_size=31)
    with pytest.raises(ValueError):
        minibatch_cka(x, y, batch_size=10, n_batches=4)


def test_cka_matrix_equals_pairwise_linear_cka_loop():
    feats = [_rand(25, 6, seed=s) + 0.5 * s * _rand(25, 6, seed=100) for s in range(5)]
    grams = torch.stack([centered_normalized_gram(f) for f in feats])
    matrix = cka_matrix(grams)
    for a, b in itertools.product(range(5), repeat=2):
        assert float(matrix[a, b]) == pytest.approx(float(linear_cka(feats[a], feats[b])), rel=1e-10)
    streamed = cka_matrix(centered_normalized_gram(f) for f in feats)
    np.testing.assert_allclose(streamed.numpy(), matrix.numpy(), rtol=1e-14)


def test_centered_normalized_gram_properties():
    g = centered_normalized_gram(_rand(10, 2, 3, seed=13))
    assert float(torch.linalg.matrix_norm(g)) == pytest.approx(1.0)
    np.testing.assert_allclose(g.sum(0).numpy(), 0, atol=1e-12)
    k = _rand(6, 6, seed=14)
    h = torch.eye(6, dtype=D) - 1 / 6
    np.testing.assert_allclose(center_gram(k).numpy(), (h @ k @ h).numpy(), atol=1e-12)
