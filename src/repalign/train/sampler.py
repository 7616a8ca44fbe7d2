"""Minibatch indices for device-resident data, one shuffle per model per epoch."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

AUGMENT_STREAM = 1  # SeedSequence key of a model's augmentation generator (its order uses the seed itself)


class EpochSampler:
    """Yields index tensors ``[n_models, batch_size]`` into a dataset of ``n`` examples.

    Each model sees its own permutation of the data every epoch (the last batch of an
    epoch may be smaller). All randomness comes from ``torch.Generator``s whose states
    are part of ``state_dict()``, so a resumed run draws exactly the batches it would
    have drawn without the interruption.

    ``seed``: one generator draws the permutations of all ``n_models`` models.
    ``seeds``: one generator per model instead (``n_models = len(seeds)``), so that
    model s's batches are those of ``EpochSampler(n, batch_size, seed=seeds[s])`` and do
    not depend on which other models share the stack.
    """

    def __init__(self, n: int, batch_size: int, n_models: int = 1, seed: int = 0,
                 device: torch.device | str = "cpu", *, seeds: Sequence[int] | None = None):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        if seeds is not None and len(seeds) < 1:
            raise ValueError("seeds needs at least one seed")
        self.n, self.batch_size = n, batch_size
        self.per_model = seeds is not None
        self.n_models = len(seeds) if self.per_model else n_models
        self.device = torch.device(device)
        self.generators = [torch.Generator().manual_seed(int(s)) for s in (seeds if self.per_model else [seed])]
        self._perm: torch.Tensor | None = None
        self._pos = n  # forces a new permutation on the first call

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    def _new_epoch(self) -> None:
        if self.per_model:
            keys = torch.stack([torch.rand(self.n, generator=g) for g in self.generators])
        else:
            keys = torch.rand(self.n_models, self.n, generator=self.generators[0])
        self._perm = keys.argsort(dim=1).to(self.device)
        self._pos = 0

    def next(self) -> torch.Tensor:
        if self._pos >= self.n:
            self._new_epoch()
        idx = self._perm[:, self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"generators": [g.get_state() for g in self.generators], "pos": self._pos,
                "perm": None if self._perm is None else self._perm.cpu()}

    def load_state_dict(self, state: dict) -> None:
        states = state["generators"] if "generators" in state else [state["generator"]]
        for g, s in zip(self.generators, states, strict=True):
            g.set_state(s)
        self._pos = state["pos"]
        self._perm = None if state["perm"] is None else state["perm"].to(self.device)


class ImageBatch(NamedTuple):
    """One step of :class:`ImageSampler`: indices and each example's crop offsets and flip.

    All ``[n_models, batch]`` on the sampler's device; ``dy``/``dx`` in ``0..2·padding``.
    """

    idx: torch.Tensor
    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor


def augment_seed(seed: int) -> int:
    """Seed of model ``seed``'s augmentation generator (independent of its order generator)."""
    return int(np.random.SeedSequence((int(seed), AUGMENT_STREAM)).generate_state(1, dtype=np.uint64)[0])


class ImageSampler(EpochSampler):
    """An :class:`EpochSampler` with one generator per model that also draws the augmentation.

    For every epoch and model, the permutation comes from the model's order generator
    (seeded with its seed) and, from a second generator (:func:`augment_seed`), a crop
    offset pair uniform in ``0..2·padding`` (torchvision's ``RandomCrop(padding=p)``) and a
    flip with probability 1/2 (``RandomHorizontalFlip``) for each position of the epoch.
    Both are drawn on the CPU once per epoch and copied to the device in one transfer each,
    so steps never wait for the host, and the same seeds give the same batches on every
    device. With ``padding=0`` and ``flip=False`` nothing is drawn for the augmentation.
    ``next()`` returns an :class:`ImageBatch`.
    """

    def __init__(self, n: int, batch_size: int, seeds: Sequence[int], *, padding: int = 4,
                 flip: bool = True, device: torch.device | str = "cpu"):
        if padding < 0:
            raise ValueError(f"crop padding must be >= 0, got {padding}")
        super().__init__(n, batch_size, device=device, seeds=seeds)
        self.padding, self.flip = padding, flip
        self.augment_generators = [torch.Generator().manual_seed(augment_seed(s)) for s in seeds]
        self._draws: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _new_epoch(self) -> None:
        super()._new_epoch()
        shape = (self.n_models, self.n)
        offsets = torch.zeros(2, *shape, dtype=torch.int64)
        flips = torch.zeros(shape, dtype=torch.bool)
        for s, g in enumerate(self.augment_generators):
            if self.padding:
                offsets[:, s] = torch.randint(0, 2 * self.padding + 1, (2, self.n), generator=g)
            if self.flip:
                flips[s] = torch.rand(self.n, generator=g) < 0.5
        offsets = offsets.to(self.device)
        self._draws = (offsets[0], offsets[1], flips.to(self.device))

    def next(self) -> ImageBatch:
        start = self._pos if self._pos < self.n else 0
        idx = super().next()
        dy, dx, flip = (t[:, start:start + self.batch_size] for t in self._draws)
        return ImageBatch(idx, dy, dx, flip)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["augment_generators"] = [g.get_state() for g in self.augment_generators]
        state["draws"] = None if self._draws is None else [t.cpu() for t in self._draws]
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for g, s in zip(self.augment_generators, state["augment_generators"], strict=True):
            g.set_state(s)
        self._draws = None if state["draws"] is None else tuple(t.to(self.device) for t in state["draws"])
