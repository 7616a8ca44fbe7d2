"""lou2022 Figs 16–17 (Algorithm 1, layer-wise feature maximisation): the per-layer objective
against a naive double loop, the early-stopping rule, one LFM stage lowering its objective on a
tiny problem, and the smoke steps writing every metric their targets name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from repalign.data.idx import write_idx
from repalign.experiments.lou2022 import lfm
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target

ROOT = Path(__file__).resolve().parents[1]
TARGETS = yaml.safe_load((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]


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


def test_early_stopping_stops_at_the_first_increase_or_plateau_and_keeps_the_best():
    layer = nn.Linear(1, 1, bias=False)
    losses = iter([1.0, 0.5, 0.4, 0.3999, 0.1, 0.05])  # plateau at epoch 3 (0.4 -> 0.3999)
    stop = lfm.EarlyStopping(steps_per_epoch=2, val_loss=lambda m: next(losses), tol=1e-3)
    for step in range(0, 12):
        with torch.no_grad():
            layer.weight.fill_(step)
        stop(step, layer)
    assert stop.stopped and stop(12, layer) is True  # the shared loop ends on True
    assert stop.losses == [1.0, 0.5, 0.4, 0.3999]
    assert stop.best_epoch == 3 and stop.best_state["weight"].item() == 6.0  # epoch 3 = step 6
    increase = iter([1.0, 0.5, 0.7, 0.1])
    stop = lfm.EarlyStopping(1, lambda m: next(increase), 1e-3)
    for step in range(4):
        stop(step, layer)
    assert stop.losses == [1.0, 0.5, 0.7] and stop.best_epoch == 1


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
