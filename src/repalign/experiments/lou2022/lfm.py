"""lou2022 Figs 16–17 (App. F): layer-wise feature maximisation (LFM, Algorithm 1) against
end-to-end training, MNIST (LFM widths 32 and 256, end-to-end width 32) and CIFAR-10 (LFM
widths 256 and 1024, end-to-end width 256).

Algorithm 1, as implemented here (depth L = 10, LeakyReLU φ, Adam lr 0.01):

1. Inputs are normalised to ‖x‖₂ = 1 (after the lou2022 standardisation of pixels).
2. For l = 1 … L − 1: layer l (weights and biases) is trained on its fixed, unit-norm
   input a (the output of the layers below, which no longer change) with, per minibatch B,
   L(B) = mean_{i,j ∈ B} (K(x_i, x_j) − ½ δ_{y_i y_j})², K(x_i, x_j) = φ(z_l(x_i)) · φ(z_l(x_j))
   the unnormalised forward features. After every epoch (one pass over the minibatches of S)
   the validation loss L(V) is taken; an epoch improves when L(V) falls below the best so far
   by the relative ``plateau_tol``, and training stops once ``patience`` epochs in a row have
   not improved (an increase or a plateau; at most ``max_layer_epochs``). The layer keeps its
   weights from the best validation epoch. Then the layer's output is normalised,
   φ(z_l(x)) / ‖φ(z_l(x))‖, and becomes the input of layer l + 1.
3. Layer L (the classifier) trains with Adam and cross-entropy, stopped the same way.

The objective, re-derived from App. F. The section's title and text ("aims to maximise forward
feature learning", adapted from Kulkarni and Karande, 2017) ask each layer to make its forward
feature kernel match the label kernel. The paper's forward kernel of layer l + 1 (Eq. 9) is
built from layer l's output φ(z_l); Algorithm 1 prints φ(z_{l−1}), the input of layer l, which
does not depend on the parameters being trained, so the kernel here is that of the trained
layer's own output: the only reading under which the loss trains layer l. The garbled printed
target reads "½ δ": a same-class pair should have the kernel value ½, the squared norm that a
ReLU-type layer gives to a unit-norm input whose norm it preserves (‖φ(z)‖² ≈ ½‖z‖²), and a
pair of different classes 0. Its minimum is features equal within a class and orthogonal
across classes. It is not minimised by shrinking the features: all-zero features have the loss
¼ · P(same class) (~0.025 on 10 balanced classes), and each layer's best L(V) over that value
is recorded (``kernel_loss_ratio``; near 1 means the layer only shrank its features). From
the He initialisation the loss is ~5× the zero-feature loss (the unit-norm, non-negative
inputs give every pair a large kernel), so the first epoch mostly rescales the features; a
stage that gets stuck there or diverges (at Adam lr 0.01 some do) keeps its best epoch. We use
the mean over pairs instead of the sum (a scale Adam is insensitive to). Ours, not in App. F:
the patience (5 epochs) and tolerance (0.1%) of the stopping rule, layer initialisation
N(0, 2/fan_in) with zero biases, batch 128, LeakyReLU slope 0.01 and the 10-layer depth (the
rest of the paper's). The paper splits 45,000/5,000 images for LFM; here 10% of the training
split is held out. End-to-end networks are the Eq. 8 FFNNs of ``training.py`` (SGD, momentum,
lr 0.003) on the whole training split. Per-layer training uses the shared loop; a callback
applies the stopping rule after every epoch, keeps the best parameters and ends the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.experiments.lou2022.training import (
    MEASURE_RESOURCES,
    ConfigStore,
    ImageTask,
    TrainingSettings,
    load_image_task,
    measure_work,
    train_ffnn,
    training_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, artifact, model
from repalign.metrics import layer_tangent_alignment
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "lou2022"
CHUNK = 4096
# dataset -> (LFM widths, end-to-end width): App. F, Figs 16 and 17
RUNS = {"mnist": ((32, 256), 32), "cifar10": ((256, 1024), 256)}
FIGURES = {"fig16": "mnist", "fig17": "cifar10"}


@dataclass(frozen=True, kw_only=True)
class LFMSettings(TrainingSettings):
    max_layer_epochs: int                 # cap on passes over the LFM training split, per layer
    e2e_epochs: int                       # end-to-end training, in the paper's epochs
    depth: int = 10                       # smoke: 4
    lfm_lr: float = 0.01                  # Adam (Figs 16, 17 captions)
    e2e_lr: float = 0.003                 # SGD with momentum (Figs 16, 17 captions)
    val_fraction: float = 0.1             # 5,000 of 50,000 in the paper
    plateau_tol: float = 1e-3             # an epoch improves when L(V) falls below the best by this fraction
    patience: int = 5                     # epochs without improvement before a stage stops (ours)
    leaky_slope: float = 0.01


SETTINGS = Tiered(
    smoke=LFMSettings(n_runs=1, n_train=100, n_test=100, probe_size=20, align_points=1,
                      max_layer_epochs=2, e2e_epochs=1, depth=4),
    quick=LFMSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=4,
                      max_layer_epochs=20, e2e_epochs=10),
    paper=LFMSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=8,
                      max_layer_epochs=100, e2e_epochs=100),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=20, mem_mb=8000, gpu=1),
    paper=Resources(runtime_min=120, mem_mb=8000, gpu=1),
)


class UnitNorm(nn.Module):
    """Per-example normalisation x / ‖x‖₂ (Algorithm 1, 'normalise layer l')."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def kernel_loss(features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Algorithm 1's per-layer objective: mean_{i,j} (φ_i · φ_j − ½ δ_{y_i y_j})² over a minibatch."""
    target = 0.5 * (y[:, None] == y[None, :]).to(features.dtype)
    return (features @ features.T - target).pow(2).mean()


