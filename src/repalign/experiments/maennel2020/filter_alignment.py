"""maennel2020 Fig 3 (Sec. 2.2, App. A.7): the eigenvectors of the first-layer filter covariance Σ_w of
WRN-28-4s trained on random labels against the eigenvectors of the 5×5 patch covariance Σ_x of CIFAR-10.

- ``wrn_filters`` (model): ``n_runs`` WRN-28-4 (``repalign.models.build('wrn28_4')``: 5×5 first conv
  of ``stem_width`` filters, batch norm) trained by the App. A.3 protocol with App. A.7's
  init_scale 0.01 and lr 0.005 on CIFAR-10 with 10 random labels, each run its own labels (from
  its seed) on the same images, ``runs_per_stack`` runs at a time as one ``ModelStack``. Keeps
  every run's first-layer filters at initialisation and at the end (rows in the (C, kh, kw) order
  of ``filter_matrix``), its final accuracy on its random labels (memorisation), and Σ_x of the
  5×5 patches of the training images (inputs in [-1, 1]).
- ``fig3``: Σ_w of the filters of all runs; for each of its ten leading eigenvectors v_w the data
  eigenvectors v_x with |⟨v_x, v_w⟩| > 0.4 (the figure's threshold) and their weighted sum
  v̄_x = Σ ⟨v_x, v_w⟩ v_x. ``weight_eigvec_match.top<i>`` is max_x |⟨v_x, v_w⟩| for the i-th v_w,
  ``combined_match`` the length of v_w's projection on the v_x above the threshold (the cosine of
  v_w and v̄_x). The same for the initial filters (``*_init``): He-normal filters are isotropic,
  so their eigenvectors are random directions, the baseline that alignment must beat.
- App. D.1's weights table (two disjoint groups of runs) is ``appd1`` in ``eigen.py``, which reads
  this model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repalign.experiments.maennel2020.protocol import (NORMALIZATION, disjoint_splits, eigenbasis, filter_matrix, fit,
                                                       load_cifar, make_model, random_labels, to_unit_range,
                                                       weight_covariance)
from repalign.experiments.registry import Context, Resources, Tiered, analysed, artifact, model, trained
from repalign.metrics import patch_covariance
from repalign.results import Result
from repalign.train import ModelStack, evaluate_images

PAPER = "maennel2020"
MATCH_THRESHOLD = 0.4  # Fig 3: the v_x with <v_x, v_w> > 0.4 are shown
N_SHOWN = 10           # Fig 3 shows the ten v_w with the largest eigenvalues
LABEL_SEED = 1000      # run s draws its random labels from seed s + LABEL_SEED (its init and order use s)


@dataclass(frozen=True)
class WrnSettings:
    n_runs: int            # paper: 70 (App. D.1's table: two disjoint groups of 30 of them)
    n_examples: int        # paper: 50,000
    epochs: int            # paper: 1,800
    width: int = 64        # WRN-28-4: 16·4
    stem_width: int = 64   # first-layer 5×5 filters per run (the paper shows "70·64" filters)
    init_scale: float = 0.01
    lr: float = 0.005
    n_cov: int = 50000     # training images whose 5×5 patches give Σ_x
    runs_per_stack: int = 1  # runs trained together (a throughput choice: a stack trains each run as alone)


WRN = Tiered(smoke=WrnSettings(n_runs=2, n_examples=32, epochs=1, width=1, stem_width=8, n_cov=32, runs_per_stack=2),
             quick=WrnSettings(n_runs=16, n_examples=10000, epochs=20, n_cov=10000, runs_per_stack=8),
             paper=WrnSettings(n_runs=70, n_examples=50000, epochs=1800, runs_per_stack=10))
WRN_RESOURCES = Tiered(smoke=Resources(runtime_min=2), quick=Resources(runtime_min=30, gpu=1, mem_mb=16000),
                       paper=Resources(runtime_min=7 * 24 * 60, gpu=1, mem_mb=32000))


def run_filters(stack: ModelStack) -> torch.Tensor:
    """``[n_models, out, C·kh·kw]``: every member's first-layer filters as rows (``filter_matrix``), copied."""
    return torch.stack([filter_matrix(stack.member(s).conv1).cpu().clone() for s in range(stack.n_models)])


@model(PAPER, "wrn_filters", settings=WRN, resources=WRN_RESOURCES,
       work=lambda s: trained(epochs=s.epochs, examples=s.n_examples, models=s.n_runs, width_squared=s.width ** 2))
