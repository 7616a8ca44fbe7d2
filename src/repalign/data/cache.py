"""Decoded-array cache: uint8/float arrays saved as .npy in the cache dir.

A cache entry is keyed by dataset, split, a variant string (e.g. the resize size) and a
fingerprint of the source: resolved path, size and mtime of each source file (for a
source folder: file count, total size and newest mtime of the files under it). Changing
or replacing the source changes the key, so a stale entry is never served.

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``; the JSON marker is written last and an entry counts only when its marker
exists and the arrays match the shapes, dtypes and CRC-32 checksums it records. A run killed
mid-write therefore leaves at most an orphan temp file, never an entry that a later run
would load; a damaged ``.npy`` (bit rot, a truncated copy) is a miss with a warning, and the
caller's rebuild replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np

CACHE_VERSION = 2  # 2: markers record checksums


def fingerprint(sources) -> str:
    """A string that changes when any source file or folder changes."""
    parts = [f"v{CACHE_VERSION}"]
    for src in sources:
        src = Path(src).resolve()
        if src.is_dir():
            count = total = newest = 0
            for dirpath, _dirs, files in os.walk(src):
                for name in files:
                    st = os.stat(os.path.join(dirpath, name))
                    count += 1
                    total += st.st_size
                    newest = max(newest, st.st_mtime_ns)
            parts.append(f"{src}|dir|{count}|{total}|{newest}")
        else:
            st = src.stat()
            parts.append(f"{src}|{st.st_size}|{st.st_mtime_ns}")
    return "\n".join(parts)


class ArrayCache:
    """One cache entry: a few named arrays plus JSON metadata."""

    def __init__(self, cache_dir, dataset: str, split: str, sources, variant: str = ""):
        self.enabled = cache_dir is not None
        key = hashlib.sha1(f"{fingerprint(sources)}\n{variant}".encode()).hexdigest()[:16]
        stem = f"{split}-{variant}-{key}" if variant else f"{split}-{key}"
        self.dir = Path(cache_dir).expanduser() / dataset if self.enabled else None
        self.stem = stem

    def array_path(self, name: str) -> Path:
        return self.dir / f"{self.stem}.{name}.npy"

    @property
    def marker(self) -> Path:
        return self.dir / f"{self.stem}.json"

    def exists(self) -> bool:
        return self.enabled and self.marker.is_file()

    def load(self):
        """``(arrays, meta)`` if a complete entry exists, else None."""
        if not self.exists():
            return None
        try:
            meta = json.loads(self.marker.read_text())
            arrays = {}
            for name, shape in meta["_shapes"].items():
                arr = np.load(self.array_path(name), allow_pickle=False)
                found = [list(arr.shape), str(arr.dtype), _checksum(arr)]
                if found != [list(shape), meta["_dtypes"][name], meta["_crc32"][name]]:
                    raise ValueError(f"{name} has shape, dtype, crc32 {found}, the marker records "
                                     f"{[shape, meta['_dtypes'][name], meta['_crc32'][name]]}")
                arrays[name] = arr
            return arrays, meta
        except (OSError, ValueError, KeyError, EOFError) as exc:
            warnings.warn(f"repalign: the dataset cache entry {self.marker} is damaged ({exc}); "
                          "ignoring it and decoding the data again")
            return None

    def save(self, arrays: dict, meta: dict) -> bool:
        """Write the entry atomically. Returns False (with a warning) if the dir is not writable."""
        if not self.enabled:
            return False
        meta = dict(meta)
        meta["_shapes"] = {name: list(a.shape) for name, a in arrays.items()}
        meta["_dtypes"] = {name: str(a.dtype) for name, a in arrays.items()}
        meta["_crc32"] = {name: _checksum(a) for name, a in arrays.items()}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for name, arr in arrays.items():
                _atomic_write(self.array_path(name), lambda f, a=arr: np.save(f, a, allow_pickle=False))
            _atomic_write(self.marker, lambda f: f.write(json.dumps(meta, indent=1).encode()))
            return True
        except OSError as exc:
            warnings.warn(f"repalign: could not write the dataset cache in {self.dir}: {exc}")
            return False


def _checksum(arr: np.ndarray) -> int:
    """CRC-32 of the array's bytes (C order): detects damage, cheaply (~1 GB/s)."""
    return zlib.crc32(np.ascontiguousarray(arr).view(np.uint8).reshape(-1))


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _MODE)  # mkstemp creates 0600; give the cache the usual umask mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
