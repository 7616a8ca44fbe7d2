"""imani2022 §6, Figs 8 and 9: alignment and the convergence of gradient descent (Prop. 1).

Both figures run plain batch GD on a fixed representation in the paper's convention
(loss ‖Φw − y‖², w ← w − η Φᵀ(Φw − y), w₀ = 0) and check the simulated losses against
the closed form of Prop. 1 (``gd_learning_curve``).

- Fig 8: the rank-2 representation Φ = diag(σ_fast, σ_slow) = diag(6, 1) with a
  well-aligned label vector (share ``high_share`` of ‖y‖² on u1; our choice, the paper
  gives none) and a poorly aligned one (half on each, "each process gets half of the
  overall loss"). The end of the fast phase is the first step where the fast process
  keeps at most ``fast_done`` of its own share.
- Fig 9: 1,000 raw CT Position points (no bias column, no row normalisation: σ5 ≈ 115 is
  impossible for unit rows); y1 = u10 and y2 = a weighted sum of u5 and u50 (weights
  ours: ``y2_mass_u5`` of ‖y2‖² on u5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from repalign.experiments.imani2022.tasks import load_task
from repalign.experiments.registry import Context, Resources, Tiered, Work, artifact, trained
from repalign.metrics import alignment_curve, gd_learning_curve, label_projection_spectrum
from repalign.results import Result

PAPER = "imani2022"


def gd_trajectory(phi: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulated batch GD of Prop. 1: losses ``[steps + 1]`` and weights ``[steps + 1, d]``."""
    w = torch.zeros(phi.shape[1], dtype=phi.dtype, device=phi.device)
    losses, weights = [], []
    for t in range(steps + 1):
        residual = phi @ w - y
        losses.append(residual.pow(2).sum())
        weights.append(w)
        if t < steps:
            w = w - lr * (phi.T @ residual)
    return torch.stack(losses), torch.stack(weights)


def prop1_error(phi: torch.Tensor, y: torch.Tensor, lr: float, losses: torch.Tensor) -> float:
    """max_t |simulated loss − Prop. 1 loss| / initial loss."""
    exact = gd_learning_curve(phi, y, lr, losses.shape[0] - 1)
    return float(((losses - exact).abs() / losses[0]).max())


# ---- Fig 8 -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FastSlowSettings:
    n_runs: int = 1
    sigma_fast: float = 6.0
    sigma_slow: float = 1.0
    high_share: float = 0.9   # fast-process share of the loss for the well-aligned labels (ours)
    lr_fraction: float = 0.5  # η = lr_fraction / σ_fast², inside Prop. 1's 0 < η < σ_max⁻²
    steps: int = 300
    fast_done: float = 0.01   # fast phase over when the fast process keeps ≤ 1% of its share
    fit_level: float = 0.05   # "fitted" when ≤ 5% of the initial loss remains


FAST_SLOW = Tiered.same(FastSlowSettings())
CHEAP = Tiered.same(Resources(runtime_min=2, mem_mb=1000))


def fast_slow_work(s: FastSlowSettings) -> Work:
    """Fig 8: GD on a 2-point problem, one trajectory per alignment."""
    return trained(steps=s.steps, examples=2, labelings=len(ALIGNMENTS), models=s.n_runs)
ALIGNMENTS = ("high_alignment", "low_alignment")