def he_linear(fan_in: int, fan_out: int, generator: torch.Generator, device) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(fan_out, fan_in, generator=generator) * (2.0 / fan_in) ** 0.5)
        layer.bias.zero_()
    return layer.to(device)


class EarlyStopping:
    """Training callback for Algorithm 1's stopping rule ("End while based on increase/plateau of
    loss on the validation set"): after every epoch, the validation loss; an epoch improves when
    its loss is below the best so far by the relative ``tol``. Training stops (the callback
    returns True, which ends the shared loop) once ``patience`` epochs in a row have not
    improved (an increase or a plateau), keeping the parameters of the best epoch seen."""

    def __init__(self, steps_per_epoch: int, val_loss: Callable[[nn.Module], float], tol: float, patience: int):
        if patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {patience}")
        self.steps_per_epoch, self.val_loss, self.tol, self.patience = steps_per_epoch, val_loss, tol, patience
        self.losses: list[float] = []
        self.best_state: dict | None = None
        self.best_epoch = 0
        self.stopped = False

    def __call__(self, step: int, layer: nn.Module) -> bool:
        if self.stopped or step % self.steps_per_epoch:
            return self.stopped
        loss = self.val_loss(layer)
        if not self.losses or loss < self.losses[self.best_epoch] * (1 - self.tol):
            self.best_epoch = len(self.losses)
            self.best_state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
        self.losses.append(loss)
        self.stopped = len(self.losses) - 1 - self.best_epoch >= self.patience
        return self.stopped

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("losses", "best_state", "best_epoch", "stopped")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


@torch.no_grad()
def validation_kernel_loss(features: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor, y: torch.Tensor,
                           batch_size: int) -> float:
    """L(V): the minibatch objective averaged over the validation set in minibatches of ``batch_size``."""
    return float(torch.stack([kernel_loss(features(a[i:i + batch_size]), y[i:i + batch_size])
                              for i in range(0, a.shape[0], batch_size)]).mean())


@torch.no_grad()
def _chunked(fn, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(x[i:i + CHUNK]) for i in range(0, x.shape[0], CHUNK)])


def train_stage(layer: nn.Module, loss: Callable[[nn.Module, torch.Tensor], torch.Tensor], n: int,
                s: LFMSettings, seed: int, desc: str, val_loss: Callable[[nn.Module], float]) -> dict:
    """Train one LFM stage with Adam in the shared loop and keep Algorithm 1's early-stopping
    parameters. ``loss(layer, idx)`` is the minibatch loss on the stage's ``n`` examples."""
    sampler = EpochSampler(n, s.batch_size, seed=seed, device=next(layer.parameters()).device)
    stopping = EarlyStopping(sampler.steps_per_epoch, val_loss, s.plateau_tol, s.patience)
    stopping(0, layer)
    train(layer, lambda m, idx: loss(m, idx[0]), sampler, s.max_layer_epochs * sampler.steps_per_epoch,
          OptimConfig("adam", lr=s.lfm_lr), callback=stopping, desc=desc)
    layer.load_state_dict(stopping.best_state)
    return {"epochs": stopping.best_epoch, "val_loss": np.array(stopping.losses)}


