"""imani2022 §7.1, Figs 10–12: transfer between peaks functions.

Ten networks (one per run) are trained together as one ``StackedMLP`` on the source task
S. Each run draws its own tasks (S, similar T1, dissimilar T2) and its own data.
- ``peaks_h1`` / ``peaks_h3``: the trained 60-60-1 and 60-60-60-60-1 ReLU networks.
- Fig 10: alignment of the original inputs, the initial and the trained hidden layer
  with S, T1 and T2.
- Fig 11: linear models trained by GD on 100 target points over each representation;
  learning curves (train and test) and weight norms, best of three step sizes. Panels c–d
  ("the norm of weights after a certain reduction of training loss") are summarised by
  ``weight_norm_at_fit``: ‖w‖ at the first step where the train MSE is down to the task's
  ``weight_norm_fit_level`` (a fraction of the initial MSE: ``FIT_LEVEL``, or the
  highest final fraction of any representation and run when one never gets that low, so
  every representation is compared at the same loss reduction).
- Fig 12: alignment of every layer of the 3-hidden-layer network with S and T1.
Alignment is summarised by ``alignment_auc`` (the exact area under the Eq. 2 curve).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repalign.data.peaks import PeaksTasks, draw_tasks, encode, peaks_label, sample_variables
from repalign.experiments.registry import (Context, Resources, Tiered, Work, analysed, artifact, model, trained,
                                          training_examples)
from repalign.metrics import alignment_auc, alignment_curve, normalize_representation
from repalign.models import StackedMLP
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "imani2022"
TASKS = ("S", "T1", "T2")
REPRESENTATIONS = ("original", "init", "transfer")
DATA_SEED_OFFSET = 1_000_003  # keeps each run's data stream apart from its init stream
N_THRESHOLDS = 200
FIT_LEVEL = 0.5  # Fig 11c-d: weights compared where half the train loss is removed (the level is ours)


@dataclass(frozen=True)
class PeaksSettings:
    n_runs: int
    n_train: int
    n_test: int
    epochs: int
    linear_steps: int
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 60
    target_points: int = 100
    linear_lrs: tuple[float, ...] = (0.1, 0.3, 1.0)  # lr < 1/λmax(ΦᵀΦ/n) and λmax ≤ 1 for unit rows


SETTINGS = Tiered(
    smoke=PeaksSettings(n_runs=3, n_train=1000, n_test=200, epochs=3, linear_steps=100),
    quick=PeaksSettings(n_runs=10, n_train=10_000, n_test=1000, epochs=100, linear_steps=2000),
    paper=PeaksSettings(n_runs=10, n_train=10_000, n_test=1000, epochs=500, linear_steps=10_000),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=15, mem_mb=4000, gpu=1),
    paper=Resources(runtime_min=60, mem_mb=4000, gpu=1),
)
MEASURE_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=10, mem_mb=4000),
    paper=Resources(runtime_min=30, mem_mb=8000),
)


def measured_work(s: PeaksSettings) -> Work:
    """Figs 10, 12: each run's three representations measured on its train points."""
    return analysed(models=s.n_runs, representations=len(REPRESENTATIONS), examples=s.n_train)


def linear_work(s: PeaksSettings) -> Work:
    """Fig 11: full-batch GD on the target points, per representation, task and step size."""
    return trained(steps=s.linear_steps, examples=s.target_points, models=s.n_runs,
                   representations=len(REPRESENTATIONS), tasks=len(TASKS), lrs=len(s.linear_lrs))


@dataclass
class PeaksRuns:
    """Every run's tasks and data, stacked along a leading run axis."""

    tasks: list[PeaksTasks]
    x_train: torch.Tensor              # [runs, n_train, 60]
    x_test: torch.Tensor               # [runs, n_test, 60]
    y_train: dict[str, torch.Tensor]   # task -> [runs, n_train], centred by the train mean
    y_test: dict[str, torch.Tensor]    # task -> [runs, n_test], centred by the same mean


