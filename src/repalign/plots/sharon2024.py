"""sharon2024 Figs 1–21: epoch × epoch CKA (and DRS) heatmaps on a log epoch axis, error curves.

Epoch 0 (initialisation) is drawn at 0.5 on the log axis. Each run of a figure is one row:
its layers' heatmaps and the train/test error with the early-stopping and perfect-fitting
epochs marked; DRS figures add a row of DRS heatmaps per run (Fig 6: probe test errors).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.experiments.sharon2024.figures import FIGURES
from repalign.plots import plotter

NAMED = ("init", "early_stop", "perfect_fit", "final")


def _edges(grid: np.ndarray) -> np.ndarray:
    """Cell edges on the log axis around each grid epoch (0 drawn at 0.5)."""
    g = np.log(np.maximum(grid, 0.5))
    mid = (g[1:] + g[:-1]) / 2
    return np.exp(np.concatenate([[g[0] - (mid[0] - g[0])], mid, [g[-1] + (g[-1] - mid[-1])]]))


def _heatmap(ax, grid, m, title, vmin=0.0):
    e = _edges(grid)
    mesh = ax.pcolormesh(e, e, m, vmin=vmin, vmax=1.0, cmap="magma", shading="flat")
    ax.set(xscale="log", yscale="log", title=title, xlabel="epoch")
    ax.set_aspect("equal")
    return mesh


def _layers(arrays, prefix, kind="cka"):
    return [k.split(".")[-1] for k in arrays if k.startswith(f"{prefix}.{kind}.")]


def _errors(ax, arrays, prefix):
    grid = np.maximum(arrays[f"{prefix}.error_grid"], 0.5)
    ax.semilogx(grid, arrays[f"{prefix}.train_error"], "o-", ms=3, label="train (trained labels)")
    ax.semilogx(grid, arrays[f"{prefix}.test_error"], "s-", ms=3, label="test")
    for name, idx, style in zip(NAMED[1:3], arrays[f"{prefix}.named"][1:3], ("--", ":")):
        if idx >= 0:
            epoch = int(arrays[f"{prefix}.error_grid"][idx])
            ax.axvline(grid[idx], color="k", ls=style, lw=0.8, label=f"{name} (epoch {epoch})")
    ax.set(xlabel="epoch (0 at 0.5)", ylabel="error (%)", title=f"{prefix}: errors")
    ax.legend(fontsize=6)


def draw_figure(record, arrays, name):
    fig_spec = FIGURES[name]
    rows = [(p, "cka") for p in fig_spec.runs] + [(p, "drs") for p in fig_spec.drs]
    width = max(len(_layers(arrays, p, k)) for p, k in rows) + 1
    fig, axes = plt.subplots(len(rows), width, figsize=(2.6 * width, 2.6 * len(rows)), squeeze=False)
    for r, (prefix, kind) in enumerate(rows):
        grid = arrays[f"{prefix}.grid"] if kind == "cka" else arrays[f"{prefix}.drs_epochs"]
        layers = _layers(arrays, prefix, kind)
        for c, layer in enumerate(layers):
            mesh = _heatmap(axes[r, c], grid, arrays[f"{prefix}.{kind}.{layer}"], f"{prefix} {layer} {kind.upper()}")
        fig.colorbar(mesh, ax=axes[r, len(layers) - 1], fraction=0.046)
        if kind == "cka":
            _errors(axes[r, len(layers)], arrays, prefix)
        else:
            ax = axes[r, len(layers)]
            for j, layer in enumerate(arrays[f"{prefix}.drs_layers"]):
                ax.semilogx(np.maximum(grid, 0.5), arrays[f"{prefix}.probe_error"][:, j], "o-", ms=3, label=str(layer))
            ax.set(xlabel="epoch (0 at 0.5)", ylabel="probe test error (%)", title=f"{prefix}: probes")
            ax.legend(fontsize=6)
        for ax in axes[r, len(layers) + 1:]:
            ax.axis("off")
    if fig_spec.other_init:
        ax = axes[0, -1]
        ax.clear()
        grid = np.maximum(arrays["noise0.grid"], 0.5)
        ax.semilogx(grid, arrays["conv1.vs_own_init"], "o-", ms=3, label="vs own init")
        ax.semilogx(grid, arrays["conv1.vs_other_init"], "s-", ms=3, label="vs another init")
        ax.set(xlabel="epoch (0 at 0.5)", ylabel="CKA", title="conv1 vs initialisations")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def _register(name):
    @plotter("sharon2024", name)
    def plot(record, arrays):
        return draw_figure(record, arrays, name)


for _name in FIGURES:
    _register(_name)
