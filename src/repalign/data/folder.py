"""Datasets too large to hold as one tensor: a torchvision ``ImageFolder`` wrapper.

Choice: ``load_dataset("imagenet", split)`` returns a :class:`FolderSplit` rather than an
:class:`~repalign.data.splits.ImageSplit`. It has the same ``classes``, ``source``, ``n``
and ``y`` (int64 labels, from the file listing, no image decoded), but instead of ``x``
it holds ``dataset``, a torchvision ``ImageFolder`` that decodes images on access with
the ``transform`` it was given. ``device`` is not applied: the caller moves batches.
:func:`load_image_folder` builds the same wrapper for any ``<dir>/<class>/<image>`` tree.

ImageNet layout (ILSVRC-2012, manual download): ``<root>/imagenet/{train,val}/<wnid>/*.JPEG``.
``test`` is an alias of ``val`` (the test labels are withheld).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from repalign.errors import CorruptDataset

from ._common import NotFound, Request


@dataclass(frozen=True, eq=False)  # identity equality: tensors have no truth value
class FolderSplit:
    """A split read lazily from class folders. ``dataset[i]`` -> ``(image, label)``."""

    dataset: object  # torchvision.datasets.ImageFolder
    classes: list[str]
    source: str

    @property
    def n(self) -> int:
        return len(self.dataset)

    def __len__(self) -> int:
        return self.n

    @property
    def y(self) -> torch.Tensor:
        return torch.as_tensor(self.dataset.targets, dtype=torch.int64)


def load_image_folder(path: str | os.PathLike, transform=None, source: str | None = None) -> FolderSplit:
    """Wrap ``<path>/<class>/<image>`` as a :class:`FolderSplit` (classes sorted = labels)."""
    from torchvision.datasets import ImageFolder

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(path)
    subdirs = [p for p in path.iterdir() if p.is_dir()]
    if not subdirs:
        raise CorruptDataset(
            f"{path}: no class folders. Expected {path}/<class>/<image>; a flat ImageNet val "
            "folder must first be sorted into <wnid>/ folders (see the how-to)."
        )
    try:
        ds = ImageFolder(str(path), transform=transform)
    except (FileNotFoundError, RuntimeError) as exc:
        raise CorruptDataset(f"{path}: {exc}") from exc
    return FolderSplit(dataset=ds, classes=list(ds.classes),
                       source=source or f"{path} (image folder, {len(ds)} images)")


def load_imagenet(req: Request) -> FolderSplit:
    opts = req.take_options(transform=None)
    folder = req.root / "imagenet" / req.split
    if not folder.is_dir():
        raise NotFound([folder])
    split = load_image_folder(folder, transform=opts["transform"])
    return FolderSplit(dataset=split.dataset, classes=split.classes,
                       source=f"{req.rel(folder)} (ImageNet ILSVRC-2012 {req.split}, "
                              f"ImageFolder, {split.n} images, decoded on access)")
