"""imani2022 peaks functions and the batched GD of Fig 11."""

import math

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
