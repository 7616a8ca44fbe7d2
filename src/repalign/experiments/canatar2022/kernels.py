"""Kernel measures on many examples without n × n matrices (canatar2022 §III).

A layer kernel is linear in its features, K = ψψᵀ with ψ [n, p], so everything needed
from it lives in p × p matrices:

- CKA (centred Eq. 4) with the target kernel YYᵀ or the input kernel XXᵀ is
  ``repalign.metrics.linear_cka`` in its feature-space form ‖Y_cᵀψ_c‖² / (‖ψ_cᵀψ_c‖ ‖Y_cᵀY_c‖);
- the non-zero eigenvalues of ψψᵀ are those of ψᵀψ = V Λ Vᵀ, with eigenvectors
  φ_ρ = ψ v_ρ / √λ_ρ, so the target coefficients of Eq. 3 are a_ρ = v_ρᵀ(ψᵀY) / √λ_ρ and the
  power outside the top p modes is ‖Y‖² − Σ_ρ ‖a_ρ‖².
"""

from __future__ import annotations

import numpy as np
import torch

from repalign.metrics import linear_cka

__all__ = ["KernelSpectrum", "feature_spectrum", "rank99", "numerical_rank", "spectrum_summary", "cka"]


class KernelSpectrum(dict):
    """``eigs`` [p] (descending, of ψψᵀ) and ``cum_power`` [p] (Eq. 3 at ρ = 1…p)."""


def feature_spectrum(features: torch.Tensor, targets: torch.Tensor) -> KernelSpectrum:
    """Eigenvalues of K = ψψᵀ and the target's cumulative power on its eigenbasis, in float64.

    ``features`` [n, p], ``targets`` [n, C] one-hot. Entry k of ``cum_power`` is the share of
    ‖Y‖² on the top k + 1 eigenmodes of K, equal to ``repalign.metrics.cumulative_power(K, Y)[k]``.
    """
    psi, y = features.flatten(1).double(), targets.double()
    evals, vecs = torch.linalg.eigh(psi.T @ psi)
    evals, vecs = evals.flip(0).clamp_min(0), vecs.flip(1)
    coeff = vecs.T @ (psi.T @ y)  # √λ_ρ a_ρ
    scale = evals.max() * psi.shape[1] * torch.finfo(torch.float64).eps
    power = torch.where(evals > scale, coeff.pow(2).sum(1) / evals.clamp_min(scale), torch.zeros_like(evals))
    return KernelSpectrum(eigs=evals.cpu().numpy(), cum_power=(power.cumsum(0) / y.pow(2).sum()).cpu().numpy())


def rank99(eigs: np.ndarray) -> int:
    """The number of leading eigenvalues holding 99% of the kernel's trace."""
    share = np.cumsum(eigs) / eigs.sum()
    return int(np.searchsorted(share, 0.99) + 1)


def numerical_rank(eigs: np.ndarray, rtol: float = 1e-10) -> int:
    """Eigenvalues above ``rtol`` × the largest (float64 Gram; N_ℓ for a generic layer with n ≥ N_ℓ)."""
    return int((eigs > rtol * eigs.max()).sum())


def spectrum_summary(spec: dict, modes: int = 10) -> dict[str, float]:
    """rank99, numerical rank, the top-``modes`` share of the trace and C(ρ = ``modes``)."""
    eigs = spec["eigs"]
    return {"rank99": rank99(eigs), "kernel_rank": numerical_rank(eigs),
            f"top{modes}_share": float(eigs[:modes].sum() / eigs.sum()),
            f"cum_power_mode{modes}": float(spec["cum_power"][min(modes, len(spec["cum_power"])) - 1])}


def cka(features: torch.Tensor, other: torch.Tensor) -> float:
    """CKA of the linear kernels of ``features`` [n, p] and ``other`` [n, q] (targets or inputs), float64."""
    return float(linear_cka(features.flatten(1).double(), other.flatten(1).double()))
