"""Tiny ImageNet (200 classes, 64x64). Manual download (cs231n's tiny-imagenet-200.zip).

Layout: ``<root>/tiny-imagenet-200/`` as unzipped:
  ``train/<wnid>/images/*.JPEG`` (500 per class) and
  ``val/images/*.JPEG`` + ``val/val_annotations.txt`` (filename, wnid, box; tab-separated).
Splits: ``train`` and ``val`` (``test`` is an alias of ``val``: the official test labels
are withheld, so papers report the validation set). Labels index the sorted wnids
(``wnids.txt`` when present, else the train class folders). Grey images are converted
to RGB. The decoded ``uint8 [N, 3, 64, 64]`` array is cached per split.
"""

from __future__ import annotations

import numpy as np
import torch

from repalign.errors import CorruptDataset

from ._common import NotFound, Request
from . import _fastjpeg
from ._decode import decode_many, list_image_files, read_files
from .cache import ArrayCache
from .splits import ImageSplit

DIR = "tiny-imagenet-200"


def _wnids(base) -> list[str]:
    listing = base / "wnids.txt"
    if listing.is_file():
        ids = [w.strip() for w in listing.read_text().split() if w.strip()]
    else:
        ids = [p.name for p in (base / "train").iterdir() if p.is_dir()]
    if not ids:
        raise CorruptDataset(f"{base}: no class ids (wnids.txt or train/<wnid>/)")
    return sorted(set(ids))


def load_tiny_imagenet(req: Request) -> ImageSplit:
    opts = req.take_options(workers=None)
    base = req.root / DIR
    if req.split == "train":
        need = [base / "train"]
    else:
        need = [base / "val" / "images", base / "val" / "val_annotations.txt"]
    if not all(p.exists() for p in need):
        raise NotFound(need)
    classes = _wnids(base)
    index = {w: i for i, w in enumerate(classes)}
    source_dir = base / req.split
    cache = ArrayCache(req.cache_dir, "tiny_imagenet", req.split, [source_dir])
    hit = cache.load()
    if hit is not None:
        x, y, how = hit[0]["x"], hit[0]["y"], "from cache"
    else:
        files, labels = [], []
        if req.split == "train":
            for wnid in classes:
                folder = base / "train" / wnid / "images"
                if not folder.is_dir():
                    raise CorruptDataset(f"{folder}: missing (class listed in wnids)")
                imgs = list_image_files(folder)
                files += imgs
                labels += [index[wnid]] * len(imgs)
        else:
            ann = base / "val" / "val_annotations.txt"
            for line_no, line in enumerate(ann.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) < 2 or parts[1] not in index:
                    raise CorruptDataset(f"{ann}:{line_no}: cannot read a known wnid from {line!r}")
                files.append(base / "val" / "images" / parts[0])
                labels.append(index[parts[1]])
        if not files:
            raise CorruptDataset(f"{source_dir}: no images")
        if _fastjpeg.available() and all(f.suffix.lower() in _fastjpeg.JPEG_SUFFIXES for f in files):
            buffer, spans = read_files(files)
            x = _fastjpeg.decode_jpegs(buffer, spans, [str(f) for f in files], opts["workers"])
        else:
            hwc = decode_many("files", str(source_dir), files, workers=opts["workers"])
            x = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))
        y = np.asarray(labels, dtype=np.int64)
        cache.save({"x": x, "y": y}, {"classes": classes, "source": str(source_dir)})
        how = "decoded"
    return ImageSplit(
        x=torch.from_numpy(x), y=torch.from_numpy(y), classes=classes,
        source=f"{req.rel(source_dir)} (Tiny ImageNet {req.split}; {how})",
    )
