"""Internals shared by the loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
