"""Representation alignment of Imani, Hu & White (TMLR 2022).

Notation follows the paper: a representation matrix ``phi`` (Φ, [n, d]) with
thin SVD Φ = U Σ Vᵀ, a label vector ``y`` ([n]), and the label projections
(u_iᵀy)². All functions are pure, differentiable where it makes sense, keep the
input dtype and device, and accept leading batch dimensions where stated.

Singular values below the numerical-rank tolerance
``σ_max · max(n, d) · eps(dtype)`` are treated as exactly zero: their left
singular vectors are an arbitrary basis of the orthogonal complement of the
column space, so their individual label projections are reported as 0 by
:func:`label_projection_spectrum`. Their total, ‖y − Py‖², is not lost: Eq. 2
sums over all n singular values of the full SVD, the n − r(Φ) zero ones
included, so at τ = 0 every curve equals ‖y‖² ("All the curves start at 200,
because at a threshold of 0 all singular values are greater than or equal to
the threshold", §4.2) and :func:`alignment_curve` adds that mass at τ ≤ 0.
"""

from __future__ import annotations

import torch

__all__ = [
    "normalize_representation",
    "label_projection_spectrum",
    "alignment_curve",
    "alignment_auc",
    "gd_learning_curve",
]


def normalize_representation(phi: torch.Tensor, add_bias: bool = True) -> torch.Tensor:
    """imani2022 §2/§4 preprocessing: bias column, then unit-length rows.

    "We replace the bias unit with a constant feature" and "we assume ‖x_i‖ ≤ 1
    ... satisfied by normalization". ``phi`` is [..., n, d]; with ``add_bias``
    a column of ones is appended (giving [..., n, d+1]) before each row is
    scaled to length one. Without the bias column an all-zero row cannot be
    normalised and raises ``ValueError``.
    """
    if add_bias:
        ones = torch.ones(*phi.shape[:-1], 1, dtype=phi.dtype, device=phi.device)
        phi = torch.cat([phi, ones], dim=-1)
    norms = torch.linalg.vector_norm(phi, dim=-1, keepdim=True)
    if not add_bias and bool((norms == 0).any()):
        bad = (norms.squeeze(-1) == 0).nonzero()[:5].tolist()
        raise ValueError(
            f"normalize_representation: {int((norms == 0).sum())} all-zero row(s) "
            f"(first indices {bad}) cannot be scaled to unit length; pass "
            "add_bias=True or drop those rows"
        )
    return phi / norms


def label_projection_spectrum(
    phi: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """imani2022 Fig. 2: singular values σ_i of Φ and label projections (u_iᵀy)².

    ``phi`` [..., n, d], ``y`` [..., n] -> (σ [..., r], (u_iᵀy)² [..., r]) with
    r = min(n, d) from the thin SVD, σ in descending order. Projections on
    numerically-zero singular values are set to 0 (see the module docstring).
    """
    u, s, _ = torch.linalg.svd(phi, full_matrices=False)
    proj = (u.transpose(-1, -2) @ y.unsqueeze(-1)).squeeze(-1) ** 2
    n, d = phi.shape[-2:]
    tol = s[..., :1] * (max(n, d) * torch.finfo(s.dtype).eps)
    proj = torch.where(s > tol, proj, torch.zeros_like(proj))
    return s, proj


def alignment_curve(
    phi: torch.Tensor, y: torch.Tensor, thresholds: torch.Tensor
) -> torch.Tensor:
    """imani2022 Eq. 2: Alignment(Φ, y, τ) = Σ_{i: σ_i ≥ τ} (u_iᵀy)², i over all n.

    ``phi`` [n, d], ``y`` [n], ``thresholds`` [t] -> [t] (leading batch dims of
    ``phi`` and ``y`` give [..., t]). No preprocessing is
    applied (call :func:`normalize_representation` first, as the paper does).
    The sum runs over the full SVD's n left singular vectors, so at τ ≤ 0 it is
    ‖y‖² for every Φ (the paper's common starting point); for τ > 0 the zero
    singular values drop out and the curve is at most ‖P y‖², P the projector on
    the column space of Φ. It is non-increasing in τ.
    """
    s, proj = label_projection_spectrum(phi, y)
    thresholds = torch.as_tensor(thresholds, dtype=s.dtype, device=s.device)
    keep = s.unsqueeze(-2) >= thresholds.unsqueeze(-1)
    null_mass = (y.pow(2).sum(-1) - proj.sum(-1)).clamp_min(0)        # Σ over σ_i = 0: ‖y − Py‖²
    at_zero = (thresholds <= 0).to(s.dtype)
    return (keep.to(s.dtype) * proj.unsqueeze(-2)).sum(-1) + null_mass.unsqueeze(-1) * at_zero


def alignment_auc(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Normalised area under the imani2022 Eq. 2 alignment curve.

    ∫_0^∞ Alignment(Φ, y, τ) dτ = Σ_i σ_i (u_iᵀy)² exactly (each term is
    counted for τ ∈ [0, σ_i]). It is divided by ‖y‖² · ‖Φ‖_F, an upper bound
    (σ_i ≤ ‖Φ‖_F and Σ (u_iᵀy)² ≤ ‖y‖²), so the result lies in [0, 1]; for
    unit-length rows ‖Φ‖_F = sqrt(n). ``phi`` [..., n, d], ``y`` [..., n] -> [...].
    """
    s, proj = label_projection_spectrum(phi, y)
    area = (s * proj).sum(-1)
    fro = torch.linalg.matrix_norm(phi, ord="fro")
    return area / (y.pow(2).sum(-1) * fro)


def gd_learning_curve(
    phi: torch.Tensor, y: torch.Tensor, lr: float, steps: int
) -> torch.Tensor:
    """imani2022 Prop. 1: exact training loss of gradient descent, from the SVD.

    Convention (the paper's): loss L(w) = ‖Φw − y‖², update
    w_{t+1} = w_t − lr · Φᵀ(Φw_t − y) (i.e. lr times the gradient of L/2),
    w_0 = 0. Then

        ‖Φw_t − y‖² = Σ_{i ≤ r(Φ)} (1 − lr σ_i²)^{2t} (u_iᵀy)² + ‖y − P y‖²,

    where ‖y − P y‖² = ‖Φw* − y‖² is the part of y outside the column space.
    Holds for any lr (it diverges if lr > 2/σ_max²). ``phi`` [n, d], ``y`` [n]
    -> losses for t = 0, ..., steps, shape [steps + 1] (leading batch dims give
    [..., steps + 1]).
    """
    s, proj = label_projection_spectrum(phi, y)
    outside = (y.pow(2).sum(-1) - proj.sum(-1)).clamp_min(0)
    t = torch.arange(steps + 1, dtype=s.dtype, device=s.device)
    decay = (1 - lr * s.pow(2)).unsqueeze(-2).pow(2 * t.unsqueeze(-1))
    return (decay * proj.unsqueeze(-2)).sum(-1) + outside.unsqueeze(-1)
