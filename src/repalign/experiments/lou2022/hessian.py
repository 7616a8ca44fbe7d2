"""lou2022 App. B.4–B.5: the output Hessian H_w, tangent features Ψ and Approximation 1.

Notation (App. B.4): F ∈ R^{nk} concatenates the logits of n examples, L is the mean
cross-entropy over them, w = ∇_F L = (softmax(F) − Y) / n, Ỹ = CY the labels centred
over the examples, Ψ = ∂F/∂θ the tangent features, and H_v = Σ_{x,i} v_{x,i} ∂²f^i(x)/∂θ²
the output Hessian weighted by v. Everything here works on flat parameter vectors of an
``nn.Module`` and never forms a Hessian: H_w is applied through Hessian-vector products
(forward-over-reverse, ``torch.func.jvp`` of ``torch.func.grad``) and its top eigenpairs
come from ARPACK's Lanczos (``scipy.sparse.linalg.eigsh``) wrapped around those products.

- ``hw_operator``: v ↦ H_w v (Theorem A's matrix; "S" in the Remark of App. B.4).
- ``tangent_apply``: v ↦ Ψ v = ∇_θ ⟨v, F(θ)⟩.
- ``top_abs_eigenpairs``: the k eigenpairs of largest |eigenvalue| (Fig 5b).
- ``layer_energy``: the squared norm of each eigenvector restricted to each layer (Fig 5b).
- ``update_hessian_correlation``: Approximation 1 (2), corr(Ψ(t+1)Ỹ − Ψ(t)Ỹ, −H_w(t)Ψ(t)Ỹ) (Fig 5a),
  and Approximation 2, corr(Ψ(t+1)Ỹ − Ψ(t)Ỹ, its first-order term), globally and per layer.
- ``neg_label_gradient_corr``: Approximation 1 (1), −corr(Ỹ, w) (Fig 6).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.func import functional_call, grad, jvp

LANCZOS_SEED = 5


@dataclass
class FlatParams:
    """The parameters of ``model`` as one vector ``theta`` and the map back to named tensors."""

    model: nn.Module
    theta: torch.Tensor           # [n_params], detached copy
    names: list[str]
    shapes: list[torch.Size]
    sizes: list[int]              # entries per parameter tensor (one per layer for a bias-free FFNN)

    @classmethod
    def of(cls, model: nn.Module) -> FlatParams:
        named = [(n, p) for n, p in model.named_parameters()]
        theta = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()
        return cls(model, theta, [n for n, _ in named], [p.shape for _, p in named], [p.numel() for _, p in named])

    def output(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """F(θ) on ``x``: the logits [n, k] with the parameters replaced by ``theta``."""
        params = {n: t.view(s) for n, t, s in zip(self.names, theta.split(self.sizes), self.shapes)}
        return functional_call(self.model, params, (x,))


def loss_gradient(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """w = ∇_F L for the mean cross-entropy over the n rows: (softmax(F) − Y) / n, shape [n, k]."""
    return (torch.softmax(logits, dim=-1) - y) / logits.shape[-2]


def centred_labels(y: torch.Tensor) -> torch.Tensor:
    """Ỹ = CY: one-hot labels [n, k] minus their mean over the n examples."""
    return y - y.mean(dim=-2, keepdim=True)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of ``a`` and ``b`` along their last dim (batched over the others)."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def neg_label_gradient_corr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Approximation 1 (1): −corr(Ỹ, w) over the n·k entries; ``logits`` [..., n, k], ``y`` [n, k] one-hot.

    The 1/n in w does not change a correlation, so w = softmax(F) − Y is used directly.
    """
    w = torch.softmax(logits.double(), dim=-1) - y.double()
    return -pearson(centred_labels(y.double()).expand_as(w).flatten(-2), w.flatten(-2))


