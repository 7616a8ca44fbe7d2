"""lou2022 Fig 4 and Figs 11–15: the alignment hierarchy over batch size × learning rate.

Sec. 4 trains an FFNN on Fashion-MNIST and ResNet18 and VGG19 on CIFAR-10 over a grid of
batch sizes and learning rates, "stopping after a train loss of 0.1 or 500 epochs,
whichever was sooner" (Fig 4 caption), and shows per cell the final layer alignments A_l
(Eq. 7), the test loss (colour) and the generalisation loss gap (number). Claims (Sec. 4):
smaller batches and larger learning rates give a higher, more central peak and better
generalisation. App. E adds VGG19 on CIFAR-100 for 100 epochs at three learning rates
(Fig 11), VGG19 with SGD at four learning rates (Fig 12) and batch sizes (Fig 14), VGG19
with Adam (Fig 13) and ResNet18 at four learning rates (Fig 15), all on CIFAR-10 to train
loss 0.1. Their captions give accuracy gaps (train − test, %) and loss gaps (test − train).

One model step per architecture / dataset / optimiser (``grid_<...>``) trains every cell:
- the FFNN (Eq. 8, depth 10, width 256: the Fig 7 network) cells of one batch size train
  together as one ``StackedFFNN``, one member per learning rate, all with the same
  initialisation and the same data order;
- ResNet18 / VGG19 (``repalign.models``) train one cell at a time; cells of one batch
  size share the data order and every cell shares the initialisation.
A cell stops at the end of the first epoch whose mean minibatch cross-entropy is at most
``target_loss`` (0.1), or at ``max_epochs``; it is measured there: A_l of every layer with
the fast route (``tangent_profile``) on the fixed, class-balanced 200-example probe
(batch norm in inference mode: ``repalign.models.batchnorm.tangent_view``), and full-split
train / test loss and accuracy. The paper does not list the grids' values; ours take the companion figures'
values (Figs 12, 14, 15) and, for the FFNN, Fig 9's learning rates.

Grid layouts: the paper tier trains every batch size × learning rate; smaller tiers train a
"cross", the base batch size at every learning rate plus the base learning rate at every
batch size, which holds every cell the companion figures need.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.lou2022.training import (
    MEASURE_RESOURCES,
    TRAIN_SPLIT_SIZE,
    ConfigStore,
    ImageTask,
    load_image_task,
    lr_key,
)
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.experiments.storage import UpstreamNotRun
from repalign.metrics import (
    kernel_alignment,
    layer_tangent_alignment,
    layer_tangent_kernels,
)
from repalign.models import build
from repalign.models.batchnorm import tangent_view
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "lou2022"
FFNN_DEPTH, FFNN_WIDTH, CNN_WIDTH = 10, 256, 64
IMAGE_SHAPE = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}
EVAL_CHUNK = 1000


@dataclass(frozen=True, kw_only=True)
class GridSettings:
    """One grid step at one tier. ``n_train`` / ``n_test`` ``None``: the whole split."""

    n_train: int | None
    n_test: int | None
    probe_size: int               # probe_size / classes training examples per class
    max_epochs: int
    batch_sizes: tuple[int, ...]
    lrs: tuple[float, ...]
    base_batch: int               # the cross's row (companion figures' learning-rate sweeps)
    base_lr: float                # the cross's column (batch-size sweeps)
    full_grid: bool               # every batch size × lr, or only the cross
    target_loss: float | None = 0.1  # None: train for max_epochs (Fig 11)
    width: int | None = None      # None: the paper's width (FFNN 256, CNN 64 channels)
    optimiser: str = "sgd"
    momentum: float = 0.9         # App. E gives neither value (as hierarchy.py / training.py)
    weight_decay: float = 5e-4

    def cells(self) -> list[tuple[int, float]]:
        """(batch size, lr) of every cell: the full product, or the cross through the base cell."""
        if self.full_grid:
            return list(itertools.product(self.batch_sizes, self.lrs))
        row = [(self.base_batch, lr) for lr in self.lrs]
        column = [(b, self.base_lr) for b in self.batch_sizes if b != self.base_batch]
        return row + column


def cell_key(batch_size: int, lr: float) -> str:
    return f"bs{batch_size}_{lr_key(lr)}"


# ---- training ---------------------------------------------------------------------------

class StopAtTrainLoss:
    """Training callback: ends each stacked model's run at the paper's stopping rule.

    At the end of every epoch, a model whose mean minibatch cross-entropy over that epoch
    is ≤ ``target`` (or every model still running, at ``max_epochs``) is measured with
    ``measure(model, member)`` and marked done; a model whose loss became non-finite is
    marked diverged. The loss function reports each step's per-model cross-entropy via
    ``observe`` and multiplies the loss of finished models by ``active`` (zero), so they
    stop contributing. Training ends when every model is done.
    """

    def __init__(self, n_models: int, steps_per_epoch: int, max_epochs: int, target: float | None,
                 measure: Callable[[nn.Module, int], dict], device: torch.device):
        self.steps_per_epoch, self.max_epochs, self.target = steps_per_epoch, max_epochs, target
        self.measure = measure
        self.sums = torch.zeros(n_models, dtype=torch.float64, device=device)
        self.active = torch.ones(n_models, dtype=torch.bool, device=device)
        self.epoch_losses: list[np.ndarray] = []
        self.done: dict[int, dict] = {}

    def observe(self, ce: torch.Tensor) -> torch.Tensor:
        """Accumulate this step's cross-entropies [models]; return the mask of running, finite models."""
        self.sums += ce.detach().to(torch.float64)
        return self.active & torch.isfinite(ce.detach())

    def __call__(self, step: int, model: nn.Module) -> bool:
        if step % self.steps_per_epoch:
            return False
        mean = (self.sums / self.steps_per_epoch).cpu().numpy()
        self.sums.zero_()
        self.epoch_losses.append(mean)
        epoch = len(self.epoch_losses)
        for m, loss in enumerate(mean):
            if m in self.done:
                continue
            reached = self.target is not None and loss <= self.target
            if not np.isfinite(loss):
                self.done[m] = {"diverged": True, "epochs": epoch}
            elif reached or epoch >= self.max_epochs:
                self.done[m] = {**self.measure(model, m), "diverged": False, "epochs": epoch,
                                "reached_target": bool(reached)}
            else:
                continue
            self.done[m]["epoch_train_loss"] = np.array(self.epoch_losses)[:, m]
            self.active[m] = False
        return len(self.done) == len(mean)

    def state_dict(self) -> dict:
        return {"sums": self.sums, "active": self.active, "epoch_losses": self.epoch_losses, "done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.sums.copy_(state["sums"])
        self.active.copy_(state["active"])
        self.epoch_losses, self.done = list(state["epoch_losses"]), dict(state["done"])


@torch.no_grad()
def evaluate_model(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy (percent) and mean cross-entropy of a model mapping [n, ...] to [n, classes]."""
    correct, loss = 0.0, 0.0
    for start in range(0, x.shape[0], EVAL_CHUNK):
        logits = net(x[start:start + EVAL_CHUNK])
        target = y[start:start + EVAL_CHUNK]
        correct += float((logits.argmax(1) == target).sum())
        loss += float(F.cross_entropy(logits, target, reduction="sum"))
    return 100 * correct / x.shape[0], loss / x.shape[0]


ONE_PASS_ELEMENTS = 1 << 27  # tangent features of every layer at once below this (512 MB in float32)


def tangent_profile(net: nn.Module, probe_x: torch.Tensor, probe_y: torch.Tensor) -> dict[str, float]:
    """A_l (Eq. 7) of every layer, from the fast route.

    When every layer's tangent features together (probe × outputs × parameters) are small,
    one ``layer_tangent_alignment`` pass; otherwise one layer at a time
    (``layer_tangent_kernels``, bounded memory for VGG19 / ResNet18 on a 200-example
    probe) and A_l as the CKA of K_l with vec(Y)vec(Y)ᵀ. Both give the same values.
    """
    if probe_y.numel() * sum(p.numel() for p in net.parameters()) <= ONE_PASS_ELEMENTS:
        return {k: float(v) for k, v in layer_tangent_alignment(net, probe_x, probe_y, method="fast").items()}
    y = probe_y.reshape(-1, 1)
    target = y @ y.T
    return {name: float(kernel_alignment(k, target, centered=True)) for name, k in layer_tangent_kernels(net, probe_x)}


def measure_cell(net: nn.Module, task: ImageTask) -> dict:
    """A_l of every layer on the probe (Eq. 7), and train / test accuracy and loss, of one model."""
    alignment = tangent_profile(net, task.probe_x, task.probe_y)
    train_acc, train_loss = evaluate_model(net, task.x_train, task.y_train)
    test_acc, test_loss = evaluate_model(net, task.x_test, task.y_test)
    return {"layers": list(alignment), "profile": np.array(list(alignment.values())),
            "train_accuracy": train_acc, "train_loss": train_loss,
            "test_accuracy": test_acc, "test_loss": test_loss}


def train_ffnn_row(task: ImageTask, batch_size: int, lrs: list[float], seed: int, s: GridSettings,
                   checkpoint, desc: str) -> dict[float, dict]:
    """Every learning rate of one batch size, stacked: one StackedFFNN member per lr.

    SGD with momentum μ and weight decay λ updates b ← μb + (g + λw), w ← w − η b, which is
    linear in η. Training the stack with lr 1 on the per-member loss η_m (CE_m + λ/2 ‖w_m‖²)
    therefore gives every member exactly its own learning rate η_m.
    """
    device = task.x_train.device
    net = StackedFFNN(task.x_train.shape[1], s.width or FFNN_WIDTH, FFNN_DEPTH, task.n_classes,
                      [seed] * len(lrs)).to(device)
    scale = torch.tensor(lrs, dtype=torch.float32, device=device)
    sampler = EpochSampler(task.x_train.shape[0], batch_size, n_models=1, seed=seed, device=device)
    stopper = StopAtTrainLoss(len(lrs), sampler.steps_per_epoch, s.max_epochs, s.target_loss,
                              lambda model, m: measure_cell(model.member(m).eval(), task), device)

    def loss_fn(model, idx):
        logits = model(task.x_train[idx[0]])  # [lrs, batch, classes]: one batch for every member
        ce = F.cross_entropy(logits.transpose(1, 2), task.y_train[idx[0]].expand(len(lrs), -1),
                             reduction="none").mean(1)
        decay = sum(w.pow(2).sum(dim=(1, 2)) for w in model.weights) * (s.weight_decay / 2)
        keep = stopper.observe(ce)
        return torch.where(keep, scale * (ce + decay), torch.zeros_like(ce))

    train(net, loss_fn, sampler, s.max_epochs * sampler.steps_per_epoch,
          OptimConfig("sgd", lr=1.0, momentum=s.momentum), checkpoint=checkpoint, callback=stopper, desc=desc)
    return {lr: stopper.done[m] for m, lr in enumerate(lrs)}


def train_cnn_cell(task: ImageTask, arch: str, batch_size: int, lr: float, seed: int, s: GridSettings,
                   checkpoint, desc: str) -> dict:
    """One ResNet18 / VGG19 cell (batch norm trained in training mode, measured in inference mode)."""
    device = task.x_train.device
    net = build(arch, task.n_classes, seed=seed, width=s.width or CNN_WIDTH).to(device)  # one init for every cell
    sampler = EpochSampler(task.x_train.shape[0], batch_size, n_models=1, seed=seed, device=device)

    def measure(model, m):
        model.eval()
        out = measure_cell(tangent_view(model), task)
        model.train()
        return out

    stopper = StopAtTrainLoss(1, sampler.steps_per_epoch, s.max_epochs, s.target_loss, measure, device)

    def loss_fn(model, idx):
        ce = F.cross_entropy(model(task.x_train[idx[0]]), task.y_train[idx[0]]).reshape(1)
        return torch.where(stopper.observe(ce), ce, torch.zeros_like(ce))

    optim = OptimConfig(s.optimiser, lr=lr, momentum=s.momentum if s.optimiser == "sgd" else 0.0,
                        weight_decay=s.weight_decay)
    train(net, loss_fn, sampler, s.max_epochs * sampler.steps_per_epoch, optim, checkpoint=checkpoint,
          callback=stopper, desc=desc)
    return stopper.done[0]


@dataclass(frozen=True)
class GridStep:
    """What one ``grid_<name>`` model step trains."""

    arch: str      # "ffnn", "resnet18" or "vgg19"
    dataset: str
    settings: Tiered


def _cnn_settings(batch_sizes, lrs, base_batch, base_lr, *, optimiser="sgd", paper_epochs=500,
                  target_loss=0.1, quick_epochs=15, smoke_probe=10, smoke_batch_sizes=None) -> Tiered:
    """Smoke: 100 images (at least ``smoke_probe``, one probe image per class), width 2, one
    epoch, ``smoke_batch_sizes`` (default all); quick: 10,000 training images,
    ``quick_epochs``; paper: every image, ``paper_epochs``, the full grid."""
    common = {"lrs": lrs, "base_batch": base_batch, "base_lr": base_lr, "optimiser": optimiser,
              "target_loss": target_loss}
    return Tiered(
        smoke=GridSettings(n_train=max(100, smoke_probe), n_test=max(100, smoke_probe), probe_size=smoke_probe,
                           max_epochs=1, width=2, full_grid=False, batch_sizes=smoke_batch_sizes or batch_sizes,
                           **common),
        quick=GridSettings(n_train=10_000, n_test=None, probe_size=200, max_epochs=quick_epochs,
                           full_grid=False, batch_sizes=batch_sizes, **common),
        paper=GridSettings(n_train=None, n_test=None, probe_size=200, max_epochs=paper_epochs, full_grid=True,
                           batch_sizes=batch_sizes, **common),
    )


BATCH_SIZES = (32, 128, 512, 2048)  # Fig 14
STEPS = {
    "grid_ffnn_fashion_mnist": GridStep("ffnn", "fashion_mnist", Tiered(
        smoke=GridSettings(n_train=200, n_test=200, probe_size=20, max_epochs=2, width=16, batch_sizes=(32, 128),
                           lrs=(0.003, 0.05), base_batch=32, base_lr=0.003, full_grid=True),
        quick=GridSettings(n_train=None, n_test=None, probe_size=200, max_epochs=40, batch_sizes=(32, 128, 512),
                           lrs=(0.0005, 0.003, 0.05), base_batch=128, base_lr=0.003, full_grid=True),
        paper=GridSettings(n_train=None, n_test=None, probe_size=200, max_epochs=500, batch_sizes=BATCH_SIZES,
                           lrs=(0.0005, 0.001, 0.003, 0.01, 0.05), base_batch=128, base_lr=0.003,
                           full_grid=True))),
    # Fig 15's learning rates; batch-size column at lr 0.01
    "grid_resnet18_cifar10": GridStep("resnet18", "cifar10", _cnn_settings(
        BATCH_SIZES, (0.001, 0.003, 0.01, 0.02), 128, 0.01, smoke_batch_sizes=(128, 512))),
    # Fig 12's learning rates; Fig 14's batch sizes at lr 0.0032 (Fig 14b is Fig 12c)
    "grid_vgg19_cifar10": GridStep("vgg19", "cifar10", _cnn_settings(
        BATCH_SIZES, (0.0005, 0.001, 0.0032, 0.01), 128, 0.0032)),
    # Fig 13: Adam, batch 128 (assumed, as Fig 12)
    "grid_vgg19_adam_cifar10": GridStep("vgg19", "cifar10", _cnn_settings(
        (128,), (0.000032, 0.0001, 0.00032), 128, 0.0001, optimiser="adam")),
    # Fig 11: CIFAR-100, 100 epochs, no stopping rule
    "grid_vgg19_cifar100": GridStep("vgg19", "cifar100", _cnn_settings(
        (128,), (0.001, 0.005, 0.01), 128, 0.005, paper_epochs=100, target_loss=None, quick_epochs=10,
        smoke_probe=100)),
}
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=20, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=24 * 60, mem_mb=32000, gpu=1),
)

def grid_work(s: GridSettings, dataset: str) -> Work:
    """Every cell trained at most ``max_epochs`` (cells that reach ``target_loss`` stop sooner: an upper bound)."""
    return trained(epochs=s.max_epochs, examples=s.n_train or TRAIN_SPLIT_SIZE[dataset], cells=len(s.cells()))


def cells_work(s: GridSettings, panels: int = 1) -> Work:
    """A figure of a grid's cells: each cell's stored profile and metrics, measured on the probe."""
    return analysed(panels=panels, cells=len(s.cells()), examples=s.probe_size)


def _register_model(name: str, step: GridStep) -> None:
    @model(PAPER, name, settings=step.settings, resources=TRAIN_RESOURCES,
           work=partial(grid_work, dataset=step.dataset))
    def train_grid(ctx: Context) -> dict:
        s: GridSettings = ctx.settings
        task = load_image_task(ctx, step.dataset, s)
        if step.arch != "ffnn":  # load_image_task flattens; the CNNs take images
            shape = IMAGE_SHAPE[step.dataset]
            task.x_train, task.x_test, task.probe_x = (x.view(-1, *shape) for x in
                                                       (task.x_train, task.x_test, task.probe_x))
        store, seed, cells = ConfigStore(ctx.checkpoint), ctx.seeds[0], {}
        by_batch: dict[int, list[float]] = {}
        for b, lr in s.cells():
            by_batch.setdefault(b, []).append(lr)
        for b, lrs in by_batch.items():
            if step.arch == "ffnn":
                key = f"bs{b}"
                row = store.run(key, lambda ckpt, b=b, lrs=lrs, key=key: {"cells": train_ffnn_row(
                    task, b, lrs, seed, s, ckpt, f"{PAPER}/{name}/{key}")})["cells"]
                cells.update({cell_key(b, lr): {"batch_size": b, "lr": lr, **row[lr]} for lr in lrs})
                continue
            for lr in lrs:
                key = cell_key(b, lr)
                cells[key] = {"batch_size": b, "lr": lr, **store.run(key, lambda ckpt, b=b, lr=lr, key=key:
                              train_cnn_cell(task, step.arch, b, lr, seed, s, ckpt, f"{PAPER}/{name}/{key}"))}
        store.clear()
        return {"arch": step.arch, "dataset": step.dataset, "cells": cells, "notes": task.notes,
                "optimiser": s.optimiser, "target_loss": s.target_loss, "max_epochs": s.max_epochs}

    train_grid.__doc__ = f"lou2022 {step.arch} on {step.dataset}: batch size × learning rate cells."


for _name, _step in STEPS.items():
    _register_model(_name, _step)


# ---- summaries ---------------------------------------------------------------------------

def correlations(x, y) -> tuple[float, float]:
    """(Pearson r, Spearman ρ) of paired values; 0 for a constant variable (no association)."""
    from scipy import stats  # on first use: keeps every job's start-up cheap
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0, 0.0
    return float(stats.pearsonr(x, y)[0]), float(stats.spearmanr(x, y)[0])


def peak_centrality(profile: np.ndarray) -> float:
    """1 when the argmax layer is the middle layer, 0 when it is the first or the last (Sec. 4)."""
    position = int(np.argmax(profile)) / max(len(profile) - 1, 1)
    return 1.0 - abs(2 * position - 1)


CELL_METRICS = ("test_accuracy", "test_loss", "train_accuracy", "train_loss", "acc_gap", "loss_gap",
                "layer_alignment.peak", "argmax_layer", "peak_centrality", "epochs", "reached_target")


def cell_summary(cell: dict) -> dict[str, float]:
    """One trained cell's metrics (CELL_METRICS): gaps are train − test accuracy, test − train loss."""
    profile = cell["profile"]
    return {"test_accuracy": cell["test_accuracy"], "test_loss": cell["test_loss"],
            "train_accuracy": cell["train_accuracy"], "train_loss": cell["train_loss"],
            "acc_gap": cell["train_accuracy"] - cell["test_accuracy"],
            "loss_gap": cell["test_loss"] - cell["train_loss"],
            "layer_alignment.peak": float(profile.max()), "argmax_layer": int(profile.argmax()) + 1,
            "peak_centrality": peak_centrality(profile), "epochs": cell["epochs"],
            "reached_target": float(cell["reached_target"])}


def grid_correlations(summaries: dict[str, dict], cells: dict[str, dict]) -> dict[str, float]:
    """Sec. 4's claims over the cells: Pearson and Spearman correlations of the peak height
    (and centrality) with lr, batch size, test loss and the gaps, as ``<kind>.<x>_vs_<y>``."""
    keys = list(summaries)
    column = {name: [summaries[k][name] for k in keys] for name in ("layer_alignment.peak", "peak_centrality",
                                                                      "test_loss", "loss_gap", "acc_gap")}
    column["lr"] = [np.log(cells[k]["lr"]) for k in keys]
    column["batch_size"] = [np.log(cells[k]["batch_size"]) for k in keys]
    pairs = [("peak_height", "layer_alignment.peak", y) for y in ("lr", "batch_size", "test_loss", "loss_gap",
                                                                   "acc_gap")]
    pairs += [("peak_centrality", "peak_centrality", y) for y in ("lr", "batch_size", "test_loss")]
    pairs += [("test_loss", "test_loss", y) for y in ("lr", "batch_size")]
    out = {}
    for label, x, y in pairs:
        out[f"pearson.{label}_vs_{y}"], out[f"spearman.{label}_vs_{y}"] = correlations(column[x], column[y])
    return out


def write_cells(result: Result, payload: dict, keys: dict[str, str], prefix: str = "") -> dict[str, dict]:
    """Write CELL_METRICS of the cells ``keys`` (metric suffix -> cell key) and their profiles.

    Diverged cells get no metrics (a target on them fails as missing) and a note."""
    summaries = {}
    for suffix, key in keys.items():
        cell = payload["cells"][key]
        if cell["diverged"]:
            result.notes.append(f"{prefix}{suffix} ({key}): the loss diverged in epoch {cell['epochs']}")
            continue
        summaries[key] = cell_summary(cell)
        result.metrics.update({f"{name}.{prefix}{suffix}": float(v) for name, v in summaries[key].items()})
        result.arrays[f"{prefix}{suffix}.profile"] = cell["profile"]
        result.arrays[f"{prefix}{suffix}.epoch_train_loss"] = cell["epoch_train_loss"]
        result.notes.append(f"{prefix}{suffix}: batch {cell['batch_size']}, lr {cell['lr']}, {cell['epochs']} epochs"
                            f" ({'reached' if cell['reached_target'] else 'did not reach'} the target train loss)")
    return summaries


# ---- artifacts ----------------------------------------------------------------------------

FIG4_PANELS = {"ffnn_fmnist": "grid_ffnn_fashion_mnist", "resnet18_cifar10": "grid_resnet18_cifar10",
               "vgg19_cifar10": "grid_vgg19_cifar10"}


def _load_panels(ctx: Context, steps: dict[str, str]) -> tuple[dict, dict]:
    payloads, missing = {}, {}
    for panel, step in steps.items():
        try:
            payloads[panel] = ctx.load_model(step)
        except UpstreamNotRun as exc:
            missing[panel] = str(exc)
    if not payloads:
        raise UpstreamNotRun("; ".join(missing.values()))
    return payloads, missing


@artifact(PAPER, "fig4", settings=STEPS["grid_ffnn_fashion_mnist"].settings, resources=MEASURE_RESOURCES,
          needs=tuple(FIG4_PANELS.values()), work=partial(cells_work, panels=len(FIG4_PANELS)))
def fig4(ctx: Context) -> Result:
    """Fig 4: per panel, every cell's metrics and profile, and the correlations over cells."""
    payloads, missing = _load_panels(ctx, FIG4_PANELS)
    result = Result(notes=[("metrics per cell: <metric>.<panel>.bs<batch>_lr<lr>; correlations over a panel's "
                            "cells use log lr and log batch size (Spearman is unaffected)")])
    panels = []
    for panel, payload in payloads.items():
        result.notes += payload["notes"]
        summaries = write_cells(result, payload, {k: k for k in payload["cells"]}, prefix=f"{panel}.")
        corr = grid_correlations(summaries, payload["cells"])
        result.metrics.update({f"{name}.{panel}": v for name, v in corr.items()})
        result.arrays[f"{panel}.cells"] = np.array(list(summaries))
        panels.append(panel)
    for panel, reason in missing.items():
        result.not_run.update({f"{kind}.{x}_vs_{y}.{panel}": reason for kind in ("pearson", "spearman")
                               for x, y in (("peak_height", "lr"), ("peak_height", "batch_size"),
                                            ("peak_height", "test_loss"), ("peak_centrality", "lr"))})
        result.notes.append(f"not run ({reason.splitlines()[0]}): panel {panel}")
    result.arrays["panels"] = np.array(panels)
    return result


def _register_companion(figure: str, step: str, axis: str) -> None:
    """A companion figure: the cells of ``step`` along the lr row (``axis="lr"``) or the batch column."""
    @artifact(PAPER, figure, settings=STEPS[step].settings, resources=MEASURE_RESOURCES, needs=(step,),
              work=cells_work)
    def companion(ctx: Context) -> Result:
        s: GridSettings = ctx.settings
        payload = ctx.load_model(step)
        if axis == "lr":
            keys = {lr_key(lr): cell_key(s.base_batch, lr) for lr in s.lrs}
        else:
            keys = {f"bs{b}": cell_key(b, s.base_lr) for b in s.batch_sizes}
        result = Result(notes=list(payload["notes"]))
        write_cells(result, payload, keys)
        result.arrays["panels"] = np.array(list(keys))
        return result

    companion.__doc__ = f"{figure}: {step} cells along the {axis} axis."


for _figure, _step, _axis in (("fig11", "grid_vgg19_cifar100", "lr"), ("fig12", "grid_vgg19_cifar10", "lr"),
                              ("fig13", "grid_vgg19_adam_cifar10", "lr"), ("fig14", "grid_vgg19_cifar10", "batch"),
                              ("fig15", "grid_resnet18_cifar10", "lr")):
    _register_companion(_figure, _step, _axis)
