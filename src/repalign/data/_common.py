"""Internals shared by the loaders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from repalign.errors import CorruptDataset

CHECKSUMS_FILE = "MD5SUMS"  # `md5sum` output in the data root: "<md5>  <path relative to the root>"


class NotFound(Exception):
    """Raised by a loader when no recognised layout is present; carries the paths tried."""

    def __init__(self, tried):
        self.tried = [str(t) for t in tried]
        super().__init__("; ".join(self.tried))


@dataclass
class Request:
    """What a loader is asked for. ``split`` is already a canonical split name."""

    name: str
    split: str
    root: Path
    cache_dir: Path | None
    domain: str | None = None
    options: dict = field(default_factory=dict)

    def take_options(self, **defaults) -> dict:
        """The loader's options (``defaults`` overridden by the caller); unknown ones are an error."""
        unknown = set(self.options) - set(defaults)
        if unknown:
            allowed = ", ".join(sorted(defaults)) or "none"
            raise TypeError(f"{self.name}: unknown option(s) {sorted(unknown)}; allowed: {allowed}")
        out = dict(defaults)
        out.update(self.options)
        return out

    def rel(self, path: Path) -> str:
        """``path`` relative to the data root, for provenance strings."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def verify(self, *paths: Path) -> None:
        """Check each file against the data root's ``MD5SUMS`` where it lists the file."""
        listing = self.root / CHECKSUMS_FILE
        listed = _checksums(listing, listing.stat().st_mtime_ns) if listing.is_file() else {}
        for path in paths:
            expected = listed.get(self.rel(path))
            if expected is None:
                continue
            found = _md5(Path(path))
            if found != expected:
                raise CorruptDataset(
                    f"{path}: md5 {found}, but {self.root / CHECKSUMS_FILE} lists {expected}; the "
                    "file is damaged or not the one listed. Copy it again (or fix MD5SUMS).")


@lru_cache(maxsize=None)
def _checksums(listing: Path, _mtime_ns: int) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in listing.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): md5.lower() for md5, name in pairs}


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
