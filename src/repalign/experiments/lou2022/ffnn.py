"""The FFNN of lou2022 Eq. 8, several seeds stacked in one module.

z_1 = W_1 x, z_l = W_l φ(z_{l−1}) for 2 ≤ l ≤ L, f = z_L: ReLU, no biases, every
weight drawn i.i.d. from N(0, 2/fan_in) (He initialisation, §3). Depth L counts the
weight matrices, so layer l of the alignment hierarchy is W_l (1 ≤ l ≤ L).

Seeds of one depth train together: the weights of layer l are one tensor
``[n_models, fan_in, fan_out]`` and a forward pass is one ``torch.bmm`` per layer.
``member(s)`` gives model ``s`` as an equivalent ``nn.Sequential`` of bias-free
``nn.Linear`` layers, which is what ``repalign.metrics.layer_tangent_alignment`` reads.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class StackedFFNN(nn.Module):
    """``len(seeds)`` bias-free He-initialised ReLU networks d_in → width^(depth−1) → n_out."""

    def __init__(self, d_in: int, width: int, depth: int, n_out: int, seeds: Sequence[int]):
        super().__init__()
        if depth < 2:
            raise ValueError(f"an FFNN needs depth >= 2 (an input and an output layer), got {depth}")
        self.widths = [d_in] + [width] * (depth - 1) + [n_out]
        self.seeds = [int(s) for s in seeds]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(len(self.seeds), a, b)) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self._initialise()

    @classmethod
    def from_weights(cls, weights: Sequence[torch.Tensor], seeds: Sequence[int]) -> "StackedFFNN":
        """A network holding given weights ``[n_models, fan_in, fan_out]`` per layer (no initialisation).

        Used to measure networks built elsewhere, e.g. the frozen random layers of
        ``frozen.py`` with a trained readout; the tensors are shared, not copied.
        """
        net = cls.__new__(cls)
        nn.Module.__init__(net)
        net.widths = [weights[0].shape[1]] + [w.shape[2] for w in weights]
        net.seeds = [int(s) for s in seeds]
        net.weights = nn.ParameterList(nn.Parameter(w, requires_grad=False) for w in weights)
        return net

    @property
    def depth(self) -> int:
        return len(self.weights)

    @torch.no_grad()
    def _initialise(self) -> None:
        for s, seed in enumerate(self.seeds):
            g = torch.Generator().manual_seed(seed)
            for w in self.weights:
                w[s].copy_(torch.randn(w.shape[1:], generator=g) * math.sqrt(2.0 / w.shape[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [batch, d_in] (shared by every model) or [n_models, batch, d_in] -> [n_models, batch, n_out]."""
        h = x.unsqueeze(0).expand(len(self.seeds), -1, -1) if x.dim() == 2 else x
        for i, w in enumerate(self.weights):
            h = torch.bmm(torch.relu(h) if i > 0 else h, w)
        return h

    def member(self, s: int) -> nn.Sequential:
        """Model ``s`` as ``nn.Sequential(Linear, ReLU, …, Linear)`` holding copies of its weights."""
        layers: list[nn.Module] = []
        for i, w in enumerate(self.weights):
            if i > 0:
                layers.append(nn.ReLU())
            linear = nn.Linear(w.shape[1], w.shape[2], bias=False, device=w.device, dtype=w.dtype)
            with torch.no_grad():
                linear.weight.copy_(w[s].T)
            layers.append(linear)
        return nn.Sequential(*layers)