@artifact(PAPER, "fig8", settings=FAST_SLOW, resources=CHEAP, work=fast_slow_work)
def fig8(ctx: Context) -> Result:
    """Fig 8: loss share and weight of the fast and slow processes, high vs low alignment."""
    s: FastSlowSettings = ctx.settings
    phi = torch.diag(torch.tensor([s.sigma_fast, s.sigma_slow], dtype=torch.float64))
    lr = s.lr_fraction / s.sigma_fast ** 2
    u, _, vh = torch.linalg.svd(phi)
    result = Result()
    for name, share in zip(ALIGNMENTS, (s.high_share, 0.5)):
        y = torch.tensor([math.sqrt(share), math.sqrt(1 - share)], dtype=torch.float64)
        sigma, proj = label_projection_spectrum(phi, y)
        losses, weights = gd_trajectory(phi, y, lr, s.steps)
        w_v = weights @ vh.T                                          # process coordinates w^V
        process_loss = (sigma * w_v - u.T @ y) ** 2                   # [steps + 1, 2], Eq. 1 terms
        fast_end = int(torch.nonzero(process_loss[:, 0] <= s.fast_done * process_loss[0, 0])[0])
        fitted = int(torch.nonzero(losses <= s.fit_level * losses[0])[0])
        result.metrics[f"loss_share_fast.{name}"] = float(proj[0] / y.pow(2).sum())
        result.metrics[f"loss_reduced_fast_phase.{name}"] = float(1 - losses[fast_end] / losses[0])
        result.metrics[f"weight_norm_to_fit.{name}"] = float(weights[fitted].norm())
        result.metrics[f"steps_to_fit.{name}"] = fitted
        result.metrics[f"prop1_max_rel_error.{name}"] = prop1_error(phi, y, lr, losses)
        result.arrays[f"process_weight.{name}"] = w_v.abs().numpy()   # |w^V_i| (y_i ≥ 0 here)
        result.arrays[f"process_loss.{name}"] = process_loss.numpy()
        result.arrays[f"loss.{name}"] = losses.numpy()
        result.arrays[f"fast_end.{name}"] = np.array(fast_end)
    result.arrays["sigma"] = sigma.numpy()
    result.notes.append(f"Phi = diag({s.sigma_fast:g}, {s.sigma_slow:g}); eta = {lr:.4g}; high alignment puts "
                        f"{s.high_share:g} of ||y||^2 on u1 (our choice), low alignment 0.5")
    return result


# ---- Fig 9 -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TwoLabelSettings:
    n_runs: int = 1
    n_points: int = 1000
    steps: int = 2000
    lr_fraction: float = 0.5   # η = lr_fraction / σ_max²
    y2_mass_u5: float = 0.9    # share of ‖y2‖² on u5, the rest on u50 (ours)
    early_fraction: float = 0.1


TWO_LABELS = Tiered(smoke=TwoLabelSettings(steps=200), quick=TwoLabelSettings(), paper=TwoLabelSettings())


def two_label_work(s: TwoLabelSettings) -> Work:
    """Fig 9: full-batch GD on the CT points, one trajectory per label vector (y1, y2)."""
    return trained(steps=s.steps, examples=s.n_points, labelings=2, models=s.n_runs)


@artifact(PAPER, "fig9", settings=TWO_LABELS, resources=CHEAP, work=two_label_work)
def fig9(ctx: Context) -> Result:
    """Fig 9: alignment curves and GD learning curves of y1 = u10 and y2 ∝ a·u5 + b·u50 on CT."""
    s: TwoLabelSettings = ctx.settings
    task = load_task(ctx, "ct", s.n_points, 0, ctx.seeds[0])
    phi = task.x_train.double()
    u, sigma, _ = torch.linalg.svd(phi, full_matrices=False)
    labels = {"y1": u[:, 9], "y2": math.sqrt(s.y2_mass_u5) * u[:, 4] + math.sqrt(1 - s.y2_mass_u5) * u[:, 49]}
    lr = s.lr_fraction / float(sigma[0]) ** 2
    tau = torch.linspace(0, float(sigma[4]) * 1.2, 300, dtype=phi.dtype, device=phi.device)
    early = max(1, int(s.early_fraction * s.steps))
    result = Result()
    for k in (5, 10, 50):
        result.metrics[f"sigma_{k}"] = float(sigma[k - 1])
    for name, y in labels.items():
        losses, _ = gd_trajectory(phi, y, lr, s.steps)
        normalised = (losses / losses[0]).cpu()
        result.metrics[f"prop1_max_rel_error.{name}"] = prop1_error(phi, y, lr, losses)
        result.metrics[f"train_loss.early.{name}"] = float(normalised[1:early + 1].mean())
        result.metrics[f"train_loss.final.{name}"] = float(normalised[-1])
        result.arrays[f"learning_curve.{name}"] = normalised.numpy()
        result.arrays[f"alignment_curve.{name}"] = alignment_curve(phi, y, tau).cpu().numpy()
    result.arrays["thresholds"] = tau.cpu().numpy()
    result.arrays["sigma"] = sigma[:100].cpu().numpy()
    result.notes += [task.note(), f"raw CT features (no bias column, rows not normalised); eta = 0.5 / "
                     f"sigma_max^2 = {lr:.3g}; y2 = sqrt({s.y2_mass_u5:g}) u5 + sqrt({1 - s.y2_mass_u5:g}) u50"]
    return result
