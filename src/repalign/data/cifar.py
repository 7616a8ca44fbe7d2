"""CIFAR-10 and CIFAR-100: torchvision pickles or class-folder zips of image files.

Layouts, first match wins:
  CIFAR-10:  1. ``<root>/cifar10-jpeg/{train,test}.zip``  2. ``<root>/cifar-10-batches-py/``
  CIFAR-100: 1. ``<root>/cifar-100-python/``               2. ``<root>/cifar100-jpeg/{train,test}.zip``

A class-folder zip holds ``<split>/<class>/<file>.jpg`` (PNG also accepted); classes
sorted alphabetically give labels 0..K-1 (CIFAR's own order for both datasets), and the
images are ordered by class, then by member name. JPEG members are decoded in batches by
``torchvision.io.decode_jpeg`` (other formats by Pillow over a process pool); either way
decoding costs seconds, so the decoded ``uint8 [N, 3, 32, 32]`` array is cached as .npy in the cache dir
(see :mod:`.cache`); the pickles load in well under a second and are not cached.
CIFAR-100 labels are the 100 fine labels.
"""

from __future__ import annotations

import pickle
import time
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from repalign.errors import CorruptDataset

from ._common import NotFound, Request
from . import _fastjpeg
from ._decode import IMAGE_SUFFIXES, decode_many, read_zip_members
from .cache import ArrayCache
from .splits import ImageSplit

PICKLES = {
    "cifar10": {
        "dir": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "names_key": b"label_names",
        "labels_key": b"labels",
        "title": "CIFAR-10",
    },
    "cifar100": {
        "dir": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "names_key": b"fine_label_names",
        "labels_key": b"fine_labels",
        "title": "CIFAR-100",
    },
}
ZIP_DIRS = {"cifar10": "cifar10-jpeg", "cifar100": "cifar100-jpeg"}
# CIFAR-10's class folders, as the zip layout must name them (alphabetical = CIFAR's order)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
ORDER = {"cifar10": ("zip", "pickle"), "cifar100": ("pickle", "zip")}


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, IndexError) as exc:
        raise CorruptDataset(f"{path}: not a readable CIFAR pickle ({exc})") from exc


def load_pickles(folder: Path, files: list[str], meta: str, names_key: bytes,
                 labels_key: bytes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``x [N, 3, 32, 32]`` uint8, ``y [N]`` int64 and class names from a CIFAR pickle folder."""
    xs, ys = [], []
    for name in files:
        path = folder / name
        d = _unpickle(path)
        try:
            data = np.asarray(d[b"data"], dtype=np.uint8)
            labels = np.asarray(d[labels_key], dtype=np.int64)
        except KeyError as exc:
            raise CorruptDataset(f"{path}: missing key {exc}") from exc
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise CorruptDataset(f"{path}: data has shape {data.shape}, expected [N, 3072]")
        if data.shape[0] != labels.shape[0]:
            raise CorruptDataset(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    meta_d = _unpickle(folder / meta)
    try:
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta_d[names_key]]
    except KeyError as exc:
        raise CorruptDataset(f"{folder / meta}: missing key {exc}") from exc
    y = np.concatenate(ys)
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise CorruptDataset(f"{folder}: labels outside 0..{len(classes) - 1}")
    return np.ascontiguousarray(np.concatenate(xs)), y, classes


def list_class_zip(zip_path: Path) -> tuple[list, list[str], np.ndarray]:
    """(members in load order as ZipInfo, sorted class names, labels) of a class-folder zip."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptDataset(f"{zip_path}: not a readable zip ({exc})") from exc
    members = []
    for info in infos:
        p = PurePosixPath(info.filename)
        if info.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES or len(p.parts) < 2:
            continue
        if any(part.startswith(".") or part == "__MACOSX" for part in p.parts):
            continue
        members.append((p.parts[-2], info.filename, info))
    if not members:
        raise CorruptDataset(f"{zip_path}: no <class>/<image> members found")
    members.sort(key=lambda m: m[:2])
    classes = sorted({m[0] for m in members})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[m[0]] for m in members], dtype=np.int64)
    return [m[2] for m in members], classes, labels


