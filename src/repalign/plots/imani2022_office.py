"""imani2022 Office-31 figures: Table 1 (fine-tuning accuracy) and Fig 16 (alignment drops)."""

from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from repalign.plots import plotter
from repalign.plots.imani2022 import _mean_band


@plotter("imani2022", "table1")
def table1(record, arrays):
    """Measured test accuracy (%): rows are sources (none first), columns targets."""
    acc, rows, cols = arrays["accuracy"], [str(r) for r in arrays["rows"]], [str(c) for c in arrays["cols"]]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.imshow(np.ma.masked_invalid(acc), cmap="viridis", vmin=0, vmax=100)
    for i, j in np.ndindex(acc.shape):
        ax.text(j, i, "-" if np.isnan(acc[i, j]) else f"{acc[i, j]:.1f}", ha="center", va="center",
                color="white" if np.isnan(acc[i, j]) or acc[i, j] < 60 else "black")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="target", ylabel="source (random labels)", title="fine-tuned test accuracy (%)")
    ax.grid(False)
    return fig


@plotter("imani2022", "fig16")
def fig16(record, arrays):
    """Alignment without pretraining minus after pretraining, one curve per source→target pair."""
    curves, tau = arrays["difference_curves"], arrays["thresholds"]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for k, pair in enumerate(arrays["pairs"]):
        _mean_band(ax, tau, curves[k], str(pair).replace("_to_", " → "), plt.cm.tab10(k))
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="threshold τ / √n", ylabel="Δ alignment / ‖y‖² (none − pretrained)")
    ax.legend(fontsize=7)
    return fig
