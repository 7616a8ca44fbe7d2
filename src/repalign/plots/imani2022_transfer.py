"""imani2022 figures of §7.2 and §7.3: CNN vs hand-crafted features (Figs 13, 20)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from repalign.plots import plotter
from repalign.plots.imani2022 import _mean_band

COLOURS = {"original": "tab:blue", "init": "tab:orange", "cnn": "tab:green", "hog": "tab:red",
           "sift": "tab:purple", "rbf": "tab:brown"}
LEARNERS = ("cnn", "hog", "sift", "rbf")


def _cnn_vs_handcrafted(record, arrays):
    """(a) original/init/transfer when present, (b) alignment by feature, (c, d) MSE and logistic curves."""
    baselines = "alignment.original" in arrays
    reps = [r for r in LEARNERS if f"alignment.{r}" in arrays]
    panels = ["baselines"] * baselines + ["alignment", "mse", "logistic"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    tau, steps = arrays["thresholds"], arrays["steps"] + 1
    for ax, panel in zip(axes, panels):
        if panel in ("baselines", "alignment"):
            names = [r for r in ("original", "init", "cnn") if f"alignment.{r}" in arrays] if panel == "baselines" \
                else reps
            for rep in names:
                _mean_band(ax, tau, arrays[f"alignment.{rep}"], "transfer" if rep == "cnn" else rep, COLOURS[rep])
            ax.set(xlabel="threshold τ", ylabel="alignment / ‖y‖²")
        else:
            for rep in reps:
                _mean_band(ax, steps, arrays[f"train_curve.{panel}.{rep}"], f"{rep} train", COLOURS[rep], "--")
                _mean_band(ax, steps, arrays[f"test_curve.{panel}.{rep}"], f"{rep} test", COLOURS[rep])
            ax.set(xscale="log", xlabel="GD step + 1", ylabel=f"{panel} loss", title=f"{panel} loss")
        ax.legend(fontsize=6)
    missing = sorted(record.get("not_run_metrics") or {})
    fig.tight_layout()
    if missing:
        fig.text(0.5, -0.02, f"not run: {', '.join(missing)}", ha="center", va="top", fontsize=7)
    return fig


@plotter("imani2022", "fig13")
def fig13(record, arrays):
    return _cnn_vs_handcrafted(record, arrays)


@plotter("imani2022", "fig20")
def fig20(record, arrays):
    return _cnn_vs_handcrafted(record, arrays)
