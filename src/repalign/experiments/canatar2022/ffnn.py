"""canatar2022 Figs 7, 8 (Sec. VI): the traced NTK of a 4-hidden-layer FFNN during training on MNIST.

Protocol (Sec. VI): 784 → 200 → 200 → 200 → 200 → 10, ReLU, W_ij ~ N(0, 1/N) as the NTK
parametrisation (``make_ffnn``), biases zero at initialisation; 10,000 MNIST
training and 10,000 test images (pixels in [0, 1], standardised by the training mean and std:
ours); Adam lr 0.1, batch 500, 3,000 epochs, MSE on one-hot targets (mean over classes and
examples). On an epoch grid an :class:`repalign.train.EpochHook` measures train/test accuracy
and, on ``n_ntk`` training and ``n_ntk`` test images, the traced NTK of Eq. 8
(``repalign.metrics.traced_ntk``, the forward/backward factor route: no per-example
Jacobians), the network kernel K_f = f(x)ᵀf(x') and the target kernel YYᵀ: their pairwise
kernel-target alignments (Eq. 4, uncentred), the NTK's eigenvalues and the target's
cumulative power on its eigenbasis (Eq. 3), in float64.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.data import class_subset, load_dataset, to_float
from repalign.experiments.canatar2022.kernels import numerical_rank, rank99
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.metrics import kernel_alignment, spectrum_and_power, traced_ntk
from repalign.results import Result
from repalign.train import EpochHook, EpochSampler, OptimConfig, epoch_grid, train

PAPER = "canatar2022"
C = 10  # classes: the rank of the target kernel
N_EIGS = 200  # eigenvalues kept per measurement for the figure


@dataclass(frozen=True, kw_only=True)
class FFNNSettings:
    n_train: int | None      # None: the whole offline split (10,000 = the paper's)
    n_test: int | None
    n_ntk: int               # examples per split on which the NTK is formed and diagonalised
    epochs: int
    n_grid: int              # log-spaced measurement epochs (with 0 and the last)
    width: int = 200
    hidden: int = 4
    batch_size: int = 500
    lr: float = 0.1
    n_timing: int = 10_000   # one traced-NTK evaluation on this many training images, timed
    n_runs: int = 1


SETTINGS = Tiered(
    smoke=FFNNSettings(n_train=200, n_test=200, n_ntk=100, epochs=4, n_grid=3, width=16, batch_size=50,
                       n_timing=200),
    quick=FFNNSettings(n_train=None, n_test=None, n_ntk=2000, epochs=300, n_grid=8),
    paper=FFNNSettings(n_train=None, n_test=None, n_ntk=10_000, epochs=3000, n_grid=12),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=60, mem_mb=8000, gpu=1),
    paper=Resources(runtime_min=600, mem_mb=32000, gpu=1),
)
LIGHT = Tiered.same(Resources(runtime_min=5, mem_mb=2000))


class FanInScale(nn.Module):
    """x / √fan_in: the NTK parametrisation's forward scaling, placed before each ``nn.Linear``."""

    def __init__(self, fan_in: int):
        super().__init__()
        self.scale = 1.0 / math.sqrt(fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def make_ffnn(d_in: int, width: int, hidden: int, n_out: int, seed: int) -> nn.Sequential:
    """``hidden`` ReLU layers of ``width`` in the NTK parametrisation, biases 0 (Sec. VI).

    "W_ij ~ N(0, 1/N)" is read as the effective weights of neural-tangents' ``stax.Dense``
    (the paper's group's tool): stored weights ω ~ N(0, 1), layer output ω x / √fan_in + b.
    The standard parametrisation with the same effective weights collapses to chance under
    Adam lr 0.1 (docs/canatar2022.md). The traced NTK is taken w.r.t. ω and b, as trained.
    """
    sizes = [d_in] + [width] * hidden + [n_out]
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(a, b)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(b, a, generator=g))
            linear.bias.zero_()
        layers += [FanInScale(a), linear] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def _mnist(ctx: Context, s: FFNNSettings):
    def load(split, n):
        data = load_dataset("mnist", split, root=ctx.data_root, cache_dir=ctx.cache_dir, device=ctx.device,
                            download=ctx.download)
        return data if n is None or n >= data.n else class_subset(data, range(10), max_per_class=n // 10)

    tr, te = load("train", s.n_train), load("test", s.n_test)
    x = to_float(tr.x.flatten(1), 0.0, 1.0)
    mean, std = x.mean(), x.std()
    x_test = (to_float(te.x.flatten(1), 0.0, 1.0) - mean) / std
    notes = [f"mnist train: {tr.source} ({tr.n} images); test: {te.source} ({te.n} images)"]
    return (x - mean) / std, tr.y, x_test, te.y, notes


def ntk_measures(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Eq. 8 NTK on ``x``: its alignments with YYᵀ and K_f, K_f's with YYᵀ, spectrum and C(ρ)."""
    ntk = traced_ntk(net, x).double()
    with torch.no_grad():
        f = net(x).double()
    onehot = F.one_hot(y, C).double()
    k_target, k_net = onehot @ onehot.T, f @ f.T
    evals, cum = spectrum_and_power(ntk, onehot)
    evals, cum = evals.clamp_min(0).cpu().numpy(), cum.cpu().numpy()
    return {"ntk_target": float(kernel_alignment(ntk, k_target)), "ntk_network": float(kernel_alignment(ntk, k_net)),
            "network_target": float(kernel_alignment(k_net, k_target)),
            "eigs": evals[:N_EIGS], "rank99": rank99(evals), "kernel_rank": numerical_rank(evals),
            "top10_share": float(evals[:C].sum() / evals.sum()), "cum_power": cum[:N_EIGS],
            "cum_power_mode10": float(cum[C - 1])}


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return 100.0 * float((net(x).argmax(1) == y).double().mean())


def time_ntk(net: nn.Module, x: torch.Tensor) -> dict:
    """Wall time and peak resident memory (this process, so an upper bound) of one traced NTK."""
    start = time.perf_counter()
    k = traced_ntk(net, x)
    wall = time.perf_counter() - start
    return {"n": x.shape[0], "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "kernel_mb": k.numel() * k.element_size() / 2**20}


MNIST_SPLIT = 10_000  # the offline MNIST split's size (``n_train`` None), for declared work


def train_work(s: FFNNSettings) -> Work:
    """``epochs`` of SGD over the train split; the NTK measurements along the way are not counted."""
    return trained(epochs=s.epochs, examples=s.n_train or MNIST_SPLIT, models=s.n_runs)


def measured_epochs(s: FFNNSettings) -> list[int]:
    """The epochs at which ``ffnn_mnist`` measures: 0, the last, and log-spaced between."""
    return epoch_grid("log", s.epochs, s.n_grid)


def records_work(s: FFNNSettings) -> Work:
    """Figs 7, 8 read the model step's records, one per measured epoch (the NTKs are formed and
    diagonalised in ``ffnn_mnist``)."""
    return analysed(measured_epochs=len(measured_epochs(s)))


@model(PAPER, "ffnn_mnist", settings=SETTINGS, resources=RESOURCES, work=train_work)
def train_ffnn(ctx: Context) -> dict:
    """Train the Sec. VI FFNN and measure its traced NTK on the epoch grid."""
    s: FFNNSettings = ctx.settings
    x, y, x_test, y_test, notes = _mnist(ctx, s)
    seed = ctx.seeds[0]
    net = make_ffnn(x.shape[1], s.width, s.hidden, C, seed).to(ctx.device)
    timing = time_ntk(net, x[:s.n_timing])
    g = torch.Generator().manual_seed(seed)
    probe = torch.randperm(x.shape[0], generator=g)[:s.n_ntk].to(ctx.device)
    probe_test = torch.randperm(x_test.shape[0], generator=g)[:s.n_ntk].to(ctx.device)
    onehot = F.one_hot(y, C).to(x.dtype)
    sampler = EpochSampler(x.shape[0], s.batch_size, seed=seed, device=ctx.device)

    def measure(epoch, model):
        return {"epoch": epoch, "train_accuracy": accuracy(model, x, y), "test_accuracy": accuracy(model, x_test, y_test),
                "train": ntk_measures(model, x[probe], y[probe]),
                "test": ntk_measures(model, x_test[probe_test], y_test[probe_test])}

    hook = EpochHook(measured_epochs(s), sampler.steps_per_epoch, measure)

    def loss_fn(model, idx):
        return (model(x[idx[0]]) - onehot[idx[0]]).square().mean()

    start = time.perf_counter()
    log = train(net, loss_fn, sampler, s.epochs * sampler.steps_per_epoch, OptimConfig("adam", lr=s.lr),
                checkpoint=ctx.checkpoint, callback=[hook], desc=f"{PAPER}/ffnn_mnist")
    notes.append(f"{s.hidden} hidden layers of {s.width}, Adam lr {s.lr}, batch {s.batch_size}, {s.epochs} epochs "
                 f"({s.epochs * sampler.steps_per_epoch} steps, {time.perf_counter() - start:.0f} s with measurements); "
                 f"NTK on {s.n_ntk} train and {s.n_ntk} test images")
    return {"records": [hook.records[e] for e in sorted(hook.records)], "timing": timing,
            "final_train_loss": float(log.losses[-1].mean()), "notes": notes}


def _series(records: list[dict], split: str, key: str) -> np.ndarray:
    return np.array([r[split][key] for r in records], dtype=float)


def _measured_run(ctx: Context) -> tuple[dict, Result]:
    """The trained FFNN's payload and a result carrying its notes and epoch grid."""
    payload = ctx.load_model("ffnn_mnist")
    result = Result(notes=list(payload["notes"]))
    result.arrays["epochs"] = np.array([r["epoch"] for r in payload["records"]])
    return payload, result


@artifact(PAPER, "fig7", settings=SETTINGS, resources=LIGHT, needs=("ffnn_mnist",), work=records_work)
def fig7(ctx: Context) -> Result:
    """Fig 7: accuracy, and the NTK–target, NTK–network and network–target alignments over training."""
    payload, result = _measured_run(ctx)
    records, m, a = payload["records"], result.metrics, result.arrays
    for key in ("train_accuracy", "test_accuracy"):
        a[key] = np.array([r[key] for r in records])
        m[f"{key}.final"] = float(a[key][-1])
    for key in ("ntk_target", "ntk_network", "network_target"):
        for split in ("train", "test"):
            a[f"{split}.{key}"] = _series(records, split, key)
        m[f"{key}_alignment.init"] = float(a[f"train.{key}"][0])
        m[f"{key}_alignment.final"] = float(a[f"train.{key}"][-1])
        m[f"{key}_alignment.test.final"] = float(a[f"test.{key}"][-1])
    m["final_train_loss"] = payload["final_train_loss"]
    for key, value in payload["timing"].items():
        m[f"ntk_timing.{key}"] = float(value)
    result.notes.append(f"one traced NTK on {payload['timing']['n']} images at init: {payload['timing']['wall_s']:.1f} s, "
                        f"process peak RSS {payload['timing']['peak_rss_mb']:.0f} MB")
    return result


@artifact(PAPER, "fig8", settings=SETTINGS, resources=LIGHT, needs=("ffnn_mnist",), work=records_work)
def fig8(ctx: Context) -> Result:
    """Fig 8: the NTK eigenspectrum on train and test images and the target's cumulative power."""
    payload, result = _measured_run(ctx)
    records, m, a = payload["records"], result.metrics, result.arrays
    for split in ("train", "test"):
        a[f"{split}.eigs"] = np.stack([r[split]["eigs"] for r in records])
        a[f"{split}.cum_power"] = np.stack([r[split]["cum_power"] for r in records])
        for key in ("rank99", "kernel_rank", "top10_share", "cum_power_mode10"):
            series = _series(records, split, key)
            a[f"{split}.{key}"] = series
            name = "cum_power" if key == "cum_power_mode10" else key
            suffix = ".mode10" if key == "cum_power_mode10" else ""
            m[f"ntk.{name}.{split}.init{suffix}"] = float(series[0])
            m[f"ntk.{name}.{split}.final{suffix}"] = float(series[-1])
    return result
