"""Many copies of one architecture trained together: ``torch.func`` stacking.

``ModelStack(factory, seeds)`` builds ``factory(seed)`` for every seed, stacks their
parameters and buffers along a leading model axis (``torch.func.stack_module_state``) and
evaluates all of them in one call with ``vmap(functional_call)``; vmap turns each
convolution into one grouped convolution and each linear layer into one batched matmul.
Every optimiser of ``repalign.train`` acts elementwise, so the stack trains each model
exactly as it would be trained alone (``tests/test_train_images.py`` checks the weights).
BatchNorm running statistics are stacked buffers and update per model.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def _key(name: str) -> str:
    return name.replace(".", "__")


class ModelStack(nn.Module):
    """``len(seeds)`` models ``factory(seed)`` evaluated together.

    ``forward(x)``: ``x`` ``[n_models, batch, ...]``, each model its own inputs;
    ``forward(x, shared=True)``: ``x`` ``[batch, ...]`` for every model. Both return
    ``[n_models, batch, ...]``. ``member(s)`` is model s as a plain
    module with its current weights (for measurements and checks).
    """

    def __init__(self, factory: Callable[[int], nn.Module], seeds: Sequence[int]):
        super().__init__()
        if not seeds:
            raise ValueError("ModelStack needs at least one seed")
        self.seeds = [int(s) for s in seeds]
        models = [factory(s) for s in self.seeds]
        params, buffers = stack_module_state(models)
        self._names = list(params)
        self._buffer_names = list(buffers)
        self.stacked = nn.ParameterDict({_key(k): nn.Parameter(v.detach()) for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer("stacked_" + _key(k), v)
        # the architecture without storage; held outside the module tree so that it is
        # neither a parameter owner nor moved by .to()
        self._skeleton = [copy.deepcopy(models[0]).to("meta")]

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    @property
    def skeleton(self) -> nn.Module:
        return self._skeleton[0]

    def train(self, mode: bool = True) -> "ModelStack":
        self.skeleton.train(mode)
        return super().train(mode)

    def _state(self) -> tuple[dict, dict]:
        params = {k: self.stacked[_key(k)] for k in self._names}
        buffers = {k: getattr(self, "stacked_" + _key(k)) for k in self._buffer_names}
        return params, buffers

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        params, buffers = self._state()

        def one(p, b, inputs):
            return functional_call(self.skeleton, (p, b), (inputs,))
        return vmap(one, in_dims=(0, 0, None if shared else 0), randomness="different")(params, buffers, x)

    def member(self, s: int) -> nn.Module:
        """Model ``s`` (an index into ``seeds``) as a standalone module holding copies of its weights."""
        params, buffers = self._state()
        device = next(iter(params.values())).device
        model = copy.deepcopy(self.skeleton).to_empty(device=device)
        model.load_state_dict({k: v[s].detach().clone() for k, v in {**params, **buffers}.items()})
        return model.train(self.training)