def decode_class_zip(zip_path: Path, members: list, workers=None, decoder: str = "auto"):
    """``(x [N, 3, H, W] uint8, decoder used)`` for ``members`` (ZipInfo) of a zip.

    decoder: "torchvision" (batched ``decode_jpeg``; JPEG members only), "pil" (Pillow,
    over a process pool), or "auto" (torchvision when every member is a JPEG and
    torchvision's image ops are available, else Pillow).
    """
    if decoder not in ("auto", "torchvision", "pil"):
        raise ValueError(f"decoder must be 'auto', 'torchvision' or 'pil', not {decoder!r}")
    if decoder == "torchvision" and not _fastjpeg.available():
        raise RuntimeError("decoder='torchvision' asked for, but torchvision.io.decode_jpeg is unavailable")
    names = [m.filename for m in members]
    all_jpeg = all(n.lower().endswith(_fastjpeg.JPEG_SUFFIXES) for n in names)
    if decoder == "torchvision" or (decoder == "auto" and all_jpeg and _fastjpeg.available()):
        buffer, spans = read_zip_members(zip_path, members)
        where = [f"{zip_path}:{n}" for n in names]
        return _fastjpeg.decode_jpegs(buffer, spans, where, workers), "torchvision.io.decode_jpeg"
    hwc = decode_many("zip", str(zip_path), names, workers=workers)
    return np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)), "Pillow"


def load_class_zip(zip_path: Path, name: str, split: str, cache_dir, workers=None,
                   decoder: str = "auto"):
    """Decode (or fetch from cache) a class-folder zip.

    Returns ``(x NCHW uint8, y int64, classes, lossy, from_cache)``; lossy: any JPEG member.
    """
    cache = ArrayCache(cache_dir, name, split, [zip_path], variant="zip")
    hit = cache.load()
    if hit is not None:
        arrays, meta = hit
        return arrays["x"], arrays["y"], meta["classes"], meta["lossy"], True
    members, classes, labels = list_class_zip(zip_path)
    lossy = any(m.filename.lower().endswith((".jpg", ".jpeg")) for m in members)
    t0 = time.perf_counter()
    x, used = decode_class_zip(zip_path, members, workers, decoder)
    cache.save({"x": x, "y": labels},
               {"classes": classes, "lossy": lossy, "source": str(zip_path), "members": len(members),
                "decoder": used, "decode_seconds": round(time.perf_counter() - t0, 3)})
    return x, labels, classes, lossy, False


def load_cifar(req: Request) -> ImageSplit:
    opts = req.take_options(workers=None, decoder="auto")
    spec = PICKLES[req.name]
    tried = []
    for layout in ORDER[req.name]:
        if layout == "zip":
            zip_path = req.root / ZIP_DIRS[req.name] / f"{req.split}.zip"
            if zip_path.is_file():
                req.verify(zip_path)
                x, y, classes, lossy, hit = load_class_zip(zip_path, req.name, req.split,
                                                           req.cache_dir, opts["workers"],
                                                           opts["decoder"])
                if req.name == "cifar10" and tuple(classes) != CIFAR10_CLASSES:
                    raise CorruptDataset(
                        f"{zip_path}: class folders {req.split}/{{{','.join(classes)}}} are not "
                        f"CIFAR-10's {req.split}/{{{','.join(CIFAR10_CLASSES)}}}; the zip must hold "
                        f"{req.split}/<class>/<image> with those ten names (labels follow them)")
                kind = "JPEG re-encoding" if lossy else "image-file copy"
                note = ", lossy: not the original pickles" if lossy else ""
                return ImageSplit(
                    x=torch.from_numpy(x), y=torch.from_numpy(y), classes=classes,
                    source=(f"{req.rel(zip_path)} (class-folder zip, {kind} of {spec['title']}"
                            f"{note}; {'decoded from cache' if hit else 'decoded'})"),
                )
            tried.append(zip_path)
        else:
            folder = req.root / spec["dir"]
            needed = spec[req.split] + [spec["meta"]]
            missing = [f for f in needed if not (folder / f).is_file()]
            if not missing:
                x, y, classes = load_pickles(folder, spec[req.split], spec["meta"],
                                             spec["names_key"], spec["labels_key"])
                files = spec[req.split]
                label = files[0] if len(files) == 1 else f"{files[0]}..{files[-1][-1]}"
                return ImageSplit(
                    x=torch.from_numpy(x), y=torch.from_numpy(y), classes=classes,
                    source=f"torchvision {spec['dir']}/{label} (original {spec['title']} pickles)",
                )
            tried += [folder / f for f in missing] if folder.is_dir() else [folder]
    raise NotFound(tried)
