"""The one training loop (optimisers, lr schedules, seeding, checkpoint/resume, progress) and
the image-training path on it (device-resident data and augmentation, bf16 on CUDA,
stacked models, measurements on an epoch grid)."""

from repalign.train.augment import Normalization, crop_flip
from repalign.train.hooks import EpochHook, epoch_grid
from repalign.train.images import ImageTraining, evaluate_images, train_images
from repalign.train.loop import OptimConfig, TrainLog, train
from repalign.train.precision import Precision, precision_policy
from repalign.train.sampler import EpochSampler, ImageBatch, ImageSampler
from repalign.train.stack import ModelStack

__all__ = ["EpochHook", "EpochSampler", "ImageBatch", "ImageSampler", "ImageTraining", "ModelStack",
           "Normalization", "OptimConfig", "Precision", "TrainLog", "crop_flip", "epoch_grid",
           "evaluate_images", "precision_policy", "train", "train_images"]
