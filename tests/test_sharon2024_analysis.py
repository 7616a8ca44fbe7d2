"""sharon2024 analysis: named epochs, the double-descent bump, similarity blocks, DRS from stored predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repalign.experiments.sharon2024.analysis import block_contrast, dd_bump, named_epochs, nearest, transitions
from repalign.experiments.sharon2024.drs import drs_matrix
from repalign.experiments.sharon2024.runs import balanced_order
from repalign.metrics import drs


def test_named_epochs_and_double_descent_bump():
    test_error = np.array([90.0, 40.0, 30.0, 38.0, 45.0, 33.0, 31.0])
    train_error = np.array([90.0, 40.0, 20.0, 10.0, 0.2, 0.0, 0.0])
    epochs = named_epochs(train_error, test_error)
    assert epochs == {"init": 0, "early_stop": 2, "perfect_fit": 4, "final": 6}
    assert dd_bump(test_error, epochs["early_stop"]) == (15.0, 45.0)
    monotone = np.array([90.0, 50.0, 40.0, 35.0])
    never_fit = named_epochs(np.array([90.0, 60.0, 50.0, 45.0]), monotone)
    assert never_fit["perfect_fit"] is None and never_fit["early_stop"] == 3
    assert dd_bump(monotone, never_fit["early_stop"])[0] == 0.0


def block_map(sizes, within=0.95, between=0.3):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    m = np.where(labels[:, None] == labels[None, :], within, between)
    np.fill_diagonal(m, 1.0)
    return m


def test_transitions_find_block_boundaries_and_contrast():
    m = block_map([1, 5, 6])  # init, then two blocks: the boundary at grid index 6
    assert transitions(m) == [6]
    assert block_contrast(m, [6]) > 0.5
    smooth = block_map([1, 11])
    assert transitions(smooth) == [] and block_contrast(smooth, []) == 0.0


def test_drs_from_stored_predictions_equals_the_metric():
    g = torch.Generator().manual_seed(0)
    planes = torch.randn(3, 16, 4, generator=g)
    wa, wb = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    preds = torch.stack([(planes @ wa).argmax(-1), (planes @ wb).argmax(-1)])
    expected = float(drs(lambda x: x @ wa, lambda x: x @ wb, planes))
    d = drs_matrix(preds)
    assert d[0, 1] == pytest.approx(expected) and d[0, 0] == 1.0 and 0.0 < d[0, 1] < 1.0


def test_nearest_epoch_on_the_log_axis():
    grid = np.array([0, 1, 3, 10, 100])
    assert nearest(grid, 0) == 0 and nearest(grid, 20) == 3 and nearest(grid, 40) == 4 and nearest(grid, 2) == 2


def test_probe_batches_are_class_balanced():
    y = torch.arange(100) % 10
    order = balanced_order(y[torch.randperm(100, generator=torch.Generator().manual_seed(0))], 40, 10)
    shuffled_y = y[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    for batch in order.reshape(2, 20):
        assert torch.bincount(shuffled_y[batch], minlength=10).tolist() == [2] * 10
    with pytest.raises(ValueError, match="per class"):
        balanced_order(y, 200, 10)


def test_named_epochs_come_from_the_dense_error_grid_and_map_to_the_nearest_cka_epoch():
    from repalign.experiments.sharon2024.analysis import run_metrics
    from repalign.experiments.sharon2024.cka_store import epoch_vector
    from repalign.results import Result

    g = torch.Generator().manual_seed(0)
    base = torch.randn(8, 5, generator=g, dtype=torch.float64)
    cka_grid = np.array([0, 2, 8])
    feats = [base + s * torch.randn(8, 5, generator=g, dtype=torch.float64) for s in (0.0, 0.5, 3.0)]
    error_grid = np.arange(9)
    test_error = np.array([90, 60, 50, 40, 30, 45, 50, 40, 35.0])   # minimum at epoch 4, bump to 50
    train_error = np.array([90, 60, 50, 40, 30, 10, 0.2, 0.0, 0.0])  # fits at epoch 6
    payload = {"prefix": "r", "grid": cka_grid, "error_grid": error_grid, "train_error": train_error,
               "test_error": test_error, "vectors": {"conv1": torch.stack([epoch_vector(f, 2, 4) for f in feats])},
               "epochs": 8, "n_train": 10, "wall_s": 1.0, "measure_s": 0.5, "images_per_s": 1.0, "cka_bytes": 0,
               "notes": []}
    result = Result()
    run_metrics(payload, result)
    m = result.metrics
    assert m["r.perfect_fit_epoch"] == 6 and m["r.early_stop_epoch"] == 4
    assert m["r.test_error.dd_bump"] == 20.0
    # early stop (epoch 4) is nearest CKA epoch 2 on the log axis, perfect fit (6) nearest 8
    assert m["r.cka.conv1.early_stop_vs_init"] == pytest.approx(result.arrays["r.cka.conv1"][1, 0])
    assert m["r.cka.conv1.max_vs_init_after_perfect_fit"] == pytest.approx(result.arrays["r.cka.conv1"][2, 0])
    assert result.arrays["r.named"].tolist() == [0, 4, 6, 8]
