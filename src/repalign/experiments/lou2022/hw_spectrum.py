"""lou2022 Fig 5 (App. B.4–B.5): the output Hessian H_w while a depth-10 FFNN learns CIFAR-10.

One FFNN (Eq. 8, depth 10, width 256, lr 0.003, SGD with momentum and weight decay, batch
128: the Fig 2 network) trains while a callback records, on the fixed class-balanced probe
and at the iterations of a log-spaced grid (which holds the end of the first epoch):
the layer alignments A_l (Eq. 7, ``layer_tangent_alignment(method="fast")``), the weights,
and during the first epoch the collinearity check of Fig 5a, Approximation 1 (2):
corr(Ψ(t+1)Ỹ − Ψ(t)Ỹ, −H_w(t)Ψ(t)Ỹ) (``hessian.update_hessian_correlation``; θ(t+1) is a
full-batch gradient step on the probe, Theorem A's update, and the correlation is taken over
all parameters: the paper's projection U is not defined, so U = identity). Beside it, the same
correlation for the update's first-order term −lr H_Ỹ Ψ w, which isolates Approximation 1's
w ≈ −(‖w‖/‖Ỹ‖)Ỹ from what the Hessian misses (for ReLU networks, the jumps of Ψ where
pre-activations change sign), and the correlation of the actual change with that first-order
term, which is what Approximation 2 asserts. Each also per layer: layer 1 holds 60% of the
weights and would otherwise dominate the global correlation.

Fig 5b: at three iterations t1 / t2 / t3, before, during and after the sharp rise in
alignment, the top ``n_eigen`` eigenvectors of H_w by |eigenvalue| (100 in the paper) from
Hessian-vector products and Lanczos (``hessian.top_abs_eigenpairs``), and their energy per
layer: the squared norm of each unit eigenvector restricted to layer l, averaged over the
eigenvectors (so the layers' energies sum to 1). The paper gives no iterations; ours are
t1 = 0, t2 = the first grid iteration at which the peak layer's alignment has made half its
rise (max_t A(t) − A(0)), t3 = the end of training.

Metrics: ``corr.<name>.early`` and ``corr.<name>.early.layer<l>`` for the three
``hessian.UPDATE_CORRELATIONS`` (time averages over the first epoch, trapezoid rule),
``hw_top_abs_eigenvalue.t<k>``, ``hw_energy.t<k>.layer<l>``, ``hw_step.t<k>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repalign.experiments.lou2022.collinearity import (
    first_epoch_average,
    stacked_cross_entropy,
)
from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.lou2022.hessian import (
    UPDATE_CORRELATIONS,
    FlatParams,
    hw_operator,
    layer_energy,
    loss_gradient,
    top_abs_eigenpairs,
    update_hessian_correlation,
)
from repalign.experiments.lou2022.training import (
    ImageTask,
    TrainingSettings,
    alignment_grid,
    load_image_task,
    training_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, artifact
from repalign.metrics import layer_tangent_alignment
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "lou2022"
DATASET, DEPTH, WIDTH, LR = "cifar10", 10, 256, 0.003
TIMES = ("t1", "t2", "t3")


@dataclass(frozen=True, kw_only=True)
class HessianSettings(TrainingSettings):
    epochs: int
    n_eigen: int                  # top |eigenvalue| eigenvectors of H_w (100 in the paper)
    lanczos_tol: float            # ARPACK's relative tolerance on the eigenvalues


SETTINGS = Tiered(
    smoke=HessianSettings(n_runs=1, n_train=64, n_test=20, probe_size=20, align_points=2, width=8, epochs=1,
                          batch_size=32, n_eigen=4, lanczos_tol=1e-4),
    quick=HessianSettings(n_runs=1, n_train=None, n_test=1000, probe_size=200, align_points=16, epochs=10,
                          n_eigen=100, lanczos_tol=1e-4),
    paper=HessianSettings(n_runs=1, n_train=None, n_test=1000, probe_size=200, align_points=24, epochs=100,
                          n_eigen=100, lanczos_tol=1e-4),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=30, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=120, mem_mb=16000, gpu=1),
)


class HessianRecorder:
    """Training callback at the grid iterations, per stacked model: A_l, a copy of the weights
    and, up to ``early_steps``, the Fig 5a correlation."""

    def __init__(self, grid: np.ndarray, task: ImageTask, lr: float, early_steps: int):
        self.grid = [int(g) for g in grid]
        self.task, self.lr, self.early_steps = task, lr, early_steps
        self.alignment: dict[int, np.ndarray] = {}      # step -> [models, layers]
        self.update_corr: dict[int, np.ndarray] = {}    # step -> [models, UPDATE_CORRELATIONS, 1 + layers]
        self.weights: dict[int, list[list[torch.Tensor]]] = {}

    def __call__(self, step: int, model: StackedFFNN) -> None:
        if step not in self.grid:
            return
        members = [model.member(s) for s in range(len(model.seeds))]
        x, y = self.task.probe_x, self.task.probe_y
        self.alignment[step] = np.array([list(layer_tangent_alignment(m, x, y, method="fast").values())
                                         for m in members], dtype=float)
        self.weights[step] = [[p.detach().cpu().clone() for p in m.parameters()] for m in members]
        if step <= self.early_steps:
            self.update_corr[step] = np.array([update_hessian_correlation(m, x, y, self.lr) for m in members])


def rise_times(grid: np.ndarray, curve: np.ndarray) -> tuple[int, int, int]:
    """Indices into ``grid`` of t1 = 0, t2 = first point with half the rise max A − A(0) of ``curve``, t3 = end."""
    rise = curve - curve[0]
    t2 = int(np.flatnonzero(rise >= 0.5 * rise.max())[0])
    return 0, t2, len(grid) - 1


def hw_eigen(member: torch.nn.Module, task: ImageTask, s: HessianSettings) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_eigen`` |eigenvalues| of H_w at ``member``'s weights and their mean energy per layer."""
    flat = FlatParams.of(member)
    with torch.no_grad():
        w = loss_gradient(flat.output(flat.theta, task.probe_x), task.probe_y)
    values, vectors = top_abs_eigenpairs(hw_operator(flat, task.probe_x, w), flat.theta.numel(), s.n_eigen,
                                         device=flat.theta.device, tol=s.lanczos_tol)
    return values, layer_energy(vectors, flat.sizes).mean(axis=0)


