"""maennel2020 Sec. 2.5, Table 1 and App. E.3, Tables 2–7: conv layers initialised from the data only.

Net (App. E.3): conv 3×3 ×16, ×3 (ReLU, SAME padding, biases), max-pool 3×3 stride 2 (SAME),
dense 512 (ReLU), head; trained on real labels with lr 0.002 by the App. A.3 protocol
(SGD momentum 0.9, batch 256, lr ÷ 3 at 1/3 and 2/3). Layers {1}, {1,2}, {1,2,3} are
initialised in order: the input of layer k (the images in [-1, 1], or the post-ReLU output
of the data-initialised layers below) gives a 3×3 patch covariance Σ (27 or 144 dims), whose
chosen eigenvectors e_i, weighted by τ_i, are the 16 filters (``eigen``), or 16 draws of
N(0, Σ_i τ_i² e_i e_iᵀ) (``sample``, Table 4). Each constructed layer is rescaled to the ℓ2
norm of its standard (He) initialisation (``covariance_filters`` leaves the scale to the
caller; App. A.4's rescaling rule), biases 0; the paper does not say how it scales them, and
since eigenvector filters concentrate on the high-variance directions this lets activations
grow layer by layer, so ``filter_scale="output_std"`` instead matches each layer's output
standard deviation to that of its He initialisation. Table 7 instead transfers the first k conv
layers of the same net pretrained on 30k random-label images (rescaled, App. A.4).
Accuracies (fractions) after ``early`` and ``late`` iterations (paper: 100 and 1,000) on the
whole training set and the test images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from repalign.experiments.maennel2020 import tau as taus
from repalign.experiments.maennel2020.protocol import (BATCH_SIZE, AccuracyCurve, disjoint_splits, eigenbasis, fit,
                                                       layer_norms, load_cifar, make_model, random_labels,
                                                       to_unit_range, transfer)
from repalign.experiments.registry import Context, Resources, Tiered, Work, artifact, trained
from repalign.metrics import covariance_filters, patch_covariance
from repalign.results import Result

PAPER = "maennel2020"
LAYER_SETS = {"none": 0, "l1": 1, "l12": 2, "l123": 3}
N_FILTERS = 16
# Table 6: e4..e19 of 27 in layer 1, e10..e25 of 144 in layers 2-3 (0-based slices)
MIDDLE = {1: slice(3, 19), 2: slice(9, 25), 3: slice(9, 25)}


@dataclass(frozen=True)
class DataInitSettings:
    variant: str            # f1 | f2 | f3 | sample | smallest | middle | pretrained
    n_train: int            # real-label training images (paper: 20,000)
    n_test: int             # test images (paper: 10,000)
    early: int = 100        # iterations of the first column (paper: 100)
    late: int = 1000        # iterations of the second column and of the schedule (paper: 1,000)
    n_cov: int = 2000       # images whose patches give each layer's covariance
    n_pretrain: int = 30000  # Table 7: random-label images of the pretraining run
    pretrain_steps: int = 1000
    lr: float = 0.002
    filter_scale: str = "weight_norm"  # or "output_std" (the paper does not say how it scales them)
    n_runs: int = 1


def _tiers(variant: str) -> Tiered:
    return Tiered(
        smoke=DataInitSettings(variant, n_train=32, n_test=32, early=1, late=2, n_cov=16, n_pretrain=32,
                               pretrain_steps=1),
        quick=DataInitSettings(variant, n_train=20000, n_test=10000),
        paper=DataInitSettings(variant, n_train=20000, n_test=10000, n_runs=3))


RESOURCES = Tiered(smoke=Resources(runtime_min=3), quick=Resources(runtime_min=30, mem_mb=8000, gpu=1),
                   paper=Resources(runtime_min=60, mem_mb=8000, gpu=1))


def table_net(seed: int, device) -> nn.Module:
    """App. E.3's net: Simple CNN (3 conv of 16, dense 512) with a 3×3 stride-2 SAME max-pool."""
    model = make_model("simple_cnn", 10, seed, 1.0, device, n_conv=3, filters=16, units=512, pool=True)
    model.pool = nn.MaxPool2d(3, stride=2, padding=1)  # SAME: ceil(32 / 2) = 16, like the 2×2 pool it replaces
    return model


def chosen_filters(cov: torch.Tensor, variant: str, layer: int, generator: torch.Generator) -> torch.Tensor:
    """The 16 filters ``[16, d]`` of ``variant`` for layer ``layer`` (1-based) from its input covariance."""
    if variant == "sample":
        return covariance_filters(cov, torch.ones(N_FILTERS, dtype=cov.dtype), N_FILTERS, "sample", generator)
    evals, vecs = eigenbasis(cov)
    if variant in ("f1", "f2", "f3"):
        return covariance_filters(cov, torch.as_tensor(taus.tau_sequence(variant), dtype=cov.dtype), N_FILTERS,
                                  "eigen")
    picked = {"smallest": slice(cov.shape[0] - N_FILTERS, None), "middle": MIDDLE[layer]}[variant]
    return vecs[:, picked].T  # equal weights


