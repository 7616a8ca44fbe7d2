"""imani2022 figures of §7.2 and §7.3: CNN vs hand-crafted features (Figs 13, 20), ImageNet halves (Figs 14, 15, 21)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

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
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig13")
def fig13(record, arrays):
    return _cnn_vs_handcrafted(record, arrays)


@plotter("imani2022", "fig20")
def fig20(record, arrays):
    return _cnn_vs_handcrafted(record, arrays)


def _difference_panels(arrays, per_task: bool):
    """One panel per architecture (Fig 14) or per architecture and layer (Fig 21)."""
    archs = [a for a in ("resnet18", "t2t_vit") if f"diff_curve.{a}" in arrays]
    tau = arrays["thresholds"]
    n_layers = arrays[f"diff_curve.{archs[0]}"].shape[0]
    cols = n_layers if per_task else 1
    fig, axes = plt.subplots(len(archs), cols, figsize=(3.6 * cols + 1, 3.0 * len(archs)), squeeze=False)
    shades = plt.cm.Blues(np.linspace(0.9, 0.4, n_layers))
    for i, arch in enumerate(archs):
        mean = arrays[f"diff_curve.{arch}"]
        for k in range(n_layers):
            ax = axes[i, k if per_task else 0]
            if per_task:
                for curve in arrays[f"diff_curves.{arch}"][k]:
                    ax.plot(tau, curve, color="tab:orange", alpha=0.35, linewidth=0.8)
            ax.plot(tau, mean[k], color="tab:green" if per_task else shades[k], label=f"last{k + 1}")
            ax.axhline(0.0, color="grey", linewidth=0.6)
            ax.set(xlabel="threshold τ", ylabel="alignment difference / ‖y‖²",
                   title=f"{arch} last{k + 1}" if per_task else arch)
        if not per_task:
            axes[i, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig14")
def fig14(record, arrays):
    return _difference_panels(arrays, per_task=False)


@plotter("imani2022", "fig21")
def fig21(record, arrays):
    return _difference_panels(arrays, per_task=True)


@plotter("imani2022", "fig15")
def fig15(record, arrays):
    halves = ("natural", "artificial")
    archs = sorted({k.split(".")[1] for k in record["metrics"] if k.startswith("test_accuracy.")})
    fig, axes = plt.subplots(1, len(archs), figsize=(3.6 * len(archs), 3.0), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        table = np.array([[record["metrics"][f"test_accuracy.{arch}.{s}_to_{t}"] for t in halves] for s in halves])
        ax.imshow(table, cmap="Greens", vmin=table.min() - 5, vmax=100)
        for (r, c), v in np.ndenumerate(table):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=[f"CIFAR-10 {h}" for h in halves],
               yticklabels=[f"ImageNet {h}" for h in halves], title=f"{arch}: test accuracy (%)")
        ax.grid(False)
    fig.tight_layout()
    return fig