def wrn_filters(ctx: Context) -> dict:
    s: WrnSettings = ctx.settings
    split = load_cifar(ctx, "train")
    idx, _ = disjoint_splits(split.n, s.n_examples, 0, ctx.seeds[0])
    x = split.x[idx.to(ctx.device)]
    steps = s.epochs * -(-x.shape[0] // 256)
    init, final, accuracy = [], [], []
    for start in range(0, len(ctx.seeds), s.runs_per_stack):
        seeds = ctx.seeds[start:start + s.runs_per_stack]
        stack = ModelStack(lambda seed: make_model("wrn28_4", 10, seed, s.init_scale, "cpu", width=s.width,
                                                   stem_width=s.stem_width), seeds).to(ctx.device)
        labels = torch.stack([random_labels(x.shape[0], 10, seed + LABEL_SEED, ctx.device) for seed in seeds])
        init.append(run_filters(stack))
        fit(stack, x, labels, steps, s.lr, seed=seeds[0], desc=f"{PAPER}/wrn_filters runs {seeds[0]}..{seeds[-1]}")
        final.append(run_filters(stack))
        accuracy.append(evaluate_images(stack, x, labels, normalization=NORMALIZATION, precision="fp32")["accuracy"])
    data_cov = patch_covariance((to_unit_range(c).double() for c in x[:s.n_cov].split(500)), 5)
    return {"filters": torch.cat(final), "init_filters": torch.cat(init), "data_cov": data_cov.cpu(),
            "train_accuracy": torch.from_numpy(np.concatenate(accuracy) / 100.0), "n_examples": int(x.shape[0]),
            "steps": steps}


def eigvec_overlaps(weight_cov: torch.Tensor, data_cov: torch.Tensor):
    """Eigenvalues of Σ_w and Σ_x (descending), their eigenvectors (columns) and the signed
    overlaps ⟨v_w_i, v_x_j⟩ ``[i, j]``."""
    tau_sq, v_w = eigenbasis(weight_cov)
    sigma_sq, v_x = eigenbasis(data_cov)
    return tau_sq, sigma_sq, v_w, v_x, v_w.T @ v_x


def match_scores(overlaps: torch.Tensor, threshold: float = MATCH_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of |overlaps|: the largest entry (the best single v_x), and the length of the projection
    on the v_x above ``threshold`` (the cosine of v_w and the weighted sum v̄_x; 0 when none is)."""
    a = overlaps.abs()
    return a.max(1).values, torch.sqrt((a.square() * (a > threshold)).sum(1))


def filter_alignment(filters: torch.Tensor, data_cov: torch.Tensor, suffix: str, result: Result) -> dict:
    """Fig 3's measurements of ``filters`` ``[n, C·kh·kw]`` against Σ_x, written as
    ``weight_eigvec_match<suffix>.*`` and ``weight_eigvec_combined_match<suffix>.*``."""
    tau_sq, sigma_sq, v_w, v_x, overlaps = eigvec_overlaps(weight_covariance(filters.double()), data_cov.double())
    best, combined = match_scores(overlaps[:N_SHOWN])
    m = result.metrics
    for i in range(N_SHOWN):
        m[f"weight_eigvec_match{suffix}.top{i + 1}"] = float(best[i])
        m[f"weight_eigvec_combined_match{suffix}.top{i + 1}"] = float(combined[i])
    m[f"weight_eigvec_match{suffix}.min_top10"] = float(best.min())
    m[f"weight_eigvec_combined_match{suffix}.min_top10"] = float(combined.min())
    return {"tau_sq": tau_sq, "sigma_sq": sigma_sq, "v_w": v_w, "v_x": v_x, "overlaps": overlaps}


@artifact(PAPER, "fig3", settings=WRN, resources=Tiered.same(Resources(runtime_min=2)), needs=("wrn_filters",),
          work=lambda s: analysed(models=s.n_runs, filters=s.stem_width))
def fig3(ctx: Context) -> Result:
    payload = ctx.load_model("wrn_filters")
    filters, data_cov = payload["filters"], payload["data_cov"]
    n_runs, per_run, dim = filters.shape
    result = Result(notes=[f"{n_runs} WRN-28-4 runs x {per_run} first-layer 5x5 filters = {n_runs * per_run} filters, "
                           f"{payload['steps']} SGD steps each on {payload['n_examples']} CIFAR-10 images with random "
                           f"labels; Sigma_x from the 5x5 patches of the training images"])
    trained = filter_alignment(filters.reshape(-1, dim), data_cov, "", result)
    initial = filter_alignment(payload["init_filters"].reshape(-1, dim), data_cov, "_init", result)
    m = result.metrics
    for i in range(5):
        m[f"weight_cov_eigenvalue.top{i + 1}"] = float(trained["tau_sq"][i])
    m["weight_cov_eigenvalue.ratio_2_1"] = float(trained["tau_sq"][1] / trained["tau_sq"][0])
    m["random_label_train_accuracy.mean"] = float(payload["train_accuracy"].mean())
    m["n_filters"] = float(n_runs * per_run)
    sample = torch.randperm(n_runs * per_run, generator=torch.Generator().manual_seed(3))[:24]
    result.arrays.update({
        "filters_sample": filters.reshape(-1, dim)[sample].numpy(),
        "weight_eigvals": trained["tau_sq"].numpy(), "data_eigvals": trained["sigma_sq"].numpy(),
        "weight_eigvecs": trained["v_w"][:, :N_SHOWN].numpy(), "data_eigvecs": trained["v_x"].numpy(),
        "overlaps": trained["overlaps"][:N_SHOWN].numpy(),
        "overlaps_init": initial["overlaps"][:N_SHOWN].numpy(),
        "train_accuracy": payload["train_accuracy"].numpy()})
    return result