def train_lfm(task: ImageTask, width: int, s: LFMSettings, seed: int, desc: str) -> dict:
    """Algorithm 1 on ``task``: returns the per-layer stopping epochs and validation curves, each LFM
    layer's ``kernel_loss_ratio`` (its best L(V) over L(V) of all-zero features: near 1 means the
    layer only shrank its features), the final accuracies and A_l."""
    device = task.x_train.device
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(task.x_train.shape[0], generator=g).to(device)
    n_val = max(1, int(round(s.val_fraction * perm.numel())))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    unit = UnitNorm()
    a_train, a_val = unit(task.x_train[train_idx]), unit(task.x_train[val_idx])
    y_train, y_val = task.y_train[train_idx], task.y_train[val_idx]
    act = nn.LeakyReLU(s.leaky_slope)
    modules: list[nn.Module] = []
    stages, ratios = [], []
    fan_in = a_train.shape[1]
    for l in range(1, s.depth):
        layer = he_linear(fan_in, width, g, device)

        def loss(m, idx, a=a_train):
            return kernel_loss(act(m(a[idx])), y_train[idx])

        def val_loss(m, a=a_val):
            return validation_kernel_loss(lambda batch: act(m(batch)), a, y_val, s.batch_size)

        stages.append(train_stage(layer, loss, a_train.shape[0], s, seed + l, f"{desc}/layer{l}", val_loss))
        zero_loss = validation_kernel_loss(lambda batch: batch.new_zeros(batch.shape[0], width), a_val, y_val,
                                           s.batch_size)
        ratios.append(stages[-1]["val_loss"][stages[-1]["epochs"]] / zero_loss)
        layer.requires_grad_(False)
        modules += [layer, act, unit]
        a_train = _chunked(lambda a: unit(act(layer(a))), a_train)
        a_val = _chunked(lambda a: unit(act(layer(a))), a_val)
        fan_in = width
    head = he_linear(fan_in, task.n_classes, g, device)

    def head_val_loss(m):
        with torch.no_grad():
            return float(F.cross_entropy(_chunked(m, a_val), y_val))

    stages.append(train_stage(head, lambda m, idx: F.cross_entropy(m(a_train[idx]), y_train[idx]),
                              a_train.shape[0], s, seed + s.depth, f"{desc}/classifier", head_val_loss))
    net = nn.Sequential(*modules, head).requires_grad_(True)  # the tangent kernels differentiate through it
    test_acc = float((_chunked(net, unit(task.x_test)).argmax(1) == task.y_test).float().mean() * 100)
    train_acc = float((_chunked(net, unit(task.x_train[train_idx])).argmax(1) == y_train).float().mean() * 100)
    alignment = layer_tangent_alignment(net, unit(task.probe_x), task.probe_y, method="fast")
    return {"width": width, "test_accuracy": test_acc, "train_accuracy": train_acc,
            "alignment": np.array([float(v) for v in alignment.values()]),
            "stage_epochs": np.array([st["epochs"] for st in stages]), "kernel_loss_ratio": np.array(ratios),
            "val_loss": [st["val_loss"] for st in stages], "n_train": int(train_idx.numel()), "n_val": n_val}


def lfm_work(s: LFMSettings, dataset: str, lfm_widths: tuple[int, ...]) -> Work:
    """Layer-wise training, at most ``max_layer_epochs`` per layer and LFM width (early stopping may end it
    sooner: an upper bound), then the end-to-end network, ``e2e_epochs``."""
    return (training_work(s, dataset, s.max_layer_epochs, networks=len(lfm_widths), layers=s.depth)
            + training_work(s, dataset, s.e2e_epochs))


