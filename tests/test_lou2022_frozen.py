"""lou2022 Fig 18 / Table 4 (frozen networks): blockwise frozen layers equal the materialised
network, the readout initialisation follows the noise scale, training the readout on fixed
features is logistic regression, and the smoke steps write every metric their targets name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.data.idx import write_idx
from repalign.experiments.lou2022 import frozen
from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.results import read_arrays, read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]


def test_blockwise_features_equal_the_materialised_network(monkeypatch):
    monkeypatch.setattr(frozen, "COL_BLOCK", 3)  # several blocks, the last one partial
    x = torch.randn(5, 7)
    feats = frozen.frozen_features(x.clone(), width=8, n_frozen=3, seed=11)
    layers = [frozen.frozen_layer(11, layer, 7 if layer == 1 else 8, 8, torch.device("cpu"))
              for layer in (1, 2, 3)]
    assert layers[0].shape == (7, 8) and layers[1].shape == (8, 8)
    readout = torch.randn(8, 2)
    net = StackedFFNN.from_weights([w.unsqueeze(0) for w in layers] + [readout.unsqueeze(0)], [11])
    torch.testing.assert_close(net(x)[0], feats @ readout)  # z_4 = W_4 φ(z_3)
    # the same seed gives the same network; another seed another one
    torch.testing.assert_close(frozen.frozen_features(x.clone(), 8, 3, 11), feats)
    assert not torch.allclose(frozen.frozen_features(x.clone(), 8, 3, 12), feats)


def test_frozen_layers_are_he_initialised():
    w = frozen.frozen_layer(0, 2, 500, 600, torch.device("cpu"))
    assert w.var().item() == pytest.approx(2 / 500, rel=0.05)


def test_readout_variance_is_noise_squared_times_two_over_width():
    readout = frozen.StackedReadout(4000, 10, (0.01, 1.0), seed=0, device=torch.device("cpu"))
    assert readout.weight[0].var().item() == pytest.approx(0.01 ** 2 * 2 / 4000, rel=0.05)
    assert readout.weight[1].var().item() == pytest.approx(2 / 4000, rel=0.05)
    assert frozen.noise_key(0.01) == "noise0_01" and frozen.noise_key(1.0) == "noise1_0"


def test_readout_accuracy_counts_argmax_hits():
    readout = frozen.StackedReadout(2, 2, (1.0,), seed=0, device=torch.device("cpu"))
    with torch.no_grad():
        readout.weight.copy_(torch.eye(2).unsqueeze(0))
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 1, 1])
    np.testing.assert_allclose(frozen.readout_accuracy(readout, feats, y), [75.0])


def _fake_mnist(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir(parents=True)
    for prefix in ("train", "t10k"):
        y = np.arange(100) % 10
        x = rng.integers(0, 100, size=(100, 28, 28))
        x[np.arange(100), y * 2, :] += 150  # one bright row per class
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", x.astype(np.uint8))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))


def test_smoke_steps_write_every_named_metric(tmp_path):
    _fake_mnist(tmp_path / "data")
    options = {"tier": "smoke", "device": "cpu", "data_root": str(tmp_path / "data"),
               "cache_dir": str(tmp_path / "cache")}
    run_step("model", "lou2022", "frozen_mnist", out=tmp_path / "frozen_mnist.pt", **options)
    for artifact in ("fig18", "table4"):
        run_step("artifact", "lou2022", artifact, out=tmp_path / f"{artifact}.json",
                 inputs={"frozen_mnist": tmp_path / "frozen_mnist.pt"}, **options)
        record = read_result(tmp_path / f"{artifact}.json")
        assert record["status"] == "ok"
        for target in TARGETS[artifact]["targets"]:
            scored = evaluate_target("lou2022", artifact, target, record)
            assert scored.status != "fail", (target["id"], scored.reason)
            if "75000" in target["id"] or "10000" in target["id"]:  # paper-tier widths
                assert scored.status == "not_run"
    metrics = read_result(tmp_path / "table4.json")["metrics"]
    assert 0 <= metrics["max_test_accuracy.width2048"] <= 100
    # Table 4's target metrics are the s = 0.01 readout (Fig 18a's run); s = 1 is recorded beside them
    arrays = read_arrays(tmp_path / "table4.json")
    small = list(arrays["noise_scales"]).index(0.01)
    for split in ("train", "test"):
        per_epoch = arrays[f"width2048.{split}_accuracy"]  # [epochs, noise scales]
        assert metrics[f"max_{split}_accuracy.width2048"] == pytest.approx(per_epoch[:, small].max())
        assert metrics[f"max_{split}_accuracy_noise1_0.width2048"] == pytest.approx(per_epoch[:, 1 - small].max())
