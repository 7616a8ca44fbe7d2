"""lou2022 Fig 4 and Figs 11–15: alignment profiles over batch size × learning rate.

Fig 4 is drawn as in the paper: per panel a grid of small bar charts of the final A_l
(rows: batch size, columns: learning rate), the background coloured by the test loss and
the generalisation loss gap written in the top-left corner. Figs 11–15 show one profile per
run with its gaps, and the epoch-mean training loss until the run stopped.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cm, colors

from repalign.plots import missing_panel, not_run_panels, plotter, plural

PANEL_TITLES = {"ffnn_fmnist": "(a) FFNN on Fashion-MNIST", "resnet18_cifar10": "(b) ResNet18 on CIFAR-10",
                "vgg19_cifar10": "(c) VGG19 on CIFAR-10"}


def _decimals(span: float) -> int:
    """Decimals that tell colour-bar ticks apart over ``span`` (two for spans of 0.1 and more)."""
    return max(2, int(np.ceil(-np.log10(max(span, 1e-9)))) + 1)


def parse_cell(key: str) -> tuple[int, float]:
    """'bs128_lr0_0032' -> (128, 0.0032)."""
    batch, lr = key.split("_", 1)
    return int(batch[2:]), float(lr[2:].replace("_", "."))


@plotter("lou2022", "fig4")
def fig4(record, arrays):
    m = record["metrics"]
    shown = [str(p) for p in arrays["panels"]]
    panels = shown + not_run_panels(record, shown)
    fig = plt.figure(figsize=(5.2 * max(len(panels), 1), 5.2))
    outer = fig.add_gridspec(1, max(len(panels), 1), wspace=0.25)
    for i, panel in enumerate(panels):
        if panel not in shown:
            missing_panel(fig.add_subplot(outer[i]), record, PANEL_TITLES.get(panel, panel), panel)
            continue
        keys = [str(k) for k in arrays[f"{panel}.cells"]]
        cells = {k: parse_cell(k) for k in keys}
        batches = sorted({b for b, _ in cells.values()})
        lrs = sorted({lr for _, lr in cells.values()})
        losses = [m[f"test_loss.{panel}.{k}"] for k in keys]
        norm = colors.Normalize(min(losses), max(losses) if max(losses) > min(losses) else min(losses) + 1e-9)
        top = max(float(arrays[f"{panel}.{k}.profile"].max()) for k in keys) * 1.1
        grid = outer[i].subgridspec(len(batches), len(lrs), hspace=0.08, wspace=0.08)
        box = outer[i].get_position(fig)
        fig.text(box.x0, box.y1 + 0.02, f"{PANEL_TITLES.get(panel, panel)}: Spearman(peak height, test loss) = "
                 f"{m[f'spearman.peak_height_vs_test_loss.{panel}']:.2f}", fontsize=8, va="bottom")
        for (b, lr), key in ((v, k) for k, v in cells.items()):
            r, c = batches.index(b), lrs.index(lr)
            ax = fig.add_subplot(grid[r, c])
            profile = arrays[f"{panel}.{key}.profile"]
            ax.set_facecolor(cm.viridis(norm(m[f"test_loss.{panel}.{key}"])))
            ax.bar(np.arange(1, len(profile) + 1), profile, color="white", edgecolor="k", lw=0.3)
            ax.text(0.03, 0.95, f"{m[f'loss_gap.{panel}.{key}']:.2f}", transform=ax.transAxes, va="top",
                    fontsize=7, color="w")
            ax.set(ylim=(0, top), xticks=[], yticks=[])
            if r == max(batches.index(bb) for bb, ll in cells.values() if ll == lr):
                ax.set_xlabel(f"lr {lr:g}", fontsize=7)
            if c == min(lrs.index(ll) for bb, ll in cells.values() if bb == b):
                ax.set_ylabel(f"bs {b}", fontsize=7)
        colourbar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=fig.axes[-1], shrink=0.8,
                                 label="test loss", format=f"%.{_decimals(norm.vmax - norm.vmin)}f")
        colourbar.ax.tick_params(labelsize=6)
    return fig


def _companion(record, arrays):
    m = record["metrics"]
    runs = [str(p) for p in arrays["panels"] if f"{p}.profile" in arrays]
    target = record["settings"].get("target_loss")
    fig, axes = plt.subplots(2, max(len(runs), 1), figsize=(3.2 * max(len(runs), 1), 5.5), squeeze=False)
    for i, run in enumerate(runs):
        profile = arrays[f"{run}.profile"]
        ax = axes[0, i]
        ax.bar(np.arange(1, len(profile) + 1), profile, color="tab:blue")
        ax.set(xlabel="layer", ylabel="A_l" if i == 0 else None,
               title=f"{run}: acc gap {m[f'acc_gap.{run}']:.1f}%, loss gap {m[f'loss_gap.{run}']:.3f}\n"
                     f"test acc {m[f'test_accuracy.{run}']:.1f}%, {plural(int(m[f'epochs.{run}']), 'epoch')}")
        ax.title.set_fontsize(7)
        ax = axes[1, i]
        curve = arrays[f"{run}.epoch_train_loss"]
        ax.semilogy(np.arange(1, len(curve) + 1), curve, "o-", ms=2)
        if target is not None:
            ax.axhline(target, color="k", ls="--", lw=0.8, label=f"stop at train loss {target:g}")
            ax.legend(fontsize=6)
        ax.set(xlabel="epoch", ylabel="train loss (epoch mean)" if i == 0 else None)
    return fig


for _figure in ("fig11", "fig12", "fig13", "fig14", "fig15"):
    plotter("lou2022", _figure)(_companion)