def _register_model(dataset: str, lfm_widths: tuple[int, ...], e2e_width: int) -> None:
    @model(PAPER, f"lfm_{dataset}", settings=SETTINGS, resources=TRAIN_RESOURCES,
           work=partial(lfm_work, dataset=dataset, lfm_widths=lfm_widths))
    def train_lfm_models(ctx: Context) -> dict:
        s: LFMSettings = ctx.settings
        task = load_image_task(ctx, dataset, s)
        store = ConfigStore(ctx.checkpoint)
        runs = {}
        for seed in ctx.seeds:
            for width in lfm_widths:
                key = f"lfm_w{width}_s{seed}"
                runs[key] = store.run(key, lambda ckpt, width=width, seed=seed, key=key: train_lfm(
                    task, width, s, seed, f"{PAPER}/lfm_{dataset}/{key}"))
        key = f"e2e_w{e2e_width}"
        e2e = store.run(key, lambda ckpt: train_ffnn(
            task, depth=s.depth, width=e2e_width, lr=s.e2e_lr, epochs=s.e2e_epochs, seeds=ctx.seeds, s=s,
            checkpoint=ckpt, desc=f"{PAPER}/lfm_{dataset}/{key}"))
        store.clear()
        return {"dataset": dataset, "seeds": list(ctx.seeds), "lfm_widths": lfm_widths, "e2e_width": e2e_width,
                "lfm": runs, "e2e": e2e, "notes": task.notes}

    train_lfm_models.__doc__ = f"LFM (widths {lfm_widths}) and end-to-end (width {e2e_width}) networks, {dataset}."


def _alignment_summary(final: np.ndarray, key: str, result: Result) -> None:
    m = result.metrics
    m[f"argmax_layer.{key}"] = int(final.argmax()) + 1
    m[f"layer_alignment.max.{key}"] = float(final.max())
    m[f"layer_alignment.first.{key}"] = float(final[0])
    m[f"layer_alignment.last.{key}"] = float(final[-1])
    result.arrays[f"{key}.alignment"] = final


def _register_figure(figure: str, dataset: str) -> None:
    @artifact(PAPER, figure, settings=SETTINGS, resources=MEASURE_RESOURCES, needs=(f"lfm_{dataset}",),
              work=measure_work)
    def lfm_figure(ctx: Context) -> Result:
        s: LFMSettings = ctx.settings
        payload = ctx.load_model(f"lfm_{dataset}")
        result = Result(notes=list(payload["notes"]))
        m = result.metrics
        for width in payload["lfm_widths"]:
            runs = [payload["lfm"][f"lfm_w{width}_s{seed}"] for seed in payload["seeds"]]
            key = f"lfm_w{width}"
            m[f"test_accuracy.{key}"] = float(np.mean([r["test_accuracy"] for r in runs]))
            m[f"train_accuracy.{key}"] = float(np.mean([r["train_accuracy"] for r in runs]))
            _alignment_summary(np.mean([r["alignment"] for r in runs], axis=0), key, result)
            result.arrays[f"{key}.stage_epochs"] = np.mean([r["stage_epochs"] for r in runs], axis=0)
            ratio = np.mean([r["kernel_loss_ratio"] for r in runs], axis=0)
            m[f"kernel_loss_ratio.max.{key}"] = float(ratio.max())
            m[f"kernel_loss_ratio.mean.{key}"] = float(ratio.mean())
            result.arrays[f"{key}.kernel_loss_ratio"] = ratio
            result.notes.append(f"{key}: Algorithm 1, depth {s.depth}, Adam lr {s.lfm_lr}, "
                                f"{runs[0]['n_train']}/{runs[0]['n_val']} train/validation images, "
                                f"best epoch per layer {runs[0]['stage_epochs'].tolist()} (cap "
                                f"{s.max_layer_epochs}, patience {s.patience}); best L(V) / L(V) of zero "
                                f"features per LFM layer {np.round(ratio, 3).tolist()}")
        e2e, key = payload["e2e"], f"e2e_w{payload['e2e_width']}"
        m[f"test_accuracy.{key}"] = float(e2e["test_accuracy"].mean())
        m[f"train_accuracy.{key}"] = float(e2e["train_accuracy"].mean())
        _alignment_summary(e2e["alignment"][-1].mean(axis=0), key, result)
        result.notes.append(f"{key}: Eq. 8 FFNN, depth {s.depth}, SGD lr {s.e2e_lr}, {e2e['epochs']} epochs "
                            f"({e2e['steps']} iterations) on the whole training split")
        result.arrays["runs"] = np.array([f"lfm_w{w}" for w in payload["lfm_widths"]] + [key])
        return result

    lfm_figure.__doc__ = f"{figure}: LFM against end-to-end training on {dataset}."


for _dataset, (_widths, _e2e_width) in RUNS.items():
    _register_model(_dataset, _widths, _e2e_width)
for _figure, _dataset in FIGURES.items():
    _register_figure(_figure, _dataset)
