"""One readable training loop for every experiment in the suite.

The loop knows nothing about architectures or datasets. It takes a model, a
``loss_fn(model, batch)`` that returns one loss per stacked model (or a scalar), and a
sampler over device-resident data whose ``next()`` gives the batch (``EpochSampler``:
indices; ``ImageSampler``: indices and augmentation draws). It handles the optimiser, the
lr schedule, non-finite losses, a progress bar, callbacks, and checkpoints from which a
killed run resumes to bit-identical final weights. Image training
(:mod:`repalign.train.images`) is this loop with an image loss and sampler.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from repalign import provenance
from repalign.errors import NonFiniteLoss
from repalign.results import atomic_write
from repalign.train.sampler import EpochSampler

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "thirds", "linear", "cosine", "step")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and lr schedule.

    ``schedule``: ``constant``; ``thirds`` divides the lr by 3 at 1/3 and 2/3 of the
    steps (maennel2020 App. A); ``linear`` decays linearly to 0 (canatar2022);
    ``cosine`` anneals to 0; ``step`` multiplies it by ``decay_factor`` every
    ``decay_every`` steps (imani2022 App. D: ×0.1 every 30 epochs).
    """

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    decay_every: int = 0
    decay_factor: float = 0.1

    def __post_init__(self):
        if self.name not in ("adam", "adamw", "sgd"):
            raise ValueError(f"unknown optimiser '{self.name}'; choose adam, adamw or sgd")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown lr schedule '{self.schedule}'; choose one of {SCHEDULES}")
        if self.schedule == "step" and self.decay_every < 1:
            raise ValueError(f"schedule 'step' needs decay_every >= 1 steps, got {self.decay_every}")


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, step: int, total: int, decay_every: int = 0, decay_factor: float = 0.1) -> float:
    """Multiplier of the base lr at ``step`` of ``total``."""
    if schedule == "step":
        return decay_factor ** (step // decay_every)
    frac = step / max(total, 1)
    if schedule == "thirds":
        return 1.0 if frac < 1 / 3 else (1 / 3 if frac < 2 / 3 else 1 / 9)
    if schedule == "linear":
        return 1.0 - frac
    if schedule == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * frac))
    return 1.0


class Callback(Protocol):
    """Called after every optimiser step; may also define ``state_dict``/``load_state_dict``.

    Returning ``True`` stops training after that step (e.g. at a target train loss).
    An optional ``before_training(model)`` is called once before the first step of a run
    that starts from scratch (not on resume), e.g. to measure the initialisation.
    """

    def __call__(self, step: int, model: torch.nn.Module) -> bool | None: ...


@dataclass
class TrainLog:
    """Per-step training losses, shape ``[steps run, n_models]``, and where the run resumed."""

    losses: np.ndarray
    resumed_from_step: int | None


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, object], torch.Tensor],
    sampler: EpochSampler,
    steps: int,
    optim: OptimConfig,
    *,
    checkpoint: Path | None = None,
    checkpoint_every: int = 1000,
    callback: Callback | Sequence[Callback] | None = None,
    check_every: int = 100,
    desc: str = "train",
) -> TrainLog:
    """Train ``model`` for ``steps`` optimiser steps and return the loss history.

    With ``checkpoint`` set, the full state (model, optimiser, sampler, RNG, callback,
    history) is written atomically every ``checkpoint_every`` steps, and an existing
    checkpoint is resumed from. The checkpoint is removed once training finishes.
    Losses are checked for NaN/inf every ``check_every`` steps (one device sync each);
    a non-finite loss raises ``NonFiniteLoss`` naming the step. ``callback``: one or a
    sequence, called in order after every step; one that returns ``True`` ends training
    after that step (the others still run for it), and the loss history stops there too.
    """
    callbacks = [] if callback is None else list(callback) if isinstance(callback, Sequence) else [callback]
    optimizer = make_optimizer(model.parameters(), optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(optim.schedule, s, steps, optim.decay_every, optim.decay_factor))
    device = next(model.parameters()).device
    history = None
    start, resumed = 0, None

    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng_cpu"])
        if state.get("rng_cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        saved = state["callbacks"] if "callbacks" in state else [state["callback"]]
        for cb, cb_state in zip(callbacks, saved):  # a run resumed without its callbacks skips them
            if hasattr(cb, "load_state_dict"):
                cb.load_state_dict(cb_state)
        history = state["history"].to(device)
        start = resumed = state["step"]
        log.info("%s: resumed from %s at step %d/%d", desc, checkpoint, start, steps)

    def save_checkpoint(step: int) -> None:
        atomic_write(Path(checkpoint), lambda fh: torch.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks],
            "history": history, "step": step,
        }, fh))

    def check_finite(upto: int, bar) -> None:
        window = history[: upto]
        if not bool(torch.isfinite(window).all()):
            bad = int((~torch.isfinite(window)).any(dim=1).nonzero()[0])
            if checkpoint is not None:
                Path(checkpoint).unlink(missing_ok=True)
            raise NonFiniteLoss(
                f"{desc}: the loss became non-finite at step {bad} (optimiser {optim.name}, "
                f"lr {optim.lr}). Nothing was written. Lower the learning rate or check the inputs.")
        bar.set_postfix(loss=f"{float(history[upto - 1].mean()):.4g}")

    model.train()
    if start == 0:
        for cb in callbacks:
            if hasattr(cb, "before_training"):
                cb.before_training(model)
    began, done = time.perf_counter(), start  # throughput counts training steps only
    with tqdm(total=steps, initial=start, desc=desc, mininterval=5, dynamic_ncols=True) as bar:
        for step in range(start, steps):
            idx = sampler.next()
            losses = loss_fn(model, idx).reshape(-1)
            if history is None:
                history = torch.empty(steps, losses.numel(), device=device)
            history[step] = losses.detach()
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            scheduler.step()
            stop = any([bool(cb(step + 1, model)) for cb in callbacks])
            done = step + 1
            if done % check_every == 0 or done == steps or stop:
                check_finite(done, bar)
            if checkpoint is not None and done % checkpoint_every == 0 and done < steps:
                save_checkpoint(done)
            bar.update(1)
            if stop:
                history = history[:done]
                break
    # steps x batch size: an upper bound when an epoch's last batch is smaller
    provenance.record_throughput(examples=(done - start) * sampler.batch_size * sampler.n_models,
                                 steps=done - start, seconds=time.perf_counter() - began)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return TrainLog(losses=history.cpu().numpy(), resumed_from_step=resumed)
