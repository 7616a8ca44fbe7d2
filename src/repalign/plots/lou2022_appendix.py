"""lou2022 appendix figures: layer-wise feature maximisation (Figs 16, 17) and frozen networks
(Fig 18, Table 4), App. F; kernel spectra and stable rank of VGG19 (Fig 19), App. G.1."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.plots import plotter


def _noise_keys(arrays) -> list[str]:
    return ["noise" + np.format_float_positional(s, trim="0").replace(".", "_") for s in arrays["noise_scales"]]


@plotter("lou2022", "fig18")
def fig18(record, arrays):
    m = record["metrics"]
    keys = _noise_keys(arrays)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    grid = arrays["grid"]
    for ax, key, scale in zip(axes[0], keys, arrays["noise_scales"]):
        alignment = arrays[f"{key}.alignment"]  # [grid, layers]
        colours = plt.cm.viridis(np.linspace(0, 1, alignment.shape[1]))
        for layer in range(alignment.shape[1]):
            ax.plot(np.maximum(grid, 1), alignment[:, layer], color=colours[layer], label=f"layer {layer + 1}")
        ax.set_xscale("log")
        ax.set(xlabel="iteration (0 drawn at 1)", ylabel="alignment A_l",
               title=f"noise scale {scale:g}: test acc. {m[f'test_accuracy.{key}']:.1f}%, "
                     f"peak layer {m[f'argmax_layer.{key}']}")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: lines span the panel
    fig.suptitle("Fig 18: all layers but the last frozen (MNIST)")
    fig.tight_layout()
    return fig


@plotter("lou2022", "table4")
def table4(record, arrays):
    widths = np.sort(arrays["widths"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, scale in enumerate(arrays["noise_scales"]):  # best over epochs, from the per-epoch accuracies
        for split, style in (("train", "o-"), ("test", "s--")):
            ax.plot(widths, [arrays[f"width{w}.{split}_accuracy"][:, i].max() for w in widths], style, color=f"C{i}",
                    label=f"best {split}, noise scale {scale:g}")
    ax.set_xscale("log")
    ax.set(xlabel="width", ylabel="accuracy (%)", title="Table 4: frozen 10-layer MNIST networks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _lfm_figure(record, arrays, dataset: str):
    m = record["metrics"]
    runs = [str(r) for r in arrays["runs"]]
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.8), squeeze=False)
    for ax, run in zip(axes[0], runs):
        alignment = arrays[f"{run}.alignment"]
        layers = np.arange(1, alignment.size + 1)
        ax.bar(layers, alignment, color="tab:orange" if run.startswith("lfm") else "tab:blue")
        kind = "LFM (Algorithm 1)" if run.startswith("lfm") else "end-to-end"
        ax.set(xlabel="layer l", ylabel="final alignment A_l", xticks=layers,
               title=f"{kind}, width {run.split('_w')[1]}: acc. {m[f'test_accuracy.{run}']:.1f}%")
    fig.suptitle(f"{dataset}: layer-wise feature maximisation against end-to-end training")
    fig.tight_layout()
    return fig


@plotter("lou2022", "fig16")
def fig16(record, arrays):
    return _lfm_figure(record, arrays, "MNIST (Fig 16)")


@plotter("lou2022", "fig17")
def fig17(record, arrays):
    return _lfm_figure(record, arrays, "CIFAR-10 (Fig 17)")


@plotter("lou2022", "fig19")
def fig19(record, arrays):
    m = record["metrics"]
    runs = ("random20", "clean")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, run, title in zip(axes, runs, ("(a) 20% random labels", "(b) clean labels")):
        eigs = arrays[f"{run}.eigs"]  # [layers, k]
        colours = plt.cm.viridis(np.linspace(0, 1, eigs.shape[0]))
        for layer, curve in enumerate(eigs):
            ax.semilogy(np.arange(1, curve.size + 1), np.clip(curve, 1e-12, None), color=colours[layer],
                        label=f"layer {layer + 1}" if layer in (0, eigs.shape[0] - 1) else None)
        ax.set(xlabel="i (values below 1e-12 drawn at 1e-12)", ylabel="λ_i / λ_1 of C Ψ_lᵀ Ψ_l C",
               title=f"{title}: test acc. {m[f'test_accuracy.{run}']:.1f}%")
        ax.legend(fontsize=8)
    ax = axes[2]
    for run, colour in zip(runs, ("tab:green", "tab:blue")):
        ranks = arrays[f"{run}.stable_rank"]
        ax.plot(np.arange(1, ranks.size + 1), ranks, "o-", color=colour,
                label=f"{run}: mean {m[f'stable_rank.mean.{run}']:.2f}")
    ax.set(xlabel="layer l", ylabel="stable rank R_l", yscale="log", title="stable rank (cf. Fig 20b)")
    ax.legend(fontsize=8)
    fig.suptitle("Fig 19: VGG19 on CIFAR-10")
    fig.tight_layout()
    return fig
