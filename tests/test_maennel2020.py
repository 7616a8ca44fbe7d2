"""maennel2020 App. A protocol and the cheap artifacts.

The first four tests are the four bugs of a public reproduction (the issue's list); each
asserts something the wrong version gets wrong, and checks that the wrong version does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repalign.experiments.maennel2020 import data_init, eigen, protocol, tau, transfer_function
from repalign.metrics import patch_covariance


def test_filters_flatten_in_the_patch_order_of_the_covariance():
    """Bug 1: w Σ wᵀ must be the variance of the conv outputs, which needs the (C, kh, kw) order."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(20, 3, 8, 8, generator=g, dtype=torch.float64)
    images[:, 1] += images[:, 0]  # channels correlated, so the order matters
    conv = nn.Conv2d(3, 5, 3, bias=False).double()
    cov = patch_covariance(images, 3)
    out = F.conv2d(images, conv.weight).permute(0, 2, 3, 1).reshape(-1, 5)
    w = protocol.filter_matrix(conv)
    torch.testing.assert_close(torch.diagonal(w @ cov @ w.T), out.var(0))
    wrong = conv.weight.detach().permute(0, 2, 3, 1).reshape(5, -1)  # (kh, kw, C): channels last
    assert not torch.allclose(torch.diagonal(wrong @ cov @ wrong.T), out.var(0), rtol=1e-3)


def test_eigenvectors_are_the_columns():
    """Bug 2: column i of eigh's matrix is the eigenvector; its row i is not."""
    a = torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sym = a @ a.T
    evals, vecs = protocol.eigenbasis(sym)
    assert torch.all(evals[:-1] >= evals[1:])
    for i in range(6):
        torch.testing.assert_close(sym @ vecs[:, i], evals[i] * vecs[:, i])
    assert not torch.allclose(sym @ vecs[0], evals[0] * vecs[0])
    # the data-only filters (Table 6's middle eigenvectors) are those columns
    filters = data_init.chosen_filters(sym, "middle", 1, torch.Generator())
    torch.testing.assert_close(filters, vecs[:, 3:6].T)


def test_init_scale_scales_every_weight_and_biases_start_at_zero():
    """Bug 3: init_scale must multiply the He-normal deviation."""
    one = protocol.make_model("simple_cnn", 10, 0, 1.0, "cpu", n_conv=2, filters=8, units=16)
    half = protocol.make_model("simple_cnn", 10, 0, 0.5, "cpu", n_conv=2, filters=8, units=16)
    for (name, a), (_, b) in zip(one.named_parameters(), half.named_parameters()):
        if name.endswith("bias"):
            assert torch.count_nonzero(a) == 0 and torch.count_nonzero(b) == 0
        else:
            torch.testing.assert_close(b, 0.5 * a)
    fan_in = 3 * 9
    assert float(one.conv1.weight.detach().std()) == pytest.approx(np.sqrt(2 / fan_in), rel=0.25)


def test_logits_are_not_passed_through_a_relu():
    """Bug 4: the head is linear, so logits take negative values and the loss sees them raw."""
    net = protocol.make_model("simple_cnn", 10, 0, 1.0, "cpu", n_conv=1, filters=8, units=16)
    assert isinstance(list(net.children())[-1], nn.Linear)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    logits = net(protocol.to_unit_range(x))
    assert (logits < 0).any()
    y = torch.zeros(16, dtype=torch.int64)
    losses = protocol.fit(net, x, y, 1, 0.0, seed=0)  # lr 0: the loss of the initial model
    assert losses[0] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert losses[0] != pytest.approx(float(F.cross_entropy(torch.relu(logits), y)), rel=1e-3)


def test_splits_are_disjoint_and_labels_uniform_and_seeded():
    up, down = protocol.disjoint_splits(1000, 300, 500, seed=3)
    assert len(set(up.tolist()) | set(down.tolist())) == 800
    y = protocol.random_labels(50000, 5, seed=4)
    assert torch.equal(y, protocol.random_labels(50000, 5, seed=4))
    assert not torch.equal(y, protocol.random_labels(50000, 5, seed=5))
    counts = torch.bincount(y, minlength=5).double() / y.numel()
    assert torch.all((counts - 0.2).abs() < 0.01)
    with pytest.raises(ValueError, match="exceed"):
        protocol.disjoint_splits(100, 60, 50, seed=0)


