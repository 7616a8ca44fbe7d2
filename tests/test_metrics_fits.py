"""loglog_fit against an exact power law and against scipy.stats' regression."""

import numpy as np
import pytest
from scipy import stats

from repalign.metrics import loglog_fit


def test_exact_power_law_recovers_exponent_with_zero_width_interval():
    x = np.array([10.0, 20.0, 40.0, 80.0, 160.0])
    fit = loglog_fit(x, 3.0 * x**0.6)
    assert fit.slope == pytest.approx(0.6, abs=1e-12)
    assert np.exp(fit.intercept) == pytest.approx(3.0, rel=1e-12)
    assert fit.ci_high - fit.ci_low == pytest.approx(0.0, abs=1e-10)


def test_matches_scipy_linregress_and_t_interval():
    rng = np.random.default_rng(0)
    x = np.repeat(np.arange(10, 101, 10), 3).astype(float)
    y = np.exp(0.6 * np.log(x) + 0.3 + rng.normal(0, 0.2, x.size))
    ref = stats.linregress(np.log(x), np.log(y))
    half = stats.t.ppf(0.9, x.size - 2) * ref.stderr
    fit = loglog_fit(x, y, confidence=0.8)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-12)
    assert (fit.ci_low, fit.ci_high) == pytest.approx((ref.slope - half, ref.slope + half), rel=1e-12)
    assert fit.ci_low < fit.slope < fit.ci_high


@pytest.mark.parametrize("x, y", [([1.0, 2.0], [1.0, 2.0]), ([5.0, 5.0, 5.0], [1.0, 2.0, 3.0])])
def test_rejects_degenerate_inputs(x, y):
    with pytest.raises(ValueError, match="loglog_fit"):
        loglog_fit(np.array(x), np.array(y))
