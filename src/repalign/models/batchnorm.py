"""A batch-norm-free view of a network, for per-example measurements such as tangent kernels.

``repalign.metrics.layer_tangent_alignment`` (fast route) needs every parametrised module
to be an ``nn.Linear`` or ``nn.Conv2d`` and examples to be treated independently.
``tangent_view(model)`` returns an inference-mode copy of ``model`` in which every
``BatchNorm2d`` is replaced by its inference-mode affine map y = x·γ/√(v+ε) + (β − m·γ/√(v+ε))
held in buffers: the same function, with only the convolutions and linear layers owning
parameters (so the hierarchy's layers are those, as in lou2022 Eq. 7).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class FrozenBatchNorm(nn.Module):
    """Inference-mode batch norm, per channel x·scale + shift, with no parameters."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        self.register_buffer("scale", scale.view(1, -1, 1, 1))
        self.register_buffer("shift", (bn.bias.detach() - bn.running_mean * scale).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def tangent_view(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm2d frozen into buffers (the same function)."""
    view = copy.deepcopy(model).eval()
    for module in list(view.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, FrozenBatchNorm(child))
    return view
