"""Linear centred kernel alignment (CKA): full-batch, minibatch and matrix forms.

Kornblith et al. (2019) linear CKA, as used by sharon2024 §3.1 (Eqs. 1, 2):
HSIC(K, L) ∝ ⟨HKH, HLH⟩_F with H = I − 11ᵀ/n, and
CKA = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)) for the linear Grams
K = XXᵀ, L = YYᵀ. The unbiased variant replaces HSIC by the unbiased
U-statistic estimator of Song et al. (2012), as in Nguyen et al. (2021).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = [
    "center_gram",
    "linear_cka",
    "minibatch_cka",
    "centered_normalized_gram",
    "cka_matrix",
]


def center_gram(k: torch.Tensor) -> torch.Tensor:
    """H K H for a Gram matrix ``k`` [..., n, n], H = I − 11ᵀ/n (sharon2024 §3.1, canatar2022 §III)."""
    k = k - k.mean(-1, keepdim=True)
    return k - k.mean(-2, keepdim=True)


def _hsic(k: torch.Tensor, l: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """HSIC of Gram matrices [..., n, n] -> [...].

    Biased: ⟨HKH, HLH⟩ / (n − 1)². Unbiased (Song et al. 2012, Eq. 5; needs
    n > 3): with K̃, L̃ the Grams with zeroed diagonals,
    [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)).
    """
    n = k.shape[-1]
    if not unbiased:
        return (center_gram(k) * center_gram(l)).sum((-2, -1)) / (n - 1) ** 2
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 examples, got {n}")
    k = k - torch.diag_embed(torch.diagonal(k, dim1=-2, dim2=-1))
    l = l - torch.diag_embed(torch.diagonal(l, dim1=-2, dim2=-1))
    trace = (k * l).sum((-2, -1))  # tr(K̃L̃) for symmetric Grams
    sums = k.sum((-2, -1)) * l.sum((-2, -1)) / ((n - 1) * (n - 2))
    cross = (k.sum(-1) * l.sum(-1)).sum(-1) * (2 / (n - 2))
    return (trace + sums - cross) / (n * (n - 3))


def _cka_from_grams(k: torch.Tensor, l: torch.Tensor, unbiased: bool) -> torch.Tensor:
    return _hsic(k, l, unbiased) / (_hsic(k, k, unbiased) * _hsic(l, l, unbiased)).sqrt()


def linear_cka(x: torch.Tensor, y: torch.Tensor, unbiased: bool = False) -> torch.Tensor:
    """Linear CKA between representations ``x`` [n, p] and ``y`` [n, q] -> scalar.

    Biased (default): computed in feature space as
    ‖Y_cᵀX_c‖²_F / (‖X_cᵀX_c‖_F ‖Y_cᵀY_c‖_F) with column-centred X_c, Y_c,
    which equals the Gram-matrix form of sharon2024 Eq. 2. ``unbiased=True``
    uses the unbiased HSIC estimator on K = XXᵀ, L = YYᵀ (n ≥ 4). Invariant
    to orthogonal transforms and isotropic scaling of either input; 1 for
    identical inputs.
    """
    x, y = x.flatten(1), y.flatten(1)
    if unbiased:
        return _cka_from_grams(x @ x.T, y @ y.T, unbiased=True)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = torch.linalg.matrix_norm(y.T @ x).pow(2)
    return cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))


def minibatch_cka(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 512,
    n_batches: int | None = None,
    unbiased: bool = True,
) -> torch.Tensor:
    """Minibatch linear CKA (Nguyen et al. 2021), as used by sharon2024 App. F.2.

    The n examples are cut, in order, into ``n_batches`` consecutive batches of
    ``batch_size`` (default: as many full batches as fit; the rest is
    dropped). HSIC(K,L), HSIC(K,K) and HSIC(L,L) are each averaged over the
    batches *before* the ratio is taken:
    CKA = mean_b HSIC_b(K,L) / sqrt(mean_b HSIC_b(K,K) · mean_b HSIC_b(L,L)).
    sharon2024 ("4 batches of 512 ... average CKA score over all batches")
    computed CKA with the torch-cka package, which accumulates the unbiased
    HSICs over batches in exactly this way; hence ``unbiased=True`` by
    default. Order the examples so that each batch is class-balanced, as the
    paper does.
    """
    x, y = x.flatten(1), y.flatten(1)
    fit = x.shape[0] // batch_size
    n_batches = fit if n_batches is None else n_batches
    if n_batches < 1 or n_batches > fit:
        raise ValueError(
            f"{x.shape[0]} examples give {fit} full batch(es) of {batch_size}; "
            f"n_batches={n_batches} requested"
        )
    m = n_batches * batch_size
    xb = x[:m].reshape(n_batches, batch_size, -1)
    yb = y[:m].reshape(n_batches, batch_size, -1)
    k = xb @ xb.transpose(1, 2)
    l = yb @ yb.transpose(1, 2)
    kl = _hsic(k, l, unbiased).mean()
    kk = _hsic(k, k, unbiased).mean()
    ll = _hsic(l, l, unbiased).mean()
    return kl / (kk * ll).sqrt()


def centered_normalized_gram(features: torch.Tensor) -> torch.Tensor:
    """Centred, Frobenius-normalised linear Gram HXXᵀH / ‖HXXᵀH‖_F (sharon2024 Eqs. 1–2).

    ``features`` [n, ...] (flattened to [n, p]) -> [n, n]. The input to
    :func:`cka_matrix`: the Frobenius inner product of two such Grams is their
    (biased) linear CKA.
    """
    x = features.flatten(1)
    x = x - x.mean(0)
    gram = x @ x.T
    return gram / torch.linalg.matrix_norm(gram)


def cka_matrix(grams: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """E×E linear-CKA matrix between epochs, e.g. sharon2024 Figs. 1–3.

    ``grams`` are outputs of :func:`centered_normalized_gram` for E epochs,
    either a tensor [E, n, n] or an iterable (stream) of [n, n] tensors. They
    are flattened to G [E, n²] and the result is the single product G Gᵀ;
    entry (a, b) equals ``linear_cka(features_a, features_b)`` (biased).
    """
    if not isinstance(grams, torch.Tensor):
        grams = torch.stack([g.reshape(-1) for g in grams])
    flat = grams.reshape(grams.shape[0], -1)
    return flat @ flat.T
