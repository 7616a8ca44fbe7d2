"""Stable rank (lou2022 App. G) and decision-region similarity (sharon2024 §4.2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["stable_rank", "triplet_planes", "drs"]


def stable_rank(matrix: torch.Tensor, hermitian: bool = False) -> torch.Tensor:
    """Stable rank R(A) = ‖A‖_F² / ‖A‖_2² (Rudelson & Vershynin 2007), lou2022 App. G.

    ``matrix`` [..., m, k] -> [...]. With ``hermitian=True`` the matrix is a
    symmetric kernel (e.g. lou2022's C Ψ_lᵀ Ψ_l C) and the eigenvalue form
    Σ_i λ_i² / max_i λ_i² is used, which is the same quantity computed from
    ``eigvalsh``. Note this is the stable rank of the kernel itself, as in
    lou2022; the stable rank of the features Ψ would be tr(K)/λ_max(K).
    """
    if hermitian:
        sq = torch.linalg.eigvalsh(matrix).pow(2)
        return sq.sum(-1) / sq.amax(-1)
    spectral = torch.linalg.matrix_norm(matrix, ord=2)
    return torch.linalg.matrix_norm(matrix).pow(2) / spectral.pow(2)


def triplet_planes(triplets: torch.Tensor, resolution: int = 50, margin: float = 0.1) -> torch.Tensor:
    """Grid points on the planes spanned by example triplets (sharon2024 App. F.3).

    ``triplets`` [P, 3, ...] holds P triplets (x0, x1, x2) of inputs of any
    shape. For each, the plane through the three points is parametrised by
    x0 + α b1 + β b2 with the orthonormal basis b1 ∝ x1 − x0,
    b2 ∝ (x2 − x0) minus its b1 component. A uniform ``resolution`` ×
    ``resolution`` grid covers the bounding box of the triplet's (α, β)
    coordinates, widened by ``margin`` times its side on every side.

    Returns the planes tensor format used by :func:`drs`: [P, G, ...] with
    G = resolution², i.e. P planes of G grid points, each point shaped like one
    input example, rows ordered α-major.
    """
    p = triplets.shape[0]
    flat = triplets.reshape(p, 3, -1)
    a = flat[:, 1] - flat[:, 0]
    b = flat[:, 2] - flat[:, 0]
    a_len = torch.linalg.vector_norm(a, dim=-1, keepdim=True)
    b1 = a / a_len
    along = (b * b1).sum(-1, keepdim=True)
    b_orth = b - along * b1
    b2 = b_orth / torch.linalg.vector_norm(b_orth, dim=-1, keepdim=True)
    zero = torch.zeros_like(a_len)
    alphas = torch.cat([zero, a_len, along], -1)  # [P, 3] coordinates of x0, x1, x2
    betas = torch.cat([zero, zero, (b * b2).sum(-1, keepdim=True)], -1)
    t = torch.linspace(0, 1, resolution, dtype=flat.dtype, device=flat.device)

    def axis(c: torch.Tensor) -> torch.Tensor:
        lo, hi = c.amin(-1, keepdim=True), c.amax(-1, keepdim=True)
        pad = margin * (hi - lo)
        return (lo - pad) + (hi - lo + 2 * pad) * t  # [P, resolution]

    grid_a = axis(alphas).repeat_interleave(resolution, dim=1)  # [P, G], α-major
    grid_b = axis(betas).repeat(1, resolution)
    points = flat[:, :1] + grid_a.unsqueeze(-1) * b1.unsqueeze(1) + grid_b.unsqueeze(-1) * b2.unsqueeze(1)
    return points.reshape(p, resolution * resolution, *triplets.shape[2:])


def drs(
    probe_a: Callable[[torch.Tensor], torch.Tensor],
    probe_b: Callable[[torch.Tensor], torch.Tensor],
    planes: torch.Tensor | Iterable[torch.Tensor],
) -> torch.Tensor:
    """Decision-region similarity of two probes, sharon2024 Eq. 5.

    ``probe_a`` and ``probe_b`` map a batch of inputs [G, ...] to class scores
    [G, classes] (for sharon2024: the network up to a layer at one epoch, then
    that epoch's linear probe). ``planes`` is a tensor [P, G, ...] of grid
    points (see :func:`triplet_planes`) or an iterable of [G, ...] tensors, one
    plane at a time. Returns the fraction of all grid points on which the two
    predicted classes (argmax) agree, in [0, 1]; planes with equal G weigh
    equally. Evaluated without gradients.
    """
    agree, total = 0, 0
    with torch.no_grad():
        for plane in planes:
            same = probe_a(plane).argmax(-1) == probe_b(plane).argmax(-1)
            agree += int(same.sum())
            total += same.numel()
    if total == 0:
        raise ValueError("drs needs at least one grid point")
    return torch.tensor(agree / total, dtype=torch.float64)
