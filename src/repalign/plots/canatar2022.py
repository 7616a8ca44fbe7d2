"""canatar2022 figures: the ResNet-11 grid (Figs 1, 2, 6, Table I), layer spectra of three of its
models (Figs 3-5) and the traced NTK of an FFNN on MNIST (Figs 7, 8)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.plots import plotter

LAYERS = np.arange(1, 11)


def _per_model(ax, values, title):
    image = ax.imshow(values.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                      extent=(0.5, values.shape[0] + 0.5, 0.5, values.shape[1] + 0.5))
    ax.set(xlabel="model (by test accuracy)", ylabel="layer", title=title)
    return image


@plotter("canatar2022", "fig1")
def fig1(record, arrays):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, title in zip(axes, ("cka_target.train", "cka_target.test", "cka_input.train"),
                              ("(a) CKA(layer, target), train", "(b) CKA(layer, target), test",
                               "(c) CKA(layer, input), train")):
        image = _per_model(ax, arrays[key], title)
    fig.colorbar(image, ax=axes, shrink=0.8)
    return fig


@plotter("canatar2022", "fig2")
def fig2(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("cka_target.train", "target, train"), ("cka_target.test", "target, test")):
        axes[0].errorbar(LAYERS, arrays[key].mean(0), arrays[key].std(0), marker="o", capsize=3, label=label)
    for key, label in (("cka_target.train", "target"), ("cka_input.train", "input")):
        axes[1].errorbar(LAYERS, arrays[key].mean(0), arrays[key].std(0), marker="o", capsize=3, label=label)
    axes[0].set(title="(a) CKA with the target (mean ± sd over models)")
    axes[1].set(title="(b) CKA with target and input, train set")
    for ax in axes:
        ax.set(xlabel="layer", ylabel="CKA")
        ax.legend(fontsize=8)
    return fig


@plotter("canatar2022", "fig6")
def fig6(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    order = np.arange(1, arrays["test_accuracy"].size + 1)
    axes[0].plot(order, arrays["train_accuracy"], "o-", label="train")
    axes[0].plot(order, arrays["test_accuracy"], "o-", label="test")
    axes[0].set(xlabel="model (by test accuracy)", ylabel="accuracy (%)", title="(a) accuracy")
    axes[0].legend(fontsize=8)
    for key, label in (("column.avg_cka_train", "layer-averaged CKA, train"),
                       ("column.avg_cka_test", "layer-averaged CKA, test")):
        axes[1].scatter(arrays["column.test_acc"], arrays[key], label=label, s=15)
    axes[1].set(xlabel="test accuracy (%)", ylabel="CKA", title="(b) layer-averaged target CKA")
    axes[1].legend(fontsize=8)
    return fig


@plotter("canatar2022", "table1")
def table1(record, arrays):
    m = record["metrics"]
    rows = ("skip", "augmentation", "batch_size", "lr", "momentum", "train_loss", "test_acc", "cka_test",
            "avg_cka_test", "avg_cka_train")
    cols = ("train_loss", "test_acc", "cka_test", "cka_train")
    table = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            value = m.get(f"pearson.{r}.{c}")  # absent or None: declared not_run (a constant column)
            table[i, j] = np.nan if value is None else value
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(table, cmap="coolwarm", vmin=-1, vmax=1)
    for (i, j), value in np.ndenumerate(table):
        ax.text(j, i, "" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=30)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(f"Table I: Pearson r over {m['n_models_kept']:.0f} kept runs")
    return fig


def _colour(i: int, n: int):
    """Epoch i of n on one sequential colour map (early = dark)."""
    return plt.cm.viridis(i / max(n - 1, 1))


def _spectra(record, arrays):
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for k, layer in enumerate(("layer9", "layer10")):
        curves = [(epoch, arrays[f"{layer}.epoch{epoch}.eigs"], arrays[f"{layer}.epoch{epoch}.cum_power"])
                  for epoch in arrays["epochs"]]
        _spectrum_column(axes[:, k], curves, "eigenvalue", f"{layer}: eigenspectrum",
                         f"{layer}: cumulative power of the target")
    return fig


for _name in ("fig3", "fig4", "fig5"):
    plotter("canatar2022", _name)(_spectra)


def _spectrum_column(axes, curves, eig_label: str, eig_title: str, power_title: str) -> None:
    """Eigenspectrum (top) and the target's cumulative power C(ρ) (bottom), one line per epoch."""
    for e, (epoch, eigs, cum) in enumerate(curves):
        style = dict(label=f"epoch {epoch}", color=_colour(e, len(curves)))
        axes[0].loglog(np.arange(1, eigs.size + 1), np.maximum(eigs, 1e-30), **style)
        axes[1].semilogx(np.arange(1, cum.size + 1), cum, **style)
    axes[0].set(xlabel="mode", ylabel=eig_label, title=eig_title)
    axes[1].axvline(10, color="k", ls="--", lw=0.8)
    axes[1].set(xlabel="mode ρ", ylabel="C(ρ)", title=power_title)
    for ax in axes:
        ax.legend(fontsize=8)


@plotter("canatar2022", "fig7")
def fig7(record, arrays):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    epochs = np.maximum(arrays["epochs"], 0.5)
    axes[0].semilogx(epochs, arrays["train_accuracy"], "o-", label="train")
    axes[0].semilogx(epochs, arrays["test_accuracy"], "o-", label="test")
    axes[0].set(xlabel="epoch (0 plotted at 0.5)", ylabel="accuracy (%)", title="accuracy")
    for ax, split in zip(axes[1:], ("train", "test")):
        for key, label in (("ntk_target", "A(NTK, target)"), ("ntk_network", "A(NTK, network)"),
                           ("network_target", "A(network, target)")):
            ax.semilogx(epochs, arrays[f"{split}.{key}"], "o-", label=label)
        ax.set(xlabel="epoch", ylabel="kernel alignment (Eq. 4)", title=f"alignments, {split} NTK probe")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


@plotter("canatar2022", "fig8")
def fig8(record, arrays):
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for k, split in enumerate(("train", "test")):
        curves = [(epoch, arrays[f"{split}.eigs"][e], arrays[f"{split}.cum_power"][e])
                  for e, epoch in enumerate(arrays["epochs"])]
        _spectrum_column(axes[:, k], curves, "NTK eigenvalue", f"NTK spectrum, {split}",
                         f"target cumulative power, {split}")
    return fig
