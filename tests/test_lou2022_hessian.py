"""lou2022 App. B.4–B.5 (Figs 5, 6): Hessian-vector products, Lanczos, layer energy and Approximation 1,
against explicit Hessians and analytic cases on tiny networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from repalign.experiments.lou2022.collinearity import (
    as_images,
    collinearity_summary,
    first_epoch_average,
    probe_logits,
)
from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.lou2022.hessian import (
    UPDATE_CORRELATIONS,
    FlatParams,
    hw_operator,
    layer_energy,
    loss_gradient,
    neg_label_gradient_corr,
    tangent_apply,
    top_abs_eigenpairs,
    update_hessian_correlation,
)
from repalign.experiments.lou2022.hw_spectrum import rise_times
from repalign.models import build


def _tiny_ffnn(depth: int = 3, seed: int = 0) -> nn.Sequential:
    return StackedFFNN(6, 5, depth, 3, [seed]).member(0).double()


def _probe(n: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).double()
    return x, y


def _explicit_hw(flat: FlatParams, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda t: (flat.output(t, x) * w).sum(), flat.theta)


def test_hvp_matches_the_explicit_hessian():
    flat, (x, y) = FlatParams.of(_tiny_ffnn()), _probe()
    w = loss_gradient(flat.output(flat.theta, x).detach(), y)
    hessian = _explicit_hw(flat, x, w)
    u = torch.randn(flat.theta.numel(), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(hw_operator(flat, x, w)(u), hessian @ u, rtol=1e-10, atol=1e-12)


def test_lanczos_top_eigenpairs_match_the_explicit_hessian():
    flat, (x, y) = FlatParams.of(_tiny_ffnn()), _probe()
    w = loss_gradient(flat.output(flat.theta, x).detach(), y)
    values, vectors = np.linalg.eigh(_explicit_hw(flat, x, w).numpy())
    order = np.argsort(-np.abs(values))[:4]
    assert np.all(np.diff(np.abs(values[order])) < -1e-6)  # distinct, so the eigenvectors are defined
    got_values, got_vectors = top_abs_eigenpairs(hw_operator(flat, x, w), flat.theta.numel(), 4,
                                                 device="cpu", dtype=torch.float64, tol=1e-12)
    np.testing.assert_allclose(got_values, values[order], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(got_vectors * vectors[:, order], axis=0)), 1.0, atol=1e-8)


def test_theorem_a_hw_theta_is_depth_minus_one_times_the_gradient():
    """App. B.4, Theorem A: for a bias-free ReLU FFNN of depth L, H_w θ = (L − 1) Ψ w."""
    depth = 4
    flat, (x, y) = FlatParams.of(_tiny_ffnn(depth)), _probe()
    w = loss_gradient(flat.output(flat.theta, x).detach(), y)
    torch.testing.assert_close(hw_operator(flat, x, w)(flat.theta),
                               (depth - 1) * tangent_apply(flat, flat.theta, x, w), rtol=1e-10, atol=1e-12)


def test_layer_energy_of_known_vectors():
    v = np.array([[1.0, 1.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]).T
    v /= np.linalg.norm(v, axis=0)
    np.testing.assert_allclose(layer_energy(v, [2, 3, 1]), [[2 / 3, 0.0, 1 / 3], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="blocks"):
        layer_energy(v, [2, 3])


def test_layer_energy_of_a_block_diagonal_matrix_sits_in_one_block():
    """Eigenvectors of a block-diagonal operator lie in one block each: their energy is one-hot."""
    blocks = [np.diag([5.0, 1.0]), np.diag([-7.0, 0.5, 0.1]), np.diag([3.0])]
    matrix = torch.from_numpy(np.block([[blocks[i] if i == j else np.zeros((len(blocks[i]), len(blocks[j])))
                                         for j in range(3)] for i in range(3)]))
    values, vectors = top_abs_eigenpairs(lambda u: matrix @ u, 6, 3, device="cpu", dtype=torch.float64)
    np.testing.assert_allclose(values, [-7.0, 5.0, 3.0])
    np.testing.assert_allclose(layer_energy(vectors, [2, 3, 1]), [[0, 1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-10)


def test_uniform_outputs_on_balanced_labels_are_exactly_anti_collinear():
    """App. B.5.1: with equal logits and balanced classes, w = 1/k − Y = −Ỹ, so −corr(Ỹ, w) = 1."""
    _, y = _probe(12)
    assert float(neg_label_gradient_corr(torch.zeros(12, 3), y)) == pytest.approx(1.0, abs=1e-12)
    noisy = 5 * torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    corr = neg_label_gradient_corr(torch.stack([torch.zeros(12, 3), noisy]), y)  # stacked models
    assert corr.shape == (2,) and corr[1] < 0.9


def test_update_follows_the_hessian_direction_when_w_is_collinear_with_labels():
    """App. B.5.2: with w = −cỸ exactly (zero last layer, balanced labels) and a small step, the
    change of ΨỸ is −η H_w ΨỸ to first order, so every correlation is 1, globally and per layer
    (the zeroed last layer has ΨỸ = 0 there: its correlation is undefined and not asserted)."""
    model, (x, y) = _tiny_ffnn(), _probe()
    with torch.no_grad():
        model[-1].weight.zero_()
    corr = update_hessian_correlation(model, x, y, lr=1e-6)
    n_layers = len(list(model.parameters()))
    assert corr.shape == (len(UPDATE_CORRELATIONS), 1 + n_layers)
    np.testing.assert_allclose(corr[:, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(corr[:, 1:-1], 1.0, atol=1e-6)
    assert next(model.parameters()).dtype == torch.float64  # the model is not modified


def test_a_small_step_changes_psi_y_by_its_first_order_term():
    """Approximation 2: for a step too small to flip a ReLU, Ψ(t+1)Ỹ − Ψ(t)Ỹ = H_Ỹ(θ(t+1) − θ(t)) exactly
    (the net is piecewise linear), so the update correlates with its first-order term at 1 in every
    layer and both Hessian-direction correlations agree; w is not collinear with Ỹ here."""
    model, (x, y) = _tiny_ffnn(seed=3), _probe()
    actual, first_order, approx2 = update_hessian_correlation(model, x, y, lr=1e-9)
    assert abs(first_order[0]) < 0.999
    np.testing.assert_allclose(actual, first_order, atol=1e-6)
    np.testing.assert_allclose(approx2, 1.0, atol=1e-6)


def test_per_layer_correlation_is_not_the_global_one():
    """The global correlation pools the layers: it can be high while a layer's is not, so each layer
    is reported. A large step flips ReLUs, and the layers then differ from each other and the whole."""
    model, (x, y) = _tiny_ffnn(seed=3), _probe()
    corr = update_hessian_correlation(model, x, y, lr=0.5)
    per_layer = corr[0, 1:]
    assert np.ptp(per_layer) > 0.05 and not np.allclose(per_layer, corr[0, 0], atol=0.05)
    assert corr[2, 0] < 0.999  # Approximation 2 no longer exact


def test_first_epoch_summary_of_a_known_curve():
    grid = np.array([0, 1, 2, 4, 8, 16])
    curve = np.array([0.8, 0.9, 1.0, 0.95, 0.5, 0.4])
    summary = collinearity_summary(grid, curve, epoch_steps=8)
    # trapezoids: (0.85 + 0.95) * 1 + 0.975 * 2 + 0.725 * 4 = 6.65 over 8 iterations
    assert summary == pytest.approx({"init": 0.8, "early": 6.65 / 8, "max_first_epoch": 1.0,
                                     "first_below_0p9_step": 8.0, "end": 0.4})
    with pytest.raises(ValueError, match="epoch end"):
        first_epoch_average(grid, curve, 5)


def test_rise_times_pick_start_half_rise_and_end():
    grid = np.array([0, 1, 2, 4, 8])
    assert rise_times(grid, np.array([0.1, 0.2, 0.35, 0.5, 0.45])) == (0, 2, 4)  # half of the 0.4 rise: 0.3


def test_probe_logits_leave_batchnorm_statistics_alone():
    net = build("resnet18", 10, seed=0, width=2).train()
    x = as_images(torch.randn(6, 3 * 32 * 32))
    assert x.shape == (6, 3, 32, 32) and as_images(torch.randn(2, 784)).shape == (2, 1, 28, 28)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    logits = probe_logits(net, x)
    assert logits.shape == (6, 10) and not logits.requires_grad
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(logits, net(x).detach())  # batch statistics, as in a training step
