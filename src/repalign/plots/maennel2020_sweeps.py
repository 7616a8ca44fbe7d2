"""maennel2020 Figs 12–15 (App. B sweeps): AUC pretrained (x) against from scratch (y), one point per
group; below the x = y line, pretraining on random labels trained faster."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.plots import plotter

PAPER = "maennel2020"
ARCHS = ("simple_cnn", "vgg16", "resnet18")  # the order of sweeps.ARCHS (the ``arch`` array's codes)
PANELS = (("train_real", "train accuracy AUC, real labels (TOP)"),
          ("test_real", "test accuracy AUC, real labels (CENTER)"),
          ("train_random", "train accuracy AUC, random labels (BOTTOM)"))
VARIANTS = (("pretrained", "o", "all layers"), ("transfer_first", "s", "first layer"))


def sweep_scatter(record, arrays):
    metrics = record["metrics"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for ax, (panel, title) in zip(axes, PANELS):
        scratch = arrays[f"auc.{panel}.scratch"]
        for code, arch in enumerate(ARCHS):
            mine = arrays["arch"] == code
            for variant, marker, label in VARIANTS:
                key = f"auc.{panel}.{variant}"
                if key in arrays and mine.any():
                    ax.scatter(arrays[key][mine], scratch[mine], marker=marker, edgecolors=f"C{code}",
                               facecolors="none" if variant == "transfer_first" else f"C{code}", linewidths=1.2,
                               alpha=0.8, label=f"{arch}, {label}")
        values = np.concatenate([arrays[k] for k in arrays if k.startswith(f"auc.{panel}.")])
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * (hi - lo) + 1e-3
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="orange", lw=1, label="x = y")
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), xlabel="AUC, pretrained on random labels",
               ylabel="AUC, from scratch",
               title=f"{title}\nfaster (all layers): {metrics[f'frac_groups_faster.{panel}.all']:.2f} of "
                     f"{int(metrics['n_groups'])} groups")
        ax.set_aspect("equal")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


for _name in ("fig12", "fig13", "fig14", "fig15"):
    plotter(PAPER, _name)(sweep_scatter)
