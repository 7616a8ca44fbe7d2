"""imani2022 figures."""

from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from repalign.plots import missing_panel, plotter

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


# ---- Figs 1, 2, 4-9, 17, 18 ----------------------------------------------------------------

CT_REP_COLOURS = {"nn": "tab:red", "rbf": "tab:purple", "dictionary": "tab:blue"}


@plotter("imani2022", "fig1")
def fig1(record, arrays):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rep, colour in CT_REP_COLOURS.items():
        steps = np.arange(arrays[f"train_curve.{rep}"].shape[-1])
        _mean_band(ax, steps, arrays[f"train_curve.{rep}"], f"{rep} train", colour, "--")
        _mean_band(ax, steps, arrays[f"test_curve.{rep}"], f"{rep} test", colour, "-")
    ax.set(xscale="log", xlabel="GD step", ylabel="MSE", title="linear models on CT representations")
    ax.legend(fontsize=7)
    return fig


@plotter("imani2022", "fig2")
def fig2(record, arrays):
    titles = {"raw_true": "(a) inputs, true labels", "raw_shuffled": "(b) inputs, shuffled labels",
              "hidden_init": "(c) hidden, before training", "hidden_trained": "(d) hidden, after training"}
    shown = 40  # "zoomed in to the region of interest"
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
    twins = [ax.twinx() for ax in axes]
    for ax, twin, (panel, title) in zip(axes, twins, titles.items()):
        mass, sigma = arrays[f"mass.{panel}"].mean(axis=0)[:shown], arrays[f"sigma.{panel}"].mean(axis=0)[:shown]
        index = np.arange(1, mass.size + 1)
        ax.vlines(index, 0, mass, color="tab:orange", linewidth=2.5, label="(u_iᵀy)² / ‖y‖²")
        ax.set(title=title, xlabel="singular value index")
        twin.plot(index, sigma, color="tab:blue", label="σ_i (right axis, log)")
        twin.set_yscale("log")
        twin.grid(False)
    axes[0].set_ylabel("label projection share (bars)")
    twins[-1].set_ylabel("singular value σ_i (line)")
    bars, line = axes[0].get_legend_handles_labels(), twins[0].get_legend_handles_labels()
    twins[0].legend(bars[0] + line[0], bars[1] + line[1], fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig4")
def fig4(record, arrays):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    x = arrays["x"]
    for ax, name, title in zip(axes[:2], ("labeling1", "labeling2"), ("labeling 1 (along v1)", "labeling 2 (along v2)")):
        ax.scatter(x[:, 0], x[:, 1], c=arrays[f"y.{name}"], cmap="viridis", s=6)
        ax.set(title=title, aspect="equal", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
        _mean_band(axes[2], arrays["thresholds"], arrays[f"curve.{name}"], name,
                   "tab:green" if name == "labeling1" else "tab:red")
    m = record["metrics"]
    axes[2].set(title=f"alignment (σ1 = {m['sigma_1']:.2f}, σ2 = {m['sigma_2']:.2f})", xlabel="threshold τ",
                ylabel="alignment / ‖y‖²")
    axes[2].legend()
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig5")
def fig5(record, arrays):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rep, colour in CT_REP_COLOURS.items():
        _mean_band(ax, arrays["thresholds"], arrays[f"curve.{rep}"], rep, colour)
    ax.set(xlabel="threshold τ", ylabel="alignment (Eq. 2)", title="CT representations")
    ax.legend()
    return fig


def _sweep_grid(record, arrays, sweeps: list[str]):
    """Rows = sweeps, columns = tasks: input, init (dashed), trained (solid); a task without data
    is a placeholder column."""
    tasks = ("cifar10", "mnist", "ct")
    fig, axes = plt.subplots(len(sweeps), len(tasks), figsize=(4 * len(tasks), 3 * len(sweeps)), squeeze=False)
    for j, task in enumerate(tasks):
        if f"input_curve.{task}" not in arrays:
            missing_panel(axes[0, j], record, task, task)
            for ax in axes[1:, j]:
                ax.axis("off")
            continue
        tau = arrays[f"thresholds.{task}"]
        for i, sweep in enumerate(sweeps):
            labels = arrays[f"labels.{sweep}"]
            colours = plt.cm.viridis(np.linspace(0, 0.9, len(labels)))
            ax = axes[i, j]
            ax.plot(tau, arrays[f"input_curve.{task}"], color="tab:orange", label="input")
            curves = arrays[f"curves.{task}.{sweep}"]
            for k, label in enumerate(labels):
                _mean_band(ax, tau, curves[k, 0], None, colours[k], "--")
                _mean_band(ax, tau, curves[k, 1], str(label), colours[k], "-")
            ax.set(title=f"{task}: {sweep} (dashed: at init)", xlabel="threshold τ", ylabel="alignment / ‖y‖²")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig6")
def fig6(record, arrays):
    return _sweep_grid(record, arrays, ["depth", "width", "activation"])


@plotter("imani2022", "fig17")
def fig17(record, arrays):
    return _sweep_grid(record, arrays, ["batch_size", "optimizer"])


@plotter("imani2022", "fig18")
def fig18(record, arrays):
    return _sweep_grid(record, arrays, ["depth", "width", "activation", "batch_size", "optimizer"])


@plotter("imani2022", "fig7")
def fig7(record, arrays):
    tasks = ("mnist", "ct")
    reps = [str(r) for r in arrays["reps"]]
    depth = sum(r.startswith("trained") for r in reps)
    colours = ["tab:orange"] + list(plt.cm.viridis(np.linspace(0, 0.9, depth))) * 2
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        if f"curves.{task}" not in arrays:
            missing_panel(ax, record, task, task)
            continue
        for k, rep in enumerate(reps):
            _mean_band(ax, arrays[f"thresholds.{task}"], arrays[f"curves.{task}"][k], rep, colours[k],
                       "--" if rep.startswith("init") else "-")
        ax.set(title=task, xlabel="threshold τ", ylabel="alignment / ‖y‖²")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig8")
def fig8(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    sigma = arrays["sigma"]
    for ax, name in zip(axes, ("high_alignment", "low_alignment")):
        weight, loss, end = arrays[f"process_weight.{name}"], arrays[f"process_loss.{name}"], int(arrays[f"fast_end.{name}"])
        for i, (label, colour) in enumerate(((f"fast (σ = {sigma[0]:g})", "tab:blue"),
                                             (f"slow (σ = {sigma[1]:g})", "tab:purple"))):
            optimum = np.sqrt(loss[0, i]) / sigma[i]       # y_i / σ_i; the walk starts at w = 0
            grid = np.linspace(0, 1.2 * optimum, 100)
            ax.plot(grid, (sigma[i] * (grid - optimum)) ** 2, color=colour, label=label)
            ax.plot(weight[0, i], loss[0, i], "o", color="tab:orange", label="start (w = 0)" if i == 0 else None)
            ax.plot(weight[end, i], loss[end, i], "o", color="tab:green",
                    label=f"step {end}: fast direction done" if i == 0 else None)
        ax.set(title=name.replace("_", " "), xlabel="weight along v_i", ylabel="share of the loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig9")
def fig9(record, arrays):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, colour in (("y1", "tab:blue"), ("y2", "tab:red")):
        axes[0].plot(arrays["thresholds"], arrays[f"alignment_curve.{name}"], color=colour, label=name)
        axes[1].plot(arrays[f"learning_curve.{name}"], color=colour, label=name)
    axes[0].set(xlabel="threshold τ", ylabel="alignment (Eq. 2)")
    axes[1].set(xlabel="GD step", ylabel="train loss / initial", xscale="log")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig


@plotter("imani2022", "fig19")
def fig19(record, arrays):
    datasets = ("cifar10", "cifar100")
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        if f"curves.{dataset}" not in arrays:
            missing_panel(ax, record, dataset, dataset)
            continue
        reps = [str(r) for r in arrays[f"reps.{dataset}"]]
        colours = plt.cm.tab10(np.arange(len(reps)))
        for k, rep in enumerate(reps):
            _mean_band(ax, arrays[f"thresholds.{dataset}"], arrays[f"curves.{dataset}"][k], rep, colours[k],
                       "--" if rep.startswith("init") else "-")
        ax.set(title=dataset, xlabel="threshold τ", ylabel="alignment / ‖y‖²")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
