"""lou2022 §3.4 theory (Thms 1–2, Cor. 1): information loss and the equilibrium layer.

Everything comes from the exact infinite-width recursions in
``repalign.metrics.equilibrium`` (no training, CPU, every tier):

- l*(L), the layer where forward and backward information loss cross, for L log-spaced
  from 10 to ``max_depth``; ``equilibrium_slope`` is the fitted slope of log l* against
  log L over the top decade [max_depth/10, max_depth] (Cor. 1: 3/5 asymptotically; the
  approach is slow because of the log(l)/l corrections of App. B.2), and
  ``equilibrium_slope_full`` the slope over the whole range, ``equilibrium_slope_fig3``
  over Fig 3's depths L = 10, 20, …, 100 (≈ 0.87, not 3/5: the number a fitted slope of
  the trained sweeps is to be read against). ``max_depth`` stays at
  3·10⁴: beyond it the float64 recursion in c loses accuracy (1 − c_l ≈ 4·10⁻⁹ at
  l = 10⁵ moves by ~10⁻¹³ per layer, and IL^f_l there is ~10% off).
- ``forward_loss_exponent``: slope of log IL^f_l against log l for l in
  [max_depth/10, max_depth] (Thm 1: −2).
- ``backward_loss_exponent``: slope of log IL^b_l against log(L/l) at L = max_depth for
  l in [L/100, L/10], i.e. 1 ≪ l ≪ L (Thm 2: −3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repalign.experiments.registry import Context, Resources, Tiered, analysed, artifact
from repalign.metrics import equilibrium_profile, equilibrium_slope, loglog_fit, relu_correlation_map
from repalign.results import Result

PAPER = "lou2022"
NAMED_DEPTHS = (100, 1000)  # equilibrium_index.depth<L>
FIG3_DEPTHS = np.arange(10, 101, 10)  # the depths of the trained sweeps (Fig 3, Tables 1-3)
EPS = 0.1                   # E_ε of Eq. 10


@dataclass(frozen=True)
class TheorySettings:
    max_depth: int
    depths_per_decade: int = 12
    n_grid: int = 33        # values of c_1 approximating the sup over E_ε
    fit_points: int = 25    # log-spaced points in each fitted range


SETTINGS = Tiered(
    smoke=TheorySettings(max_depth=10_000),
    quick=TheorySettings(max_depth=30_000),
    paper=TheorySettings(max_depth=30_000),
)
RESOURCES = Tiered.same(Resources(runtime_min=5, mem_mb=2000))


def log_points(low: float, high: float, n: int) -> np.ndarray:
    """Distinct integers spaced evenly in log between ``low`` and ``high``."""
    return np.unique(np.geomspace(low, high, n).round().astype(np.int64))


@artifact(PAPER, "theory", settings=SETTINGS, resources=RESOURCES,
          work=lambda s: analysed(depths=s.max_depth, grid=s.n_grid))
def theory(ctx: Context) -> Result:
    """l* against L with the L^(3/5) law, and the forward/backward information-loss rates."""
    s: TheorySettings = ctx.settings
    top = s.max_depth
    n_decades = np.log10(top / 10)
    full = equilibrium_slope(log_points(10, top, int(round(n_decades * s.depths_per_decade)) + 1),
                             eps=EPS, n_grid=s.n_grid)
    asymptotic = equilibrium_slope(log_points(top / 10, top, s.fit_points), eps=EPS, n_grid=s.n_grid)
    fig3 = equilibrium_slope(FIG3_DEPTHS, eps=EPS, n_grid=s.n_grid)
    deepest = equilibrium_profile(top, eps=EPS, n_grid=s.n_grid)
    fwd_layers = log_points(top / 10, top, s.fit_points)
    bwd_layers = log_points(top / 100, top / 10, s.fit_points)

    result = Result()
    m = result.metrics
    m["equilibrium_slope"] = asymptotic.slope
    m["equilibrium_slope_ci_low"], m["equilibrium_slope_ci_high"] = asymptotic.ci_low, asymptotic.ci_high
    m["equilibrium_slope_full"] = full.slope
    m["equilibrium_slope_full_ci_low"], m["equilibrium_slope_full_ci_high"] = full.ci_low, full.ci_high
    m["equilibrium_slope_fig3"] = fig3.slope
    m["forward_loss_exponent"] = loglog_fit(fwd_layers, deepest.forward[fwd_layers - 1]).slope
    m["backward_loss_exponent"] = loglog_fit(top / bwd_layers, deepest.backward[bwd_layers - 1]).slope
    m["correlation_map.g_at_0"] = float(relu_correlation_map(0.0))
    m["correlation_map.g_at_1"] = float(relu_correlation_map(1.0))
    for depth in NAMED_DEPTHS:
        m[f"equilibrium_index.depth{depth}"] = equilibrium_profile(depth, eps=EPS, n_grid=s.n_grid).l_star

    # local slope d log l* / d log L between neighbouring depths, to show the slow approach to 3/5
    log_d, log_l = np.log(full.depths), np.log(full.l_star)
    result.arrays.update({
        "depths": full.depths, "l_star": full.l_star,
        "local_slope": np.diff(log_l) / np.diff(log_d),
        "local_slope_depth": np.exp((log_d[1:] + log_d[:-1]) / 2),
        "fit_full": np.array([full.slope, full.intercept]),
        "fit_asymptotic": np.array([asymptotic.slope, asymptotic.intercept]),
        "fig3_depths": FIG3_DEPTHS, "fig3_l_star": fig3.l_star,
        "forward_loss": deepest.forward, "backward_loss": deepest.backward,
        "forward_fit_layers": fwd_layers, "backward_fit_layers": bwd_layers,
    })
    for depth in (100, 1000, 10_000):
        prof = equilibrium_profile(depth, eps=EPS, n_grid=s.n_grid)
        result.arrays[f"profile{depth}.forward"] = prof.forward
        result.arrays[f"profile{depth}.backward"] = prof.backward
    result.notes += [
        f"E_eps with eps = {EPS}; sup over {s.n_grid} values of c_1 in [-1, 1 - eps]; l* = crossing of "
        "IL^f_l and IL^b_l (q~_L = 1), interpolated in log between integer layers",
        f"equilibrium_slope: fit over L in [{top // 10}, {top}]; equilibrium_slope_full: L in [10, {top}]; "
        "equilibrium_slope_fig3: L = 10, 20, ..., 100 (Fig 3's depths)",
        f"forward_loss_exponent: l in [{top // 10}, {top}]; backward_loss_exponent: L = {top}, "
        f"l in [{top // 100}, {top // 10}]",
    ]
    return result