@artifact(PAPER, "fig5", settings=SETTINGS, resources=RESOURCES,
          work=lambda s: training_work(s, DATASET, s.epochs))
def fig5(ctx: Context) -> Result:
    """Fig 5: update/Hessian-direction correlation (a) and top-eigenvector energy per layer (b)."""
    s: HessianSettings = ctx.settings
    task = load_image_task(ctx, DATASET, s)
    net = StackedFFNN(task.x_train.shape[1], s.width or WIDTH, DEPTH, task.n_classes, ctx.seeds).to(ctx.device)
    steps_per_epoch = -(-task.epoch_size // s.batch_size)
    steps = s.epochs * steps_per_epoch
    grid = np.union1d(alignment_grid(steps, s.align_points), [steps_per_epoch])
    recorder = HessianRecorder(grid, task, LR, steps_per_epoch)
    recorder(0, net)
    sampler = EpochSampler(task.x_train.shape[0], s.batch_size, n_models=len(ctx.seeds), seed=ctx.seeds[0],
                           device=ctx.device)
    train(net, stacked_cross_entropy(task.x_train, task.y_train), sampler, steps, OptimConfig("sgd", lr=LR, momentum=s.momentum, weight_decay=s.weight_decay),
          callback=recorder, desc=f"{PAPER}/fig5")

    alignment = np.stack([recorder.alignment[g] for g in recorder.grid])     # [G, models, layers]
    early = grid[grid <= steps_per_epoch]
    update_corr = np.stack([recorder.update_corr[g] for g in early]).mean(1)  # seed mean, [G_early, 3, 1 + L]
    values, energies, times = [], [], []
    for m in range(len(ctx.seeds)):
        peak = int(alignment[-1, m].argmax())
        picked = rise_times(grid, alignment[:, m, peak])
        times.append(grid[list(picked)])
        member = net.member(m)
        for i in picked:
            with torch.no_grad():
                for p, saved in zip(member.parameters(), recorder.weights[int(grid[i])][m]):
                    p.copy_(saved)
            v, e = hw_eigen(member, task, s)
            values.append(v)
            energies.append(e)
    values = np.array(values).reshape(len(ctx.seeds), len(TIMES), -1)               # [seeds, 3, n_eigen]
    energies = np.array(energies).reshape(len(ctx.seeds), len(TIMES), -1).mean(0)  # seed mean, [3, layers]

    setup = (f"{DATASET}: FFNN depth {DEPTH}, width {s.width or WIDTH}, lr {LR}, {s.epochs} epochs ({steps} "
             f"iterations, {steps_per_epoch} per epoch), {len(ctx.seeds)} seed(s); H_w and w on the "
             f"{task.probe_x.shape[0]}-example probe; top {s.n_eigen} |eigenvalues| by Lanczos (tol {s.lanczos_tol})")
    picked_note = ("t1 / t2 / t3 = iteration 0 / first grid iteration with half the peak layer's alignment rise / "
                   f"the end (seed 0: {', '.join(str(int(t)) for t in times[0])})")
    result = Result(notes=task.notes + [setup, picked_note])
    m = result.metrics
    for i, name in enumerate(UPDATE_CORRELATIONS):
        m[f"corr.{name}.early"] = first_epoch_average(early, update_corr[:, i, 0], steps_per_epoch)
        for layer in range(1, update_corr.shape[2]):
            m[f"corr.{name}.early.layer{layer}"] = first_epoch_average(early, update_corr[:, i, layer],
                                                                       steps_per_epoch)
    m["argmax_layer"] = int(alignment[-1].mean(0).argmax()) + 1
    for k, name in enumerate(TIMES):
        m[f"hw_step.{name}"] = float(np.mean([t[k] for t in times]))
        m[f"hw_top_abs_eigenvalue.{name}"] = float(np.abs(values[:, k, 0]).mean())
        for layer, e in enumerate(energies[k], start=1):
            m[f"hw_energy.{name}.layer{layer}"] = float(e)
    result.arrays.update({"grid": grid, "alignment": alignment.mean(1), "early_grid": early,
                          "update_corr": update_corr[:, 0, 0], "first_order_corr": update_corr[:, 1, 0],
                          "update_first_order_corr": update_corr[:, 2, 0],
                          "update_corr_by_layer": update_corr[:, :, 1:],  # [G_early, 3, layers]
                          "hw_steps": np.array(times).mean(0), "hw_eigenvalues": values, "hw_energy": energies,
                          "layer_sizes": np.array(FlatParams.of(net.member(0)).sizes)})
    return result
