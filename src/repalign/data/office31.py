"""Office-31 (Saenko et al. 2010): three domains, 31 office-object classes. Manual download.

Layout: ``<root>/office31/<domain>/images/<class>/*.jpg`` with domain in amazon, dslr,
webcam (the layout of the original ``domain_adaptation_images`` archive, renamed to
``office31``). Pass ``domain=`` (``"amazon"``/``"A"``, ``"dslr"``/``"D"``,
``"webcam"``/``"W"``). Office-31 has no official train/test split, so the only split is
``"all"`` (``"train"`` is accepted as its alias); experiments draw their own subsets.

Every image is resized to ``size x size`` (option ``size``, default 224; bilinear, aspect
ratio not kept, JPEGs are first reduced in the DCT domain) and the ``uint8 [N, 3, size,
size]`` result is cached per domain and size. Labels index the sorted union of the class
folders of all domains present, so a label means the same class in every domain.
"""

from __future__ import annotations

import numpy as np
import torch

from repalign.errors import CorruptDataset

from ._common import NotFound, Request
from ._decode import decode_many, list_image_files
from .cache import ArrayCache
from .splits import ImageSplit

DOMAINS = ("amazon", "dslr", "webcam")
_SHORT = {"a": "amazon", "d": "dslr", "w": "webcam"}
DEFAULT_SIZE = 224


def canonical_domain(domain) -> str:
    if domain is None:
        raise ValueError("office31 needs domain= one of " + ", ".join(DOMAINS) + " (or A, D, W)")
    d = str(domain).strip().lower()
    d = _SHORT.get(d, d)
    if d not in DOMAINS:
        raise ValueError(f"office31: unknown domain {domain!r}; known: " + ", ".join(DOMAINS))
    return d


def load_office31(req: Request) -> ImageSplit:
    opts = req.take_options(size=DEFAULT_SIZE, workers=None)
    size = int(opts["size"])
    domain = canonical_domain(req.domain)
    base = req.root / "office31"
    images_dir = base / domain / "images"
    if not images_dir.is_dir():
        raise NotFound([images_dir])
    class_dirs = sorted(p for p in images_dir.iterdir() if p.is_dir())
    if not class_dirs:
        raise CorruptDataset(f"{images_dir}: no class folders")
    all_classes = set()
    for d in DOMAINS:
        folder = base / d / "images"
        if folder.is_dir():
            all_classes.update(p.name for p in folder.iterdir() if p.is_dir())
    classes = sorted(all_classes)
    cache = ArrayCache(req.cache_dir, "office31", domain, [images_dir],
                       variant=f"{size}px-{len(classes)}cls")
    hit = cache.load()
    if hit is not None:
        arrays, _meta = hit
        x, y, how = arrays["x"], arrays["y"], "from cache"
    else:
        files, labels = [], []
        index = {c: i for i, c in enumerate(classes)}
        for cdir in class_dirs:
            imgs = list_image_files(cdir)
            files += imgs
            labels += [index[cdir.name]] * len(imgs)
        if not files:
            raise CorruptDataset(f"{images_dir}: no image files under the class folders")
        hwc = decode_many("files", str(images_dir), files, size=size, workers=opts["workers"])
        x = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))
        y = np.asarray(labels, dtype=np.int64)
        cache.save({"x": x, "y": y}, {"classes": classes, "source": str(images_dir), "size": size})
        how = "decoded"
    return ImageSplit(
        x=torch.from_numpy(x), y=torch.from_numpy(y), classes=classes,
        source=f"{req.rel(images_dir)} (Office-31 {domain}, resized to {size}x{size}; {how})",
    )
