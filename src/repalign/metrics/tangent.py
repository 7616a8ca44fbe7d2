"""Layerwise tangent kernels: lou2022 Eq. 7 alignment and canatar2022 Eq. 8 traced NTK.

For a model f: [n, ...] -> [n, o] and a parametrised layer l (a module with
its own weight and bias), the tangent features are Ψ_l(x_i) = ∇_{θ_l} f(x_i)
∈ R^{P_l × o}, and the layer tangent kernel is K_l = Ψ_lᵀΨ_l over all n·o
(example, output) pairs, ordered example-major: row i·o + c is (x_i, f_c).

The fast route never builds per-example Jacobians with autograd. One forward
pass records each layer's input a_i and output z_i (hooks); one VJP batched
over the o outputs (``is_grads_batched``) gives the backward signals
G_c[i] = ∂f_c(x_i)/∂z_l(x_i). Then

- ``nn.Linear`` (z = a Wᵀ + b): ∇_{W,b} f_c(x_i) = G_c[i] ⊗ [a_i, 1], so
  K_l[(i,c),(j,c')] = ([a_i,1]·[a_j,1]) · (G_c[i]·G_c'[j]), the Hadamard
  product of the forward Gram and the backward Gram (lou2022 Eq. 9).
- ``nn.Conv2d``: the same identity holds per spatial position p, with a_i
  replaced by the patch P_i[p] (``unfold``) and G by its value at p, summed
  over p. Contracting over positions first gives the layer's weight gradient
  Σ_p G_c[i, :, p] ⊗ [P_i[p], 1] of size O·(C·k·k + 1), whose Gram is K_l;
  this is far smaller than the position-expanded Gram ((n·positions)² entries).

Models must treat examples independently (no batch-norm in training mode).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, vmap

__all__ = ["layer_tangent_alignment", "layer_tangent_kernels", "traced_ntk"]


class _Factors(NamedTuple):
    """K_l[(i,c),(j,c')] = (forward_i·forward_j) · (backward[i,c]·backward[j,c'])."""

    forward: torch.Tensor | None  # [n, a]; None means a forward Gram of ones
    backward: torch.Tensor  # [n, o, b]


def _param_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if next(module.parameters(recurse=False), None) is not None
    ]


class _ConvSignals(NamedTuple):
    """A convolution's patches [n, a, positions] and backward signals [o, n, b, positions]."""

    patches: torch.Tensor
    grads: torch.Tensor

    def weight_grads(self, rows: slice = slice(None)) -> torch.Tensor:
        """∇_W f_c(x_i) for the examples ``rows``: [rows, o, b·a] (contracted over positions)."""
        g, p = self.grads[:, rows], self.patches[rows]
        return torch.einsum("cnbp,nap->ncba", g, p).reshape(p.shape[0], g.shape[0], -1)


def _layer_signals(model: nn.Module, x: torch.Tensor) -> dict[str, _Factors | _ConvSignals]:
    """One forward pass and one output-batched VJP: every layer's inputs and backward signals."""
    layers = _param_layers(model)
    for name, module in layers:
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            raise ValueError(
                f"fast tangent kernels support nn.Linear and nn.Conv2d; layer '{name}' is "
                f"{type(module).__name__} (use method='jacobian')"
            )
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def recorder(name: str):
        def hook(module, args, out):
            if name in outputs:
                raise ValueError(f"layer '{name}' is called twice in one forward pass")
            inputs[name] = args[0].detach()
            outputs[name] = out
            return out.clone()  # later in-place ops must not overwrite the recorded z_l

        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in layers]
    try:
        with torch.enable_grad():
            f = model(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name, _ in layers if name not in outputs]
    if missing:
        raise ValueError(f"layers {missing} own parameters but were not called in the forward pass")
    n, o = f.shape
    basis = torch.eye(o, dtype=f.dtype, device=f.device).unsqueeze(1).expand(o, n, o)
    names = [name for name, _ in layers]
    grads = torch.autograd.grad(f, [outputs[k] for k in names], basis, is_grads_batched=True)

    signals: dict[str, _Factors | _ConvSignals] = {}
    for (name, module), g in zip(layers, grads):
        a = inputs[name]
        if isinstance(module, nn.Linear):
            if a.dim() != 2:
                raise ValueError(f"layer '{name}': fast route needs 2-D inputs to nn.Linear")
            if module.bias is not None:
                a = torch.cat([a, a.new_ones(n, 1)], 1)
            signals[name] = _Factors(a, g.transpose(0, 1))
            continue
        if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError(f"layer '{name}': fast route needs groups=1 and numeric zero padding")
        patches = F.unfold(a, module.kernel_size, module.dilation, module.padding, module.stride)
        if module.bias is not None:
            patches = torch.cat([patches, patches.new_ones(n, 1, patches.shape[2])], 1)
        signals[name] = _ConvSignals(patches, g.reshape(o, n, g.shape[2], -1))  # [o, n, out_channels, positions]
    return signals


