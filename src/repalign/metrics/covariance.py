"""Covariance alignment of first-layer filters, Maennel et al. (NeurIPS 2020).

Shapes: a data covariance ``data_cov`` Σ_x is [d, d]; filters are rows of a
[m, d] matrix. For convolutions d = C·k·k and a filter is a conv weight
[C, kh, kw] flattened in that (C, kh, kw) order, which is the order used by
:func:`patch_covariance`, so ``conv.weight.reshape(out, -1)`` can be passed
directly. All covariances here are unbiased (divide by count − 1), like
``torch.cov``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

__all__ = [
    "patch_covariance",
    "misalignment",
    "transfer_function",
    "covariance_filters",
    "activation_fractions",
]


def patch_covariance(
    images: torch.Tensor | Iterable[torch.Tensor],
    kernel_size: int,
    stride: int = 1,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Covariance Σ_x of the centred image patches (maennel2020 §2.2, App. A.6).

    ``images`` is a tensor [N, C, H, W] (processed ``chunk_size`` images at a
    time) or an iterable of such chunks (e.g. batches from a data loader), so
    the unfolded patches of 50k CIFAR images never sit in memory at once.
    Patches are every k×k window at the given stride without padding, flattened
    in the (C, kh, kw) order of a conv weight [out, C, kh, kw]: for a filter w,
    ``w.reshape(-1) @ Σ @ w.reshape(-1)`` is the variance of that conv's
    outputs over all patches. Returns [C·k·k, C·k·k] in the images' dtype.

    Chunks are merged with the pairwise (Chan et al.) update of mean and
    scatter matrix, which avoids the cancellation of E[xxᵀ] − μμᵀ in float32.
    """
    chunks = images.split(chunk_size) if isinstance(images, torch.Tensor) else images
    count, mean, scatter = 0, None, None
    for chunk in chunks:
        patches = F.unfold(chunk, kernel_size, stride=stride)  # [B, D, P]
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        m = patches.shape[0]
        chunk_mean = patches.mean(0)
        centred = patches - chunk_mean
        chunk_scatter = centred.T @ centred
        if mean is None:
            count, mean, scatter = m, chunk_mean, chunk_scatter
            continue
        delta = chunk_mean - mean
        total = count + m
        scatter = scatter + chunk_scatter + torch.outer(delta, delta) * (count * m / total)
        mean = mean + delta * (m / total)
        count = total
    if mean is None or count < 2:
        raise ValueError("patch_covariance needs at least two patches")
    return scatter / (count - 1)


def misalignment(data_cov: torch.Tensor, weight_cov: torch.Tensor, rtol: float = 1e-9) -> torch.Tensor:
    """maennel2020 Def. 2, closed form of §2.2 and App. A.6.

    M(Σ_x, B) = Σ_i sqrt(tr(B|V_i) · tr(B⁻¹|V_i)) − d over the eigenspaces V_i
    of Σ_x, with B = ``weight_cov`` (positive definite). When the eigenvalues
    of Σ_x are distinct (almost surely for data) this is App. A.6's
    Σ_i [ sqrt((v_iᵀ B v_i)(v_iᵀ B⁻¹ v_i)) − 1 ] over unit eigenvectors v_i.
    Eigenvalues of Σ_x closer than ``rtol · λ_max`` are treated as one
    eigenspace, so e.g. M(I, B) = sqrt(tr B · tr B⁻¹) − d. M ≥ 0, with
    equality iff B is aligned with Σ_x (every eigenspace of Σ_x lies inside
    one of B); it is invariant to scaling either argument.
    """
    evals, vecs = torch.linalg.eigh(data_cov)
    quad_b = (vecs * (weight_cov @ vecs)).sum(0)
    quad_binv = (vecs * torch.linalg.solve(weight_cov, vecs)).sum(0)
    new_space = torch.diff(evals) > rtol * evals.abs().max()
    group = torch.cat([new_space.new_zeros(1), new_space]).cumsum(0)
    n_groups = int(group[-1]) + 1
    tr_b = quad_b.new_zeros(n_groups).index_add(0, group, quad_b)
    tr_binv = quad_b.new_zeros(n_groups).index_add(0, group, quad_binv)
    return (tr_b * tr_binv).sqrt().sum() - data_cov.shape[-1]


