"""Dataset registry, loaders and synthetic generators.

Public API::

    resolve_data_root(configured=None) -> Path
    resolve_cache_dir(configured=None) -> Path
    DATASETS                      # name -> DatasetSpec
    load_dataset(name, split="train", root=None, cache_dir=None, device="cpu",
                 download=False, domain=None, **options) -> ImageSplit | FolderSplit
    load_image_folder(path, transform=None) -> FolderSplit
    ImageSplit, FolderSplit, DatasetSpec
    to_float(x_uint8, low=-1.0, high=1.0, dtype=torch.float32)
    class_subset(split, classes, max_per_class=None, generator=None, remap=True)
    read_idx(path, expect_ndim=None) -> numpy.ndarray
    relabel(y, fraction, n_classes, seed, convention="incorrect") -> Relabelling   # label noise

Datasets that fit in memory come back as one :class:`ImageSplit` whose tensors sit on
the requested device. ImageNet does not fit: ``load_dataset("imagenet", ...)`` returns a
:class:`FolderSplit` wrapping a torchvision ``ImageFolder`` (see :mod:`.folder`).

This package imports its submodules lazily so that ``import repalign.data`` stays cheap
and the JPEG-decoding worker processes (``repalign.data._decode``) never import torch.
Synthetic generators live in :mod:`repalign.data.synthetic`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "resolve_data_root": "paths",
    "resolve_cache_dir": "paths",
    "ImageSplit": "splits",
    "to_float": "splits",
    "class_subset": "splits",
    "FolderSplit": "folder",
    "load_image_folder": "folder",
    "read_idx": "idx",
    "relabel": "labels",
    "Relabelling": "labels",
    "DatasetSpec": "registry",
    "DATASETS": "registry",
    "load_dataset": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repalign.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
