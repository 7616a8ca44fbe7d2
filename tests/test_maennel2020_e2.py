"""maennel2020 App. E.2 (Figs 21, 22): the CIFAR-10 approximations, f_sigma_rel_dev, the strided Simple CNN."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from repalign.experiments.maennel2020 import approximations as approx
from repalign.experiments.maennel2020 import cifar_approximations as e2
from repalign.experiments.maennel2020.protocol import filter_matrix, make_model
from repalign.experiments.maennel2020.transfer_function import f_sigma_rel_dev
from repalign.metrics import patch_covariance, transfer_function
from repalign.targets import evaluate_target, read_yaml

from test_maennel2020_steps import ROOT


def four_filters(a: float, b: float) -> torch.Tensor:
    """Filters (±a, ±b): mean 0, Σ_w = diag(a², b²)·4/3 exactly (unbiased), aligned with a diagonal Σ_x."""
    return torch.tensor([[a, b], [a, -b], [-a, b], [-a, -b]], dtype=torch.float64)


def test_f_sigma_rel_dev_on_an_analytic_transfer_function():
    data_cov = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))  # σ = 2, 1; v_i = e_i
    sigma, tau_b = transfer_function(data_cov, four_filters(2.0, 1.0))  # τ = sqrt(4/3)·(2, 1)
    _, tau_a = transfer_function(data_cov, four_filters(2.0, 1.5))      # τ = sqrt(4/3)·(2, 1.5)
    assert np.allclose(sigma.numpy(), [2.0, 1.0])
    assert np.allclose(tau_b.numpy(), math.sqrt(4 / 3) * np.array([2.0, 1.0]))
    # max_i |τa − τb| / max τb = 0.5 / 2 (the sqrt(4/3) cancels)
    assert f_sigma_rel_dev(tau_a.numpy(), tau_b.numpy()) == pytest.approx(0.25)
    assert f_sigma_rel_dev(tau_b.numpy(), tau_a.numpy()) == pytest.approx(0.25)  # same peak: symmetric here
    assert f_sigma_rel_dev(tau_b.numpy(), tau_b.numpy()) == 0.0
    assert f_sigma_rel_dev(2 * tau_b.numpy(), tau_b.numpy()) == pytest.approx(1.0)  # scale counts, ref's peak is unit
    with pytest.raises(ValueError, match="same σ"):
        f_sigma_rel_dev(np.ones(3), np.ones(4))


def test_tiles_are_the_stride3_patches_in_conv_weight_order():
    x = torch.randn(2, 3, 27, 27)
    tiles = approx.to_tiles(x)
    assert tiles.shape == (2, 81, 27)
    assert torch.equal(tiles[1, 1], x[1, :, 0:3, 3:6].reshape(-1))    # position 1: row 0, column 1
    assert torch.equal(tiles[0, 9], x[0, :, 3:6, 0:3].reshape(-1))    # position 9: row 1, column 0
    assert torch.equal(approx.from_tiles(tiles, 27), x)
    with pytest.raises(ValueError, match="crop it first"):
        approx.to_tiles(torch.zeros(1, 3, 32, 32))
    assert approx.center_crop(torch.zeros(1, 3, 32, 32), 27).shape[-2:] == (27, 27)


def tile_ids(n: int) -> torch.Tensor:
    """Images whose every tile is filled with its image's index."""
    return approx.from_tiles(torch.arange(n, dtype=torch.float32)[:, None, None].expand(n, 81, 27).clone(), 27)


def test_shuffling_keeps_each_positions_patches_but_mixes_images():
    n = 40
    x = tile_ids(n)
    shuffled = approx.to_tiles(approx.shuffle_patches(x, torch.Generator().manual_seed(0)))[..., 0]  # [n, 81] ids
    for p in range(81):  # every position keeps its set of patches
        assert torch.equal(shuffled[:, p].sort().values, torch.arange(n, dtype=torch.float32))
    # an image's tiles now come from many different source images
    assert min(len(set(row.tolist())) for row in shuffled) > 40 // 2


def scaled_by_row(n: int, generator: torch.Generator) -> torch.Tensor:
    """Images whose top tile row has pixel std 2 and bottom tile row std 0.5 (everything else std 1)."""
    x = torch.randn(n, 3, 27, 27, generator=generator, dtype=torch.float64)
    x[..., :3, :] *= 2.0
    x[..., 24:, :] *= 0.5
    return x


