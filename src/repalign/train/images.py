"""The image-training path: the one loop of :mod:`repalign.train.loop` fed from device tensors.

A training set is one uint8 tensor ``[n, C, H, W]`` on the device (``load_dataset(...,
device=...)``); there are no DataLoader workers. Each step gathers the batch, crops and
flips every example at the offsets the :class:`ImageSampler` drew for it, normalises,
and runs the forward pass under the device's :class:`Precision` (bf16 autocast and
channels-last on CUDA, fp32 on the CPU). One model or a :class:`ModelStack` of many
trains the same way; checkpoint/resume, the NaN stop, the progress bar and callbacks
(e.g. an :class:`EpochHook`) are the loop's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.train.augment import Normalization, crop_flip
from repalign.train.loop import Callback, OptimConfig, TrainLog, train
from repalign.train.precision import Precision, precision_policy
from repalign.train.sampler import ImageBatch, ImageSampler
from repalign.train.stack import ModelStack

LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True)
class ImageTraining:
    """How an image model trains.

    ``crop_padding``/``flip``: the standard CIFAR augmentation (0 / False: none, as in
    maennel2020). ``loss``: ``cross_entropy``, or ``mse`` on one-hot targets, averaged over
    classes and examples (canatar2022). ``precision``: see :func:`precision_policy`.
    ``compile``: ``torch.compile`` the forward pass (``True``: the default backend, or a
    backend name such as ``"eager"``). ``checkpoint_every`` is in optimiser steps.
    """

    epochs: int
    batch_size: int
    optim: OptimConfig
    crop_padding: int = 4
    flip: bool = True
    loss: str = "cross_entropy"
    precision: str = "auto"
    compile: bool | str = False
    checkpoint_every: int = 1000
    check_every: int = 100

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown image loss '{self.loss}'; choose one of {LOSSES}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {self.epochs}, {self.batch_size}")


def _check_inputs(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, policy: Precision) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError(f"images must be one uint8 tensor [n, C, H, W], got {images.dtype} {tuple(images.shape)}")
    param = next(model.parameters())
    if images.device != param.device:
        raise ValueError(f"images are on {images.device} but the model on {param.device}: move both to one device")
    if param.dtype != policy.dtype:
        raise TypeError(f"the model's parameters are {param.dtype} but precision needs {policy.dtype}: "
                        f"cast the model (e.g. model.to({policy.dtype})) or choose another precision")
    if labels.dtype != torch.int64 or labels.shape[-1] != images.shape[0] or labels.dim() > 2:
        raise ValueError(f"labels must be int64 [n] or [n_models, n] with n = {images.shape[0]}, "
                         f"got {labels.dtype} {tuple(labels.shape)}")


def prepare(x: torch.Tensor, normalization: Normalization, policy: Precision) -> torch.Tensor:
    """uint8 ``[..., C, H, W]`` -> normalised floats in the policy's dtype and memory format."""
    lead, chw = x.shape[:-3], x.shape[-3:]
    flat = normalization(x.reshape(-1, *chw), policy.dtype).contiguous(memory_format=policy.memory_format)
    return flat.view(*lead, *chw)


