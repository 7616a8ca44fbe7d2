"""canatar2022 Figs 1, 2, 6 and Table I (Secs. IV, V): the 48-configuration ResNet-11 grid on CIFAR-10.

Grid: skip {on, off} × augmentation {on, off} × optimiser {SGD, SGD + momentum 0.9} × batch
{512, 2048, 4096} × lr {0.05, 0.2} (the paper does not print its two lrs; these are ours, one
either side of the usual 0.1 for BatchNorm ResNets under SGD), ``repalign.models.build
('resnet11')``, MSE on one-hot targets, a linearly decaying lr, augmentation = random crop
(padding 4) and horizontal flip. Runs above ``keep_above``% train accuracy are kept (paper:
> 95%, 36 of 48). Per kept run, at the end: CKA (centred Eq. 4) of each of the 10 layer
kernels with the target kernel YYᵀ and the input kernel XXᵀ on the train and test sets, in
the feature-space form (``kernels.cka``: p × p Grams only, never n × n). Layer features are
channel vectors, spatially averaged (ours; it gives layer 9 and 10 kernels the paper's ranks N_ℓ). During training an :class:`EpochHook` keeps the
spectra of layers 9 and 10 (epochs 0, ``middle_epoch`` and the last) for Figs 3–5.

Reduced tiers train a class-balanced subset of ``n_train`` images with every batch size
divided by ``batch_divisor`` (= 50,000 / n_train keeps the paper's steps per epoch).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from repalign.data import class_subset, load_dataset
from repalign.experiments.canatar2022.kernels import cka, feature_spectrum
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.models import build, measure
from repalign.results import Result
from repalign.train import EpochHook, ImageTraining, Normalization, OptimConfig, evaluate_images, train_images
from repalign.train.images import prepare
from repalign.train.precision import precision_policy

PAPER = "canatar2022"
C = 10
N_LAYERS = 10
LAYER_NAMES = [f"layer{k}" for k in range(1, N_LAYERS + 1)]  # the paper's Layer 1..10
# The paper's Layer l is resnet11's conv(l+1) (repalign.models.resnet11 explains the reading).
MODEL_LAYER = {f"layer{k}": f"conv{k + 1}" for k in range(1, N_LAYERS + 1)}
CIFAR = Normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
HYPER = ("skip", "augmentation", "batch_size", "lr", "momentum")
MEASURES = ("train_loss", "test_acc", "cka_test", "cka_train")  # Table I columns
SPECTRUM_LAYERS = ("layer9", "layer10")
SUBSET_SEED = 20_221_115


@dataclass(frozen=True, kw_only=True)
class GridSettings:
    n_train: int | None          # None: all 50,000
    n_test: int | None
    epochs: int
    middle_epoch: int            # the spectra's middle epoch (paper 25)
    n_spectrum: int              # training images on which the layer 9/10 spectra are taken
    width: int = 64
    lrs: tuple[float, float] = (0.05, 0.2)
    batch_sizes: tuple[int, ...] = (512, 2048, 4096)
    batch_divisor: int = 1
    configs: tuple[int, ...] | None = None  # indices into the 48-entry grid; None: all
    keep_above: float = 95.0
    momentum: float = 0.9
    n_runs: int = 1


SETTINGS = Tiered(
    smoke=GridSettings(n_train=100, n_test=100, epochs=1, middle_epoch=1, n_spectrum=100, width=4,
                       batch_divisor=16, configs=(0, 47), keep_above=0.0),
    quick=GridSettings(n_train=5000, n_test=2000, epochs=40, middle_epoch=5, n_spectrum=1000, batch_divisor=10),
    paper=GridSettings(n_train=None, n_test=None, epochs=5000, middle_epoch=25, n_spectrum=10_000),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=120, mem_mb=32000, gpu=1),
    paper=Resources(runtime_min=60 * 24 * 14, mem_mb=64000, gpu=1),
)
LIGHT = Tiered.same(Resources(runtime_min=5, mem_mb=2000))


def grid(s: GridSettings) -> list[dict]:
    """The configurations, in the order skip × augmentation × momentum × batch × lr."""
    full = [{"skip": skip, "augmentation": aug, "momentum": mom, "batch_size": batch, "lr": lr}
            for skip, aug, mom, batch, lr in itertools.product((1, 0), (1, 0), (0, 1), s.batch_sizes, s.lrs)]
    return full if s.configs is None else [full[i] for i in s.configs]


def label(cfg: dict) -> str:
    return (f"{'skip' if cfg['skip'] else 'noskip'}_{'aug' if cfg['augmentation'] else 'noaug'}_b{cfg['batch_size']}_"
            f"{'mom' if cfg['momentum'] else 'sgd'}_lr{cfg['lr']}")


def _cifar(ctx: Context, s: GridSettings):
    def load(split, n):
        data = load_dataset("cifar10", split, root=ctx.data_root, cache_dir=ctx.cache_dir, device=ctx.device,
                            download=ctx.download)
        if n is None or n >= data.n:
            return data
        return class_subset(data, range(C), max_per_class=n // C, generator=torch.Generator().manual_seed(SUBSET_SEED))

    return load("train", s.n_train), load("test", s.n_test)


@torch.no_grad()
def layer_features(net: torch.nn.Module, images: torch.Tensor, chunk: int = 500) -> dict[str, torch.Tensor]:
    """Spatially averaged channels of the 10 measurement layers, [n, N_ℓ] each, in eval mode."""
    policy = precision_policy(images.device, "auto")
    was = net.training
    net.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for i in range(0, images.shape[0], chunk):
        x = prepare(images[i:i + chunk], CIFAR, policy)
        with policy.context():
            acts = measure(net, x, [MODEL_LAYER[name] for name in LAYER_NAMES])
        for name in LAYER_NAMES:
            parts.setdefault(name, []).append(acts[MODEL_LAYER[name]].float().mean((2, 3)))
    net.train(was)
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def layer_ckas(net, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """CKA of every layer kernel with YYᵀ and with XXᵀ (X: the normalised input pixels)."""
    feats = layer_features(net, images)
    onehot = F.one_hot(labels, C)
    x = prepare(images, CIFAR, precision_policy(images.device, "fp32")).flatten(1).float()
    return {"target": np.array([cka(f, onehot) for f in feats.values()]),
            "input": np.array([cka(f, x) for f in feats.values()])}


def spectra(net, images: torch.Tensor, labels: torch.Tensor) -> dict:
    feats = layer_features(net, images)
    onehot = F.one_hot(labels, C)
    return {layer: dict(feature_spectrum(feats[layer], onehot)) for layer in SPECTRUM_LAYERS}


def train_config(ctx: Context, cfg: dict, train_split, test_split, s: GridSettings, seed: int) -> dict:
    """Train one grid configuration; return its accuracies, losses, layer CKAs and spectra."""
    net = build("resnet11", C, seed=seed, skip=bool(cfg["skip"]), width=s.width).to(ctx.device)
    batch = min(train_split.n, max(1, cfg["batch_size"] // s.batch_divisor))
    training = ImageTraining(epochs=s.epochs, batch_size=batch, loss="mse",
                             crop_padding=4 if cfg["augmentation"] else 0, flip=bool(cfg["augmentation"]),
                             optim=OptimConfig("sgd", lr=cfg["lr"], momentum=s.momentum if cfg["momentum"] else 0.0,
                                               schedule="linear"))
    probe = torch.arange(min(s.n_spectrum, train_split.n), device=ctx.device)
    probe_x, probe_y = train_split.x[probe], train_split.y[probe]
    steps_per_epoch = -(-train_split.n // batch)
    hook = EpochHook(sorted({0, min(s.middle_epoch, s.epochs), s.epochs}), steps_per_epoch,
                     lambda epoch, model: spectra(model, probe_x, probe_y))
    train_images(net, train_split.x, train_split.y, training, normalization=CIFAR, seed=seed, callbacks=[hook],
                 desc=f"{PAPER}/resnet_grid/{label(cfg)}")
    tr = evaluate_images(net, train_split.x, train_split.y, normalization=CIFAR, loss="mse")
    te = evaluate_images(net, test_split.x, test_split.y, normalization=CIFAR, loss="mse")
    cka_train, cka_test = layer_ckas(net, train_split.x, train_split.y), layer_ckas(net, test_split.x, test_split.y)
    return {**cfg, "label": label(cfg), "batch_used": batch, "train_accuracy": float(tr["accuracy"][0]),
            "test_accuracy": float(te["accuracy"][0]), "train_loss": float(tr["loss"][0]),
            "cka_target_train": cka_train["target"], "cka_target_test": cka_test["target"],
            "cka_input_train": cka_train["input"], "cka_input_test": cka_test["input"],
            "spectra": {e: hook.records[e] for e in sorted(hook.records)}}


CIFAR10_TRAIN = 50_000  # ``n_train`` None: the whole split, for declared work


def grid_work(s: GridSettings) -> Work:
    """Every configuration of the grid trained ``epochs``; a ResNet's cost per example grows as width squared."""
    return trained(epochs=s.epochs, examples=s.n_train or CIFAR10_TRAIN, configurations=len(grid(s)),
                   width_squared=s.width ** 2)


