"""Epoch × epoch minibatch CKA maps from what is stored during training (sharon2024 §3.1, App. F.2).

The paper averages over 4 class-balanced batches of 512 test images, with torch-cka, which
accumulates the *unbiased* HSIC (Song et al. 2012) over batches before the ratio is taken
(:func:`repalign.metrics.minibatch_cka`, ``unbiased=True``). The unbiased HSIC is a plain
inner product of *U-centred* Grams (Székely & Rizzo 2014, Def. 1; Song's K̃ has a zero
diagonal):

    Ũ(K)_ij = K̃_ij − r_i/(n−2) − r_j/(n−2) + s/((n−1)(n−2))  (i ≠ j),   Ũ(K)_ii = 0,
    HSIC_u(K, L) = Σ_{i≠j} Ũ(K)_ij Ũ(L)_ij / (n(n−3)),

with r = K̃1, s = 1ᵀK̃1. So one epoch of one layer is stored *exactly* as the upper triangles
of its batches' U-centred Grams, concatenated and scaled to unit norm; then the E×E map of
minibatch CKA is ``cka_matrix`` of those vectors: ONE matrix product, no E² CKA calls, and
no features or checkpoints kept. Size per layer and epoch: n_batches · b(b−1)/2 floats,
independent of the layer width (2 MiB for 4 × 512 in float32).
"""

from __future__ import annotations

import torch

from repalign.metrics import cka_matrix

__all__ = ["u_centre", "batch_triangle", "unit", "epoch_vector", "cka_map"]


def u_centre(k: torch.Tensor) -> torch.Tensor:
    """The U-centred Gram Ũ(K) of ``k`` [..., n, n] (n ≥ 4), zero diagonal."""
    n = k.shape[-1]
    if n < 4:
        raise ValueError(f"U-centring (unbiased HSIC) needs batches of at least 4 examples, got {n}")
    k = k - torch.diag_embed(torch.diagonal(k, dim1=-2, dim2=-1))
    rows = k.sum(-1, keepdim=True) / (n - 2)
    total = k.sum((-2, -1), keepdim=True) / ((n - 1) * (n - 2))
    u = k - rows - rows.transpose(-2, -1) + total
    return u - torch.diag_embed(torch.diagonal(u, dim1=-2, dim2=-1))


def batch_triangle(features: torch.Tensor) -> torch.Tensor:
    """Upper triangle (i < j) of Ũ(XXᵀ) for one probe batch ``features`` [b, ...], in float64.

    Each example's representation is flattened to one vector (a conv feature map is never
    reshaped into the sample axis)."""
    x = features.flatten(1).to(torch.float64)
    u = u_centre(x @ x.T)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], offset=1, device=u.device)
    return u[i, j]


def unit(triangles: list[torch.Tensor]) -> torch.Tensor:
    """One epoch's stored vector: the batches' triangles concatenated, unit norm, float32 on the CPU."""
    vec = torch.cat(triangles)
    norm = torch.linalg.vector_norm(vec)
    if norm == 0:
        raise ValueError("a layer's representation is constant over the probe batches; its CKA is undefined")
    return (vec / norm).to(torch.float32).cpu()


def epoch_vector(features: torch.Tensor, n_batches: int, batch_size: int) -> torch.Tensor:
    """The stored form of one layer at one epoch from its probe ``features`` [n, ...] in probe order
    (batch b = rows b·batch_size … (b+1)·batch_size − 1)."""
    need = n_batches * batch_size
    if features.shape[0] < need:
        raise ValueError(f"{n_batches} batches of {batch_size} need {need} probe examples, got {features.shape[0]}")
    return unit([batch_triangle(features[b * batch_size:(b + 1) * batch_size]) for b in range(n_batches)])


def cka_map(vectors: torch.Tensor) -> torch.Tensor:
    """E×E minibatch linear CKA (unbiased HSIC) from ``epoch_vector`` outputs [E, D], in float64."""
    return cka_matrix(vectors.to(torch.float64))
