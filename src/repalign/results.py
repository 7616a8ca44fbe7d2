"""Result files: ``<artifact>.json`` (metrics by name, settings, provenance) and ``.npz`` arrays.

Both are written atomically (temp file, then rename), so a killed job never leaves a
file that looks complete. A result with ``status: not_run`` records why the experiment
could not run (e.g. a missing dataset); it has no metrics.

Every result JSON carries ``schema_version`` (:data:`SCHEMA_VERSION`). Reading one written
with another version raises an error naming the file and the rule to re-run, so that an
old layout is never scored as if it were the current one. Files written before the field
existed have the layout of version 1 and count as it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repalign.errors import RepalignError

SCHEMA_VERSION = 1  # bump when the record's layout or a metric's meaning changes


@dataclass
class Result:
    """What an experiment returns: flat metrics, arrays for plotting, and notes.

    ``not_run`` maps metric names that could not be computed (one panel's data is
    missing) to the reason; the scorecard reports targets on them as ``not_run``.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def atomic_write(path: Path, write) -> None:
    """Call ``write(fh)`` on a temp file beside ``path``, then move it into place.

    A failed write (disk full, read-only directory) removes the temp file, leaves any old
    ``path`` as it was, and raises a :class:`RepalignError` that names the path and the fix.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from exc


def _write_error(path: Path, exc: OSError) -> RepalignError:
    return RepalignError(f"could not write {path}: {exc.strerror or exc}. Free disk space or make "
                         f"{path.parent} writable, then re-run; nothing was written in its place.")


def require_writable(path: Path) -> None:
    """Fail now, not after hours of training, if ``path`` cannot be written (same error as a write)."""
    path = Path(path)
    probe = path.with_name(f".{path.name}.writable")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with a fixed member time stamp, so equal arrays give equal bytes."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def write_result(json_path: Path, record: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays (``.npz`` beside the JSON) first, then the JSON record."""
    json_path = Path(json_path)
    npz_path = json_path.with_suffix(".npz")
    atomic_write(npz_path, lambda fh: _write_npz(fh, arrays))
    record = {"schema_version": SCHEMA_VERSION, **record}
    text = json.dumps(_json_safe(record), indent=2, sort_keys=False, allow_nan=False)
    atomic_write(json_path, lambda fh: fh.write(text.encode()))


def read_result(json_path: Path) -> dict:
    """Load a result record; a truncated or non-JSON file raises a clear error."""
    try:
        record = json.loads(Path(json_path).read_text())
    except json.JSONDecodeError as exc:
        raise RepalignError(
            f"result file {json_path} is corrupt ({exc}). Delete it and re-run its rule.") from exc
    for key in ("paper", "artifact", "status", "tier"):
        if key not in record:
            raise RepalignError(f"result file {json_path} has no '{key}' field; re-run its rule.")
    version = record.get("schema_version", 1)
    if version != SCHEMA_VERSION:
        age = "an older" if isinstance(version, int) and version < SCHEMA_VERSION else "another"
        raise RepalignError(
            f"result file {json_path} has schema_version {version!r}, written by {age} version of "
            f"the suite (this one reads version {SCHEMA_VERSION}); its numbers are not scored. "
            f"Re-run its rule: snakemake --forcerun {json_path} --cores 1 (or delete the file "
            "and run snakemake again).")
    return record


def read_arrays(json_path: Path) -> dict[str, np.ndarray]:
    with np.load(Path(json_path).with_suffix(".npz")) as data:
        return {k: data[k] for k in data.files}