def apply_model(forward, model: nn.Module, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
    """Outputs ``[n_models, batch, ...]``: ``x`` is ``[n_models, batch, C, H, W]`` (or ``[batch, C, H, W]``
    with ``shared``); a plain model counts as one model."""
    if isinstance(model, ModelStack):
        return forward(x, shared=shared)
    return forward(x if shared else x[0])[None]


def per_model_loss(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss of each model over its batch: ``outputs`` ``[N, B, K]``, integer ``targets`` ``[N, B]``.

    Computed in float32 at least (bf16 outputs are upcast; float64 stays float64)."""
    outputs = outputs.to(torch.promote_types(outputs.dtype, torch.float32))
    if loss == "mse":
        one_hot = F.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
        return (outputs - one_hot).square().mean(dim=(1, 2))
    n, b, k = outputs.shape
    return F.cross_entropy(outputs.reshape(n * b, k), targets.reshape(n * b), reduction="none").view(n, b).mean(1)


class ImageObjective:
    """``loss_fn(model, batch)`` for the loop: gather, crop/flip, normalise, forward, per-model loss."""

    def __init__(self, forward, images: torch.Tensor, labels: torch.Tensor, normalization: Normalization,
                 policy: Precision, loss: str, padding: int, flip: bool):
        self.forward, self.images, self.labels = forward, images, labels
        self.normalization, self.policy, self.loss = normalization, policy, loss
        self.padding, self.augment = padding, padding > 0 or flip

    def __call__(self, model: nn.Module, batch: ImageBatch) -> torch.Tensor:
        n_models, size = batch.idx.shape
        x = self.images[batch.idx.reshape(-1)]
        if self.augment:
            x = crop_flip(x, batch.dy.reshape(-1), batch.dx.reshape(-1), batch.flip.reshape(-1), self.padding)
        x = prepare(x.view(n_models, size, *x.shape[1:]), self.normalization, self.policy)
        y = self.labels[batch.idx] if self.labels.dim() == 1 else self.labels.gather(1, batch.idx)
        with self.policy.context():
            outputs = apply_model(self.forward, model, x)
        return per_model_loss(outputs, y, self.loss)


def compiled(model: nn.Module, option: bool | str):
    """``model`` itself, or ``torch.compile(model)`` (sharing its parameters) when ``option`` is set."""
    if not option:
        return model
    return torch.compile(model) if option is True else torch.compile(model, backend=option)


def train_images(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: ImageTraining, *,
                 normalization: Normalization, seed: int = 0, checkpoint: Path | None = None,
                 callbacks: Sequence[Callback] = (), desc: str = "train") -> TrainLog:
    """Train ``model`` (one network, or a :class:`ModelStack`) on device-resident ``images``.

    ``labels``: int64 ``[n]`` for every model, or ``[n_models, n]`` (e.g. each model its own
    random labels). Data order and augmentation come from ``seed`` for one model and from
    the stack's seeds for a stack, so stacked model s sees what it would see alone with
    seed ``seeds[s]``. On CUDA this also turns on ``torch.backends.cudnn.benchmark``, unless
    deterministic algorithms are on (``deterministic: true``, see :func:`repalign.runner.set_determinism`).
    Returns the loop's :class:`TrainLog` (losses ``[steps, n_models]``).
    """
    device = next(model.parameters()).device
    policy = precision_policy(device, cfg.precision)
    _check_inputs(model, images, labels, policy)
    seeds = model.seeds if isinstance(model, ModelStack) else [seed]
    if labels.dim() == 2 and labels.shape[0] != len(seeds):
        raise ValueError(f"labels have {labels.shape[0]} rows for {len(seeds)} models")
    if policy.device_type == "cuda":
        torch.backends.cudnn.benchmark = not torch.are_deterministic_algorithms_enabled()
        if not isinstance(model, ModelStack):
            model.to(memory_format=policy.memory_format)
    sampler = ImageSampler(images.shape[0], cfg.batch_size, seeds, padding=cfg.crop_padding, flip=cfg.flip,
                           device=device)
    objective = ImageObjective(compiled(model, cfg.compile), images, labels, normalization, policy, cfg.loss,
                               cfg.crop_padding, cfg.flip)
    return train(model, objective, sampler, cfg.epochs * sampler.steps_per_epoch, cfg.optim,
                 checkpoint=checkpoint, checkpoint_every=cfg.checkpoint_every, callback=list(callbacks),
                 check_every=cfg.check_every, desc=desc)


@torch.no_grad()
def evaluate_images(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                    normalization: Normalization, loss: str = "cross_entropy", precision: str = "auto",
                    batch_size: int = 1000) -> dict[str, np.ndarray]:
    """Accuracy (%) and mean loss of every model on a whole split, in eval mode, without augmentation.

    ``labels`` ``[n]`` or ``[n_models, n]``. Returns ``{"accuracy": [n_models], "loss": [n_models]}``
    (maennel2020 measures accuracy on the entire training set this way).
    """
    device = next(model.parameters()).device
    policy = precision_policy(device, precision)
    _check_inputs(model, images, labels, policy)
    was_training = model.training
    model.eval()
    n_models = model.n_models if isinstance(model, ModelStack) else 1
    labels = labels.expand(n_models, -1)
    hits = torch.zeros(n_models, device=device)
    total = torch.zeros(n_models, device=device)
    for i in range(0, images.shape[0], batch_size):
        x = prepare(images[i:i + batch_size], normalization, policy)
        y = labels[:, i:i + batch_size]
        with policy.context():
            outputs = apply_model(model, model, x, shared=True)
        hits += (outputs.argmax(-1) == y).sum(1)
        total += per_model_loss(outputs, y, loss) * y.shape[1]
    model.train(was_training)
    n = images.shape[0]
    return {"accuracy": (100.0 * hits / n).cpu().numpy(), "loss": (total / n).cpu().numpy()}