SCALES = ("weight_norm", "output_std")


@torch.no_grad()
def data_initialise(model: nn.Module, images: torch.Tensor, n_layers: int, variant: str, seed: int,
                    scale: str = "weight_norm") -> nn.Module:
    """Set conv1..conv<n_layers> of ``model`` from the data, biases 0, each layer rescaled to the
    ℓ2 norm of its He initialisation (``weight_norm``) or so that its outputs on ``images`` have
    the standard deviation the He-initialised layer gives them (``output_std``)."""
    if scale not in SCALES:
        raise ValueError(f"unknown filter scale '{scale}'; choose one of {SCALES}")
    g = torch.Generator().manual_seed(seed)
    h = to_unit_range(images).double()
    for k in range(1, n_layers + 1):
        conv: nn.Conv2d = getattr(model, f"conv{k}")
        cov = patch_covariance(h, 3)
        filters = chosen_filters(cov, variant, k, g).reshape(conv.weight.shape)
        if scale == "weight_norm":
            factor = conv.weight.double().norm() / filters.norm()
        else:
            factor = (nn.functional.conv2d(h, conv.weight.double(), padding=1).std()
                      / nn.functional.conv2d(h, filters, padding=1).std())
        conv.weight.copy_((filters * factor).to(conv.weight.dtype))
        conv.bias.zero_()
        h = torch.relu(nn.functional.conv2d(h, conv.weight.double(), conv.bias.double(), padding=1))
    return model


def pretrained_net(ctx: Context, s: DataInitSettings, train_x: torch.Tensor, seed: int) -> tuple[nn.Module, dict]:
    """Table 7's donor: the same net trained on ``n_pretrain`` random-label images (10 classes)."""
    net = table_net(seed + 1000, ctx.device)
    norms = layer_norms(net)
    fit(net, train_x, random_labels(train_x.shape[0], 10, seed + 1000, ctx.device), s.pretrain_steps, s.lr,
        seed=seed + 1000, desc=f"{PAPER}/table7 pretrain")
    return net, norms


def table_work(s: DataInitSettings) -> Work:
    """Per run: one net per layer set fitted ``late`` iterations (plus Table 7's random-label pretraining)."""
    work = trained(steps=s.late, batch=BATCH_SIZE, models=s.n_runs, networks=len(LAYER_SETS))
    if s.variant == "pretrained":
        work = work + trained(steps=s.pretrain_steps, batch=BATCH_SIZE, models=s.n_runs)
    return work


def run_table(ctx: Context) -> Result:
    s: DataInitSettings = ctx.settings
    train_split, test_split = load_cifar(ctx, "train"), load_cifar(ctx, "test")
    result = Result(notes=[f"variant {s.variant}; {s.n_train} real-label training images, {s.n_test} test images, "
                           f"lr {s.lr}, accuracies after {s.early} and {s.late} iterations (paper: 100, 1000)"])
    sums: dict[str, float] = {}
    for seed in ctx.seeds:
        down, pre = disjoint_splits(train_split.n, s.n_train, s.n_pretrain if s.variant == "pretrained" else 0, seed)
        x, y = train_split.x[down.to(ctx.device)], train_split.y[down.to(ctx.device)]
        test = torch.randperm(test_split.n, generator=torch.Generator().manual_seed(seed))[:s.n_test].to(ctx.device)
        x_test, y_test = test_split.x[test], test_split.y[test]  # a random subset: the split is class-ordered
        donor = pretrained_net(ctx, s, train_split.x[pre.to(ctx.device)], seed) if s.variant == "pretrained" else None
        for key, k in LAYER_SETS.items():
            net = table_net(seed, ctx.device)
            if k and donor is not None:
                net = transfer(donor[0], net, donor[1], n_layers=k)
            elif k:
                data_initialise(net, x[:s.n_cov], k, s.variant, seed, s.filter_scale)
            curves = {split: AccuracyCurve([s.early, s.late], xs, ys)
                      for split, (xs, ys) in {"train": (x, y), "test": (x_test, y_test)}.items()}
            fit(net, x, y, s.late, s.lr, seed=seed, callbacks=list(curves.values()),
                desc=f"{PAPER}/{ctx.name} {key} seed {seed}")
            for split, curve in curves.items():
                for column, step in (("early", s.early), ("final", s.late)):
                    name = f"accuracy.{column}.{split}.{key}"
                    sums[name] = sums.get(name, 0.0) + curve.records[step] / len(ctx.seeds)
    result.metrics.update(sums)
    return result


for _table, _variant in {"table1": "f1", "table2": "f2", "table3": "f3", "table4": "sample", "table5": "smallest",
                         "table6": "middle", "table7": "pretrained"}.items():
    artifact(PAPER, _table, settings=_tiers(_variant), resources=RESOURCES, work=table_work)(run_table)
