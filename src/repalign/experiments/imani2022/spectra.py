"""imani2022 §4.2, Fig 2: label projections (u_iᵀy)² on the singular vectors of MNIST 0/1.

(a) raw inputs, true labels; (b) raw inputs, shuffled labels; (c, d) the last hidden layer
of a network with 3 hidden layers as wide as the input, trained on the shuffled labels
(Adam, batch 64), before and after training. Every representation gets a bias column and
unit-length rows (``normalize_representation``); labels are ±1. Each run shuffles the
labels with its own seed and trains its own network (runs stacked in one ``StackedMLP``).
The points are class-balanced ("10000 points ... 5000 points from each class"); when the
train split holds fewer of one class (the offline 10,000-image MNIST copy has 1,001 zeros)
both classes are cut to that count, recorded in the notes.

Metric ``label_mass_top10.<panel>`` = Σ_{i ≤ 10} (u_iᵀy)² / ‖y‖² (mean over runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repalign.experiments.imani2022.nets import NetConfig, hidden_layers, train_group
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.tasks import Task, load_task
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.experiments.imani2022.summary import normalized_pair
from repalign.metrics import label_projection_spectrum
from repalign.results import Result

PAPER = "imani2022"
SHUFFLE_SEED_OFFSET = 3_000_017
PANELS = ("raw_true", "raw_shuffled", "hidden_init", "hidden_trained")
TOP_K = 10
SHOWN = 100  # singular values kept for the plot ("zoomed in to the region of interest")


@dataclass(frozen=True)
class ShuffledSettings:
    n_runs: int
    epochs: int
    n_points: int | None  # class-balanced, n_points // 2 per class (None: as many as the smaller class has)
    depth: int = 3


SETTINGS = Tiered(
    smoke=ShuffledSettings(n_runs=2, epochs=1, n_points=200),
    quick=ShuffledSettings(n_runs=2, epochs=60, n_points=10_000),
    paper=ShuffledSettings(n_runs=5, epochs=1000, n_points=10_000),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=20, mem_mb=4000, gpu=1),
    paper=Resources(runtime_min=240, mem_mb=8000, gpu=1),
)
MEASURE_RESOURCES = Tiered.same(Resources(runtime_min=10, mem_mb=4000))


def shuffled_labels(y: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """One random permutation of ``y`` per run: ``[runs, n]``."""
    perms = [torch.randperm(y.shape[0], generator=torch.Generator().manual_seed(seed + SHUFFLE_SEED_OFFSET))
             for seed in seeds]
    return y[torch.stack(perms).to(y.device)]


def _data(ctx: Context, seed: int) -> Task:
    return load_task(ctx, "mnist", ctx.settings.n_points, 0, seed, balanced=True)


def shuffled_work(s: ShuffledSettings) -> Work:
    return trained(epochs=s.epochs, examples=s.n_points, models=s.n_runs)


def spectra_work(s: ShuffledSettings) -> Work:
    """Fig 2: label-projection spectra of the inputs and of the last hidden layer."""
    return analysed(models=s.n_runs, representations=2, examples=s.n_points)


@model(PAPER, "shuffled_mnist", settings=SETTINGS, resources=TRAIN_RESOURCES, work=shuffled_work)
def train_shuffled(ctx: Context) -> dict:
    """The Fig 2 network (3 hidden layers, width 784) trained on shuffled MNIST 0/1 labels."""
    task = _data(ctx, ctx.seeds[0])
    config = NetConfig(depth=ctx.settings.depth, width=task.x_train.shape[1])
    labels = shuffled_labels(task.y_train, ctx.seeds)
    trained = train_group(ctx, task, [config], ctx.settings.epochs, labels=labels, checkpoint=ctx.checkpoint,
                          desc=f"{PAPER}/shuffled_mnist")[config.key]
    return {**trained, "seeds": ctx.seeds, "note": task.note()}


@artifact(PAPER, "fig2", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("shuffled_mnist",), work=spectra_work)
def fig2(ctx: Context) -> Result:
    """Fig 2: label-projection spectra of raw inputs and of the trained network's last hidden layer."""
    payload = ctx.load_model("shuffled_mnist")
    seeds = payload["seeds"]
    task = _data(ctx, seeds[0])
    config = NetConfig(**payload["config"])
    x, y_true = task.x_train, task.y_train
    y_shuffled = shuffled_labels(y_true, seeds)
    init, trained = (hidden_layers(config, x.shape[1], seeds, x, state)[-1]
                     for state in (None, payload["final_state"]))
    panels = {"raw_true": (x, y_true), "raw_shuffled": (x, y_shuffled),
              "hidden_init": (init, y_shuffled), "hidden_trained": (trained, y_shuffled)}
    result = Result()
    for name, (rep, y) in panels.items():
        phi, y = normalized_pair(rep, y)
        sigma, proj = label_projection_spectrum(phi, y)
        mass = proj / y.pow(2).sum(-1, keepdim=True)
        result.metrics[f"label_mass_top10.{name}"], result.metrics[f"label_mass_top10_se.{name}"] = mean_se(
            mass[..., :TOP_K].sum(-1).reshape(-1))
        result.arrays[f"sigma.{name}"] = np.atleast_2d(sigma[..., :SHOWN].cpu().numpy())
        result.arrays[f"mass.{name}"] = np.atleast_2d(mass[..., :SHOWN].cpu().numpy())
    with torch.no_grad():
        net = config.build(x.shape[1], seeds, x.device)
        net.load_state_dict(payload["final_state"])
        agree = (torch.sign(net(x).squeeze(-1)) == y_shuffled).double().mean(-1)
    result.metrics["shuffled_train_accuracy"], _ = mean_se(100 * agree)
    result.notes += [payload["note"] + " (paper: 10,000 points, 5,000 per class)",
                     "trained with the logistic loss on the shuffled ±1 labels; accuracy in percent"]
    return result
