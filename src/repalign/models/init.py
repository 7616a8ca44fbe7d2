"""maennel2020 App. A.3: "All biases in the models are initialized with zeros, while all the other
parameters (convolutional filters and weight matrices of the dense layers) are initialized
using He normal algorithm [21] with init_scale scaling."

Read here as W ~ init_scale · N(0, 2 / fan_in) (He et al. 2015, fan_in = in_channels/groups ·
kh · kw, or in_features), so init_scale multiplies the standard deviation. The paper leaves
open whether "He normal" is He et al.'s plain Gaussian (used here) or the truncated normal of
Keras/Flax ``he_normal`` (same variance), and whether init_scale scales the deviation or the
variance. Normalisation layers keep their identity initialisation (weight 1, bias 0).

maennel2020 App. B.2 also samples ``init_algorithm = "orthogonal"`` (Saxe et al. 2014, its ref.
[45]): each layer's weight, as the matrix ``[out, fan_in]``, is a (semi-)orthogonal matrix ×
init_scale (orthonormal rows when out ≤ fan_in, else orthonormal columns), drawn as the Q of a
Gaussian matrix's QR with the signs of R's diagonal, biases zero. Read as JAX/Flax's
``orthogonal(scale=init_scale)`` (gain 1, no ReLU factor √2); the paper gives no gain.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["INIT_ALGORITHMS", "he_normal_", "initialise_", "orthogonal_"]


@torch.no_grad()
def he_normal_(model: nn.Module, init_scale: float, generator: torch.Generator) -> nn.Module:
    """Re-initialise every conv and linear layer of ``model`` in module order from ``generator``."""
    _check_scale(init_scale)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()  # in_channels/groups · kh · kw, or in_features
            module.weight.normal_(0.0, init_scale * math.sqrt(2.0 / fan_in), generator=generator)
            if module.bias is not None:
                module.bias.zero_()
    return model


@torch.no_grad()
def orthogonal_(model: nn.Module, init_scale: float, generator: torch.Generator) -> nn.Module:
    """Every conv and linear weight of ``model`` (module order) a semi-orthogonal ``[out, fan_in]``
    matrix × ``init_scale`` drawn from ``generator``; biases zero."""
    _check_scale(init_scale)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            rows, cols = module.weight.shape[0], module.weight[0].numel()
            gauss = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
            q, r = torch.linalg.qr(gauss)  # q: orthonormal columns
            q = q * torch.sign(torch.diagonal(r))  # the Haar measure (QR alone is not uniform)
            w = q if rows >= cols else q.T
            module.weight.copy_((init_scale * w).reshape(module.weight.shape))
            if module.bias is not None:
                module.bias.zero_()
    return model


INIT_ALGORITHMS = {"he": he_normal_, "orthogonal": orthogonal_}


def initialise_(model: nn.Module, algorithm: str, init_scale: float, generator: torch.Generator) -> nn.Module:
    """``INIT_ALGORITHMS[algorithm]`` (maennel2020 App. A.3, B.2's ``init_algorithm``) on ``model``."""
    if algorithm not in INIT_ALGORITHMS:
        raise ValueError(f"unknown init_algorithm '{algorithm}'; choose one of {sorted(INIT_ALGORITHMS)}")
    return INIT_ALGORITHMS[algorithm](model, init_scale, generator)


def _check_scale(init_scale) -> None:
    if not (isinstance(init_scale, (int, float)) and math.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a positive number, got {init_scale!r}")
