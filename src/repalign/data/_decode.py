"""Image decoding into uint8 arrays, optionally over a small process pool.

This module imports only the standard library, numpy and Pillow (never torch), so
worker processes start fast. Workers are forked (Linux); where fork is unavailable the
decode runs in the calling process.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from repalign.errors import CorruptDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
PARALLEL_MIN = 2000  # fewer images than this: decode in-process
WORKERS_ENV = "REPALIGN_DECODE_WORKERS"


def default_workers() -> int:
    env = os.environ.get(WORKERS_ENV)
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _to_array(im: Image.Image, size: int | None, where: str) -> np.ndarray:
    if size is not None:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # DCT-domain downscale: much faster for big photos
        im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    else:
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def _decode_one(data_or_path, size, where) -> np.ndarray:
    try:
        src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
        with Image.open(src) as im:
            return _to_array(im, size, where)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptDataset(f"{where}: cannot decode image ({exc})") from exc


def _decode_chunk(task) -> np.ndarray:
    """Decode one chunk. task = (kind, container, names, size)."""
    kind, container, names, size = task
    out = None
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(container)
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptDataset(f"{container}: not a readable zip ({exc})") from exc
        with zf:
            for i, name in enumerate(names):
                try:
                    data = zf.read(name)
                except (zipfile.BadZipFile, OSError, KeyError) as exc:
                    raise CorruptDataset(f"{container}: member {name} unreadable ({exc})") from exc
                out = _store(out, i, len(names), _decode_one(data, size, f"{container}:{name}"),
                             f"{container}:{name}")
    else:
        for i, path in enumerate(names):
            out = _store(out, i, len(names), _decode_one(path, size, str(path)), str(path))
    if out is None:
        out = np.empty((0, 0, 0, 3), np.uint8)
    return out


def _store(out, i, n, img, where):
    if out is None:
        out = np.empty((n,) + img.shape, np.uint8)
    elif img.shape != out.shape[1:]:
        raise CorruptDataset(
            f"{where}: image is {img.shape[1]}x{img.shape[0]}, the others are "
            f"{out.shape[2]}x{out.shape[1]} (pass a resize size, or fix the file)"
        )
    out[i] = img
    return out


def decode_many(kind: str, container, names, size: int | None = None,
                workers: int | None = None) -> np.ndarray:
    """Decode images to one ``[N, H, W, 3]`` uint8 array, in the order of ``names``.

    kind="zip": ``names`` are members of the zip file ``container``.
    kind="files": ``names`` are file paths (``container`` unused).
    All images must come out the same size (``size`` resizes each to size x size).
    """
    names = list(names)
    workers = default_workers() if workers is None else workers
    if not names:
        raise CorruptDataset(f"{container}: no images to decode")
    use_pool = (workers > 1 and len(names) >= PARALLEL_MIN
                and "fork" in multiprocessing.get_all_start_methods())
    if not use_pool:
        return _decode_chunk((kind, container, names, size))
    n_chunks = workers * 4
    bounds = np.linspace(0, len(names), n_chunks + 1).astype(int)
    tasks = [(kind, container, names[a:b], size) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork in a threaded process; the workers only run
        # Pillow and numpy, never torch, so the threads' state is not touched.
        warnings.simplefilter("ignore", DeprecationWarning)
        with ctx.Pool(workers) as pool:
            parts = pool.map(_decode_chunk, tasks, chunksize=1)
    shapes = {p.shape[1:] for p in parts}
    if len(shapes) > 1:
        raise CorruptDataset(f"{container}: images of different sizes {sorted(shapes)}")
    return np.concatenate(parts, axis=0)


def read_zip_members(zip_path, members) -> tuple[bytes, list[tuple[int, int]]]:
    """The raw bytes of zip members: ``(buffer, [(start, end), ...])`` in ``members`` order.

    ``members``: ZipInfo objects of this zip (as from ``ZipFile.infolist()``) or names.
    STORED members are sliced straight out of one read of the whole file (cheap: no
    per-member file access, no second parse of the central directory); compressed ones are
    inflated through ``zipfile``. Every member's CRC-32 is checked, so a damaged byte raises
    CorruptDataset naming the member.
    """
    members = list(members)
    if all(isinstance(m, zipfile.ZipInfo) and m.compress_type == zipfile.ZIP_STORED for m in members):
        infos = members
        with open(zip_path, "rb") as f:
            buffer = f.read()
        spans = []
        for info in infos:
            off = info.header_offset
            head = buffer[off:off + 30]
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                raise CorruptDataset(f"{zip_path}: member {info.filename}: bad local header")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            start = off + 30 + name_len + extra_len
            spans.append((start, start + info.compress_size))
    else:
        try:
            zf = zipfile.ZipFile(zip_path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptDataset(f"{zip_path}: not a readable zip ({exc})") from exc
        with zf:
            infos = [m if isinstance(m, zipfile.ZipInfo) else zf.getinfo(m) for m in members]
            parts, spans, pos = [], [], 0
            for info in infos:
                try:
                    data = zf.read(info)
                except (zipfile.BadZipFile, OSError, zlib.error) as exc:
                    raise CorruptDataset(f"{zip_path}: member {info.filename} unreadable ({exc})") from exc
                parts.append(data)
                spans.append((pos, pos + len(data)))
                pos += len(data)
            buffer = b"".join(parts)
    view = memoryview(buffer)
    for info, (a, b) in zip(infos, spans):
        if b > len(buffer) or zlib.crc32(view[a:b]) != info.CRC:
            raise CorruptDataset(f"{zip_path}: member {info.filename} is damaged (CRC mismatch)")
    return buffer, spans


def read_files(paths) -> tuple[bytes, list[tuple[int, int]]]:
    """The contents of ``paths`` concatenated: ``(buffer, [(start, end), ...])``."""
    parts, spans, pos = [], [], 0
    for p in paths:
        data = Path(p).read_bytes()
        parts.append(data)
        spans.append((pos, pos + len(data)))
        pos += len(data)
    return b"".join(parts), spans


def decode_buffer(data: bytes, where: str, size: int | None = None) -> np.ndarray:
    """One image from its encoded bytes, as ``[H, W, 3]`` uint8 (Pillow)."""
    return _decode_one(bytes(data), size, where)


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
