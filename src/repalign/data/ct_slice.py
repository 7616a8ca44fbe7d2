"""UCI Relative Location of CT Slices on Axial Axis ("CT Position"; Graf et al. 2011).

Layout: ``<root>/ct_slice/slice_localization_data.csv`` (or the same CSV zipped as
``slice_localization_data.zip``). Columns: ``patientId``, ``value0`` .. ``value383``,
``reference``. ``x`` is float32 ``[N, 384]`` (the 384 features), ``y`` float32 ``[N]``
(``reference``, the slice position, 0..100 in the original data). The data has no
official split: the only split is ``"all"`` (``"train"`` is its alias), and experiments
draw their own disjoint train/test subsets. The parsed arrays are cached as .npy.
"""

from __future__ import annotations

import numpy as np
import torch

from repalign.errors import CorruptDataset

from ._common import NotFound, Request
from .cache import ArrayCache
from .splits import ImageSplit

DIR = "ct_slice"
FILES = ("slice_localization_data.csv", "slice_localization_data.zip")
N_FEATURES = 384


def read_ct_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """``(x [N, 384] float32, y [N] float32)`` from the UCI CSV, with the columns checked."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CorruptDataset(f"{path}: cannot parse as CSV ({exc})") from exc
    features = [f"value{i}" for i in range(N_FEATURES)]
    missing = [c for c in ["patientId", *features, "reference"] if c not in df.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CorruptDataset(f"{path}: missing column(s) {shown}")
    try:
        x = df[features].to_numpy(dtype=np.float32)
        y = df["reference"].to_numpy(dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise CorruptDataset(f"{path}: non-numeric values ({exc})") from exc
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CorruptDataset(f"{path}: missing or non-finite values")
    return np.ascontiguousarray(x), y


def load_ct_slice(req: Request) -> ImageSplit:
    req.take_options()
    candidates = [req.root / DIR / f for f in FILES]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise NotFound(candidates)
    cache = ArrayCache(req.cache_dir, "ct_slice", req.split, [path])
    hit = cache.load()
    if hit is not None:
        x, y, how = hit[0]["x"], hit[0]["y"], "from cache"
    else:
        x, y = read_ct_csv(path)
        cache.save({"x": x, "y": y}, {"source": str(path)})
        how = "parsed"
    return ImageSplit(
        x=torch.from_numpy(x), y=torch.from_numpy(y), classes=[],
        source=f"{req.rel(path)} (UCI CT slice localization, {x.shape[0]} rows; {how})",
    )