def _layer_factors(model: nn.Module, x: torch.Tensor) -> dict[str, _Factors]:
    return {name: _Factors(None, sig.weight_grads()) if isinstance(sig, _ConvSignals) else sig
            for name, sig in _layer_signals(model, x).items()}


def layer_tangent_kernels(model: nn.Module, x: torch.Tensor, max_elements: int = 2**27):
    """Yield ``(name, K_l)``, the [n·o, n·o] layer tangent kernels, one layer at a time.

    The same kernels as ``layer_tangent_alignment``'s fast route (nn.Linear / nn.Conv2d),
    for large convolutional networks (e.g. lou2022 Fig 19, VGG19): one forward pass and
    one output-batched VJP give every layer's inputs (patches) and backward signals, and a
    convolution's per-example weight gradients are built ``max_elements`` at a time, so
    its kernel is assembled block by block instead of from an [n, o, P_l] tensor (for
    VGG19's 512-channel layers and 200 examples that tensor would be 19 GB; the signals
    are O(n·o·activations)).
    """
    for name, sig in _layer_signals(model, x).items():
        if isinstance(sig, _Factors):
            yield name, _full_kernel(sig)
            continue
        o, n, b, _ = sig.grads.shape
        rows = max(1, max_elements // (o * b * sig.patches.shape[1]))
        kernel = sig.grads.new_empty(n * o, n * o)
        for i in range(0, n, rows):
            left = sig.weight_grads(slice(i, i + rows)).flatten(0, 1)
            for j in range(i, n, rows):
                right = left if j == i else sig.weight_grads(slice(j, j + rows)).flatten(0, 1)
                block = left @ right.T
                kernel[i * o:i * o + block.shape[0], j * o:j * o + block.shape[1]] = block
                kernel[j * o:j * o + block.shape[1], i * o:i * o + block.shape[0]] = block.T
        yield name, kernel


def _jacobian_kernels(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reference: per-example Jacobians with torch.func, K_l = J_l J_lᵀ."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    kernels = {}
    for name, module in _param_layers(model):
        prefix = f"{name}." if name else ""
        own = {prefix + k: params[prefix + k] for k, _ in module.named_parameters(recurse=False)}

        def single(layer_params, xi):
            return functional_call(model, {**params, **layer_params}, (xi.unsqueeze(0),)).squeeze(0)

        jac = vmap(jacrev(single), in_dims=(None, 0))(own, x)  # {param: [n, o, *shape]}
        n, o = next(iter(jac.values())).shape[:2]
        j = torch.cat([v.reshape(n * o, -1) for v in jac.values()], 1)
        kernels[name] = j @ j.T
    return kernels


def _full_kernel(fac: _Factors) -> torch.Tensor:
    n, o, _ = fac.backward.shape
    flat = fac.backward.reshape(n * o, -1)
    k = flat @ flat.T
    if fac.forward is None:
        return k
    gram = fac.forward @ fac.forward.T
    k.view(n, o, n, o).mul_(gram[:, None, :, None])
    return k


BLOCK_ROWS = 512  # kernel rows (example-output pairs) per block of _factor_alignment


def _factor_alignment(fac: _Factors, y: torch.Tensor, block_rows: int = BLOCK_ROWS) -> torch.Tensor:
    """``_target_alignment(_full_kernel(fac), y)`` without forming or centring the kernel.

    With F = forward Gram, B_i = backward[i] [o, b] and N = n·o:
    ỸᵀKỸ = Σ_ij F_ij v_i·v_j with v_i = Σ_c ỹ_ic B_ic; K1 has entries B_ic·Σ_j F_ij u_j with
    u_j = Σ_c B_jc; and ‖CKC‖²_F = ‖K‖²_F − 2‖K1‖²/N + (1ᵀK1)²/N². Only ‖K‖²_F needs the
    kernel's entries: it is summed over the blocks of its upper triangle (K is symmetric, so
    half the products of the [N, b] @ [b, N] Gram), accumulated in float64 like the O(n²)
    terms, whose differences cancel where the kernel has a large mean.
    """
    n, o, _ = fac.backward.shape
    big = torch.float64
    back = fac.backward
    gram = (fac.forward.to(big) @ fac.forward.to(big).T if fac.forward is not None
            else back.new_ones(n, n, dtype=big))
    y = y.reshape(n, o).to(big)
    y = y - y.mean()
    v = torch.einsum("nc,ncb->nb", y.to(back.dtype), back).to(big)
    u = back.sum(1).to(big)
    numerator = (gram * (v @ v.T)).sum()
    row_sums = torch.einsum("ncb,nb->nc", back, (gram @ u).to(back.dtype)).to(big)  # K1 [n, o], no float64 copy of B
    total = row_sums.sum()
    flat = back.reshape(n * o, -1)
    rows = max(1, block_rows // o)  # examples per block
    square = torch.zeros((), dtype=big, device=back.device)
    for i in range(0, n, rows):
        left = flat[i * o:(i + rows) * o]
        for j in range(i, n, rows):
            block = (left @ flat[j * o:(j + rows) * o].T).view(-1, o, min(rows, n - j), o)
            block.mul_(gram[i:i + rows, j:j + rows, None].to(block.dtype)[:, None])
            row_norms = torch.linalg.vector_norm(block.flatten(1), dim=1).to(big)  # float32 rows, float64 sum
            square += (1 if j == i else 2) * row_norms.pow(2).sum()
    n_all = n * o
    centred = square - 2 * row_sums.pow(2).sum() / n_all + total ** 2 / n_all ** 2
    return (numerator / (centred.clamp_min(0).sqrt() * y.pow(2).sum())).to(back.dtype)


def _target_alignment(kernel: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ỸᵀKỸ / (‖CKC‖_F ‖Ỹ‖²) with Ỹ = C vec(Y), lou2022 Eq. 7.

    Centres ``kernel`` in place (callers pass a kernel they own) to spare two
    [n·o, n·o] copies; ỸᵀKỸ = ỸᵀCKCỸ since CỸ = Ỹ.
    """
    y = y.reshape(-1)
    y = y - y.mean()
    kernel.sub_(kernel.mean(0, keepdim=True)).sub_(kernel.mean(1, keepdim=True))
    return (y @ kernel @ y) / (torch.linalg.matrix_norm(kernel) * y.pow(2).sum())


def layer_tangent_alignment(
    model: nn.Module, x: torch.Tensor, y_onehot: torch.Tensor, method: str = "fast"
) -> dict[str, torch.Tensor]:
    """Layerwise tangent-kernel alignment A_l of lou2022 Eq. 7 for every parametrised layer.

    ``x`` [n, ...] inputs, ``y_onehot`` [n, o] targets (o = model outputs).
    For each module that owns parameters (weight and bias together, keyed by
    its ``named_modules`` name), K_l = Ψ_lᵀΨ_l is the [n·o, n·o] tangent kernel
    (example-major order), C = I − 11ᵀ/(n·o) centres over all n·o entries,
    Ỹ = C vec(Y), and A_l = ỸᵀK_lỸ / (‖C K_l C‖_F ‖Ỹ‖²), i.e. the CKA of K_l
    with Y Yᵀ. ``method="fast"`` uses the forward/backward factorisation
    described in the module docstring (nn.Linear and nn.Conv2d only) and never
    forms K_l (``_factor_alignment``); ``method="kernel"`` forms each K_l from
    the same factors and centres it, the exact path the fast one is tested
    against; ``method="jacobian"`` is the brute-force reference from
    per-example Jacobians (any layer type, much slower). Returns {layer name:
    0-d tensor}.
    """
    if method == "fast":
        return {k: _factor_alignment(v, y_onehot) for k, v in _layer_factors(model, x).items()}
    if method == "kernel":
        kernels = {k: _full_kernel(v) for k, v in _layer_factors(model, x).items()}
    elif method == "jacobian":
        kernels = _jacobian_kernels(model, x)
    else:
        raise ValueError(f"method must be 'fast', 'kernel' or 'jacobian', got {method!r}")
    return {name: _target_alignment(k, y_onehot) for name, k in kernels.items()}


def traced_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class-traced empirical NTK, canatar2022 Eq. 8: (1/C) Σ_c ∇_θ f_c(x)·∇_θ f_c(x').

    Summed over every parameter of every layer (nn.Linear / nn.Conv2d, via the
    fast route). For f = W ψ^(L) this equals K^(L) + Tr K^∇ / C of Eq. 8 (plus
    1 for a readout bias). ``x`` [n, ...] -> [n, n].
    """
    total = None
    for fac in _layer_factors(model, x).values():
        n, o, _ = fac.backward.shape
        flat = fac.backward.reshape(n, -1)
        k = flat @ flat.T
        if fac.forward is not None:
            k = k * (fac.forward @ fac.forward.T)
        total = k if total is None else total + k
    return total / o
