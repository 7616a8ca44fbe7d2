"""The training configurations of sharon2024 (App. G table) and the model step that trains one.

Each run trains one network on CIFAR-10 (or Tiny ImageNet) with standard augmentation (4-pixel
pad-crop, flip) on the shared image path, with a fixed seed-reproducible relabelling
("incorrect" convention, Nakkiran et al.), and measures DURING training on a log-spaced epoch
grid (epoch 0 = initialisation, ``repalign.train.EpochHook``):

- per layer, the probe-set minibatch-CKA vector (``cka_store``: 4 class-balanced batches of 512
  test images at the paper tier) — all that the E×E map needs, no features, no checkpoints;
- train error (on the labels trained on, noisy ones included) and test error, in percent, on a
  denser error grid (every epoch by default) that contains the CKA grid;
- model weights only at the sparse DRS epochs of runs that feed a DRS figure.

Runs that the paper does not fully specify: SGD + momentum uses lr 0.01 and momentum 0.9, and
Adam + weight decay uses 5e-4 (coupled L2, ``torch.optim.Adam``); both values are ours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

from repalign.data import load_dataset
from repalign.data.labels import relabel
from repalign.data.splits import class_subset
from repalign.experiments.registry import Context, Resources, Tiered, Work, model, trained
from repalign.experiments.sharon2024.analysis import nearest
from repalign.experiments.sharon2024.architectures import VitShape, make_network, measured_layers, model_layer
from repalign.experiments.sharon2024.cka_store import batch_triangle, unit
from repalign.models import measure
from repalign.train import (EpochHook, ImageTraining, Normalization, OptimConfig, epoch_grid, evaluate_images,
                            train_images)
from repalign.train.images import prepare
from repalign.train.precision import precision_policy

PAPER = "sharon2024"
DATA_SEED = 1234      # training subset, probe set and DRS triplets: the same for every run
NOISE_SEED = 4321     # the fixed relabelling
OTHER_INIT_OFFSET = 1000  # fig19: the "other" initialisation is seed + this
ADAM = OptimConfig("adam", lr=1e-4)


@dataclass(frozen=True)
class RunSpec:
    arch: str
    noise: float
    optim: OptimConfig = ADAM
    width: int | None = 64   # ResNet-18 k at the paper tier
    dataset: str = "cifar10"
    other_init: bool = False  # also store a second initialisation's epoch-0 vectors (fig19)
    drs: bool = False         # keep weights at the DRS epochs (figs 4, 5, 6, 18)


RUNS = {
    "noise0": RunSpec("preact_resnet18", 0.0, other_init=True, drs=True),
    "noise10": RunSpec("preact_resnet18", 0.1),
    "noise20": RunSpec("preact_resnet18", 0.2, drs=True),
    "k32": RunSpec("preact_resnet18", 0.2, width=32),
    "k42": RunSpec("preact_resnet18", 0.2, width=42),
    "k52": RunSpec("preact_resnet18", 0.2, width=52),
    "sgdm_noise0": RunSpec("preact_resnet18", 0.0, OptimConfig("sgd", lr=0.01, momentum=0.9)),
    "sgdm_noise20": RunSpec("preact_resnet18", 0.2, OptimConfig("sgd", lr=0.01, momentum=0.9)),
    "sgd_noise20": RunSpec("preact_resnet18", 0.2, OptimConfig("sgd", lr=0.01)),
    "adam_wd": RunSpec("preact_resnet18", 0.0, OptimConfig("adam", lr=1e-4, weight_decay=5e-4)),
    "resnet50_noise20": RunSpec("resnet50", 0.2, width=None),
    "vit_noise0": RunSpec("vit_b16", 0.0, width=None, drs=True),
    "vit_noise20": RunSpec("vit_b16", 0.2, width=None),
    "tiny_noise0": RunSpec("preact_resnet18", 0.0, dataset="tiny_imagenet"),
    "tiny_noise20": RunSpec("preact_resnet18", 0.2, dataset="tiny_imagenet"),
}


@dataclass(frozen=True)
class RunSettings:
    """One tier of every run. ``width_scale`` multiplies the paper's k (at least 2);
    ``n_train``/``n_test``: class-balanced subsets (None: all); ``grid_points``: log epoch grid
    size; ``error_points``: log grid of the error curve (None: every epoch; always ⊇ the CKA
    grid); ``drs_points``: log grid of the DRS weight snapshots (⊂ the CKA grid)."""

    width_scale: float
    n_train: int | None
    n_test: int | None
    epochs: int
    grid_points: int
    probe_batches: int
    probe_batch_size: int
    drs_points: int
    batch_size: int = 128
    error_points: int | None = None
    resnet50_blocks: tuple[int, ...] = (3, 4, 6, 3)
    resnet50_width: int = 64
    vit_shape: VitShape = field(default_factory=VitShape)
    compile: bool = False
    n_runs: int = 1


SETTINGS = Tiered(
    smoke=RunSettings(width_scale=1 / 16, n_train=200, n_test=200, epochs=3, grid_points=4, probe_batches=2,
                      probe_batch_size=20, drs_points=3, batch_size=50, resnet50_blocks=(1, 1, 1, 1), resnet50_width=4,
                      vit_shape=VitShape(patch=8, layers=2, heads=2, hidden=16, mlp=32)),
    quick=RunSettings(width_scale=0.5, n_train=10_000, n_test=10_000, epochs=600, grid_points=48,
                      probe_batches=4, probe_batch_size=512, drs_points=8, batch_size=128, resnet50_width=32,
                      error_points=200,
                      vit_shape=VitShape(patch=4, layers=6, heads=4, hidden=192, mlp=384)),
    paper=RunSettings(width_scale=1.0, n_train=None, n_test=None, epochs=4000, grid_points=300, probe_batches=4,
                      probe_batch_size=512, drs_points=60, batch_size=128),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=15, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=60 * 20, mem_mb=32000, gpu=1),
)


def run_width(spec: RunSpec, s: RunSettings) -> int | None:
    return None if spec.width is None else max(2, round(spec.width * s.width_scale))


def balanced_order(y: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    """Indices of ``n`` examples taken class by class in turn, so every consecutive batch is
    (almost) class-balanced (App. F.2)."""
    per_class = [torch.nonzero(y.cpu() == c).flatten() for c in range(n_classes)]
    rounds = -(-n // n_classes)
    if min(len(p) for p in per_class) < rounds:
        raise ValueError(f"the probe set needs {rounds} test examples per class, some class has fewer")
    return torch.stack([p[:rounds] for p in per_class], 1).reshape(-1)[:n]


@dataclass
class RunData:
    train_x: torch.Tensor
    train_y: torch.Tensor       # the labels trained on (noisy)
    test_x: torch.Tensor
    test_y: torch.Tensor
    probe_x: torch.Tensor       # uint8, in batch order
    normalization: Normalization
    n_classes: int
    notes: list[str]


def load_run_data(ctx: Context, spec: RunSpec, s: RunSettings) -> RunData:
    """Training subset, relabelling, test subset and probe set; raises DatasetMissing if absent."""
    def load(split: str, n: int | None):
        data = load_dataset(spec.dataset, split, root=ctx.data_root, cache_dir=ctx.cache_dir,
                            device=ctx.device, download=ctx.download)
        if n is None or n >= data.n:
            return data
        return class_subset(data, range(len(data.classes)), max_per_class=n // len(data.classes),
                            generator=torch.Generator().manual_seed(DATA_SEED))

    train, test = load("train", s.n_train), load("test", s.n_test)
    n_classes = len(train.classes)
    noisy = relabel(train.y, spec.noise, n_classes, NOISE_SEED)
    n_probe = s.probe_batches * s.probe_batch_size
    probe = test.x[balanced_order(test.y, n_probe, n_classes).to(test.x.device)]
    notes = [f"{spec.dataset} train: {train.source} ({train.n} examples, {100 * spec.noise:.0f}% incorrect labels, "
             f"relabelling seed {NOISE_SEED})", f"{spec.dataset} test: {test.n} examples for the error curve",
             f"CKA probe: {s.probe_batches} class-balanced batches of {s.probe_batch_size} test images",
             f"relabelling: {noisy.record()}"]
    return RunData(train.x, noisy.labels, test.x, test.y, probe, Normalization.of(train.x), n_classes, notes)


class Measurement:
    """What the EpochHook keeps at one epoch: errors, and on the CKA grid per-layer CKA vectors and DRS weights."""

    def __init__(self, data: RunData, layers: tuple[str, ...], s: RunSettings, cka_epochs: set[int],
                 drs_epochs: set[int]):
        self.data, self.layers, self.s = data, layers, s
        self.cka_epochs, self.drs_epochs = cka_epochs, drs_epochs
        self.seconds = 0.0

    def vectors(self, net: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Minibatch-CKA vectors of every layer, one probe batch per forward pass (float32)."""
        triangles: dict[str, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        policy = precision_policy(next(net.parameters()).device, "fp32")
        b = self.s.probe_batch_size
        with torch.no_grad():
            for i in range(self.s.probe_batches):
                x = prepare(self.data.probe_x[i * b:(i + 1) * b], self.data.normalization, policy)
                out = measure(net, x, [model_layer(layer) for layer in self.layers])
                for layer in self.layers:
                    triangles[layer].append(batch_triangle(out[model_layer(layer)]))
        return {layer: unit(t) for layer, t in triangles.items()}

    def __call__(self, epoch: int, net: torch.nn.Module) -> dict:
        start = time.perf_counter()
        d = self.data
        train = evaluate_images(net, d.train_x, d.train_y, normalization=d.normalization)
        test = evaluate_images(net, d.test_x, d.test_y, normalization=d.normalization)
        record = {"train_error": 100.0 - float(train["accuracy"][0]), "test_error": 100.0 - float(test["accuracy"][0])}
        if epoch in self.cka_epochs:
            record["vectors"] = self.vectors(net)
        if epoch in self.drs_epochs:
            record["state"] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        self.seconds += time.perf_counter() - start
        return record


def train_run(ctx: Context, prefix: str, spec: RunSpec) -> dict:
    """Train run ``prefix`` and return its payload (grid, CKA vectors, error curves, DRS weights)."""
    s: RunSettings = ctx.settings
    data = load_run_data(ctx, spec, s)
    width = run_width(spec, s)
    seed = ctx.seeds[0]
    shape = {"width": width, "resnet50_blocks": s.resnet50_blocks, "resnet50_width": s.resnet50_width,
             "vit_shape": s.vit_shape}
    net = make_network(spec.arch, data.n_classes, seed=seed, **shape).to(ctx.device)
    layers = measured_layers(spec.arch, s.vit_shape)
    grid = epoch_grid("log", s.epochs, min(s.grid_points, s.epochs + 1))
    drs_epochs = set(epoch_grid("log", s.epochs, min(s.drs_points, s.epochs + 1))) if spec.drs else set()
    drs_epochs = {grid[nearest(np.array(grid), e)] for e in drs_epochs}  # on the CKA grid
    last = s.epochs
    errors_at = range(last + 1) if s.error_points is None else epoch_grid("log", last, min(s.error_points, last + 1))
    error_grid = sorted(set(errors_at) | set(grid))
    meas = Measurement(data, layers, s, set(grid), drs_epochs)
    cfg = ImageTraining(epochs=s.epochs, batch_size=s.batch_size, optim=spec.optim, compile=s.compile)
    steps_per_epoch = -(-data.train_x.shape[0] // s.batch_size)
    hook = EpochHook(error_grid, steps_per_epoch, meas)
    start = time.perf_counter()
    train_images(net, data.train_x, data.train_y, cfg, normalization=data.normalization, seed=seed,
                 checkpoint=ctx.checkpoint, callbacks=[hook], desc=f"{PAPER}/{prefix}")
    wall = time.perf_counter() - start
    vectors = {layer: torch.stack([hook.records[e]["vectors"][layer] for e in grid]) for layer in layers}
    records = [hook.records[e] for e in error_grid]
    payload = {
        "prefix": prefix, "spec": spec, "settings": s, "width": width, "layers": layers, "grid": np.array(grid),
        "error_grid": np.array(error_grid), "vectors": vectors,
        "train_error": np.array([r["train_error"] for r in records]),
        "test_error": np.array([r["test_error"] for r in records]),
        "drs_states": {e: hook.records[e]["state"] for e in sorted(drs_epochs)},
        "n_train": int(data.train_x.shape[0]), "epochs": s.epochs, "wall_s": wall,
        "measure_s": meas.seconds,
        "images_per_s": s.epochs * data.train_x.shape[0] / max(wall - meas.seconds, 1e-9),
        "cka_bytes": int(sum(v.numel() * v.element_size() for v in vectors.values())),
        "notes": data.notes + [f"{prefix}: {spec.arch}" + (f" k={width}" if width else "") +
                               f", {spec.optim.name} lr {spec.optim.lr} momentum {spec.optim.momentum} "
                               f"wd {spec.optim.weight_decay}, {s.epochs} epochs, CKA grid {len(grid)} log epochs, "
                               f"errors at {len(error_grid)} epochs"],
    }
    if spec.other_init:
        other = make_network(spec.arch, data.n_classes, seed=seed + OTHER_INIT_OFFSET, **shape).to(ctx.device).eval()
        payload["other_init_vectors"] = meas.vectors(other)
    payload["drs_data"] = {"train_x": data.train_x.cpu(), "train_y": data.train_y.cpu(),
                           "test_x": data.test_x.cpu(), "test_y": data.test_y.cpu(),
                           "normalization": data.normalization, "n_classes": data.n_classes} if spec.drs else None
    return payload


TRAIN_SPLIT_SIZE = {"cifar10": 50_000, "tiny_imagenet": 100_000}  # whole train splits, for declared work


def run_work(s: RunSettings, spec: RunSpec) -> Work:
    """``epochs`` over the run's train subset; a ResNet's cost per example grows as its width k squared."""
    width = run_width(spec, s)
    return trained(epochs=s.epochs, examples=s.n_train or TRAIN_SPLIT_SIZE[spec.dataset], models=s.n_runs,
                   **({} if width is None else {"width_squared": width ** 2}))


def _register(prefix: str, spec: RunSpec) -> None:
    @model(PAPER, f"run_{prefix}", settings=SETTINGS, resources=RESOURCES, work=partial(run_work, spec=spec))
    def run_step(ctx: Context) -> dict:
        return train_run(ctx, prefix, spec)

    run_step.__doc__ = f"sharon2024 run {prefix}: {spec}"


for _prefix, _spec in RUNS.items():
    _register(_prefix, _spec)
