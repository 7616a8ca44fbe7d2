"""Minibatch indices for device-resident data, one shuffle per model per epoch."""

from __future__ import annotations

import torch


class EpochSampler:
    """Yields index tensors ``[n_models, batch_size]`` into a dataset of ``n`` examples.

    Each model sees its own permutation of the data every epoch (the last batch of an
    epoch may be smaller). All randomness comes from one ``torch.Generator`` whose state
    is part of ``state_dict()``, so a resumed run draws exactly the batches it would
    have drawn without the interruption.
    """

    def __init__(self, n: int, batch_size: int, n_models: int = 1, seed: int = 0,
                 device: torch.device | str = "cpu"):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        self.n, self.batch_size, self.n_models = n, batch_size, n_models
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self._perm: torch.Tensor | None = None
        self._pos = n  # forces a new permutation on the first call

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    def next(self) -> torch.Tensor:
        if self._pos >= self.n:
            keys = torch.rand(self.n_models, self.n, generator=self.generator)
            self._perm = keys.argsort(dim=1).to(self.device)
            self._pos = 0
        idx = self._perm[:, self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "pos": self._pos,
                "perm": None if self._perm is None else self._perm.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._pos = state["pos"]
        self._perm = None if state["perm"] is None else state["perm"].to(self.device)
