"""Metrics of one run from its stored payload (the conventions in the sharon2024 block of
paper_targets.yaml): named epochs, the double-descent bump, and the per-layer CKA-map summaries.

Named epochs are found on the error curve's grid (every epoch by default): ``init`` (0),
``perfect_fit`` (first grid epoch with training error below ``PERFECT_FIT_ERROR`` percent),
``early_stop`` (lowest test error among epochs 1 … perfect_fit, or 1 … last when the run never
fits), ``final`` (last); on a CKA map they are the nearest CKA-grid epochs on the log(1 + epoch)
axis (``nearest``). Similarity-block boundaries on a map M: between grid epochs i and i+1 (i ≥
1) where the consecutive-epoch CKA M[i, i+1] is a local minimum and its distance from 1 exceeds
``TRANSITION_FACTOR`` times the median distance.
"""

from __future__ import annotations

import numpy as np

from repalign.experiments.sharon2024.cka_store import cka_map
from repalign.results import Result

PERFECT_FIT_ERROR = 0.5  # percent
TRANSITION_FACTOR = 2.0


def named_epochs(train_error: np.ndarray, test_error: np.ndarray) -> dict[str, int | None]:
    fits = np.flatnonzero(train_error < PERFECT_FIT_ERROR)
    fits = fits[fits >= 1]
    perfect = int(fits[0]) if fits.size else None
    stop = (perfect if perfect is not None else len(test_error) - 1) + 1
    early = 1 + int(np.argmin(test_error[1:stop])) if stop > 1 else 0
    return {"init": 0, "early_stop": early, "perfect_fit": perfect, "final": len(test_error) - 1}


def nearest(grid: np.ndarray, epoch: int) -> int:
    """Index of the grid epoch nearest ``epoch`` on the log(1 + epoch) axis."""
    return int(np.argmin(np.abs(np.log1p(grid) - np.log1p(epoch))))


def dd_bump(test_error: np.ndarray, early_stop: int) -> tuple[float, float]:
    """(max test error after the early-stopping minimum − that minimum, that maximum), percent."""
    later = test_error[early_stop:]
    return float(later.max() - test_error[early_stop]), float(later.max())


def transitions(m: np.ndarray) -> list[int]:
    """Grid indices that start a new similarity block (see the module docstring)."""
    c = np.array([m[i, i + 1] for i in range(1, len(m) - 1)])
    if c.size < 3:
        return []
    gap = 1.0 - c
    floor = TRANSITION_FACTOR * max(float(np.median(gap)), 1e-6)
    found = []
    for j in range(c.size):
        left = c[j - 1] if j > 0 else np.inf
        right = c[j + 1] if j + 1 < c.size else np.inf
        if c[j] <= left and c[j] <= right and gap[j] > floor:
            found.append(j + 2)  # the block starts at grid index i + 1 = j + 2
    return found


def block_contrast(m: np.ndarray, starts: list[int]) -> float:
    """Mean CKA within blocks (off-diagonal) minus mean CKA between blocks; 0 for one block."""
    if not starts:
        return 0.0
    labels = np.zeros(len(m), dtype=int)
    for s in starts:
        labels[s:] += 1
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(m), dtype=bool)
    return float(m[same & off].mean() - m[~same].mean())


def layer_maps(payload: dict) -> dict[str, np.ndarray]:
    return {layer: cka_map(v).numpy() for layer, v in payload["vectors"].items()}


