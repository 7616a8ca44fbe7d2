"""maennel2020 App. A.3: "All biases in the models are initialized with zeros, while all the other
parameters (convolutional filters and weight matrices of the dense layers) are initialized
using He normal algorithm [21] with init_scale scaling."

Read here as W ~ init_scale · N(0, 2 / fan_in) (He et al. 2015, fan_in = in_channels/groups ·
kh · kw, or in_features), so init_scale multiplies the standard deviation. The paper leaves
open whether "He normal" is He et al.'s plain Gaussian (used here) or the truncated normal of
Keras/Flax ``he_normal`` (same variance), and whether init_scale scales the deviation or the
variance. Normalisation layers keep their identity initialisation (weight 1, bias 0).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["he_normal_"]


@torch.no_grad()
def he_normal_(model: nn.Module, init_scale: float, generator: torch.Generator) -> nn.Module:
    """Re-initialise every conv and linear layer of ``model`` in module order from ``generator``."""
    if not (isinstance(init_scale, (int, float)) and math.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a positive number, got {init_scale!r}")
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()  # in_channels/groups · kh · kw, or in_features
            module.weight.normal_(0.0, init_scale * math.sqrt(2.0 / fan_in), generator=generator)
            if module.bias is not None:
                module.bias.zero_()
    return model
