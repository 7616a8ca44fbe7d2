"""lou2022 figures: the theory of §3.4, the depth sweeps (Figs 3, 8, Tables 1–3) and the
alignment hierarchy during training (Figs 1, 2, 7, 9, 10)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from repalign.plots import missing_panel, not_run_panels, plotter


@plotter("lou2022", "theory")
def theory(record, arrays):
    m = record["metrics"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    ax = axes[0, 0]
    depths, l_star = arrays["depths"], arrays["l_star"]
    ax.loglog(depths, l_star, "o", ms=3, label="l*(L), infinite width")
    slope, intercept = arrays["fit_asymptotic"]
    ax.loglog(depths, np.exp(intercept) * depths ** slope, "-",
              label=f"fit on the top decade: slope {slope:.3f}")
    ax.loglog(depths, l_star[-1] * (depths / depths[-1]) ** 0.6, "--", color="k", label="L^(3/5)")
    ax.set(xlabel="depth L", ylabel="equilibrium layer l*", title="(a) Cor. 1: l* = Θ(L^(3/5))")
    ax.legend(fontsize=8)
    inset = ax.inset_axes([0.6, 0.1, 0.36, 0.3])
    inset.semilogx(arrays["local_slope_depth"], arrays["local_slope"], color="tab:red")
    inset.axhline(0.6, color="k", ls="--", lw=0.8)
    inset.set_title("local slope", fontsize=7)
    inset.tick_params(labelsize=6)

    ax = axes[0, 1]
    for depth, colour in zip((100, 1000, 10_000), ("tab:blue", "tab:orange", "tab:green")):
        fwd, bwd = arrays[f"profile{depth}.forward"], arrays[f"profile{depth}.backward"]
        layers = np.arange(1, depth + 1)
        ax.loglog(layers, bwd, ":", color=colour, label=f"IL^b_l, L = {depth}")
        cross = int(np.argmax(bwd >= fwd))
        ax.plot(layers[cross], bwd[cross], "o", color=colour)
    ax.loglog(layers, fwd, "-", color="k", label="IL^f_l (independent of L)")
    ax.set(xlabel="layer l", ylabel="information loss", ylim=(1e-10, 2),
           title="(b) forward and backward information loss; dots: equilibrium")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    fwd = arrays["forward_loss"]
    layers = np.arange(1, fwd.size + 1)
    fit_l = arrays["forward_fit_layers"]
    ax.loglog(layers, fwd, label="sup |I^f_l − 1/2|")
    ax.loglog(fit_l, fwd[fit_l[-1] - 1] * (fit_l / fit_l[-1]) ** -2.0, "--", color="k", label="l^(−2)")
    ax.set(xlabel="layer l", ylabel="forward information loss",
           title=f"(c) Thm 1: fitted exponent {m['forward_loss_exponent']:.3f}")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    bwd = arrays["backward_loss"]
    depth = bwd.size
    fit_l = arrays["backward_fit_layers"]
    ratio = depth / np.arange(1, depth + 1)
    ax.loglog(ratio, bwd, label=f"sup |I^b_l|, L = {depth}")
    ax.loglog(depth / fit_l, bwd[fit_l[0] - 1] * (fit_l / fit_l[0]) ** 3.0, "--", color="k", label="(L/l)^(−3)")
    ax.set(xlabel="L / l", ylabel="backward information loss",
           title=f"(d) Thm 2: fitted exponent {m['backward_loss_exponent']:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _depth_sweep(record, arrays):
    m = record["metrics"]
    panels = [str(p) for p in arrays["panels"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for ax, dataset in zip(axes[0], panels):
        heat = arrays[f"{dataset}.relative_alignment"]
        depths = np.unique(arrays[f"{dataset}.depths"])
        for i, depth in enumerate(depths):
            layers = np.arange(1, depth + 1)
            points = ax.scatter(np.full(depth, depth), layers, c=heat[i, :depth], cmap="magma", vmin=0, vmax=1,
                                s=12, marker="s")
        ax.scatter(arrays[f"{dataset}.depths"], arrays[f"{dataset}.argmax"], marker="x", color="tab:cyan",
                   s=50, label="argmax layer")
        slope, intercept, fixed = arrays[f"{dataset}.fit"]
        grid = np.linspace(depths[0], depths[-1], 50)
        ax.plot(grid, np.exp(fixed) * grid ** 0.6, "--", color="tab:green", label="log l = 3/5 log L + C")
        ax.plot(grid, np.exp(intercept) * grid ** slope, "-", color="tab:blue",
                label=f"free fit: slope {slope:.2f} [{m[f'fitted_slope_ci_low.{dataset}']:.2f}, "
                      f"{m[f'fitted_slope_ci_high.{dataset}']:.2f}]")
        ax.set(xscale="log", yscale="log", xlabel="depth L", ylabel="layer l",
               title=f"{dataset}\nC at slope 3/5: {fixed:.2f}; mean test acc {m[f'mean_test_accuracy.{dataset}']:.1f}%")
        ax.legend(fontsize=7, loc="upper left")
    fig.colorbar(points, ax=axes[0], label="A_l / max_l A_l", shrink=0.8)
    return fig


for _figure in ("fig3", "fig8"):
    plotter("lou2022", _figure)(_depth_sweep)


def _depth_table(record, arrays):
    m = record["metrics"]
    depths = np.array([int(k.split("depth")[1]) for k in m if k.startswith("test_accuracy.depth")])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, colour, style in (("train_accuracy", "tab:orange", "s-"), ("test_accuracy", "tab:blue", "o--")):
        runs = arrays[key]  # train drawn first and larger, so that a test curve on top of it stays visible
        ax.plot(depths, runs.mean(axis=1), style, color=colour, ms=7 if key == "train_accuracy" else 4,
                label=key.replace("_", " "))
    ax.set_xticks(depths, [f"{d}\n{m[f'epochs.depth{d}']:.0f} ep\nlr {m[f'lr.depth{d}']:g}" for d in depths],
                  fontsize=6)
    ax.set(xlabel="depth L (epochs, learning rate)", ylabel="accuracy (%)")
    ax.legend(fontsize=8)
    return fig


for _table in ("table1", "table2", "table3"):
    plotter("lou2022", _table)(_depth_table)


def _hierarchy(record, arrays):
    shown = [str(p) for p in arrays["panels"]]
    panels = shown + not_run_panels(record, shown)
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.3 * len(panels)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]})
    m = record["metrics"]
    for row, panel in zip(axes, panels):
        if panel not in shown:
            missing_panel(row[0], record, panel, panel)
            row[1].axis("off")
            continue
        grid, alignment = arrays[f"{panel}.grid"], arrays[f"{panel}.alignment"]
        n_layers = alignment.shape[1]
        colours = plt.cm.viridis(np.linspace(0, 0.95, n_layers))
        ax = row[0]
        for layer in range(n_layers):
            ax.plot(grid, alignment[:, layer], "o-", ms=2, color=colours[layer],
                    label=f"layer {layer + 1}" if n_layers <= 10 or layer % 5 == 4 or layer == 0 else None)
        loss = arrays[f"{panel}.epoch_train_loss"]
        twin = ax.twinx()
        twin.plot((np.arange(loss.size) + 1) * int(arrays[f"{panel}.steps_per_epoch"]), loss, "ks--", lw=1, ms=4,
                  label="train loss (right axis)")
        twin.set_ylabel("train loss (epoch mean)")
        twin.grid(False)
        ax.set_xscale("symlog", linthresh=1)
        ax.set(xlabel="iteration", ylabel="alignment A_l", title=panel)
        lines, loss_line = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
        twin.legend(lines[0] + loss_line[0], lines[1] + loss_line[1], fontsize=6, ncol=2)
        ax = row[1]
        ax.bar(np.arange(1, n_layers + 1), alignment[-1], color=colours)
        ax.set(xlabel="layer l", ylabel="final A_l",
               title=f"test acc {m[f'test_accuracy.{panel}']:.1f}%, argmax layer {m[f'argmax_layer.{panel}']:.0f}")
    fig.tight_layout()
    return fig


for _figure in ("fig1", "fig2", "fig7", "fig9", "fig10"):
    plotter("lou2022", _figure)(_hierarchy)
