"""maennel2020 App. D.1 (data table) and App. D.3 / Fig 19: how well eigenvectors can be measured.

``appd1``: covariances Σ_x, Σ'_x of the 5×5 patches of the first and second 30,000 of the 60,000
CIFAR-10 images (training images, then test images; inputs in [-1, 1]), their eigenvalues σ_i²
and the overlaps |⟨e_i, e'_i⟩| of matching eigenvectors. The weights table: the same for the
covariances Σ_w, Σ'_w of the first-layer filters of two disjoint groups of ``weight_group`` runs of
Fig 3's WRN-28-4 (model ``wrn_filters``, ``filter_alignment.py``; paper: 2 × 30).

``fig19``: for N(0, diag(1, λ)), the direction of the leading eigenvector of the empirical
covariance of n samples, 50 repetitions per (λ, n). The Fisher information about the angle
is n (λ − 1)² / λ, so the angle's standard deviation should be about 1 / sqrt(that): the
diagonal panels (≈ 906) give ≈ 1/30 rad.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repalign.experiments.maennel2020.protocol import eigenbasis, load_cifar, to_unit_range, weight_covariance
from repalign.experiments.registry import Context, Resources, Tiered, analysed, artifact
from repalign.metrics import patch_covariance
from repalign.results import Result

PAPER = "maennel2020"
LIGHT = Tiered(smoke=Resources(runtime_min=2), quick=Resources(runtime_min=10, mem_mb=8000),
               paper=Resources(runtime_min=20, mem_mb=8000))


@dataclass(frozen=True)
class AppD1Settings:
    n_per_half: int        # images in each half (paper: 30,000)
    weight_group: int      # wrn_filters runs in each group of the weights table (paper: 30)
    patch: int = 5
    n_table: int = 12      # rows of the paper's table


APPD1 = Tiered(smoke=AppD1Settings(n_per_half=100, weight_group=1),
               quick=AppD1Settings(n_per_half=30000, weight_group=8),
               paper=AppD1Settings(n_per_half=30000, weight_group=30))


def eigen_overlaps(cov_a: torch.Tensor, cov_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues of ``cov_a`` (descending) and |⟨e_i, e'_i⟩| of the i-th eigenvectors of both."""
    evals, vecs_a = eigenbasis(cov_a)
    _, vecs_b = eigenbasis(cov_b)
    return evals, (vecs_a * vecs_b).sum(0).abs()


def weight_groups(filters: torch.Tensor, group: int) -> list[torch.Tensor]:
    """The filters (rows) of runs ``0..group-1`` and of runs ``group..2·group-1`` of ``filters``
    ``[n_runs, out, D]``: two disjoint groups of runs (App. D.1)."""
    if not 1 <= group <= filters.shape[0] // 2:
        raise ValueError(f"appd1's weights table needs two disjoint groups of weight_group={group} runs, but "
                         f"wrn_filters has {filters.shape[0]} runs: train at least {2 * group} (n_runs) or lower "
                         f"weight_group")
    return [filters[:group].reshape(-1, filters.shape[-1]), filters[group:2 * group].reshape(-1, filters.shape[-1])]


@artifact(PAPER, "appd1", settings=APPD1, resources=LIGHT, needs=("wrn_filters",),
          work=lambda s: analysed(images=2 * s.n_per_half, patch_pixels=s.patch ** 2))
