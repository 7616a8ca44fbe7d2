"""The one training loop: optimisers, lr schedules, seeding, checkpoint/resume, progress."""

from repalign.train.loop import OptimConfig, TrainLog, train
from repalign.train.sampler import EpochSampler

__all__ = ["EpochSampler", "OptimConfig", "TrainLog", "train"]
