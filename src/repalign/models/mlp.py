"""Independent MLPs stacked along a leading model axis and evaluated with batched matmuls.

Ten seeds of a 60-60-1 network are ten tiny matmuls; a Python loop over them wastes
the device. ``StackedMLP`` keeps the weights of ``n_models`` networks as tensors of shape
``[n_models, d_in, d_out]`` and runs all of them in one ``torch.baddbmm`` per layer.
Model ``s`` is initialised from its own seed, so its weights do not depend on how many
models share the stack.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "leaky_relu": nn.functional.leaky_relu,
    "linear": lambda h: h,
    "prelu": None,  # learnable negative slope per model and hidden layer (``prelu_slopes``)
}
PRELU_INIT = 0.25  # nn.PReLU's default


class StackedMLP(nn.Module):
    """``n_models`` MLPs with layer widths ``widths`` (input first, output last).

    ``forward(x)`` takes ``x`` of shape ``[n_models, batch, widths[0]]`` (or ``[batch, d]``,
    which is shared by every model) and returns ``[n_models, batch, widths[-1]]``.
    Initialisation is PyTorch's ``nn.Linear`` default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    drawn for model ``s`` from ``torch.Generator().manual_seed(seeds[s])``.
    """

    def __init__(self, widths: Sequence[int], seeds: Sequence[int], activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation '{activation}'; choose one of {sorted(ACTIVATIONS)}")
        if len(widths) < 2:
            raise ValueError(f"widths needs an input and an output size, got {list(widths)}")
        self.widths = list(widths)
        self.seeds = list(seeds)
        self.activation = activation
        weights, biases = [], []
        for d_in, d_out in zip(widths[:-1], widths[1:]):
            weights.append(nn.Parameter(torch.empty(len(seeds), d_in, d_out)))
            biases.append(nn.Parameter(torch.empty(len(seeds), 1, d_out)))
        self.weights = nn.ParameterList(weights)
        self.biases = nn.ParameterList(biases)
        # PReLU (He et al. 2015) as nn.PReLU(): one slope per hidden layer, here per model too.
        self.prelu_slopes = (nn.Parameter(torch.full((len(widths) - 2, len(seeds), 1, 1), PRELU_INIT))
                             if activation == "prelu" else None)
        self._initialise()

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    @torch.no_grad()
    def _initialise(self) -> None:
        for s, seed in enumerate(self.seeds):
            g = torch.Generator().manual_seed(int(seed))
            for w, b in zip(self.weights, self.biases):
                bound = 1.0 / math.sqrt(w.shape[1])
                w[s].copy_(torch.empty(w.shape[1:]).uniform_(-bound, bound, generator=g))
                b[s].copy_(torch.empty(b.shape[1:]).uniform_(-bound, bound, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the output and the post-activation hidden layers, each ``[n_models, batch, width]``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        act = ACTIVATIONS[self.activation]
        hidden = []
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = act(h) if act is not None else torch.where(h >= 0, h, self.prelu_slopes[i] * h)
                hidden.append(h)
        return h, hidden
