"""maennel2020 App. A, shared by every artifact: splits, random labels, training, transfer.

- Splits (App. A.1): upstream and downstream examples are disjoint random draws from the
  training split (``disjoint_splits``); random labels are i.i.d. uniform over
  ``num_classes`` and fixed by the seed (``random_labels``).
- Training (App. A.3): inputs scaled to [-1, 1] (``NORMALIZATION``), He normal × init_scale
  with zero biases (``make_model`` through ``repalign.models.build``), cross-entropy on the
  raw logits (no activation after the head), SGD momentum 0.9, batch 256, lr ÷ 3 at 1/3
  and 2/3 of the steps (``thirds``), no augmentation, no weight decay (``fit``); accuracy is
  measured on the ENTIRE training set, not the minibatch (``AccuracyCurve``). ``fit_tensors``
  is the same protocol on inputs that are already float network inputs (App. E.2's synthetic
  images).
- Transfer (App. A.4): every transferred layer is rescaled to its ℓ2 norm at initialisation
  (Simple CNN and VGG16; not ResNet18), the head is re-initialised, and optionally only the
  first k layers are transferred (``transfer``).
- Patches and filters: filters are conv weights ``[out, C, kh, kw]`` flattened in that
  order (``filter_matrix``), the order of ``repalign.metrics.patch_covariance``; the
  eigenvectors of a symmetric matrix are the COLUMNS of ``eigh``'s matrix (``eigenbasis``).
"""

from __future__ import annotations

import copy
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.data import load_dataset
from repalign.data.labels import relabel
from repalign.models import build
from repalign.train import EpochSampler, ImageSampler, Normalization, OptimConfig, evaluate_images, train
from repalign.train.images import ImageObjective, prepare
from repalign.train.stack import ModelStack
from repalign.train.precision import precision_policy

NORMALIZATION = Normalization.unit_range(3)  # App. A.3: CIFAR-10 inputs scaled to [-1, 1]
BATCH_SIZE = 256
MOMENTUM = 0.9
NO_RESCALE = ("resnet18_v2_gn",)  # App. A.4: "we decided not to re-scale ResNet18"


def load_cifar(ctx, split: str = "train"):
    """CIFAR-10 ``split`` on ``ctx.device`` (uint8); raises DatasetMissing when absent."""
    return load_dataset("cifar10", split, root=ctx.data_root, cache_dir=ctx.cache_dir, device=ctx.device,
                        download=ctx.download)


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1], the network's input (App. A.3)."""
    return prepare(x_uint8, NORMALIZATION, precision_policy("cpu", "fp32")).to(x_uint8.device)