def test_transfer_rescales_each_layer_to_its_init_norm_and_keeps_the_fresh_head():
    pre = protocol.make_model("simple_cnn", 5, 0, 1.0, "cpu", n_conv=2, filters=4, units=8)
    norms = protocol.layer_norms(pre)
    with torch.no_grad():
        for p in pre.parameters():
            p.mul_(3.0).add_(0.1)
    fresh = protocol.make_model("simple_cnn", 10, 1, 1.0, "cpu", n_conv=2, filters=4, units=8)
    out = protocol.transfer(pre, fresh, norms)
    for name, value in protocol.layer_norms(out).items():
        assert value == pytest.approx(norms[name], rel=1e-5)
    torch.testing.assert_close(out.head.weight, fresh.head.weight)
    first = protocol.transfer(pre, fresh, norms, n_layers=1)
    torch.testing.assert_close(first.conv2.weight, fresh.conv2.weight)
    assert not torch.allclose(first.conv1.weight, fresh.conv1.weight)
    # ResNet18's head is `linear`; a full transfer keeps the fresh 10-class head and copies GroupNorm
    res_pre = protocol.make_model("resnet18_v2_gn", 50, 0, 1.0, "cpu", width=4, groups=2)
    res_fresh = protocol.make_model("resnet18_v2_gn", 10, 1, 1.0, "cpu", width=4, groups=2)
    norms_pre = [m for m in res_pre.modules() if isinstance(m, nn.GroupNorm)]
    with torch.no_grad():
        norms_pre[0].weight.add_(1.0)
    res = protocol.transfer(res_pre, res_fresh, None)
    norms_out = [m for m in res.modules() if isinstance(m, nn.GroupNorm)]
    torch.testing.assert_close(norms_out[0].weight, norms_pre[0].weight)
    torch.testing.assert_close(res.linear.weight, res_fresh.linear.weight)


def test_accuracy_is_measured_on_the_whole_set():
    net = protocol.make_model("simple_cnn", 2, 0, 1.0, "cpu", n_conv=1, filters=4, units=8)
    x = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    pred = net(protocol.to_unit_range(x)).argmax(1)
    curve = protocol.AccuracyCurve([0], x, pred)
    curve.before_training(net)
    assert curve.records[0] == 1.0  # every one of the 300 examples, not a 256-minibatch


def test_filter_snapshots_do_not_alias_the_live_weights():
    net = protocol.make_model("simple_cnn", 2, 0, 1.0, "cpu", n_conv=1, filters=4, units=8)
    snap = transfer_function.snapshot_filters(0, net)
    with torch.no_grad():
        net.conv1.weight.add_(1.0)
    assert not torch.allclose(snap, transfer_function.snapshot_filters(1, net))


def test_shape_summary_of_a_rising_then_falling_curve():
    sigma = np.linspace(0.1, 3, 30)
    s = transfer_function.shape_summary(sigma[::-1], (sigma * np.exp(-sigma))[::-1])
    assert s["rise_frac"] > 0.05 and s["fall_frac"] > 0.05
    assert transfer_function.shape_summary(sigma, sigma)["spearman"] == pytest.approx(1.0)


def test_angle_spread_follows_the_fisher_information():
    lam = eigen.fisher_lambda(1000, 906.6)
    assert 1000 * (lam - 1) ** 2 / lam == pytest.approx(906.6)
    angles = eigen.leading_angles(lam, 1000, 200, torch.Generator().manual_seed(0))
    assert angles.std(ddof=1) == pytest.approx(1 / np.sqrt(906.6), rel=0.2)


def test_eigen_overlaps_of_identical_and_rotated_covariances():
    cov = torch.diag(torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64))
    _, same = eigen.eigen_overlaps(cov, cov)
    torch.testing.assert_close(same, torch.ones(3, dtype=torch.float64))
    c, s_ = np.cos(0.3), np.sin(0.3)
    rot = torch.tensor([[c, -s_, 0], [s_, c, 0], [0, 0, 1]], dtype=torch.float64)
    _, turned = eigen.eigen_overlaps(cov, rot @ cov @ rot.T)
    torch.testing.assert_close(turned, torch.tensor([c, c, 1.0], dtype=torch.float64))


def test_misalignment_control_keeps_the_eigenvalues():
    a = torch.randn(5, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cov = a @ a.T
    control = transfer_function.random_basis_cov(cov, seed=0)
    torch.testing.assert_close(torch.linalg.eigvalsh(control), torch.linalg.eigvalsh(cov))


def test_tau_sequences_match_app_e3():
    f1, f2, f3 = (tau.tau_sequence(n) for n in ("f1", "f2", "f3"))
    assert len(f1) == 16 and np.all(f2 == 1)
    assert f1[0] < f1.max() and f3[0] / f3.max() > f1[0] / f1.max()
    assert 1 <= min(f1.min(), f3.min()) and max(f1.max(), f3.max()) <= 4


def test_data_initialised_layers_keep_the_scale_they_are_told():
    x = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8)
    he = data_init.table_net(0, "cpu")
    by_norm = data_init.data_initialise(data_init.table_net(0, "cpu"), x, 2, "f1", 0)
    by_std = data_init.data_initialise(data_init.table_net(0, "cpu"), x, 1, "f2", 0, scale="output_std")
    assert float(by_norm.conv2.weight.norm()) == pytest.approx(float(he.conv2.weight.norm()), rel=1e-5)
    assert torch.count_nonzero(by_norm.conv1.bias) == 0
    h = protocol.to_unit_range(x)
    with torch.no_grad():
        assert float(by_std.conv1(h).std()) == pytest.approx(float(he.conv1(h).std()), rel=1e-3)
    with pytest.raises(ValueError, match="filter scale"):
        data_init.data_initialise(data_init.table_net(0, "cpu"), x, 1, "f1", 0, scale="bogus")
