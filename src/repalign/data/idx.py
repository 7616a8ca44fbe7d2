"""A reader for the IDX format of MNIST-style datasets (plain or gzip).

Header: two zero bytes, a type byte, the number of dimensions, then one big-endian
uint32 per dimension, then the data (big-endian). The image count comes from the
header; nothing assumes 60,000.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from repalign.errors import CorruptDataset

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CorruptDataset(f"{path}: cannot decompress ({exc}); the file is truncated or not gzip") from exc


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Parse one IDX file into a numpy array of its header's shape.

    Raises CorruptDataset (naming the file) for a bad magic number, an unexpected
    number of dimensions, or a payload shorter or longer than the header announces.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise CorruptDataset(f"{path}: {len(raw)} bytes, too short for an IDX header")
    zero1, zero2, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or type_code not in _TYPES or ndim == 0:
        raise CorruptDataset(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000TTNN with a "
            "known type byte TT and NN dimensions)"
        )
    if expect_ndim is not None and ndim != expect_ndim:
        raise CorruptDataset(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise CorruptDataset(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _TYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header_len
    if got < expected:
        raise CorruptDataset(
            f"{path}: truncated: header announces shape {tuple(dims)} ({expected} data bytes) "
            f"but the file holds {got}"
        )
    if got > expected:
        raise CorruptDataset(
            f"{path}: {got - expected} unexpected trailing bytes after shape {tuple(dims)}"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header_len, count=expected // dtype.itemsize)
    arr = arr.reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True) if dtype.itemsize > 1 else arr.copy()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip if the name ends in .gz). Used by tests and tools."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in _TYPES.items()}
    key = array.dtype.newbyteorder("=").str
    if key not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = codes[key]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(_TYPES[code], copy=False).tobytes()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + payload)
