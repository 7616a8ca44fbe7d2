"""MNIST, Fashion-MNIST and KMNIST from IDX files.

Layouts, first match wins:
  1. ``<root>/<plain>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
     (plain = ``mnist``, ``fashion-mnist``, ``kmnist``; the shared offline layout)
  2. torchvision's ``<root>/<Class>/raw/`` with the same file names
     (Class = ``MNIST``, ``FashionMNIST``, ``KMNIST``)
In each folder the uncompressed file is preferred over the ``.gz`` one. The image count is
read from the IDX header (the shared MNIST train file holds 10,000 images, not 60,000).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from repalign.errors import CorruptDataset

from ._common import NotFound, Request
from .idx import read_idx
from .splits import ImageSplit

LAYOUTS = {
    "mnist": ("mnist", "MNIST/raw"),
    "fashion_mnist": ("fashion-mnist", "FashionMNIST/raw"),
    "kmnist": ("kmnist", "KMNIST/raw"),
}

CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}

TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "kmnist": "KMNIST"}
PREFIX = {"train": "train", "test": "t10k"}


def _find(folder: Path, stem: str) -> Path | None:
    for cand in (folder / stem, folder / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def read_idx_pair(images_path: Path, labels_path: Path, n_classes: int = 10):
    """Images ``[N, 1, H, W]`` uint8 and labels ``[N]`` int64 from an IDX pair, cross-checked."""
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise CorruptDataset(f"{images_path} / {labels_path}: expected unsigned-byte IDX data")
    if images.shape[0] != labels.shape[0]:
        raise CorruptDataset(
            f"count mismatch: {images_path} holds {images.shape[0]} images but "
            f"{labels_path} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= n_classes:
        raise CorruptDataset(f"{labels_path}: label {int(labels.max())} outside 0..{n_classes - 1}")
    return images[:, None, :, :], labels.astype(np.int64)


def load_idx_dataset(req: Request) -> ImageSplit:
    req.take_options()
    prefix = PREFIX[req.split]
    tried = []
    for sub in LAYOUTS[req.name]:
        folder = req.root / sub
        img = _find(folder, f"{prefix}-images-idx3-ubyte")
        lab = _find(folder, f"{prefix}-labels-idx1-ubyte")
        if img is not None and lab is not None:
            req.verify(img, lab)
            x, y = read_idx_pair(img, lab, len(CLASSES[req.name]))
            return ImageSplit(
                x=torch.from_numpy(x), y=torch.from_numpy(y),
                classes=list(CLASSES[req.name]),
                source=f"{req.rel(img)} + {lab.name} (IDX, {x.shape[0]} images, {TITLES[req.name]} {req.split})",
            )
        tried += [f"{folder}/{prefix}-images-idx3-ubyte[.gz]", f"{folder}/{prefix}-labels-idx1-ubyte[.gz]"]
    raise NotFound(tried)