def tangent_apply(flat: FlatParams, theta: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Ψ(θ) v = Σ_{x,i} v_{x,i} ∂f^i(x)/∂θ, a parameter-space vector (``v`` [n, k])."""
    return grad(lambda t: (flat.output(t, x) * v).sum())(theta)


def hw_operator(flat: FlatParams, x: torch.Tensor, w: torch.Tensor,
                theta: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """u ↦ H_w u with H_w = Σ_{x,i} w_{x,i} ∂²f^i(x)/∂θ² at ``theta`` (default: the model's).

    ``w`` [n, k] is held fixed, so this is the Hessian of ⟨w, F(θ)⟩, one Hessian-vector
    product (forward-over-reverse) per call.
    """
    theta = flat.theta if theta is None else theta
    weighted_grad = grad(lambda t: (flat.output(t, x) * w).sum())
    return lambda u: jvp(weighted_grad, (theta,), (u,))[1]


def top_abs_eigenpairs(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, k: int, *,
                       device: torch.device | str, dtype: torch.dtype = torch.float32,
                       tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenpairs of largest |eigenvalue| of the symmetric n×n operator ``matvec``.

    Implicitly restarted Lanczos (ARPACK ``eigsh``, which="LM") over products computed on
    ``device``; the start vector is seeded, so the result is deterministic. Returns
    eigenvalues [k] sorted by decreasing |λ| and unit eigenvectors [n, k] (float64).
    """
    if not 0 < k < n:
        raise ValueError(f"need 0 < k < n for Lanczos, got k={k}, n={n}")

    def apply(v: np.ndarray) -> np.ndarray:
        u = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1)).to(device=device, dtype=dtype)
        return matvec(u).detach().to("cpu", torch.float64).numpy()

    op = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    v0 = np.random.default_rng(LANCZOS_SEED).standard_normal(n)
    values, vectors = eigsh(op, k=k, which="LM", tol=tol, v0=v0)
    order = np.argsort(-np.abs(values))
    return values[order], vectors[:, order]


def layer_energy(vectors: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Squared norm of each column of ``vectors`` [n, k] restricted to each block of ``sizes``: [k, blocks].

    "Projection to layer l ... the truncation of the vector to leave just the sub-vector that
    corresponds to layer l" (App. B.4); for unit eigenvectors each row sums to 1.
    """
    if sum(sizes) != vectors.shape[0]:
        raise ValueError(f"the blocks hold {sum(sizes)} entries but the vectors have {vectors.shape[0]}")
    blocks = np.split(vectors, np.cumsum(sizes)[:-1], axis=0)
    return np.stack([(b ** 2).sum(axis=0) for b in blocks], axis=1)


# The correlations ``update_hessian_correlation`` returns, in its rows.
UPDATE_CORRELATIONS = ("update_vs_hessian_direction",              # Approximation 1 (2), Fig 5a
                       "first_order_update_vs_hessian_direction",  # the same with the first-order term
                       "update_vs_first_order")                    # Approximation 2 itself


def update_hessian_correlation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> np.ndarray:
    """Approximation 1 (2) (Fig 5a) and Approximation 2: Pearson correlations of three vectors.

    With θ(t+1) = θ(t) − lr Ψ(t) w(t), one full-batch gradient step on (x, y) (Theorem A's
    update with the training set D = these examples):
    Δ = Ψ(t+1)Ỹ − Ψ(t)Ỹ, the actual change; F = −lr H_Ỹ(t)Ψ(t)w(t), its first-order term
    (Eq. 9; F leaves out higher orders and, for ReLU networks, the jumps of Ψ where a unit's
    pre-activation changes sign); D = −H_w(t)Ψ(t)Ỹ, the Hessian direction. Returns
    ``[len(UPDATE_CORRELATIONS), 1 + blocks]``: rows corr(Δ, D), corr(F, D), corr(Δ, F);
    column 0 over all parameters, column l over the l-th parameter tensor alone (layer l of a
    bias-free FFNN), so that a layer holding most of the weights cannot stand for all.
    Computed on a float64 copy of ``model``: the step changes Ψ by a fraction ~lr, which
    float32 would blur.
    """
    flat = FlatParams.of(copy.deepcopy(model).double())
    x, y, theta = x.double(), y.double(), flat.theta
    with torch.no_grad():
        w = loss_gradient(flat.output(theta, x), y)
    y_c = centred_labels(y)
    psi_y, psi_w = tangent_apply(flat, theta, x, y_c), tangent_apply(flat, theta, x, w)
    hessian_direction = -hw_operator(flat, x, w, theta)(psi_y)
    update = tangent_apply(flat, theta - lr * psi_w, x, y_c) - psi_y
    first_order = -lr * hw_operator(flat, x, y_c, theta)(psi_w)
    pairs = ((update, hessian_direction), (first_order, hessian_direction), (update, first_order))
    return np.array([[float(pearson(a, b))] + [float(pearson(pa, pb)) for pa, pb in
                                               zip(a.split(flat.sizes), b.split(flat.sizes))]
                     for a, b in pairs])
