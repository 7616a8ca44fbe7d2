"""lou2022 Fig 6 (App. B.5.1): −corr(Ỹ, w_t) ≈ 1 early in training (Approximation 1 (1)).

w_t = ∇_F L at iteration t and Ỹ = CY (``hessian.neg_label_gradient_corr``), over a fixed,
class-balanced probe of training examples, measured by a training callback on a log-spaced
iteration grid that also holds the end of the first epoch. The eight panels pair datasets and
architectures as the paper does: FFNNs (Eq. 8, depth 10, width 256, lr 0.003, as in Figs 2
and 7) on MNIST, KMNIST, CIFAR-10 and Fashion-MNIST; VGG19 on CIFAR-10 and CIFAR-100;
ResNet18 on CIFAR-10 and CIFAR-100 (``repalign.models``, lr 0.01 as in Figs 12 and 15). All train with
SGD, momentum and weight decay, batch 128 (``training.TrainingSettings``). A panel whose
dataset is not available offline (KMNIST, CIFAR-100) is ``not_run`` with the reason.

``neg_corr_y_w.early.<dataset>_<arch>`` is the time average of −corr(Ỹ, w_t) over the first
epoch ("corr(w, Ỹ) ≈ −1 during the first training epoch", App. B.5.1), by the trapezoid
rule on the grid; ``collinearity_summary`` adds its value at iteration 0, its first-epoch
maximum, the iteration at which it falls below 0.9, and its final value. The paper does not state how long the Fig 6 networks trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from repalign.errors import DatasetMissing
from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.lou2022.hessian import neg_label_gradient_corr
from repalign.experiments.lou2022.training import (
    ImageTask,
    TrainingSettings,
    alignment_grid,
    load_image_task,
    training_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, Work, artifact
from repalign.models import build
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "lou2022"
PAIRS = (("mnist", "ffnn"), ("kmnist", "ffnn"), ("cifar10", "ffnn"), ("cifar10", "vgg19"),
         ("fashion_mnist", "ffnn"), ("cifar100", "resnet18"), ("cifar10", "resnet18"), ("cifar100", "vgg19"))
FFNN_DEPTH, FFNN_WIDTH, FFNN_LR = 10, 256, 0.003
CNN_LR = 0.01
SUMMARIES = ("init", "early", "max_first_epoch", "first_below_0p9_step", "end")  # neg_corr_y_w.<summary>.<pair>


@dataclass(frozen=True, kw_only=True)
class CollinearitySettings(TrainingSettings):
    epochs: int
    cnn_width: int = 64           # channels of the first CNN stage (64 in VGG19 / ResNet18)


SETTINGS = Tiered(
    smoke=CollinearitySettings(n_runs=1, n_train=64, n_test=20, probe_size=20, align_points=2, width=8,
                               cnn_width=4, epochs=1, batch_size=32),
    quick=CollinearitySettings(n_runs=1, n_train=None, n_test=1000, probe_size=1000, align_points=12, epochs=2),
    paper=CollinearitySettings(n_runs=1, n_train=None, n_test=1000, probe_size=1000, align_points=16, epochs=5),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=20, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=60, mem_mb=16000, gpu=1),
)


def first_epoch_average(steps: np.ndarray, values: np.ndarray, epoch_steps: int) -> float:
    """Time average of ``values`` over iterations 0..``epoch_steps`` (trapezoid rule on ``steps``)."""
    keep = steps <= epoch_steps
    if steps[0] != 0 or not np.any(steps == epoch_steps):
        raise ValueError(f"the grid must hold iteration 0 and the epoch end {epoch_steps}")
    return float(np.trapezoid(values[keep], steps[keep]) / epoch_steps)


def collinearity_summary(grid: np.ndarray, curve: np.ndarray, epoch_steps: int) -> dict[str, float]:
    """−corr(Ỹ, w_t) at iteration 0, its first-epoch average (``early``) and maximum, the first grid
    iteration after that maximum where it is below 0.9 (the last iteration if none), and at the end."""
    first = grid <= epoch_steps
    top = int(np.argmax(np.where(first, curve, -np.inf)))
    below = np.flatnonzero((np.arange(len(grid)) > top) & (curve < 0.9))
    return {"init": float(curve[0]), "early": first_epoch_average(grid, curve, epoch_steps),
            "max_first_epoch": float(curve[top]),
            "first_below_0p9_step": float(grid[below[0]] if below.size else grid[-1]), "end": float(curve[-1])}


def as_images(x: torch.Tensor) -> torch.Tensor:
    """Flat square images [N, C·s·s] back to [N, C, s, s] (C = 1 if C·s·s is a square, else 3)."""
    d = x.shape[1]
    channels = 1 if math.isqrt(d) ** 2 == d else 3
    side = math.isqrt(d // channels)
    return x.view(x.shape[0], channels, side, side)


@torch.no_grad()
def probe_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits the training step would see (BatchNorm on batch statistics) without moving
    the running statistics: the forward pass runs on copies of the buffers."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    return functional_call(model, buffers, (x,))


class CollinearityRecorder:
    """Training callback: −corr(Ỹ, w_t) on the probe at the grid iterations, one value per stacked model."""

    def __init__(self, grid: np.ndarray, probe_x: torch.Tensor, probe_y: torch.Tensor):
        self.grid = [int(g) for g in grid]
        self.probe_x, self.probe_y = probe_x, probe_y
        self.values: dict[int, np.ndarray] = {}

    def __call__(self, step: int, model: nn.Module) -> None:
        if step in self.grid:
            corr = neg_label_gradient_corr(probe_logits(model, self.probe_x), self.probe_y)
            self.values[step] = corr.cpu().numpy().reshape(-1)

    def stacked(self) -> np.ndarray:
        """``[grid points, models]``."""
        return np.stack([self.values[g] for g in self.grid])


def stacked_cross_entropy(x: torch.Tensor, y: torch.Tensor):
    """The shared loop's ``loss_fn`` for a ``StackedFFNN``: each model's mean cross-entropy on its minibatch."""
    def loss_fn(model: StackedFFNN, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x[idx]).transpose(1, 2), y[idx], reduction="none").mean(1)
    return loss_fn


def collinearity_run(task: ImageTask, arch: str, s: CollinearitySettings, seeds: list[int],
                     desc: str) -> dict:
    """Train ``arch`` ('ffnn', 'vgg19', 'resnet18') on ``task`` and record −corr(Ỹ, w_t).

    FFNN seeds train stacked in one ``StackedFFNN``; CNN seeds one after another. Returns
    ``grid`` [G], ``neg_corr`` [G, seeds] and ``steps_per_epoch``.
    """
    device = task.x_train.device
    steps_per_epoch = -(-task.epoch_size // s.batch_size)
    steps = s.epochs * steps_per_epoch
    grid = np.union1d(alignment_grid(steps, s.align_points), [steps_per_epoch])
    optim = OptimConfig("sgd", lr=FFNN_LR if arch == "ffnn" else CNN_LR, momentum=s.momentum,
                        weight_decay=s.weight_decay)
    if arch == "ffnn":
        x, probe_x = task.x_train, task.probe_x
        jobs = [(StackedFFNN(x.shape[1], s.width or FFNN_WIDTH, FFNN_DEPTH, task.n_classes, seeds), seeds)]
        loss_fn = stacked_cross_entropy(x, task.y_train)
    else:
        x, probe_x = as_images(task.x_train), as_images(task.probe_x)
        jobs = [(build(arch, task.n_classes, seed=seed, width=s.cnn_width, in_channels=x.shape[1]), [seed]) for seed in seeds]

        def loss_fn(model, idx):
            return F.cross_entropy(model(x[idx[0]]), task.y_train[idx[0]])

    curves = []
    for net, job_seeds in jobs:
        net.to(device)
        recorder = CollinearityRecorder(grid, probe_x, task.probe_y)
        recorder(0, net)
        sampler = EpochSampler(x.shape[0], s.batch_size, n_models=len(job_seeds), seed=job_seeds[0], device=device)
        train(net, loss_fn, sampler, steps, optim, callback=recorder, desc=desc)
        curves.append(recorder.stacked())
    return {"grid": grid, "neg_corr": np.concatenate(curves, axis=1), "steps_per_epoch": steps_per_epoch,
            "lr": optim.lr, "steps": steps}


def collinearity_work(s: CollinearitySettings) -> Work:
    """Fig 6: one network per dataset/architecture pair, trained ``epochs``."""
    terms = [training_work(s, dataset, s.epochs) for dataset, _ in PAIRS]
    return sum(terms[1:], terms[0])


@artifact(PAPER, "fig6", settings=SETTINGS, resources=RESOURCES, work=collinearity_work)
def fig6(ctx: Context) -> Result:
    """Fig 6: −corr(Ỹ, w_t) against iterations for the eight dataset/architecture pairs."""
    s: CollinearitySettings = ctx.settings
    result = Result()
    tasks: dict[str, ImageTask] = {}
    missing: dict[str, DatasetMissing] = {}
    shown = []
    for dataset, arch in PAIRS:
        key = f"{dataset}_{arch}"
        if dataset not in tasks and dataset not in missing:
            try:
                tasks[dataset] = load_image_task(ctx, dataset, s)
                result.notes += tasks[dataset].notes
            except DatasetMissing as exc:  # this panel is not run; the others still are
                missing[dataset] = exc
        if dataset in missing:
            reason = str(missing[dataset])
            result.not_run.update({f"neg_corr_y_w.{name}.{key}": reason for name in SUMMARIES})
            result.notes.append(f"not run ({reason.splitlines()[0]}): panel {key}")
            continue
        run = collinearity_run(tasks[dataset], arch, s, ctx.seeds, desc=f"{PAPER}/fig6/{key}")
        curve = run["neg_corr"].mean(axis=1)
        summary = collinearity_summary(run["grid"], curve, run["steps_per_epoch"])
        result.metrics.update({f"neg_corr_y_w.{name}.{key}": value for name, value in summary.items()})
        result.arrays.update({f"{key}.grid": run["grid"], f"{key}.neg_corr": curve,
                              f"{key}.steps_per_epoch": np.array(run["steps_per_epoch"])})
        width = (s.width or FFNN_WIDTH) if arch == "ffnn" else s.cnn_width
        result.notes.append(f"{key}: {arch} (width {width}), lr {run['lr']}, {s.epochs} epochs "
                            f"({run['steps']} iterations, {run['steps_per_epoch']} per epoch), "
                            f"{len(ctx.seeds)} seed(s)")
        shown.append(key)
    if not shown:
        raise next(iter(missing.values()))
    result.arrays["panels"] = np.array(shown)
    return result
