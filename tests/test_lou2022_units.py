"""lou2022 building blocks: the Eq. 8 FFNN, the alignment grid and recorder, the depth fits."""

import math

import numpy as np
import pytest
import torch

from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.lou2022.hierarchy import SUMMARY_METRICS, early_rise_fraction, hierarchy_summary
from repalign.experiments.lou2022.sweep import depth_fit
from repalign.experiments.lou2022.training import (
    AlignmentRecorder,
    ConfigStore,
    alignment_grid,
    lr_key,
    n_epochs,
)
from repalign.metrics import layer_tangent_alignment
from repalign.results import Result


def test_ffnn_is_bias_free_he_initialised_and_per_seed():
    net = StackedFFNN(d_in=400, width=300, depth=4, n_out=10, seeds=[0, 1])
    assert [tuple(w.shape) for w in net.weights] == [(2, 400, 300), (2, 300, 300), (2, 300, 300), (2, 300, 10)]
    assert all("bias" not in name for name, _ in net.named_parameters())
    for w in net.weights:  # N(0, 2 / fan_in), checked on the variance of 3000+ draws
        assert w[0].var().item() == pytest.approx(2 / w.shape[1], rel=0.15)
    # model s depends only on its own seed
    alone = StackedFFNN(400, 300, 4, 10, seeds=[1])
    for w, w_alone in zip(net.weights, alone.weights):
        torch.testing.assert_close(w[1], w_alone[0])


def test_member_view_matches_the_stack_and_eq8():
    torch.manual_seed(0)
    net = StackedFFNN(d_in=7, width=5, depth=3, n_out=4, seeds=[3, 4, 5])
    x = torch.randn(6, 7)
    out = net(x)
    for s in range(3):
        seq = net.member(s)
        torch.testing.assert_close(seq(x), out[s])
        w1, w2, w3 = (w[s] for w in net.weights)
        torch.testing.assert_close(torch.relu(torch.relu(x @ w1) @ w2) @ w3, out[s])  # Eq. 8
    # per-model inputs [n_models, batch, d] give the same answer
    torch.testing.assert_close(net(x.expand(3, -1, -1)), out)


def test_fast_alignment_on_member_matches_jacobian_reference():
    net = StackedFFNN(d_in=6, width=5, depth=4, n_out=3, seeds=[0]).double()
    x = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.nn.functional.one_hot(torch.arange(8) % 3, 3).double()
    fast = layer_tangent_alignment(net.member(0), x, y, method="fast")
    ref = layer_tangent_alignment(net.member(0), x, y, method="jacobian")
    assert len(fast) == net.depth
    for name in fast:
        torch.testing.assert_close(fast[name], ref[name], rtol=1e-9, atol=1e-12)


def test_alignment_grid_holds_start_tenth_and_end():
    grid = alignment_grid(1000, 5)
    assert grid[0] == 0 and grid[-1] == 1000 and 100 in grid
    assert np.all(np.diff(grid) > 0)
    assert list(alignment_grid(3, 0)) == [0, 3]


def test_recorder_measures_only_on_grid_and_round_trips():
    net = StackedFFNN(d_in=5, width=4, depth=3, n_out=2, seeds=[0, 1])
    x, y = torch.randn(6, 5), torch.nn.functional.one_hot(torch.arange(6) % 2, 2).float()
    rec = AlignmentRecorder(np.array([0, 2]), x, y)
    for step in range(4):
        rec(step, net)
    assert sorted(rec.values) == [0, 2] and rec.stacked().shape == (2, 2, 3)
    again = AlignmentRecorder(np.array([0, 2]), x, y)
    again.load_state_dict(rec.state_dict())
    np.testing.assert_array_equal(again.stacked(), rec.stacked())