def make_runs(seeds: list[int], s: PeaksSettings, device: torch.device) -> PeaksRuns:
    """Regenerate every run's tasks and data from its seed (deterministic, so not stored)."""
    tasks, xs_tr, xs_te, ys_tr, ys_te = [], [], [], {t: [] for t in TASKS}, {t: [] for t in TASKS}
    for seed in seeds:
        g = torch.Generator().manual_seed(seed + DATA_SEED_OFFSET)
        run_tasks = draw_tasks(g)
        v_tr, v_te = sample_variables(s.n_train, g), sample_variables(s.n_test, g)
        tasks.append(run_tasks)
        xs_tr.append(encode(v_tr))
        xs_te.append(encode(v_te))
        for t in TASKS:
            y_tr, y_te = peaks_label(v_tr, getattr(run_tasks, t)), peaks_label(v_te, getattr(run_tasks, t))
            mean = y_tr.mean()
            ys_tr[t].append(y_tr - mean)
            ys_te[t].append(y_te - mean)

    def stack(xs):
        return torch.stack(xs).to(device=device, dtype=torch.float32)
    return PeaksRuns(tasks, stack(xs_tr), stack(xs_te),
                     {t: stack(v) for t, v in ys_tr.items()}, {t: stack(v) for t, v in ys_te.items()})


def _train_peaks(ctx: Context, hidden_layers: int) -> dict:
    s: PeaksSettings = ctx.settings
    runs = make_runs(ctx.seeds, s, ctx.device)
    widths = [runs.x_train.shape[-1]] + [s.width] * hidden_layers + [1]
    net = StackedMLP(widths, seeds=ctx.seeds).to(ctx.device)
    init_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    run_axis = torch.arange(len(ctx.seeds), device=ctx.device)[:, None]
    y_source = runs.y_train["S"]

    def mse_per_run(m, idx):
        pred = m(runs.x_train[run_axis, idx]).squeeze(-1)
        return ((pred - y_source[run_axis, idx]) ** 2).mean(dim=1)

    sampler = EpochSampler(s.n_train, s.batch_size, n_models=len(ctx.seeds), seed=ctx.seeds[0],
                           device=ctx.device)
    log = train(net, mse_per_run, sampler, s.epochs * sampler.steps_per_epoch,
                OptimConfig("adam", lr=s.lr), checkpoint=ctx.checkpoint,
                desc=f"{PAPER}/peaks_h{hidden_layers}")
    with torch.no_grad():
        final_mse = mse_per_run(net, torch.arange(s.n_train, device=ctx.device).expand(len(ctx.seeds), -1))
    epoch_loss = log.losses[: s.epochs * sampler.steps_per_epoch].reshape(
        s.epochs, sampler.steps_per_epoch, -1).mean(axis=1)
    return {"widths": widths, "seeds": ctx.seeds, "init_state": init_state,
            "final_state": net.state_dict(), "epoch_train_mse": epoch_loss,
            "final_train_mse": final_mse.cpu().numpy(), "tasks": [t.named() for t in runs.tasks]}


@model(PAPER, "peaks_h1", settings=SETTINGS, resources=TRAIN_RESOURCES, work=training_examples)
def train_peaks_h1(ctx: Context) -> dict:
    """The 60-60-1 ReLU network of §7.1, trained on S with Adam (lr 1e-3, batch 64, MSE)."""
    return _train_peaks(ctx, hidden_layers=1)


@model(PAPER, "peaks_h3", settings=SETTINGS, resources=TRAIN_RESOURCES, work=training_examples)
def train_peaks_h3(ctx: Context) -> dict:
    """The three-hidden-layer variant of Fig 12."""
    return _train_peaks(ctx, hidden_layers=3)


def hidden_layers(payload: dict, x: torch.Tensor, state: str) -> list[torch.Tensor]:
    """Hidden activations (float64) of the stored networks at ``state`` (init_state/final_state)."""
    net = StackedMLP(payload["widths"], seeds=payload["seeds"]).to(x.device)
    net.load_state_dict(payload[state])
    with torch.no_grad():
        return [h.double() for h in net.forward_with_hidden(x)[1]]


