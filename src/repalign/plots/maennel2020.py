"""maennel2020 figures and tables, from result files only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.errors import RepalignError
from repalign.plots import plotter

PAPER = "maennel2020"
TABLES = ("table1", "table2", "table3", "table4", "table5", "table6", "table7")
COLUMNS = ("none", "l1", "l12", "l123")


@plotter(PAPER, "appd1")
def appd1(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for ax, prefix, title in ((axes[0], "", "5×5 patch covariance: two disjoint halves of the images"),
                              (axes[1], "weights_", "first-layer filter covariance: two disjoint groups of runs")):
        i = np.arange(1, len(arrays[prefix + "sigma_sq"]) + 1)
        ax.semilogy(i, arrays[prefix + "sigma_sq"], "o-", label="σ_i² (first sample)")
        ax2 = ax.twinx()
        ax2.plot(i, arrays[prefix + "overlap"], "s", color="C1", label="|<e_i, e'_i>|")
        ax2.set(ylim=(0, 1.02), ylabel="|<e_i, e'_i>|")
        ax.set(xlabel="i", ylabel="eigenvalue σ_i²", title=title)
        ax.title.set_fontsize(8)
        ax.legend(handles=ax.get_lines() + ax2.get_lines(), loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig19")
def fig19(record, arrays):
    lambdas, sizes = arrays["lambdas"], arrays["sizes"]
    gaps = ("large_gap", "middle_gap", "small_gap")
    fig, axes = plt.subplots(len(lambdas), len(sizes), figsize=(9, 9), subplot_kw={"projection": "polar"})
    for i, lam in enumerate(lambdas):
        for j, n in enumerate(sizes):
            angles = arrays[f"angles.{gaps[i]}.n{n}"] + np.pi / 2  # the λ axis drawn vertical
            ax = axes[i, j]
            for a in angles:
                ax.plot([a, a + np.pi], [1, 1], lw=0.5, color="C0")
            ax.set_title(f"λ={lam:.3g}, n={n}\nstd {arrays['std'][i, j]:.3g} rad", fontsize=8)
            ax.set_yticklabels([])
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig23")
def fig23(record, arrays):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in ("f1", "f2", "f3"):
        ax.plot(np.arange(1, 17), arrays[name], "o-", label=name)
    ax.set(xlabel="eigenvector index i (largest eigenvalue first)", ylabel="τ_i")
    ax.legend()
    return fig


@plotter(PAPER, "fig2")
def fig2(record, arrays):
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.maximum(arrays["epochs"], 0.5)
    for k, labels in enumerate(("random_labels", "real_labels")):
        for basis, ls in (("data", "-"), ("random_basis", "--")):
            ax.semilogx(epochs, arrays[f"{basis}.{labels}"], ls, color=f"C{k}", label=f"{labels}, {basis}")
    ax.set(xlabel="epoch (0 drawn at 0.5)", ylabel="misalignment M(Σ, Σ_w)")
    ax.legend(fontsize=7)
    return fig


def _f_sigma(ax, arrays, prefix, title):
    keys = sorted({k.rsplit(".", 1)[0] for k in arrays if k.startswith(prefix)})
    for i, k in enumerate(keys):  # ten colours, then dashed: every curve stays distinguishable
        ax.plot(arrays[f"{k}.sigma"], arrays[f"{k}.tau"], ".-" if i < 10 else ".--", color=f"C{i % 10}",
                label=k[len(prefix):] or k)
    ax.set(xlabel="σ", ylabel="τ = f(σ)", title=title)
    ax.legend(fontsize=6)


@plotter(PAPER, "fig4")
def fig4(record, arrays):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    _f_sigma(axes[0], arrays, "synthetic_fc256", "Gaussian input, FC 256-256")
    _f_sigma(axes[1], arrays, "cifar_random_labels.", "CIFAR-10, random labels")
    _f_sigma(axes[2], arrays, "cifar_real_labels.", "CIFAR-10, real labels")
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig20")
def fig20(record, arrays):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, name in zip(axes, ("e1_left", "e1_middle", "e1_right")):
        _f_sigma(ax, arrays, name, name)
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig21")
def fig21(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _f_sigma(axes[0], arrays, "", "CIFAR-10 approximations, 27×27, stride 3, random labels")
    axes[0].set_xscale("log")
    _f_sigma(axes[1], arrays, "", "zoom: the largest σ")
    sigma = arrays["gaussian.sigma"]
    top = sigma >= np.quantile(sigma, 0.6)
    taus = np.concatenate([arrays[k][top] for k in arrays if k.endswith(".tau")])
    axes[1].set(xlim=(sigma[top].min() * 0.95, sigma.max() * 1.05), ylim=(taus.min() * 0.95, taus.max() * 1.05))
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig22")
def fig22(record, arrays):
    fig, ax = plt.subplots(figsize=(6, 4))
    _f_sigma(ax, arrays, "", "real CIFAR-10 crops, strides 3 / 2 / 1, random labels")
    ax.set_xscale("log")
    fig.tight_layout()
    return fig


def _table(record, arrays):
    m = record["metrics"]
    rows = [[f"{it} {split}"] + [f"{m[f'accuracy.{it}.{split}.{c}']:.3f}" for c in COLUMNS]
            for it in ("early", "final") for split in ("train", "test")]
    fig, ax = plt.subplots(figsize=(6, 1.8))
    ax.axis("off")
    ax.table(cellText=rows, colLabels=["", "{}", "{1}", "{1,2}", "{1,2,3}"], loc="center")
    ax.set_title(record["notes"][0] if record["notes"] else "", fontsize=7)
    return fig


for _name in TABLES:
    plotter(PAPER, _name)(_table)


def _curves(ax, arrays, prefix, title):
    steps = arrays["steps"]
    for key in sorted(k for k in arrays if k.startswith(prefix)):
        ax.plot(steps, arrays[key], "o-", ms=3, label=key[len(prefix):])
    ax.set(xlabel="downstream step", ylabel="accuracy (whole training set)", title=title)
    ax.legend(fontsize=7)


@plotter(PAPER, "fig5")
def fig5(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, labels in zip(axes, ("real_labels", "random_labels")):
        _curves(ax, arrays, f"{labels}.", f"downstream {labels}")
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig8")
def fig8(record, arrays):
    widths = ("width64", "width128", "width1024")
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for i, labels in enumerate(("real_labels", "random_labels")):
        for j, width in enumerate(widths):
            gain = record["metrics"][f"transfer_gain.{labels}.{width}"]
            _curves(axes[i, j], arrays, f"{labels}.{width}.", f"{labels}, {width} (gain {gain:+.3f})")
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig1")
def fig1(record, arrays):
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, exp in zip(axes, ("exp1", "exp2", "exp3", "exp4")):
        _curves(ax, arrays, f"{exp}.", exp)
    fig.tight_layout()
    return fig


def _layers(record, arrays):
    rows = sorted({k.split(".")[0] for k in arrays if k != "steps"})
    archs = ("simple_cnn", "vgg16", "resnet18")
    fig, axes = plt.subplots(len(rows), 3, figsize=(14, 3.8 * len(rows)), squeeze=False)
    for i, labels in enumerate(rows):
        for j, arch in enumerate(archs):
            keys = [k for k in arrays if k.startswith(f"{labels}.{arch}.")]
            ax = axes[i, j]
            for key in sorted(keys):
                ax.plot(arrays[key], "o-", ms=3, label=key.rsplit(".", 1)[1])
            ax.set(title=f"{arch}, downstream {labels}", xlabel="measurement", ylabel="accuracy")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


for _name in ("fig6", "fig9"):
    plotter(PAPER, _name)(_layers)


def _imagenet(record, arrays):
    """Figs 16–18 have only their offline not_run result (drawn as the placeholder by ``figure``)."""
    raise RepalignError(f"maennel2020 {record['artifact']}: the ImageNet runs are not implemented, so an ok "
                        f"result has nothing to draw")


for _name in ("fig16", "fig17", "fig18"):
    plotter(PAPER, _name)(_imagenet)


def _histogram(ax, counts, colour, label):
    edges = np.linspace(0, 1, len(counts) + 1)
    ax.stairs(counts / max(counts.sum(), 1), edges, color=colour, label=label, lw=1.5)


@plotter(PAPER, "fig7")
def fig7(record, arrays):
    """Rows positive / negative, columns init / pretrained / fine-tuned (random labels); the top two conv layers."""
    layers = [str(x) for x in arrays["layers"]][-2:]
    stages = ("init", "pretrained", "finetuned_random")
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
    for i, name in enumerate(("positive", "negative")):
        for j, stage in enumerate(stages):
            ax = axes[i, j]
            for k, layer in enumerate(layers):
                _histogram(ax, arrays[f"{name}.{stage}.{layer}.units"], f"C{k}", layer)
            top3 = record["metrics"][f"mean_active_fraction.{name}.{stage}.top3"]
            ax.set(title=f"{name}, {stage} (top3 mean {top3:.3f})", ylabel="fraction of neurons")
            ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("fraction of held-out images activating the neuron")
    fig.tight_layout()
    return fig


def _all_layers(record, arrays, name):
    """Per stage: layer × bin maps of the unit (top) and example (bottom) histograms, each row normalised."""
    layers = [str(x) for x in arrays["layers"]]
    stages = ("init", "pretrained", "finetuned_real", "finetuned_random")
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharey=True)
    for j, stage in enumerate(stages):
        for i, (kind, xlabel) in enumerate((("units", "fraction of images activating a neuron"),
                                            ("examples", "fraction of neurons an image activates"))):
            rows = np.stack([arrays[f"{name}.{stage}.{layer}.{kind}"] for layer in layers]).astype(float)
            rows /= np.maximum(rows.sum(1, keepdims=True), 1)
            ax = axes[i, j]
            ax.imshow(rows, aspect="auto", origin="upper", extent=(0, 1, len(layers) - 0.5, -0.5), cmap="viridis")
            ax.set(title=f"{name}, {stage}", xlabel=xlabel)
            ax.set_yticks(range(len(layers)), layers, fontsize=7)
    fig.tight_layout()
    return fig


@plotter(PAPER, "fig10")
def fig10(record, arrays):
    return _all_layers(record, arrays, "negative")


@plotter(PAPER, "fig11")
def fig11(record, arrays):
    return _all_layers(record, arrays, "positive")


@plotter(PAPER, "fig24")
def fig24(record, arrays):
    nets = ("two_layer", "deep")
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharey=True)
    for i, net in enumerate(nets):
        its, switch = arrays[f"{net}.iterations"], float(arrays[f"{net}.switch"][0])
        for j, labels in enumerate(("real_labels", "random_labels")):
            ax = axes[i, j]
            for key in sorted(k for k in arrays if k.startswith(f"{net}.{labels}.")):
                ax.plot(its, arrays[key], ".-", ms=3, label=key.rsplit(".", 1)[1])
            ax.axvline(switch, color="grey", ls="--", lw=0.8)
            ax.set(title=f"{net}, downstream {labels}", xlabel="iteration (upstream, then downstream)",
                   ylabel="fraction of active units (held out)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
