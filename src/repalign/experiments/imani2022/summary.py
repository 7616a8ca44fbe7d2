"""Alignment of a stack of representations with one label vector, for plots and metrics.

Every representation is preprocessed as the paper does (§2, §4): a constant column for
the bias, then rows scaled to unit length (``normalize_representation``). Alignment is
summarised by ``alignment_auc`` and drawn as the Eq. 2 curve divided by ‖y‖² on the
grid τ ∈ [0, sqrt(n)] (σ_max ≤ ‖Φ‖_F = sqrt(n) for unit rows).
"""

from __future__ import annotations

import numpy as np
import torch

from repalign.metrics import alignment_auc, alignment_curve, normalize_representation

N_THRESHOLDS = 200
SUPPORT_FLOOR = 0.01  # a threshold counts while one of the two curves keeps > 1 % of ||y||^2 (ours)


def thresholds_for(n: int) -> np.ndarray:
    return np.linspace(0.0, float(np.sqrt(n)), N_THRESHOLDS)


def normalized_pair(rep: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's preprocessing of ``rep`` [..., n, d] in float64, and both broadcast to one batch."""
    phi, y = normalize_representation(rep.double()), y.double()
    batch = torch.broadcast_shapes(phi.shape[:-2], y.shape[:-1])
    return phi.expand(*batch, *phi.shape[-2:]), y.expand(*batch, y.shape[-1])


def alignment_stats(rep: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """``rep`` [..., n, d] (raw), ``y`` [..., n] -> (alignment_auc [...], curves [..., T]).

    Curves are on ``thresholds_for(n)`` and divided by ‖y‖², so each starts at 1 (Eq. 2
    at τ = 0) and, just above 0, falls to the share of y inside the column space of the
    normalised representation.
    """
    phi, y = normalized_pair(rep, y)
    tau = torch.as_tensor(thresholds_for(phi.shape[-2]), dtype=phi.dtype, device=phi.device)
    curves = alignment_curve(phi, y, tau) / y.pow(2).sum(-1, keepdim=True)
    return alignment_auc(phi, y), curves.cpu().numpy()



def positive_share(diff: np.ndarray, reference: np.ndarray, floor: float = SUPPORT_FLOOR) -> float:
    """Share of the thresholds where a difference of two alignment curves is positive (Figs 14, 16).

    ``diff`` and ``reference`` are ``[T]`` on ``thresholds_for``; ``reference`` is the larger
    of the two (normalised) curves. τ = 0 is skipped (every curve is 1 there) and so are the
    thresholds past both curves' support (``reference`` ≤ ``floor``), where the difference
    is 0 whatever the representations. 1.0 = positive "across all thresholds".
    """
    keep = reference[1:] > floor
    return float((diff[1:][keep] > 0).mean()) if keep.any() else 0.0