def mean_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean over runs and its standard error."""
    v = values.double().cpu()
    se = v.std(unbiased=True) / np.sqrt(v.numel()) if v.numel() > 1 else torch.tensor(0.0)
    return float(v.mean()), float(se)


def alignment_summary(reps: dict[str, torch.Tensor], labels: dict[str, torch.Tensor],
                      result: Result) -> np.ndarray:
    """Record ``alignment_auc.<rep>.<task>`` (mean, se) and return the normalised curves.

    Curves have shape ``[reps, tasks, runs, N_THRESHOLDS]`` on the grid τ ∈ [0, sqrt(n)],
    each divided by ‖y‖², so every curve starts at 1 (Eq. 2 at τ = 0).
    """
    n = next(iter(reps.values())).shape[-2]
    thresholds = torch.linspace(0, float(np.sqrt(n)), N_THRESHOLDS, dtype=torch.float64)
    curves = np.zeros((len(reps), len(labels), len(next(iter(labels.values()))), N_THRESHOLDS))
    for i, (rep_name, rep) in enumerate(reps.items()):
        phi = normalize_representation(rep.double())
        for j, (task, y) in enumerate(labels.items()):
            y = y.double()
            auc = alignment_auc(phi, y)
            result.metrics[f"alignment_auc.{rep_name}.{task}"], result.metrics[
                f"alignment_auc_se.{rep_name}.{task}"] = mean_se(auc)
            for r in range(phi.shape[0]):
                curve = alignment_curve(phi[r], y[r], thresholds.to(phi.device))
                curves[i, j, r] = (curve / (y[r] ** 2).sum()).cpu().numpy()
    result.arrays["thresholds"] = thresholds.numpy()
    return curves


@artifact(PAPER, "fig10", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("peaks_h1",), work=measured_work)
def fig10(ctx: Context) -> Result:
    """Fig 10: alignment of original / init / transferred representations with S, T1, T2."""
    payload = ctx.load_model("peaks_h1")
    runs = make_runs(payload["seeds"], ctx.settings, ctx.device)
    reps = {"original": runs.x_train,
            "init": hidden_layers(payload, runs.x_train, "init_state")[-1],
            "transfer": hidden_layers(payload, runs.x_train, "final_state")[-1]}
    result = Result()
    result.arrays["curves"] = alignment_summary(reps, runs.y_train, result)
    result.arrays["final_train_mse"] = payload["final_train_mse"]
    result.metrics["source_train_mse"], _ = mean_se(torch.as_tensor(payload["final_train_mse"]))
    result.notes.append(f"tasks per run: {payload['tasks']}")
    return result


def gd_linear(phi_train, y_train, phi_test, y_test, lrs, steps):
    """Full-batch GD on the mean squared error of a zero-initialised linear model.

    ``phi_*`` are ``[runs, n, d]``, ``y_*`` are ``[tasks, runs, n]``. Every (lr, task) pair
    is one column of a weight matrix ``[runs, d, lrs·tasks]``. Losses and gradients use
    only the d×d Gram matrices ΦᵀΦ and Φᵀy, never the n×d features, so a step costs
    O(d²) per column. Returns train loss, test loss and ‖w‖, each
    ``[lrs, tasks, runs, steps + 1]``. The train loss equals ``gd_learning_curve`` with the
    lr rescaled (tested).
    """
    n_lrs, (n_tasks, n_runs, n) = len(lrs), y_train.shape

    def sufficient_statistics(phi, y):  # y [tasks, runs, m] -> ΦᵀΦ, Φᵀy (lr-major columns), yᵀy, m
        cols = y.permute(1, 2, 0).repeat(1, 1, n_lrs)
        return phi.transpose(-1, -2) @ phi, phi.transpose(-1, -2) @ cols, (cols ** 2).sum(-2), y.shape[-1]

    def mse(w, stats):
        gram, proj, sq, m = stats
        return ((w * (gram @ w)).sum(-2) - 2 * (w * proj).sum(-2) + sq) / m

    train_stats, test_stats = sufficient_statistics(phi_train, y_train), sufficient_statistics(phi_test, y_test)
    lr = torch.tensor(lrs, dtype=phi_train.dtype, device=phi_train.device).repeat_interleave(n_tasks)
    w = torch.zeros(n_runs, phi_train.shape[-1], n_lrs * n_tasks, dtype=phi_train.dtype,
                    device=phi_train.device)
    train_loss, test_loss, norms = [], [], []
    for t in range(steps + 1):
        train_loss.append(mse(w, train_stats))
        test_loss.append(mse(w, test_stats))
        norms.append(torch.linalg.vector_norm(w, dim=-2))
        if t < steps:
            w = w - (2.0 / n) * lr * (train_stats[0] @ w - train_stats[1])

    def unpack(history):  # list of [runs, lrs·tasks] -> [lrs, tasks, runs, steps + 1]
        return torch.stack(history, -1).reshape(n_runs, n_lrs, n_tasks, -1).permute(1, 2, 0, 3)
    return unpack(train_loss), unpack(test_loss), unpack(norms)


@artifact(PAPER, "fig11", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("peaks_h1",), work=linear_work)
def fig11(ctx: Context) -> Result:
    """Fig 11: linear models on 100 target points; learning curves and weight norms."""
    s: PeaksSettings = ctx.settings
    payload = ctx.load_model("peaks_h1")
    runs = make_runs(payload["seeds"], s, ctx.device)
    picks = torch.stack([torch.randperm(s.n_train, generator=torch.Generator().manual_seed(seed))[
        : s.target_points] for seed in payload["seeds"]]).to(ctx.device)
    run_axis = torch.arange(len(payload["seeds"]), device=ctx.device)[:, None]
    targets = ("T1", "T2")
    y_tr = torch.stack([runs.y_train[t][run_axis, picks] for t in targets]).double()
    y_te = torch.stack([runs.y_test[t] for t in targets]).double()

    def features(x, state):
        return x.double() if state is None else hidden_layers(payload, x, state)[-1]

    result = Result()
    curves = {k: np.zeros((len(REPRESENTATIONS), len(targets), len(payload["seeds"]), s.linear_steps + 1))
              for k in ("train", "test", "weight_norm")}
    for i, (rep, state) in enumerate(zip(REPRESENTATIONS, (None, "init_state", "final_state"))):
        phi_tr = normalize_representation(features(runs.x_train[run_axis, picks], state))
        phi_te = normalize_representation(features(runs.x_test, state))
        train_l, test_l, norms = gd_linear(phi_tr, y_tr, phi_te, y_te, s.linear_lrs, s.linear_steps)
        learning_auc = (train_l / train_l[..., :1]).mean(-1)             # [lrs, tasks, runs]
        best = learning_auc.mean(-1).argmin(0)                           # best lr per task
        for j, task in enumerate(targets):
            b = int(best[j])
            result.metrics[f"best_lr.{rep}.{task}"] = s.linear_lrs[b]
            result.metrics[f"learning_auc.{rep}.{task}"], result.metrics[
                f"learning_auc_se.{rep}.{task}"] = mean_se(learning_auc[b, j])
            result.metrics[f"test_mse.{rep}.{task}"], result.metrics[
                f"test_mse_se.{rep}.{task}"] = mean_se(test_l[b, j, :, -1])
            for key, arr in (("train", train_l), ("test", test_l), ("weight_norm", norms)):
                curves[key][i, j] = arr[b, j].cpu().numpy()
    result.arrays.update({f"{k}_curve": v for k, v in curves.items()})
    weights_at_fit(curves["train"], curves["weight_norm"], targets, result)
    result.notes.append("learning_auc: mean over GD steps of train MSE / initial train MSE; "
                        "step size chosen per representation and task by the lowest mean learning_auc; "
                        "test_mse at the last step; weight_norm_at_fit = ||w|| at the first step where the train "
                        "MSE is down to weight_norm_fit_level of its initial value")
    return result


def weights_at_fit(train: np.ndarray, norms: np.ndarray, targets: tuple[str, ...], result: Result) -> None:
    """Record ``weight_norm_at_fit.<rep>.<task>`` and ``weight_norm_fit_level.<task>`` (Fig 11c-d).

    ``train`` and ``norms`` are ``[reps, tasks, runs, steps + 1]`` at the chosen step sizes.
    The level is ``FIT_LEVEL`` of the initial train MSE, raised to the highest lowest-reached
    fraction when some representation and run never get that low.
    """
    ratio = train / train[..., :1]
    for j, task in enumerate(targets):
        level = max(FIT_LEVEL, float(ratio[:, j].min(-1).max()))
        result.metrics[f"weight_norm_fit_level.{task}"] = level
        for i, rep in enumerate(REPRESENTATIONS):
            step = (ratio[i, j] <= level).argmax(-1)                      # first step at the level, per run
            at_fit = norms[i, j][np.arange(norms.shape[2]), step]
            result.metrics[f"weight_norm_at_fit.{rep}.{task}"], result.metrics[
                f"weight_norm_at_fit_se.{rep}.{task}"] = mean_se(torch.from_numpy(at_fit))


@artifact(PAPER, "fig12", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("peaks_h3",), work=measured_work)
def fig12(ctx: Context) -> Result:
    """Fig 12: per-layer alignment of the 3-hidden-layer network with S and T1."""
    payload = ctx.load_model("peaks_h3")
    runs = make_runs(payload["seeds"], ctx.settings, ctx.device)
    layers = hidden_layers(payload, runs.x_train, "final_state")
    reps = {"layer0": runs.x_train, **{f"layer{k + 1}": h for k, h in enumerate(layers)}}
    result = Result()
    result.arrays["curves"] = alignment_summary(reps, {t: runs.y_train[t] for t in ("S", "T1")}, result)
    result.metrics["source_train_mse"], _ = mean_se(torch.as_tensor(payload["final_train_mse"]))
    return result