def summary_work(s: GridSettings) -> Work:
    """Figs 1-6, Table I: the stored measurements of every configuration."""
    return analysed(configurations=len(grid(s)))


@model(PAPER, "resnet_grid", settings=SETTINGS, resources=RESOURCES, work=grid_work)
def train_grid(ctx: Context) -> dict:
    """Every configuration of the grid, one after another (each is one run of seed ``ctx.seeds[0]``)."""
    s: GridSettings = ctx.settings
    train_split, test_split = _cifar(ctx, s)
    runs = [train_config(ctx, cfg, train_split, test_split, s, ctx.seeds[0]) for cfg in grid(s)]
    notes = [f"cifar10 train: {train_split.source} ({train_split.n} images); test: {test_split.source} "
             f"({test_split.n} images)",
             f"{len(runs)} configurations, {s.epochs} epochs, ResNet-11 width {s.width}, batch sizes "
             f"{[b // s.batch_divisor for b in s.batch_sizes]} (paper's / {s.batch_divisor}), lrs {list(s.lrs)}; "
             f"kept: train accuracy > {s.keep_above}%"]
    return {"runs": runs, "keep_above": s.keep_above, "notes": notes}


def kept_runs(payload: dict) -> list[dict]:
    """Kept runs (train accuracy above the threshold), ordered by test accuracy (Fig 1)."""
    kept = [r for r in payload["runs"] if r["train_accuracy"] > payload["keep_above"]]
    return sorted(kept, key=lambda r: r["test_accuracy"])