def test_depth_fit_recovers_a_power_law_and_the_fixed_slope_intercept():
    depths = np.repeat(np.arange(10, 101, 10), 2)
    exact = depth_fit(depths, np.exp(0.3) * depths ** 0.6)
    assert exact.slope == pytest.approx(0.6) and exact.intercept == pytest.approx(0.3)
    assert exact.fixed_intercept == pytest.approx(0.3)
    noisy_layers = np.round(2.0 * depths ** 0.7 * np.exp(np.random.default_rng(0).normal(0, 0.1, depths.size)))
    fit = depth_fit(depths, noisy_layers)
    assert fit.ci_low < 0.7 < fit.ci_high and fit.ci_low < fit.slope < fit.ci_high
    # the fixed-slope C is the mean residual of log l − 3/5 log L
    assert fit.fixed_intercept == pytest.approx(np.mean(np.log(noisy_layers) - 0.6 * np.log(depths)))


def test_early_rise_fraction():
    grid = alignment_grid(100, 3)
    curve = np.where(grid >= 10, 1.0, 0.0) * 0.8 + 0.2  # full rise by step 10
    assert early_rise_fraction(grid, curve) == pytest.approx(1.0)
    linear = grid / 100.0
    assert early_rise_fraction(grid, linear) == pytest.approx(0.1)
    assert early_rise_fraction(grid, np.ones(grid.size)) == 0.0


def test_small_helpers():
    assert lr_key(0.003) == "lr0_003" and lr_key(0.0005) == "lr0_0005" and lr_key(0.05) == "lr0_05"
    assert n_epochs(100, 0.03, 3) == 3 and n_epochs(300, 0.03, 3) == 9 and n_epochs(700, 1.0, 1) == 700
    assert n_epochs(100, 0.0, 1) == 1 and math.isclose(n_epochs(150, 0.05, 1), 8)


def test_config_store_resumes_finished_configurations(tmp_path):
    calls = []

    def compute(ckpt):
        calls.append(ckpt)
        return {"value": np.arange(3)}

    first = ConfigStore(tmp_path / "m.pt.ckpt")
    first.run("a", compute)
    assert calls == [tmp_path / "m.pt.ckpt.a"]
    second = ConfigStore(tmp_path / "m.pt.ckpt")  # a re-run after a kill
    np.testing.assert_array_equal(second.run("a", compute)["value"], np.arange(3))
    second.run("b", compute)
    assert len(calls) == 2
    second.clear()
    assert not list(tmp_path.iterdir())
    assert ConfigStore(None).run("c", compute)["value"].size == 3 and calls[-1] is None


def test_hierarchy_summary_uses_the_seed_mean_profile():
    grid = alignment_grid(100, 2)                       # 0, 1, 10, 100
    rise = (grid / 100.0)[:, None, None]
    peak_profile = np.array([0.1, 0.4, 0.3, 0.05])       # seed mean at the end; seeds differ
    offsets = np.array([0.02, -0.02])[None, :, None]
    alignment = 0.01 + rise * (peak_profile[None, None, :] + offsets)
    run = {"grid": grid, "alignment": alignment, "epoch_train_loss": np.ones((2, 2)), "steps": 100, "epochs": 2,
           "test_accuracy": np.array([80.0, 82.0]), "test_loss": np.array([0.5, 0.7]),
           "train_accuracy": np.array([90.0, 90.0]), "train_loss": np.array([0.2, 0.2])}
    result = Result()
    hierarchy_summary(run, "x", result)
    m = result.metrics
    assert m["argmax_layer.x"] == 2
    assert m["layer_alignment.max.x"] == pytest.approx(0.41) == m["layer_alignment.peak.x"]
    assert m["layer_alignment.first.x"] == pytest.approx(0.11) and m["layer_alignment.last.x"] == pytest.approx(0.06)
    assert m["alignment_rise_frac_early.x"] == pytest.approx(0.1)
    assert m["test_accuracy.x"] == 81.0 and m["acc_gap.x"] == 9.0 and m["loss_gap.x"] == pytest.approx(0.4)
    assert result.arrays["x.alignment"].shape == (4, 4)
    assert set(m) == {f"{key}.x" for key in SUMMARY_METRICS}  # what a missing panel declares not_run
