"""imani2022 figures."""

from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from repalign.plots import plotter

REP_COLOURS = {"original": "tab:blue", "init": "tab:orange", "transfer": "tab:green"}


def _mean_band(ax, x, runs, label, colour, style="-"):
    """Mean over runs (axis 0) with a ±1 standard-error band."""
    mean = runs.mean(axis=0)
    se = runs.std(axis=0, ddof=1) / np.sqrt(runs.shape[0]) if runs.shape[0] > 1 else 0 * mean
    ax.plot(x, mean, style, color=colour, label=label)
    ax.fill_between(x, mean - se, mean + se, color=colour, alpha=0.2, linewidth=0)


def _alignment_panels(arrays, rows: list[str], tasks: list[str], titles: list[str], colours):
    curves, tau = arrays["curves"], arrays["thresholds"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), sharey=True)
    for j, ax in enumerate(np.atleast_1d(axes)):
        for i, rep in enumerate(rows):
            _mean_band(ax, tau, curves[i, j], rep, colours[i])
        ax.set_title(titles[j])
        ax.set_xlabel("threshold τ")
    np.atleast_1d(axes)[0].set_ylabel("alignment / ‖y‖²")
    np.atleast_1d(axes)[-1].legend()
    return fig


@plotter("imani2022", "fig10")
def fig10(record, arrays):
    return _alignment_panels(arrays, list(REP_COLOURS), ["S", "T1", "T2"],
                             ["(a) source task", "(b) similar task", "(c) dissimilar task"],
                             list(REP_COLOURS.values()))


@plotter("imani2022", "fig11")
def fig11(record, arrays):
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    steps = np.arange(arrays["train_curve"].shape[-1])
    for j, task in enumerate(("similar (T1)", "dissimilar (T2)")):
        for i, (rep, colour) in enumerate(REP_COLOURS.items()):
            _mean_band(axes[0, j], steps, arrays["train_curve"][i, j], f"{rep} train", colour, "--")
            _mean_band(axes[0, j], steps, arrays["test_curve"][i, j], f"{rep} test", colour, "-")
            train = arrays["train_curve"][i, j]
            reduction = (1 - train / train[:, :1]).mean(axis=0)
            axes[1, j].plot(reduction, arrays["weight_norm_curve"][i, j].mean(axis=0), color=colour, label=rep)
        axes[0, j].set(title=f"learning curves, {task}", xlabel="GD step", ylabel="MSE", xscale="log")
        axes[1, j].set(title=f"weight norm, {task}", xlabel="fraction of train loss removed", ylabel="‖w‖")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig12")
def fig12(record, arrays):
    n_layers = arrays["curves"].shape[0]
    colours = plt.cm.viridis(np.linspace(0, 0.9, n_layers))
    names = ["input"] + [f"hidden {k}" for k in range(1, n_layers)]
    return _alignment_panels(arrays, names, ["S", "T1"], ["(a) source task", "(b) target task (T1)"],
                             colours)