def appd1(ctx: Context) -> Result:
    s: AppD1Settings = ctx.settings
    groups = weight_groups(ctx.load_model("wrn_filters")["filters"], s.weight_group)
    # CIFAR-10 has 60,000 images in all: the "first and second 30,000" are read as the training
    # images followed by the test images
    images = torch.cat([load_cifar(ctx, "train").x, load_cifar(ctx, "test").x])
    if images.shape[0] < 2 * s.n_per_half:
        raise ValueError(f"appd1 needs 2 x {s.n_per_half} CIFAR-10 images, there are {images.shape[0]}")
    halves = [images[:s.n_per_half], images[s.n_per_half:2 * s.n_per_half]]
    covs = [patch_covariance((to_unit_range(c).double() for c in h.split(500)), s.patch) for h in halves]
    evals, overlaps = eigen_overlaps(*covs)
    result = Result(notes=[f"5x5 patches (stride 1, no padding) of CIFAR-10 images 0..{s.n_per_half - 1} and "
                           f"{s.n_per_half}..{2 * s.n_per_half - 1} of train + test (offline JPEG copy), inputs in "
                           f"[-1, 1]; float64 covariances"])
    m = result.metrics
    for i in range(s.n_table):
        m[f"data.sigma_sq_{i + 1}"] = float(evals[i])
        m[f"data.overlap_{i + 1}"] = float(overlaps[i])
    m["data.overlap_min_top12"] = float(overlaps[:s.n_table].min())
    m["data.overlap_min_all"] = float(overlaps.min())
    w_evals, w_overlaps = eigen_overlaps(*(weight_covariance(g.double()) for g in groups))
    result.notes.append(f"weights: first-layer filters of wrn_filters runs 0..{s.weight_group - 1} against runs "
                        f"{s.weight_group}..{2 * s.weight_group - 1} ({groups[0].shape[0]} filters per group)")
    for i in range(s.n_table):
        m[f"weights.sigma_sq_{i + 1}"] = float(w_evals[i])
        m[f"weights.overlap_{i + 1}"] = float(w_overlaps[i])
    m["weights.overlap_min_top12"] = float(w_overlaps[:s.n_table].min())
    result.arrays.update(sigma_sq=evals.numpy(), overlap=overlaps.numpy(), weights_sigma_sq=w_evals.numpy(),
                         weights_overlap=w_overlaps.numpy())
    return result


@dataclass(frozen=True)
class Fig19Settings:
    repetitions: int = 50
    sizes: tuple[int, ...] = (100, 1000, 100000)
    fisher: float = 906.6   # n (λ − 1)² / λ of the diagonal panels (paper: 904.1 .. 909.1)
    seed: int = 19


FIG19 = Tiered(smoke=Fig19Settings(repetitions=10), quick=Fig19Settings(),
               paper=Fig19Settings())
GAPS = ("large_gap", "middle_gap", "small_gap")  # λ Fisher-matched to sizes[0], [1], [2]


def fisher_lambda(n: int, fisher: float) -> float:
    """λ > 1 with n (λ − 1)² / λ = fisher."""
    b = 2.0 + fisher / n
    return (b + np.sqrt(b * b - 4.0)) / 2.0


def leading_angles(lam: float, n: int, repetitions: int, generator: torch.Generator) -> np.ndarray:
    """Angle (rad) of the leading eigenvector of the empirical covariance of n draws of N(0, diag(1, λ))
    from the λ axis, one per repetition, in (−π/2, π/2]."""
    scale = torch.tensor([1.0, np.sqrt(lam)], dtype=torch.float64)
    angles = []
    for _ in range(repetitions):
        w = torch.randn(n, 2, generator=generator, dtype=torch.float64) * scale
        _, vecs = eigenbasis(w.T @ w / n)
        v = vecs[:, 0]
        angles.append(float(torch.atan(v[0] / v[1])))  # the sign of an eigenvector is arbitrary
    return np.array(angles)


@artifact(PAPER, "fig19", settings=FIG19, resources=Tiered.same(Resources(runtime_min=2)),
          work=lambda s: analysed(repetitions=s.repetitions, samples=sum(s.sizes)))
def fig19(ctx: Context) -> Result:
    s: Fig19Settings = ctx.settings
    g = torch.Generator().manual_seed(s.seed)
    lambdas = [fisher_lambda(n, s.fisher) for n in s.sizes]
    std = np.zeros((len(lambdas), len(s.sizes)))
    result = Result(notes=[f"lambda = {', '.join(f'{x:.4g}' for x in lambdas)} (n (lambda-1)^2/lambda = {s.fisher} "
                           f"at n = {', '.join(map(str, s.sizes))}); {s.repetitions} repetitions per panel"])
    for i, lam in enumerate(lambdas):
        for j, n in enumerate(s.sizes):
            angles = leading_angles(lam, n, s.repetitions, g)
            std[i, j] = angles.std(ddof=1)
            result.metrics[f"angle_std_rad.{GAPS[i]}.n{n}"] = float(std[i, j])
            result.arrays[f"angles.{GAPS[i]}.n{n}"] = angles
    result.metrics["angle_std_rad.fisher_matched"] = float(np.mean(np.diag(std)))
    result.metrics["angle_std_rad.fisher_prediction"] = float(1.0 / np.sqrt(s.fisher))
    result.arrays.update(std=std, lambdas=np.array(lambdas), sizes=np.array(s.sizes))
    return result