def transfer_function(
    data_cov: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """maennel2020 Def. 3 / Eq. 2: the eigenvalue map f(σ_i) = τ_i.

    σ_i² are the eigenvalues of Σ_x = ``data_cov`` with unit eigenvectors v_i;
    τ_i = sqrt(v_iᵀ Σ_w v_i) where Σ_w is the *covariance* of the filters
    (rows of ``weights`` [m, d], centred by their mean, divided by m − 1),
    i.e. τ_i is the standard deviation of the filters projected on v_i. This
    follows Eq. 2 and App. A.6 ("the covariance of the filters"); under Prop. 1
    the mean filter is 0, so it coincides with the second moment E[wwᵀ].
    Returns (σ [d], τ [d]) sorted by σ descending.
    """
    evals, vecs = torch.linalg.eigh(data_cov)
    order = torch.argsort(evals, descending=True)
    evals, vecs = evals[order], vecs[:, order]
    proj = (weights - weights.mean(0)) @ vecs
    tau = (proj.pow(2).sum(0) / (weights.shape[0] - 1)).sqrt()
    return evals.clamp_min(0).sqrt(), tau


def covariance_filters(
    data_cov: torch.Tensor,
    taus: torch.Tensor,
    n_filters: int,
    mode: str = "sample",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Data-only initialisation of maennel2020 §2.5 and App. E.3.

    With e_1, e_2, ... the unit eigenvectors of Σ_x = ``data_cov`` by
    decreasing eigenvalue and k = len(``taus``):

    - ``mode="eigen"``: the filters are τ_1 e_1, ..., τ_k e_k directly (Table 1;
      needs ``n_filters == k``). Eigenvector signs are as returned by ``eigh``.
    - ``mode="sample"``: ``n_filters`` i.i.d. draws from N(0, Σ) with Σ having
      eigenvectors e_i and eigenvalues τ_1², ..., τ_k², 0, ... (Table 4),
      i.e. w = Σ_i τ_i z_i e_i with z ~ N(0, I_k), drawn with ``generator``.

    Returns [n_filters, d]; reshape to [out, C, kh, kw] for a conv layer. The
    paper rescales the filters to the norm of the standard initialisation;
    that is left to the caller.
    """
    taus = torch.as_tensor(taus, dtype=data_cov.dtype, device=data_cov.device)
    k = taus.shape[0]
    if k > data_cov.shape[0]:
        raise ValueError(f"{k} taus given but data_cov has only {data_cov.shape[0]} eigenvectors")
    evals, vecs = torch.linalg.eigh(data_cov)
    top = vecs[:, torch.argsort(evals, descending=True)[:k]]
    if mode == "eigen":
        if n_filters != k:
            raise ValueError(f"mode='eigen' builds one filter per tau: n_filters={n_filters} != {k}")
        return (top * taus).T
    if mode == "sample":
        z = torch.randn(n_filters, k, generator=generator, dtype=data_cov.dtype, device=data_cov.device)
        return (z * taus) @ top.T
    raise ValueError(f"mode must be 'sample' or 'eigen', got {mode!r}")


def activation_fractions(activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Neuron activation statistics of maennel2020 Fig. 7 / Figs. 10, 11.

    ``activations`` [N, ...] are post-activation outputs of one layer for N
    held-out examples; every trailing entry (a dense unit, or a conv channel at
    one position) is a unit, and it is active when its output is non-zero
    (> 0, as for ReLU). Returns (fraction of examples activating each unit
    [U], fraction of units active for each example [N]), in the activations'
    floating dtype (float32 for integer or boolean inputs).
    """
    active = activations.reshape(activations.shape[0], -1) > 0
    dtype = activations.dtype if activations.is_floating_point() else torch.float32
    active = active.to(dtype)
    return active.mean(0), active.mean(1)
