"""lou2022 Figs 5 and 6 (App. B.4–B.5): the output Hessian H_w and Approximation 1."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.plots import not_run_panels, plotter


@plotter("lou2022", "fig5")
def fig5(record, arrays):
    m = record["metrics"]
    times = ("t1", "t2", "t3")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))

    ax = axes[0]
    early = np.maximum(arrays["early_grid"], 0.5)  # iteration 0 drawn at 0.5 on the log axis
    ax.semilogx(early, arrays["update_corr"], "o-", label=f"ΨỸ(t+1) − ΨỸ(t), one GD step "
                f"(mean {m['corr.update_vs_hessian_direction.early']:.3f})")
    ax.semilogx(early, arrays["first_order_corr"], "s--", label=f"its first-order term −η H_Ỹ Ψ w "
                f"(mean {m['corr.first_order_update_vs_hessian_direction.early']:.3f})")
    ax.set(xlabel="iteration (first epoch; 0 drawn at 0.5)", ylabel="correlation with −H_w ΨỸ",
           ylim=(-1.05, 1.05), title="(a) Approximation 1 (2), first epoch")
    ax.legend(fontsize=7)

    ax = axes[1]
    grid, alignment = np.maximum(arrays["grid"], 0.5), arrays["alignment"]
    layers = alignment.shape[1]
    colours = plt.cm.viridis(np.linspace(0, 1, layers))
    for layer in range(layers):
        ax.semilogx(grid, alignment[:, layer], color=colours[layer], label=f"layer {layer + 1}")
    for t, step in zip(times, arrays["hw_steps"]):
        ax.axvline(max(step, 0.5), color="k", ls=":", lw=0.8)
        ax.text(max(step, 0.5), ax.get_ylim()[1], t, ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="iteration (0 drawn at 0.5)", ylabel="alignment A_l", title="alignment hierarchy\n")
    ax.legend(fontsize=6, ncol=2)

    ax = axes[2]
    energy = arrays["hw_energy"]
    width = 0.8 / len(times)
    for k, t in enumerate(times):
        ax.bar(np.arange(1, layers + 1) + (k - 1) * width, energy[k], width,
               label=f"{t} (iter. {int(arrays['hw_steps'][k])}), |λ|max {m[f'hw_top_abs_eigenvalue.{t}']:.3g}")
    share = arrays["layer_sizes"] / arrays["layer_sizes"].sum()
    ax.plot(np.arange(1, layers + 1), share, "k_", ms=14, mew=2, zorder=3, label="layer's share of parameters")
    ax.set(xlabel="layer", ylabel="energy (mean over eigenvectors)", xticks=np.arange(1, layers + 1),
           ylim=(0, 1.05 * max(energy.max(), share.max()) + 0.25),
           title=f"(b) top-{arrays['hw_eigenvalues'].shape[-1]} |eigenvalue| eigenvectors of H_w per layer")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


@plotter("lou2022", "fig6")
def fig6(record, arrays):
    panels = list(arrays["panels"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in panels:
        grid = np.maximum(arrays[f"{key}.grid"], 0.5)
        early = record["metrics"][f"neg_corr_y_w.early.{key}"]
        ax.semilogx(grid, arrays[f"{key}.neg_corr"], "o-", ms=3, label=f"{key} (first epoch {early:.3f})")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    missing = not_run_panels(record, [str(p) for p in panels])
    title = "Fig 6: −corr(Ỹ, w_t)"
    if missing:
        title += f"\nnot run (reasons below): {', '.join(missing)}"
    ax.set(xlabel="iteration (0 drawn at 0.5)", ylabel="−corr(Ỹ, w_t)", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
