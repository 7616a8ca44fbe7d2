"""Measurements during training on a grid of epochs, instead of a checkpoint every epoch.

sharon2024's epoch × epoch CKA maps (epoch 0 = initialisation, log epoch axis) and
canatar2022's layer kernels at chosen epochs read the model at a few epochs while it
trains; :class:`EpochHook` is the :class:`repalign.train.loop.Callback` that does it, and
its records are part of the loop's checkpoint, so a resumed run keeps them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

GRIDS = ("all", "linear", "log")
log = logging.getLogger(__name__)


def epoch_grid(kind: str, last: int, n: int | None = None) -> list[int]:
    """Sorted distinct epochs in ``0..last``, always with 0 (initialisation) and ``last``.

    ``all``: every epoch. ``linear``: ``n`` epochs evenly spaced. ``log``: 0 and ``n − 1``
    epochs log-spaced in ``1..last``; where log spacing falls below one epoch (the early
    end), consecutive epochs are taken instead, so the grid has exactly ``n`` entries.
    """
    if kind not in GRIDS:
        raise ValueError(f"unknown epoch grid '{kind}'; choose one of {GRIDS}")
    if last < 0:
        raise ValueError(f"epoch_grid needs last >= 0, got {last}")
    if kind == "all":
        return list(range(last + 1))
    if n is None or not 2 <= n <= last + 1:
        raise ValueError(f"a '{kind}' grid needs 2 <= n <= last + 1 = {last + 1} epochs, got n={n}")
    if kind == "linear":
        return [int(e) for e in np.round(np.linspace(0, last, n))]
    if n == 2:
        return [0, last]
    target = np.geomspace(1, last, n - 1)
    grid = [0]
    for i, t in enumerate(target):  # at least one more than the previous, leaving room for the rest
        grid.append(int(min(max(round(t), grid[-1] + 1), last - (n - 2 - i))))
    return grid


class EpochHook:
    """Calls ``measure(epoch, model)`` at the end of every epoch in ``grid`` and keeps the results.

    Epoch 0 is measured before the first step (``before_training``), epoch e after step
    ``e · steps_per_epoch``. With ``eval_mode`` the model is put in eval mode for the
    measurement and back in train mode after it; gradients stay enabled (layer kernels
    need them). ``records`` maps epoch -> what ``measure`` returned; it must be something
    ``torch.save`` can store, as it travels in the checkpoint. Each measurement is logged with
    its wall time (the progress bar stands still while a long one runs).
    """

    def __init__(self, grid: Sequence[int], steps_per_epoch: int,
                 measure: Callable[[int, torch.nn.Module], Any], *, eval_mode: bool = True):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.grid = sorted({int(e) for e in grid})
        self.steps_per_epoch = steps_per_epoch
        self.measure = measure
        self.eval_mode = eval_mode
        self.records: dict[int, Any] = {}

    def _record(self, epoch: int, model: torch.nn.Module) -> None:
        if self.eval_mode:
            model.eval()
        start = time.perf_counter()
        try:
            self.records[epoch] = self.measure(epoch, model)
        finally:
            if self.eval_mode:
                model.train()
        log.info("measured epoch %d (%d of %d grid epochs) in %.1f s", epoch, len(self.records), len(self.grid),
                 time.perf_counter() - start)

    def before_training(self, model: torch.nn.Module) -> None:
        if 0 in self.grid:
            self._record(0, model)

    def __call__(self, step: int, model: torch.nn.Module) -> None:
        epoch, rest = divmod(step, self.steps_per_epoch)
        if rest == 0 and epoch in self.grid:
            self._record(epoch, model)

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, state: dict) -> None:
        self.records = dict(state["records"])
