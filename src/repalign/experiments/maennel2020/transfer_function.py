"""maennel2020 Def. 3 / Eq. 2: the transfer function f(σ_i) = τ_i of first-layer weights, and Def. 2's
misalignment of the first-layer filters over training.

- ``fig4`` (left) and ``fig20``: fully connected ReLU nets with two hidden layers, He init,
  trained by full-batch gradient descent on centred Gaussian inputs N(0, diag(...)) with 10
  random labels (App. E.1); τ_i is the standard deviation of the first-layer weight rows
  along e_i, averaged over runs.
- ``cnn_filters`` (model): 1 conv (3×3, ``filters``) + dense 64 on CIFAR-10 with random and
  with real labels, lr 0.01, by the App. A.3 protocol; the conv filters are kept at a grid
  of epochs. ``fig2`` computes the misalignment of Σ_w with the patch covariance Σ_x and with
  a random orthonormal basis (same eigenvalues) from them; ``fig4`` (centre/right) f(σ).

Shape summaries of f (sorted by σ): rise_frac = (max f − f(σ_min)) / max f, fall_frac =
(max f − f(σ_max)) / max f, spearman = rank correlation of f with σ (``shape_summary``); the
gap between two curves over the same σ: ``f_sigma_rel_dev`` (Figs 21, 22).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from repalign.experiments.maennel2020.protocol import (disjoint_splits, filter_matrix, fit, load_cifar, make_model,
                                                       random_labels, to_unit_range, weight_covariance)
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.metrics import misalignment, patch_covariance, transfer_function
from repalign.models.init import he_normal_
from repalign.results import Result
from repalign.train import EpochHook, EpochSampler, OptimConfig, train

PAPER = "maennel2020"


def f_sigma_rel_dev(f_a: np.ndarray, f_b: np.ndarray) -> float:
    """How far curve f_a lies from the reference curve f_b, both given at the same σ_1, σ_2, ...:
    max_i |f_a(σ_i) − f_b(σ_i)| / max_i f_b(σ_i), i.e. the largest vertical gap between the two
    curves in units of the reference's peak. App. E.2 compares the f(σ) curves of CIFAR-10
    approximations by eye (Fig 21: "still very close to the ideal situation"; Fig 22: "a more
    significant change"); this number is ours. 0 for identical curves, scale-free."""
    f_a, f_b = np.asarray(f_a, dtype=float), np.asarray(f_b, dtype=float)
    if f_a.shape != f_b.shape or f_a.ndim != 1:
        raise ValueError(f"f_sigma_rel_dev needs two curves over the same σ, got shapes {f_a.shape} and {f_b.shape}")
    return float(np.abs(f_a - f_b).max() / f_b.max())


def record_f_sigma(result: Result, name: str, sigma: np.ndarray, tau: np.ndarray, arrays: str | None = None) -> None:
    """Write f_sigma.<name>.{rise_frac, fall_frac, spearman} and the curve (arrays ``<arrays or name>.sigma/.tau``)."""
    for key, value in shape_summary(sigma, tau).items():
        result.metrics[f"f_sigma.{name}.{key}"] = value
    result.arrays[f"{arrays or name}.sigma"], result.arrays[f"{arrays or name}.tau"] = sigma, tau


def shape_summary(sigma: np.ndarray, f: np.ndarray) -> dict[str, float]:
    """rise_frac, fall_frac and spearman of f against σ (any order)."""
    order = np.argsort(sigma)
    f = np.asarray(f)[order]
    top = f.max()
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731  (no ties in σ or f)
    return {"rise_frac": float((top - f[0]) / top), "fall_frac": float((top - f[-1]) / top),
            "spearman": float(np.corrcoef(ranks(np.asarray(sigma)[order]), ranks(f))[0, 1])}


@dataclass(frozen=True)
class GaussianSetting:
    variances: tuple[float, float, float]  # linspace(start, stop, dim) of Σ_x's diagonal
    widths: tuple[int, int]
    n_inputs: int


@dataclass(frozen=True)
class GaussianSettings:
    settings: dict[str, GaussianSetting]
    steps: int
    lr: float = 0.05
    n_runs: int = 5  # GD runs per setting (one artifact job runs them all)


def _gaussian(left: int, middle: int, right: int, n: int, m: int, steps: int, n_runs: int) -> GaussianSettings:
    return GaussianSettings({
        "e1_left": GaussianSetting((1.0, 1.9, 10), (left, 256 // m), n),
        "e1_middle": GaussianSetting((0.1, 3.0, 30), (middle, 256 // m), n),
        "e1_right": GaussianSetting((0.1, 3.0, 30), (right, 256 // m), min(n, 2000)),
        "synthetic_fc256": GaussianSetting((0.1, 3.0, 30), (256 // m, 256 // m), n)}, steps=steps, n_runs=n_runs)


GAUSSIAN = Tiered(smoke=_gaussian(32, 32, 16, 200, 16, 5, 2), quick=_gaussian(2048, 2048, 256, 10000, 1, 3000, 5),
                  paper=_gaussian(2048, 2048, 256, 10000, 1, 10000, 5))


def gaussian_f_sigma(setting: GaussianSetting, steps: int, lr: float, seed: int, device) -> np.ndarray:
    """τ_i of one GD run (App. E.1) on N(0, diag(variances)) with 10 uniform random labels."""
    start, stop, dim = setting.variances
    var = torch.linspace(start, stop, int(dim), dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(setting.n_inputs, int(dim), generator=g, dtype=torch.float64) * var.sqrt()).float().to(device)
    y = random_labels(setting.n_inputs, 10, seed, device)
    w1, w2 = setting.widths
    net = he_normal_(nn.Sequential(nn.Linear(int(dim), w1), nn.ReLU(), nn.Linear(w1, w2), nn.ReLU(), nn.Linear(w2, 10)),
                     1.0, torch.Generator().manual_seed(seed + 1)).to(device)
    sampler = EpochSampler(setting.n_inputs, setting.n_inputs, seed=seed, device=device)  # full batch: GD
    train(net, lambda m, idx: nn.functional.cross_entropy(m(x[idx[0]]), y[idx[0]]), sampler, steps,
          OptimConfig("sgd", lr=lr), desc=f"{PAPER} gaussian {dim}-{w1}-{w2} seed {seed}")
    _, tau = transfer_function(torch.diag(var), net[0].weight.detach().double().cpu())
    return tau.numpy()[::-1].copy()  # ascending σ, like ``var``


def gaussian_work(s: GaussianSettings, names) -> Work:
    """Full-batch GD, ``steps`` over each named setting's inputs, ``n_runs`` runs each."""
    terms = [trained(steps=s.steps, examples=s.settings[n].n_inputs, models=s.n_runs) for n in names]
    return sum(terms[1:], terms[0])


def cnn_panel_work(s: CnnSettings) -> Work:
    """Fig 4: the Gaussian panel's GD runs where the tier has it (the CNN's filters are only measured)."""
    return trained(panels=0) if s.gaussian is None else gaussian_work(s.gaussian, ("synthetic_fc256",))


def run_gaussian(ctx: Context, s: GaussianSettings, names) -> Result:
    result = Result()
    seeds = [ctx.seeds[0] + i for i in range(s.n_runs)]
    for name in names:
        setting = s.settings[name]
        taus = np.mean([gaussian_f_sigma(setting, s.steps, s.lr, seed, ctx.device) for seed in seeds], axis=0)
        sigma = np.sqrt(np.linspace(*setting.variances[:2], int(setting.variances[2])))
        record_f_sigma(result, name, sigma, taus)
        result.notes.append(f"{name}: dim {int(setting.variances[2])}, widths {setting.widths}, {setting.n_inputs} "
                            f"inputs, {s.steps} full-batch GD steps at lr {s.lr}, {len(seeds)} runs")
    return result


RESOURCES = Tiered(smoke=Resources(runtime_min=2), quick=Resources(runtime_min=20, gpu=1, mem_mb=8000),
                   paper=Resources(runtime_min=60, gpu=1, mem_mb=8000))


@artifact(PAPER, "fig20", settings=GAUSSIAN, resources=RESOURCES,
          work=lambda s: gaussian_work(s, ("e1_left", "e1_middle", "e1_right")))
def fig20(ctx: Context) -> Result:
    return run_gaussian(ctx, ctx.settings, ("e1_left", "e1_middle", "e1_right"))


@dataclass(frozen=True)
class CnnSettings:
    n_examples: int          # paper: 50,000
    epochs: tuple[int, ...]  # measured epochs; the last is the run's length (paper: 5, 10, 20, 40)
    filters: int = 256
    units: int = 64
    lr: float = 0.01
    n_cov: int = 10000       # images whose 3×3 patches give Σ_x
    gaussian: GaussianSettings | None = None  # fig4 left panel


CNN = Tiered(smoke=CnnSettings(n_examples=64, epochs=(1, 2), filters=32, n_cov=64, gaussian=GAUSSIAN.smoke),
             quick=CnnSettings(n_examples=50000, epochs=(1, 2, 5, 10), n_cov=10000, gaussian=GAUSSIAN.quick),
             paper=CnnSettings(n_examples=50000, epochs=(1, 2, 5, 10, 20, 40), gaussian=GAUSSIAN.paper))
LABELS = ("random_labels", "real_labels")


def snapshot_filters(epoch: int, net: nn.Module) -> torch.Tensor:
    """A copy of conv1's filters (a view of the live weight would change with training)."""
    return filter_matrix(net.conv1).cpu().clone()


@model(PAPER, "cnn_filters", settings=CNN, resources=RESOURCES,
       work=lambda s: trained(epochs=max(s.epochs), examples=s.n_examples, labelings=len(LABELS)))
def cnn_filters(ctx: Context) -> dict:
    s: CnnSettings = ctx.settings
    split = load_cifar(ctx, "train")
    seed = ctx.seeds[0]
    idx, _ = disjoint_splits(split.n, s.n_examples, 0, seed)
    x, true = split.x[idx.to(ctx.device)], split.y[idx.to(ctx.device)]
    grid = (0,) + tuple(s.epochs)
    runs = {}
    for labels in LABELS:
        y = random_labels(x.shape[0], 10, seed, ctx.device) if labels == "random_labels" else true
        net = make_model("simple_cnn", 10, seed, 1.0, ctx.device, n_conv=1, filters=s.filters, units=s.units)
        steps_per_epoch = -(-x.shape[0] // 256)
        hook = EpochHook(grid, steps_per_epoch, snapshot_filters)
        fit(net, x, y, steps_per_epoch * s.epochs[-1], s.lr, seed=seed, callbacks=[hook],
            desc=f"{PAPER}/cnn_filters {labels}")
        runs[labels] = {e: hook.records[e] for e in grid}
    data_cov = patch_covariance(to_unit_range(x[:s.n_cov]).double(), 3)
    return {"runs": runs, "data_cov": data_cov.cpu(), "epochs": list(grid), "n_examples": int(x.shape[0])}


def random_basis_cov(data_cov: torch.Tensor, seed: int) -> torch.Tensor:
    """A covariance with Σ_x's eigenvalues and a random orthonormal eigenbasis (App. A.6's control)."""
    q, r = torch.linalg.qr(torch.randn(data_cov.shape, generator=torch.Generator().manual_seed(seed),
                                       dtype=data_cov.dtype))
    q = q * torch.sign(torch.diagonal(r))
    evals = torch.linalg.eigvalsh(data_cov)
    return q @ torch.diag(evals) @ q.T


@artifact(PAPER, "fig2", settings=CNN, resources=Tiered.same(Resources(runtime_min=2)), needs=("cnn_filters",),
          work=lambda s: analysed(labelings=len(LABELS), epochs=len(s.epochs) + 1, filters=s.filters))
def fig2(ctx: Context) -> Result:
    payload = ctx.load_model("cnn_filters")
    data_cov = payload["data_cov"].double()
    control = random_basis_cov(data_cov, seed=2)
    result = Result(notes=[f"1 conv ({ctx.settings.filters} filters) + dense {ctx.settings.units}, "
                           f"{payload['n_examples']} CIFAR-10 images; epochs {payload['epochs']}"])
    for labels, filters in payload["runs"].items():
        epochs = sorted(filters)
        curves = {basis: np.array([float(misalignment(cov, weight_covariance(filters[e].double()))) for e in epochs])
                  for basis, cov in (("data", data_cov), ("random_basis", control))}
        for basis, curve in curves.items():
            result.metrics[f"misalignment.{basis}.{labels}"] = float(curve[-1])
            result.arrays[f"{basis}.{labels}"] = curve
        after_first = [i for i, e in enumerate(epochs) if e >= 1]
        result.metrics[f"misalignment_ratio_max.{labels}"] = float(max(
            curves["data"][i] / curves["random_basis"][i] for i in after_first))
        result.metrics[f"misalignment_ratio_init.{labels}"] = float(curves["data"][0] / curves["random_basis"][0])
    result.arrays["epochs"] = np.array(epochs)
    return result


@artifact(PAPER, "fig4", settings=CNN, resources=RESOURCES, needs=("cnn_filters",), work=cnn_panel_work)
def fig4(ctx: Context) -> Result:
    if ctx.settings.gaussian is None:  # a reduced run without the left panel
        result = Result(not_run={f"f_sigma.synthetic_fc256.{k}": "the Gaussian panel was left out of this run"
                                 for k in ("rise_frac", "fall_frac", "spearman")})
    else:
        result = run_gaussian(ctx, ctx.settings.gaussian, ("synthetic_fc256",))
    payload = ctx.load_model("cnn_filters")
    data_cov = payload["data_cov"].double()
    for labels, filters in payload["runs"].items():
        for epoch in sorted(filters):  # epoch 0: the initialisation, whose noisy τ is the baseline
            sigma, tau = transfer_function(data_cov, filters[epoch].double())
            suffix = "final" if epoch == max(filters) else ("init" if epoch == 0 else f"ep{epoch}")
            record_f_sigma(result, f"cifar_{labels}.{suffix}", sigma.numpy(), tau.numpy(),
                           arrays=f"cifar_{labels}.ep{epoch}")
    return result