def test_per_position_gaussian_keeps_the_covariance_of_each_position_and_the_global_one_does_not():
    g = torch.Generator().manual_seed(0)
    x = scaled_by_row(1000, g)
    per_position = approx.position_covariances(approx.per_position_gaussian(x, g))
    overall = approx.position_covariances(approx.global_gaussian(x, g))
    top, bottom = 0, 80  # positions in the top and bottom tile rows
    assert torch.diagonal(per_position[top]).mean() == pytest.approx(4.0, rel=0.1)
    assert torch.diagonal(per_position[bottom]).mean() == pytest.approx(0.25, rel=0.1)
    ratio = torch.diagonal(overall[top]).mean() / torch.diagonal(overall[bottom]).mean()
    assert ratio == pytest.approx(1.0, rel=0.1)  # one covariance for every position
    for images in (approx.per_position_gaussian(x + 1, g), approx.global_gaussian(x + 1, g)):  # mean 0, not 1
        tiles = approx.to_tiles(images)
        assert (tiles.mean(0) / (tiles.std(0) / math.sqrt(len(tiles)))).abs().max() < 5


def test_global_gaussian_has_the_patch_covariance_and_independent_tiles():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1000, 3, 27, 27, generator=g, dtype=torch.float64)
    x = base + torch.roll(base, 1, dims=-1)  # neighbouring pixels correlated (0.5)
    sample = approx.global_gaussian(x, g)
    assert torch.allclose(patch_covariance(sample, 3, stride=3), patch_covariance(x, 3), atol=0.12)
    tiles = approx.to_tiles(sample)
    left, right = tiles[:, 0, 2], tiles[:, 1, 0]  # adjacent pixels across a tile border
    assert abs(float(torch.corrcoef(torch.stack([left, right]))[0, 1])) < 0.1
    real = approx.to_tiles(x)
    assert float(torch.corrcoef(torch.stack([real[:, 0, 2], real[:, 1, 0]]))[0, 1]) > 0.4


@pytest.mark.parametrize("stride, side", [(3, 3), (2, 6), (1, 23)])
def test_strided_simple_cnn_sizes_and_a_shared_first_layer(stride, side):
    net = make_model("simple_cnn", 10, 0, 1.0, "cpu", n_conv=2, filters=4, units=5, padding="valid",
                     stride=stride, image_size=27)
    assert net.conv2(net.conv1(torch.zeros(1, 3, 27, 27))).shape[-1] == side
    assert net.dense.in_features == 4 * side * side
    reference = make_model("simple_cnn", 10, 0, 1.0, "cpu", n_conv=2, filters=4, units=5, padding="valid",
                           stride=3, image_size=27)
    assert torch.equal(filter_matrix(net.conv1), filter_matrix(reference.conv1))  # one init for every setting
    with pytest.raises(ValueError, match="stride"):
        make_model("simple_cnn", 10, 0, 1.0, "cpu", stride=0)


def fake_payload(d: int = 27, m: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    init = torch.randn(m, d, generator=g, dtype=torch.float64)
    final = init + torch.randn(m, d, generator=g, dtype=torch.float64)
    runs = {name: {"init": init, "final": final, "stride": s, "loss_first": 2.3, "loss_last": 2.0}
            for name, s in e2.SETTINGS.items()}
    runs["real_stride1"] = {**runs["real_stride1"], "final": 3 * final}  # f(3W) = 3 f(W): rel dev 2 exactly
    return {"runs": runs, "data_cov": a @ a.T, "n_examples": 8, "steps": 1}


@pytest.mark.parametrize("artifact", ["fig21", "fig22"])
def test_figures_write_every_metric_their_targets_name(artifact):
    ctx = SimpleNamespace(load_model=lambda name: fake_payload())
    result = getattr(e2, artifact)(ctx)
    metrics = result.metrics
    if artifact == "fig22":
        assert metrics["f_sigma_rel_dev.real_stride1_vs_gaussian"] == pytest.approx(2.0)
        assert metrics["f_sigma_rel_dev.real_stride3_vs_gaussian"] == 0.0
    targets = read_yaml((ROOT / "paper_targets.yaml").read_text())["maennel2020"]["artifacts"][artifact]
    for target in targets["targets"]:
        record = evaluate_target("maennel2020", artifact, target, {"tier": "quick", "metrics": metrics})
        assert record.status in ("pass", "fail") and record.reason is None, (target["id"], record.reason)