def run_metrics(payload: dict, result: Result) -> dict:
    """Write ``<prefix>.*`` metrics and arrays of one run into ``result``; returns its maps and epochs."""
    p, m, arrays = payload["prefix"], result.metrics, result.arrays
    train_error, test_error, grid = payload["train_error"], payload["test_error"], payload["grid"]
    error_grid = payload["error_grid"]
    on_errors = named_epochs(train_error, test_error)  # indices into error_grid
    epochs = {name: None if i is None else nearest(grid, int(error_grid[i])) for name, i in on_errors.items()}
    bump, peak = dd_bump(test_error, on_errors["early_stop"])
    m.update({f"{p}.test_error.dd_bump": bump, f"{p}.test_error.peak": peak,
              f"{p}.test_error.final": float(test_error[-1]), f"{p}.test_error.min": float(test_error[1:].min()),
              f"{p}.train_error.final": float(train_error[-1]),
              f"{p}.early_stop_epoch": int(error_grid[on_errors["early_stop"]])})
    pf = epochs["perfect_fit"]
    unfit = f"{p} never reached training error < {PERFECT_FIT_ERROR}% within {payload['epochs']} epochs"
    if pf is None:
        result.not_run[f"{p}.perfect_fit_epoch"] = unfit
    else:
        m[f"{p}.perfect_fit_epoch"] = int(error_grid[on_errors["perfect_fit"]])
    maps = layer_maps(payload)
    n_trans = {}
    for layer, cka in maps.items():
        key = f"{p}.cka.{layer}"
        es, fin = epochs["early_stop"], epochs["final"]
        m.update({f"{key}.final_vs_init": float(cka[fin, 0]), f"{key}.final_vs_early_stop": float(cka[fin, es]),
                  f"{key}.early_stop_vs_init": float(cka[es, 0]),
                  f"{key}.init_return": float(cka[fin, 0] - cka[es, 0]),
                  f"{key}.mean_vs_init": float(cka[1:, 0].mean()), f"{key}.min_pair": float(cka.min())})
        if pf is None:
            result.not_run[f"{key}.max_vs_init_after_perfect_fit"] = unfit
        else:
            m[f"{key}.max_vs_init_after_perfect_fit"] = float(cka[pf:, 0].max())
        m[f"{p}.mean_local_cka.{layer}"] = float(np.mean([cka[i, i + 1] for i in range(1, len(cka) - 1)]))
        starts = transitions(cka)
        n_trans[layer] = starts
        m[f"{p}.n_transitions.{layer}"] = len(starts)
        m[f"{p}.block_contrast.{layer}"] = block_contrast(cka, starts)
        if starts:
            last = starts[-1]
            m[f"{key}.last_block_vs_rest"] = float(cka[last:, :last].mean())
        else:
            result.not_run[f"{key}.last_block_vs_rest"] = f"{p}: no similarity-block boundary found in {layer}"
        arrays[key] = cka.astype(np.float32)
    arrays.update({f"{p}.grid": grid, f"{p}.error_grid": error_grid, f"{p}.train_error": train_error,
                   f"{p}.test_error": test_error,
                   f"{p}.named": np.array([-1 if on_errors[n] is None else on_errors[n] for n in on_errors])})
    result.notes += payload["notes"] + [
        f"{p}: trained {payload['epochs']} epochs on {payload['n_train']} images in {payload['wall_s']:.1f} s "
        f"({payload['images_per_s']:.0f} images/s excluding {payload['measure_s']:.1f} s of measurement); "
        f"CKA vectors stored: {payload['cka_bytes']} bytes"]
    return {"maps": maps, "epochs": epochs, "transitions": n_trans}


def vit_transition_metrics(payload: dict, info: dict, result: Result) -> None:
    """``<prefix>.min_n_transitions`` and ``.max_transition_log10_offset`` over the encoder blocks."""
    p, grid = payload["prefix"], payload["grid"]
    counts = {layer: len(s) for layer, s in info["transitions"].items()}
    result.metrics[f"{p}.min_n_transitions"] = min(counts.values())
    pf = info["epochs"]["perfect_fit"]
    if pf is None or min(counts.values()) == 0:
        result.not_run[f"{p}.max_transition_log10_offset"] = (
            f"{p}: needs a perfect-fitting epoch and a block boundary in every encoder block "
            f"(perfect fit: {None if pf is None else int(grid[pf])}, boundaries per block: {counts})")
        return
    offsets = [min(abs(np.log10(grid[s] / grid[pf])) for s in starts) for starts in info["transitions"].values()]
    result.metrics[f"{p}.max_transition_log10_offset"] = float(max(offsets))


def other_init_metrics(payload: dict, info: dict, result: Result, layer: str = "conv1") -> None:
    """Fig 19: CKA of each epoch with its own initialisation and with another one (App. H.1)."""
    own = info["maps"][layer][:, 0]
    other = (payload["vectors"][layer].double() @ payload["other_init_vectors"][layer].double()).numpy()
    es = info["epochs"]["early_stop"]
    m = result.metrics
    m.update({f"cka.{layer}.mean_vs_own_init": float(own[1:].mean()),
              f"cka.{layer}.mean_vs_other_init": float(other[1:].mean()),
              f"cka.{layer}.final_vs_other_init": float(other[-1]),
              f"cka.{layer}.early_stop_vs_other_init": float(other[es]),
              f"cka_gap.{layer}.own_minus_other_init": float((own[1:] - other[1:]).mean())})
    result.arrays[f"{layer}.vs_own_init"] = own
    result.arrays[f"{layer}.vs_other_init"] = other
