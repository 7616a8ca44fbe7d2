"""imani2022 peaks functions and the batched GD of Fig 11."""

import math

import numpy as np
import pytest

import torch

from repalign.data.peaks import RBF_HEIGHT, draw_tasks, encode, peaks_label
from repalign.experiments.imani2022.peaks import gd_linear
from repalign.metrics import gd_learning_curve, normalize_representation


def test_encoding_is_unit_length_rbf_features():
    v = torch.tensor([[0.0, 0.1, 0.2, 0.3, 0.4, 0.95]], dtype=torch.float64)
    x = encode(v)
    assert x.shape == (1, 60)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(1, dtype=torch.float64))
    # Before normalisation, variable A = 0.0 gives height 0.5 at centre 0.0 and 0.5·e^{-1/2} at 0.1.
    raw_ratio = x[0, 1] / x[0, 0]
    assert math.isclose(float(raw_ratio), math.exp(-0.5), rel_tol=1e-12)
    assert RBF_HEIGHT == 0.5


def test_peaks_label_is_y_if_x_above_half_else_z():
    v = torch.tensor([[0.7, 0.1, 0.2, 0, 0, 0], [0.3, 0.1, 0.2, 0, 0, 0]], dtype=torch.float64)
    assert peaks_label(v, (0, 1, 2)).tolist() == [0.1, 0.2]
    assert peaks_label(v, (1, 0, 2)).tolist() == [0.2, 0.2]


def test_similar_task_reorders_the_source_and_dissimilar_uses_the_rest():
    for seed in range(20):
        t = draw_tasks(torch.Generator().manual_seed(seed))
        assert set(t.T1) == set(t.S) and t.T1 != t.S
        assert set(t.T2).isdisjoint(t.S) and len(set(t.T2)) == 3


def test_batched_gd_matches_the_exact_prop1_curve():
    g = torch.Generator().manual_seed(0)
    phi_tr = normalize_representation(torch.randn(2, 30, 6, generator=g, dtype=torch.float64))
    phi_te = normalize_representation(torch.randn(2, 50, 6, generator=g, dtype=torch.float64))
    y_tr = torch.randn(1, 2, 30, generator=g, dtype=torch.float64)
    y_te = torch.randn(1, 2, 50, generator=g, dtype=torch.float64)
    lrs = (0.1, 0.7)
    train, test, norms = gd_linear(phi_tr, y_tr, phi_te, y_te, lrs, steps=40)
    assert train.shape == (2, 1, 2, 41)
    for a, lr in enumerate(lrs):
        for r in range(2):
            # mean-loss GD with lr equals sum-loss/2 GD with lr·2/n (imani2022 Prop. 1 convention)
            exact = gd_learning_curve(phi_tr[r], y_tr[0, r], 2 * lr / 30, 40) / 30
            torch.testing.assert_close(train[a, 0, r], exact, rtol=1e-9, atol=1e-12)
    assert torch.all(norms[..., 0] == 0)
    assert torch.all(train[..., -1] < train[..., 0])


def test_weights_at_fit_reads_the_norm_where_the_loss_reaches_a_common_level():
    """Fig 11c-d: weight norms compared at the same train-loss reduction for every representation."""
    from repalign.experiments.imani2022.peaks import FIT_LEVEL, REPRESENTATIONS, weights_at_fit
    from repalign.results import Result

    steps = np.arange(6, dtype=float)
    train = np.empty((3, 2, 2, 6))
    train[..., :] = 0.8 ** steps                # every run: 1, 0.8, 0.64, 0.512, 0.41, 0.33
    train[1, 1, 0] = 1 - 0.05 * steps           # one run on T2 only gets down to 0.75
    norms = np.broadcast_to(steps * np.arange(1, 4)[:, None, None, None], train.shape).copy()
    result = Result()
    weights_at_fit(train, norms, ("T1", "T2"), result)
    m = result.metrics
    assert m["weight_norm_fit_level.T1"] == FIT_LEVEL == 0.5
    for i, rep in enumerate(REPRESENTATIONS):   # 0.8^4 = 0.41 is the first value <= 0.5: step 4
        assert m[f"weight_norm_at_fit.{rep}.T1"] == pytest.approx(4 * (i + 1))
    assert m["weight_norm_fit_level.T2"] == pytest.approx(0.75)  # raised so that every run reaches it
    assert m["weight_norm_at_fit.original.T2"] == pytest.approx(2)              # 0.64 <= 0.75 at step 2
    assert m["weight_norm_at_fit.init.T2"] == pytest.approx((5 * 2 + 2 * 2) / 2)  # runs at steps 5 and 2
