"""lou2022 infinite-width equilibrium: correlation map, information-loss profiles, L^{3/5} slope."""

import math
import time

import numpy as np
import pytest

from repalign.metrics import equilibrium_profile, equilibrium_slope, relu_correlation_map


def test_relu_correlation_map_closed_values_and_monte_carlo():
    assert relu_correlation_map(1.0) == pytest.approx(1.0)
    assert relu_correlation_map(0.0) == pytest.approx(1 / math.pi)
    assert relu_correlation_map(-1.0) == pytest.approx(0.0, abs=1e-15)
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((2, 2_000_000))
    for c in (-0.9, -0.3, 0.2, 0.7, 0.95):
        u, v = z1, c * z1 + math.sqrt(1 - c * c) * z2
        samples = 2 * np.maximum(u, 0) * np.maximum(v, 0)  # He init: variance 2/fan_in
        stderr = samples.std() / math.sqrt(samples.size)
        assert abs(samples.mean() - relu_correlation_map(c)) < 4 * stderr


def _naive_profile(depth, eps=0.1, n_grid=33):
    """Explicit loops over grid points and layers, straight from Thms 1-2 / App. A.3."""
    grid = np.linspace(-1, 1 - eps, n_grid)
    corr = np.zeros((n_grid, depth))
    for g, c1 in enumerate(grid):
        c = c1
        for layer in range(depth):
            corr[g, layer] = c
            c = min((c * math.asin(c) + math.sqrt(max(1 - c * c, 0))) / math.pi + c / 2, 1.0)
    forward, backward = [], []
    for layer in range(1, depth + 1):
        forward.append(max(abs(corr[g, layer - 1] / 2 - 0.5) for g in range(n_grid)))
        products = []
        for g in range(n_grid):
            prod = 1.0
            for k in range(layer, depth):
                prod *= math.asin(corr[g, k - 1]) / math.pi + 0.5
            products.append(prod)
        backward.append(max(products))
    return np.array(forward), np.array(backward)


def test_profile_matches_naive_loops():
    prof = equilibrium_profile(40)
    forward, backward = _naive_profile(40)
    np.testing.assert_allclose(prof.forward, forward, rtol=1e-12)
    np.testing.assert_allclose(prof.backward, backward, rtol=1e-10)
    np.testing.assert_array_equal(prof.layers, np.arange(1, 41))
    below = int(math.floor(prof.l_star))
    assert forward[below - 1] >= backward[below - 1] and forward[below] <= backward[below]


def test_profile_shapes_and_rates():
    prof = equilibrium_profile(20_000)
    assert np.all(np.diff(prof.forward) < 0) and np.all(np.diff(prof.backward) > 0)
    assert prof.backward[-1] == 1.0
    # Thm 1: forward loss Θ(l⁻²); Thm 2: backward Θ((l/L)³) for l ≪ L
    assert prof.forward[1999] * 2000**2 == pytest.approx(prof.forward[3999] * 4000**2, rel=0.02)
    assert prof.backward[99] / 100**3 == pytest.approx(prof.backward[199] / 200**3, rel=0.1)


def test_asymptotic_slope_is_three_fifths():
    start = time.perf_counter()
    fit = equilibrium_slope(np.logspace(3, 4.3, 10).astype(int))
    assert time.perf_counter() - start < 10
    assert abs(fit.slope - 0.6) < 0.05
    assert fit.ci_low <= fit.slope <= fit.ci_high
    single = equilibrium_profile(int(fit.depths[3])).l_star
    assert fit.l_star[3] == pytest.approx(single)


def test_small_depths_and_errors():
    assert equilibrium_profile(1).l_star == 1.0
    assert 1.0 <= equilibrium_profile(3).l_star <= 3.0
    with pytest.raises(ValueError):
        equilibrium_slope([10, 10, 20])
    with pytest.raises(ValueError):
        equilibrium_profile(10, eps=0.0)
