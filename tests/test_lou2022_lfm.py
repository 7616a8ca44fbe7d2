"""lou2022 Figs 16–17 (Algorithm 1, layer-wise feature maximisation): the per-layer objective
against a naive double loop, the early-stopping rule with its patience, a synthetic task that
layer-wise training must learn, one LFM stage lowering its objective on a tiny problem, and the
smoke steps writing every metric their targets name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from repalign.data.idx import write_idx
from repalign.experiments.lou2022 import lfm
from repalign.experiments.lou2022.training import ImageTask
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]


def test_kernel_loss_matches_a_double_loop():
    torch.manual_seed(0)
    phi = torch.randn(6, 4)
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    naive = np.mean([(float(phi[i] @ phi[j]) - 0.5 * (y[i] == y[j]).item()) ** 2
                     for i in range(6) for j in range(6)])
    assert lfm.kernel_loss(phi, y).item() == pytest.approx(naive, rel=1e-6)
    # features whose Gram is exactly ½ δ have zero loss
    perfect = torch.eye(3)[y] / np.sqrt(2)
    assert lfm.kernel_loss(perfect, y).item() == pytest.approx(0.0, abs=1e-12)


def test_unit_norm_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    torch.testing.assert_close(lfm.UnitNorm()(x), torch.tensor([[0.6, 0.8], [0.0, 1.0]]))


def _run_stopping(losses: list[float], patience: int, steps_per_epoch: int = 2):
    layer = nn.Linear(1, 1, bias=False)
    values = iter(losses)
    stop = lfm.EarlyStopping(steps_per_epoch, lambda m: next(values), tol=1e-3, patience=patience)
    for step in range(steps_per_epoch * len(losses)):
        with torch.no_grad():
            layer.weight.fill_(step)
        if stop(step, layer):
            break
    return stop


def test_early_stopping_waits_out_its_patience_and_keeps_the_best():
    # a bump at epoch 2 and a plateau at epoch 4 (0.4 -> 0.3999) do not stop a patience of 2 ...
    stop = _run_stopping([1.0, 0.5, 0.55, 0.4, 0.3999, 0.35, 0.36, 0.351, 0.2], patience=2)
    assert stop.stopped and stop(100, nn.Linear(1, 1)) is True  # the shared loop ends on True
    assert stop.losses == [1.0, 0.5, 0.55, 0.4, 0.3999, 0.35, 0.36, 0.351]  # ... two epochs without a gain do
    assert stop.best_epoch == 5 and stop.best_state["weight"].item() == 10.0  # epoch 5 = step 10
    # patience 1 is the old zero-patience rule: it stops at the first bump
    stop = _run_stopping([1.0, 0.5, 0.55, 0.4], patience=1)
    assert stop.losses == [1.0, 0.5, 0.55] and stop.best_epoch == 1
    with pytest.raises(ValueError, match="patience must be >= 1"):
        lfm.EarlyStopping(1, lambda m: 0.0, tol=1e-3, patience=0)


def antipodal_cube(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """4 classes, each the two opposite corners of a 3-cube (+ noise, 17 noise dimensions):
    every class has mean zero, so no linear classifier of the input beats chance."""
    g = torch.Generator().manual_seed(seed)
    corner = torch.randint(0, 8, (n,), generator=g)
    signs = torch.stack([1 - 2 * (corner % 2), 1 - 2 * (corner // 2 % 2), 1 - 2 * (corner // 4)], 1).float()
    x = torch.randn(n, 20, generator=g) * 0.4
    x[:, :3] += signs
    return x, torch.minimum(corner, 7 - corner)


def test_layerwise_training_learns_a_task_no_linear_readout_of_the_input_can():
    """Algorithm 1 must build features: on the antipodal cube the input's best linear readout is at
    chance (25%), a depth-3 LFM net reaches ~90% (zero patience, the old rule, gave 79%), and every
    LFM layer ends well below the loss of all-zero features (a reading that rewards shrinking the
    features would sit near it)."""
    x, y = antipodal_cube(800, 0)
    x_test, y_test = antipodal_cube(400, 1)
    probe = torch.arange(40)
    task = ImageTask("cube", x, y, x_test, y_test, x[probe], torch.eye(4)[y[probe]], 800, [])
    s = replace(lfm.SETTINGS.smoke, depth=3, batch_size=64, max_layer_epochs=20)
    out = lfm.train_lfm(task, 16, s, seed=1, desc="test")
    assert out["test_accuracy"] > 85.0, out
    ratio = out["kernel_loss_ratio"]
    assert ratio.shape == (2,) and np.all(ratio < 0.75), ratio
    # the input itself: a trained linear readout stays near chance
    w = torch.zeros(20, 4, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    unit = lfm.UnitNorm()
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(unit(x) @ w, y).backward()
        opt.step()
    assert float(((unit(x_test) @ w).argmax(1) == y_test).float().mean()) < 0.4


def test_one_stage_lowers_the_layer_objective():
    torch.manual_seed(0)
    y = torch.arange(60) % 3
    x = lfm.UnitNorm()(torch.randn(60, 8) + 3 * torch.eye(8)[y])
    s = replace(lfm.SETTINGS.smoke, max_layer_epochs=30, batch_size=20)
    layer = lfm.he_linear(8, 16, torch.Generator().manual_seed(0), "cpu")
    act = nn.LeakyReLU(s.leaky_slope)

    def objective(m):
        with torch.no_grad():
            return float(lfm.kernel_loss(act(m(x)), y))

    before = objective(layer)
    out = lfm.train_stage(layer, lambda m, idx: lfm.kernel_loss(act(m(x[idx])), y[idx]), 60, s, 0, "test",
                          objective)
    assert objective(layer) == pytest.approx(out["val_loss"][out["epochs"]])
    assert objective(layer) < 0.5 * before


def _fake_mnist(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir(parents=True)
    for prefix in ("train", "t10k"):
        y = np.arange(100) % 10
        x = rng.integers(0, 100, size=(100, 28, 28))
        x[np.arange(100), y * 2, :] += 150
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", x.astype(np.uint8))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))


def test_smoke_step_writes_every_named_metric(tmp_path):
    _fake_mnist(tmp_path / "data")
    options = {"tier": "smoke", "device": "cpu", "data_root": str(tmp_path / "data"),
               "cache_dir": str(tmp_path / "cache")}
    run_step("model", "lou2022", "lfm_mnist", out=tmp_path / "lfm_mnist.pt", **options)
    run_step("artifact", "lou2022", "fig16", out=tmp_path / "fig16.json",
             inputs={"lfm_mnist": tmp_path / "lfm_mnist.pt"}, **options)
    record = read_result(tmp_path / "fig16.json")
    assert record["status"] == "ok"
    for target in TARGETS["fig16"]["targets"]:
        assert evaluate_target("lou2022", "fig16", target, record).status != "fail", target["id"]
    depth = lfm.SETTINGS.smoke.depth
    assert len(record["metrics"]) >= 3 * 6 and record["metrics"]["argmax_layer.lfm_w256"] <= depth
