"""Run ``python -m repalign ...`` with a fault injected, for the fault-tolerance tests.

    python tests/fault_inject.py [--checkpoint-every N] [--kill-at-step K | --kill-in-checkpoint-write N]
        [--nan-at-step K] -- train imani2022 peaks_h1 ...

``--kill-at-step K``: the process SIGKILLs itself when the sampler hands out batch K
(1-based), i.e. mid-epoch unless K is a multiple of the steps per epoch.
``--kill-in-checkpoint-write N``: the N-th checkpoint write stops half-way (the temp file
holds half the bytes) and the process SIGKILLs itself, as a kill during ``torch.save`` would.
``--nan-at-step K``: every loss from step K (1-based) on is NaN (a diverging run).
``--checkpoint-every N``: the loop's default checkpoint interval, so a smoke run checkpoints.
Nothing is patched in the package: the faults are injected from outside, as in real life.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import torch

import repalign.train.loop as loop
from repalign.cli import main
from repalign.train.sampler import EpochSampler


class KillAfterStep:
    """In-process fault: a training callback that stops the run right after step ``at``, as if the
    job were killed there (the loop's last checkpoint is what a resumed run starts from)."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self, step, model):
        if step == self.at:
            raise KeyboardInterrupt


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def inject(args) -> None:
    if args.checkpoint_every:
        loop.train.__kwdefaults__["checkpoint_every"] = args.checkpoint_every
    if args.kill_at_step or args.nan_at_step:
        real_next = EpochSampler.next
        calls = {"n": 0}

        def next_batch(self):
            calls["n"] += 1
            if calls["n"] == args.kill_at_step:
                _die()
            return real_next(self)
        EpochSampler.next = next_batch
    if args.nan_at_step:
        real_train = loop.train

        def train(model, loss_fn, *a, **kw):
            def poisoned(m, batch):
                loss = loss_fn(m, batch)
                return loss * float("nan") if calls["n"] >= args.nan_at_step else loss
            return real_train(model, poisoned, *a, **kw)
        loop.train = train
        import repalign.train as train_pkg
        train_pkg.train = train
    if args.kill_in_checkpoint_write:
        real_save = torch.save
        writes = {"n": 0}

        def save(obj, fh, *a, **kw):
            real_save(obj, fh, *a, **kw)
            if str(getattr(fh, "name", fh)).endswith(".ckpt.tmp"):
                writes["n"] += 1
                if writes["n"] == args.kill_in_checkpoint_write:
                    fh.flush()
                    fh.truncate(fh.tell() // 2)   # the bytes a kill mid-write leaves behind
                    _die()
        torch.save = save


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--kill-at-step", type=int, default=0)
    parser.add_argument("--kill-in-checkpoint-write", type=int, default=0)
    parser.add_argument("--nan-at-step", type=int, default=0)
    sep = sys.argv.index("--")
    inject(parser.parse_args(sys.argv[1:sep]))
    sys.exit(main(sys.argv[sep + 1:]))
