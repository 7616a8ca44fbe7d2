"""Power-law fits: least squares of log y on log x with a Student-t slope interval.

Used for lou2022's equilibrium slope (Cor. 1, l* = Θ(L^(3/5))) in theory and in
the depth sweep (Sec. 3.4, Fig 3). numpy only; the t quantile comes from
``scipy.special`` on first use, which keeps this module cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LogLogFit", "loglog_fit"]


@dataclass(frozen=True)
class LogLogFit:
    """log y = slope · log x + intercept, with a two-sided confidence interval for the slope."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float


def loglog_fit(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> LogLogFit:
    """Ordinary least squares of log ``y`` on log ``x`` (n ≥ 3 points, x not all equal).

    The slope interval is slope ± t_{n−2}((1 + confidence)/2) · se, with
    se² = Σ r² / ((n − 2) Σ (u − ū)²) for residuals r and u = log x.
    """
    from scipy.special import stdtrit

    u, v = np.log(np.asarray(x, dtype=np.float64)), np.log(np.asarray(y, dtype=np.float64))
    if u.shape != v.shape or u.ndim != 1 or u.size < 3:
        raise ValueError(f"loglog_fit needs two 1-D arrays of ≥ 3 equal-length points, got {u.shape} and {v.shape}")
    du = u - u.mean()
    sxx = float(du @ du)
    if sxx == 0.0:
        raise ValueError("loglog_fit needs at least two distinct x values")
    slope = float(du @ (v - v.mean())) / sxx
    intercept = float(v.mean() - slope * u.mean())
    residuals = v - (slope * u + intercept)
    stderr = np.sqrt(float(residuals @ residuals) / ((u.size - 2) * sxx))
    half = float(stdtrit(u.size - 2, 0.5 + confidence / 2)) * stderr
    return LogLogFit(slope, intercept, slope - half, slope + half)