def run_table(runs: list[dict]) -> dict[str, np.ndarray]:
    """Per-run columns: hyperparameters, Table I's measures (last-layer and layer-averaged CKA)."""
    col = {h: np.array([float(r[h]) for r in runs]) for h in HYPER}
    col.update(train_loss=np.array([r["train_loss"] for r in runs]), test_acc=np.array([r["test_accuracy"] for r in runs]))
    for split in ("train", "test"):
        ckas = np.stack([r[f"cka_target_{split}"] for r in runs])
        col[f"cka_{split}"], col[f"avg_cka_{split}"] = ckas[:, -1], ckas.mean(1)
    col["mean_input_cka"] = np.stack([r["cka_input_train"] for r in runs]).mean(1)
    return col


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; NaN when either is constant (or fewer than 2 runs)."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def summary(payload: dict) -> Result:
    """Every metric of Figs 1, 2, 6 and Table I from the kept runs."""
    runs = kept_runs(payload)
    result = Result(notes=list(payload["notes"]))
    m, a = result.metrics, result.arrays
    if not runs:
        raise ValueError(f"no run of the grid reached the keep threshold ({payload['keep_above']}% train accuracy); "
                         f"train longer or lower keep_above")
    m["n_models_kept"] = len(runs)
    m["n_models"] = len(payload["runs"])
    for key in ("test_accuracy", "train_accuracy"):
        values = np.array([r[key] for r in runs])
        m[f"{key}.min"], m[f"{key}.max"] = float(values.min()), float(values.max())
        a[key] = values
    a["labels"] = np.array([r["label"] for r in runs])
    momentum = np.array([bool(r["momentum"]) for r in runs])
    for kind in ("target", "input"):
        for split in ("train", "test"):
            values = np.stack([r[f"cka_{kind}_{split}"] for r in runs])  # [runs, layers]
            a[f"cka_{kind}.{split}"] = values
            for k in range(N_LAYERS):
                base = f"cka_{kind}.{split}.layer{k + 1}"
                m[f"{base}.mean"], m[f"{base}.std"] = float(values[:, k].mean()), float(values[:, k].std())
                for name, mask in (("momentum_mean", momentum), ("sgd_mean", ~momentum)):
                    if mask.any():
                        m[f"{base}.{name}"] = float(values[mask, k].mean())
                    else:
                        result.not_run[f"{base}.{name}"] = f"no kept run {'with' if name[0] == 'm' else 'without'} momentum"
    target_train = a["cka_target.train"]
    m["frac_models.target_cka_last_above_first"] = float((target_train[:, -1] > target_train[:, 0]).mean())
    col = run_table(runs)
    pairs = [(r, c) for r in HYPER + ("avg_cka_test", "avg_cka_train") for c in MEASURES]
    pairs += list(itertools.combinations(MEASURES, 2)) + [("test_acc", "mean_input_cka")]
    for r, c in pairs:
        value = pearson(col[r], col[c])
        if np.isfinite(value):
            m[f"pearson.{r}.{c}"] = value
        else:
            result.not_run[f"pearson.{r}.{c}"] = f"'{r}' or '{c}' is constant over the {len(runs)} kept runs"
    pooled = pearson(a["cka_target.train"].ravel(), a["cka_target.test"].ravel())
    m["pearson.cka_train_vs_cka_test.all_layers"] = pooled
    for name, values in col.items():
        a[f"column.{name}"] = values
    return result


def _summary_artifact(name: str, doc: str):
    @artifact(PAPER, name, settings=SETTINGS, resources=LIGHT, needs=("resnet_grid",), work=summary_work)
    def step(ctx: Context) -> Result:
        return summary(ctx.load_model("resnet_grid"))

    step.__doc__ = doc
    return step


fig1 = _summary_artifact("fig1", "Fig 1: layer CKA with the target and the input per kept model, by test accuracy.")
fig2 = _summary_artifact("fig2", "Fig 2: mean ± sd over kept models of the layer CKAs (train, test; target, input).")
fig6 = _summary_artifact("fig6", "Fig 6: train/test accuracy of the kept models and their layer-averaged CKA.")
table1 = _summary_artifact("table1", "Table I: Pearson correlations of hyperparameters and measures over kept runs.")
