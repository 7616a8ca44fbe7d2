"""Infinite-width equilibrium layer of lou2022 §3.4 (Thms 1–2, Cor. 1, App. A–B).

For a ReLU FFNN with He initialisation at infinite width, the correlation
between the pre-activations z_l(x), z_l(x') follows c_{l+1} = g(c_l) with the
ReLU correlation map g (App. A, Eq. 3), starting from c_1 = x·x'/d; the
variances stay 1 (App. B.1). Over the set E_ε of input pairs with
c_1 ∈ [−1, 1 − ε] (Eq. 10), evaluated on a grid of ``n_grid`` values of c_1
including both ends:

- forward information loss (Thm 1): IL^f_l = sup_E |I^f_l − 1/2| with
  I^f_l = q_l / 2 = c_l / 2, i.e. sup_E (1 − c_l) / 2 = Θ(l⁻²);
- backward information (Thm 2, App. A.3 Eq. 4): I^b_l = q̃_L ∏_{k=l}^{L−1} g'(c_k)
  with q̃_L set to 1, and IL^b_l = sup_E |I^b_l| = Θ((l/L)³) for l/L → 0.

The equilibrium property IL^f = Θ(IL^b) gives l* = Θ(L^{3/5}) (Cor. 1). The
Θ constants are not fixed by the paper; we define the equilibrium layer as
the crossing IL^f_l = IL^b_l, located between integer layers by linear
interpolation of log(IL^f_l / IL^b_l). Other constants shift only the
intercept of log l* against log L. The approach to slope 3/5 is slow
(log l / l corrections): the fitted slope is ≈ 0.64 on L ∈ [10³, 10⁴] and
≈ 0.61 on [10⁴, 10⁵].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repalign.metrics.fits import loglog_fit

__all__ = [
    "relu_correlation_map",
    "EquilibriumProfile",
    "equilibrium_profile",
    "SlopeFit",
    "equilibrium_slope",
]


def relu_correlation_map(c: np.ndarray | float) -> np.ndarray:
    """ReLU correlation map g(c) = (c·arcsin c + sqrt(1 − c²))/π + c/2 (lou2022 App. A.3 Eq. 3).

    g(c) = 2 E[φ(u)φ(v)] for standard normals u, v with correlation c and
    φ = ReLU; g(1) = 1, g(0) = 1/π, g(−1) = 0. Vectorised over ``c`` ∈ [−1, 1].
    """
    c = np.asarray(c, dtype=np.float64)
    return (c * np.arcsin(c) + np.sqrt(np.clip(1 - c * c, 0.0, None))) / np.pi + c / 2


@dataclass(frozen=True)
class EquilibriumProfile:
    """Information-loss profile of one depth L (arrays indexed by layer − 1)."""

    layers: np.ndarray  # [L] layer indices 1..L
    forward: np.ndarray  # [L] IL^f_l = sup_E |I^f_l − 1/2|
    backward: np.ndarray  # [L] IL^b_l = sup_E |I^b_l| with q̃_L = 1
    l_star: float  # equilibrium layer: crossing of forward and backward


@dataclass(frozen=True)
class SlopeFit:
    """Least-squares fit log l* = slope · log L + intercept."""

    slope: float
    intercept: float
    ci_low: float  # confidence interval of the slope (Student t)
    ci_high: float
    depths: np.ndarray
    l_star: np.ndarray


class _Recursion:
    """Correlation recursion over a grid of c_1, shared by all depths ≤ max_depth."""

    def __init__(self, max_depth: int, eps: float, n_grid: int):
        if not 0 < eps < 2:
            raise ValueError(f"eps must be in (0, 2), got {eps}")
        corr = np.empty((max_depth, n_grid))
        corr[0] = np.linspace(-1.0, 1.0 - eps, n_grid)
        for layer in range(1, max_depth):
            corr[layer] = np.minimum(relu_correlation_map(corr[layer - 1]), 1.0)
        self.forward = 0.5 * (1.0 - corr).max(axis=1)
        with np.errstate(divide="ignore"):  # g'(−1) = 0 at layer 1 only
            self.log_slope = np.log(np.arcsin(corr) / np.pi + 0.5)  # log g'(c_k)
        # prefix[m] = Σ_{k=2}^{m} log g'(c_k) (0 for m < 2); the k = 1 term is kept apart
        # because it is −inf at c_1 = −1.
        self.prefix = np.concatenate([np.zeros((2, n_grid)), np.cumsum(self.log_slope[1:-1], axis=0)])

    def profile(self, depth: int) -> EquilibriumProfile:
        layers = np.arange(1, depth + 1)
        log_back = self.prefix[depth - 1] - self.prefix[layers - 1]  # Σ_{k=max(l,2)}^{L−1}
        if depth > 1:
            log_back[0] += self.log_slope[0]
        log_back = log_back.max(axis=1)
        forward = self.forward[:depth]
        gap = np.log(forward) - log_back
        if gap[0] <= 0:
            l_star = 1.0
        else:
            i = int(np.argmax(gap <= 0))  # first layer (0-based) past the crossing; gap[-1] ≤ 0
            l_star = i + gap[i - 1] / (gap[i - 1] - gap[i])
        return EquilibriumProfile(layers, forward, np.exp(log_back), float(l_star))


def equilibrium_profile(depth: int, eps: float = 0.1, n_grid: int = 33) -> EquilibriumProfile:
    """Forward/backward information loss per layer and the equilibrium layer l* (lou2022 §3.4).

    ``depth`` L ≥ 1; ``eps`` defines the input set E_ε (Eq. 10); ``n_grid``
    values of c_1 in [−1, 1 − ε] approximate the suprema. See the module
    docstring for the exact definitions. O(L · n_grid) numpy work.
    """
    return _Recursion(depth, eps, n_grid).profile(depth)


def equilibrium_slope(
    depths: Sequence[int], eps: float = 0.1, n_grid: int = 33, confidence: float = 0.95
) -> SlopeFit:
    """Fit log l* against log L over ``depths`` (lou2022 Cor. 1 predicts slope 3/5).

    One recursion up to max(depths) serves all depths. Returns the OLS slope,
    intercept and a two-sided ``confidence`` interval for the slope from the
    Student t distribution with len(depths) − 2 degrees of freedom.
    """
    depths = np.asarray(sorted(set(int(d) for d in depths)))
    if depths.size < 3:
        raise ValueError("equilibrium_slope needs at least 3 distinct depths")
    rec = _Recursion(int(depths[-1]), eps, n_grid)
    l_star = np.array([rec.profile(int(d)).l_star for d in depths])
    fit = loglog_fit(depths, l_star, confidence)
    return SlopeFit(fit.slope, fit.intercept, fit.ci_low, fit.ci_high, depths, l_star)