def disjoint_splits(n_total: int, n_upstream: int, n_downstream: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of an upstream and a disjoint downstream sample of a training split (App. A.1)."""
    if n_upstream + n_downstream > n_total:
        raise ValueError(f"{n_upstream} upstream + {n_downstream} downstream examples exceed the "
                         f"{n_total} of the training split; lower num_examples_*")
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(int(seed)))
    return perm[:n_upstream].sort().values, perm[n_upstream:n_upstream + n_downstream].sort().values


def random_labels(n: int, n_classes: int, seed: int, device="cpu") -> torch.Tensor:
    """``n`` labels drawn i.i.d. uniformly from ``0..n_classes-1``, fixed by ``seed`` (App. A.1)."""
    return relabel(torch.zeros(n, dtype=torch.int64), 1.0, n_classes, seed, convention="uniform").labels.to(device)


def make_model(arch: str, n_classes: int, seed: int, init_scale: float, device, **options) -> nn.Module:
    """``repalign.models.build`` with He normal × ``init_scale`` and zero biases (App. A.3)."""
    return build(arch, n_classes, seed=seed, init_scale=init_scale, **options).to(device)


def optim_config(lr: float) -> OptimConfig:
    """SGD, momentum 0.9, no weight decay, lr ÷ 3 at 1/3 and 2/3 of the steps (App. A.3)."""
    return OptimConfig("sgd", lr=lr, momentum=MOMENTUM, weight_decay=0.0, schedule="thirds")


class AccuracyCurve:
    """Accuracy on a whole set (App. A.3: the entire training set) at chosen optimiser steps."""

    def __init__(self, steps, images: torch.Tensor, labels: torch.Tensor):
        self.steps = sorted({int(s) for s in steps})
        self.images, self.labels = images, labels
        self.records: dict[int, float] = {}

    def measure(self, model: nn.Module) -> float:
        """Accuracy (a fraction, as the paper prints it) of ``model`` on the whole set now."""
        acc = evaluate_images(model, self.images, self.labels, normalization=NORMALIZATION, precision="fp32")
        return float(acc["accuracy"][0]) / 100.0

    def _record(self, step: int, model: nn.Module) -> None:
        self.records[step] = self.measure(model)

    def before_training(self, model: nn.Module) -> None:
        if 0 in self.steps:
            self._record(0, model)

    def __call__(self, step: int, model: nn.Module) -> None:
        if step in self.steps:
            self._record(step, model)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        steps = np.array(sorted(self.records))
        return steps, np.array([self.records[s] for s in steps])

    def auc(self) -> float:
        """Area under the accuracy curve over steps divided by the steps covered (App. B)."""
        steps, acc = self.curve()
        return float(np.trapezoid(acc, steps) / (steps[-1] - steps[0]))


def eval_steps(total: int, n_points: int) -> list[int]:
    """0, the end, and ``n_points`` evenly spaced steps in between, for accuracy curves."""
    return sorted({0, total, *np.linspace(0, total, n_points).round().astype(int).tolist()})


def fit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int, lr: float, *, seed: int,
        callbacks=(), desc: str = "maennel2020") -> np.ndarray:
    """Train ``model`` by the App. A.3 protocol for ``steps`` SGD steps; returns the per-step losses.

    ``model`` may be a :class:`ModelStack` (``labels`` ``[n]`` or ``[n_models, n]``): each member
    then draws its batches from its own seed, as it would alone, and ``seed`` is unused; the
    losses are ``[steps, n_models]`` instead of ``[steps]``."""
    stacked = isinstance(model, ModelStack)
    sampler = ImageSampler(images.shape[0], BATCH_SIZE, model.seeds if stacked else [seed], padding=0, flip=False,
                           device=images.device)
    objective = ImageObjective(model, images, labels, NORMALIZATION, precision_policy(images.device, "fp32"),
                               "cross_entropy", 0, False)
    losses = train(model, objective, sampler, steps, optim_config(lr), callback=list(callbacks), desc=desc).losses
    return losses if stacked else losses[:, 0]


def fit_tensors(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int, lr: float, *, seed: int,
                desc: str = "maennel2020") -> np.ndarray:
    """``fit`` on float ``inputs`` fed to the network as they are (no scaling, no augmentation): the
    App. A.3 optimiser, batch and schedule; returns the per-step losses."""
    sampler = EpochSampler(inputs.shape[0], BATCH_SIZE, seed=seed, device=inputs.device)
    return train(model, lambda m, idx: F.cross_entropy(m(inputs[idx[0]]), labels[idx[0]]), sampler, steps,
                 optim_config(lr), desc=desc).losses[:, 0]


def head_name(model: nn.Module) -> str:
    """The module path of the classifier head: the module whose output is the ``logits`` layer."""
    return next(layer.module for layer in model.measurement_layers if layer.name == "logits")


def layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The parametrised layers (conv and linear) below the head, in depth order."""
    head = head_name(model)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and name != head]


def layer_norms(model: nn.Module) -> dict[str, float]:
    """ℓ2 norm of all parameters (weight and bias together) of each layer below the head."""
    return {name: float(torch.sqrt(sum(p.detach().pow(2).sum() for p in m.parameters()))) for name, m in layers(model)}


@torch.no_grad()
def transfer(pretrained: nn.Module, fresh: nn.Module, init_norms: dict[str, float] | None,
             n_layers: int | None = None) -> nn.Module:
    """App. A.4: ``fresh`` (a newly initialised network: its head and untransferred layers stay) with
    the first ``n_layers`` conv/linear layers (all below the head, with any normalisation layers,
    when None) copied from ``pretrained``, each
    multiplied by one positive constant so its ℓ2 norm equals ``init_norms[layer]`` (the norm at
    pretraining's initialisation); ``init_norms=None`` copies without rescaling."""
    out = copy.deepcopy(fresh)
    if n_layers is None:  # everything below the head, normalisation layers included
        head = {k for k in out.state_dict() if k.startswith(head_name(out) + ".")}
        out.load_state_dict({k: v for k, v in pretrained.state_dict().items() if k not in head}, strict=False)
    source = dict(layers(pretrained))
    chosen = layers(out) if n_layers is None else layers(out)[:n_layers]
    for name, target in chosen:
        factor = 1.0
        if init_norms is not None:
            norm = float(torch.sqrt(sum(p.pow(2).sum() for p in source[name].parameters())))
            factor = init_norms[name] / norm
        for p, q in zip(target.parameters(), source[name].parameters(), strict=True):
            p.copy_(q * factor)
    return out


def filter_matrix(conv: nn.Conv2d) -> torch.Tensor:
    """Filters as rows ``[out, C·kh·kw]`` in the (C, kh, kw) order of ``patch_covariance``."""
    return conv.weight.detach().reshape(conv.weight.shape[0], -1)


def eigenbasis(sym: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and unit eigenvectors of a symmetric matrix: column i of the
    returned matrix is the eigenvector of eigenvalue i (``eigh``'s convention)."""
    evals, vecs = torch.linalg.eigh(sym)
    order = torch.argsort(evals, descending=True)
    return evals[order], vecs[:, order]


def weight_covariance(filters: torch.Tensor) -> torch.Tensor:
    """Σ_w: covariance of the filters (rows), centred, unbiased (App. A.6)."""
    return torch.cov(filters.T)
