"""lou2022 Fig 19 (App. G.1): the memory-bounded layer tangent kernels equal the Jacobian
reference, the spectrum summary (normalised eigenvalues of C Ψ_lᵀ Ψ_l C, stable rank) agrees
with numpy on a random matrix, label noise flips the stated share of labels, and the smoke
step writes every metric its targets name."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from repalign.experiments.lou2022 import spectra
from repalign.metrics import layer_tangent_kernels, stable_rank
from repalign.metrics.tangent import _jacobian_kernels
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]


@pytest.mark.parametrize("max_elements", [1, 100, 10**9])  # one example per block, a few, all at once
def test_blockwise_layer_kernels_equal_the_jacobian_reference(max_elements):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(),
                        nn.Linear(5 * 4 * 4, 3)).double()
    x = torch.randn(7, 3, 8, 8, dtype=torch.float64)
    reference = _jacobian_kernels(net, x)
    kernels = dict(layer_tangent_kernels(net, x, max_elements=max_elements))
    assert list(kernels) == list(reference)
    for name, k in kernels.items():
        torch.testing.assert_close(k, reference[name])


def test_spectrum_of_the_centred_kernel_matches_numpy():
    rng = np.random.default_rng(0)
    psi = rng.normal(size=(30, 12)) * np.geomspace(1, 0.01, 12)  # 12 features, decaying scales
    kernel = psi @ psi.T
    c = np.eye(30) - np.ones((30, 30)) / 30
    lam = np.sort(np.linalg.eigvalsh(c @ kernel @ c))[::-1]
    top, rank = spectra.kernel_spectrum(torch.tensor(kernel), k=5)
    np.testing.assert_allclose(top, lam[:5] / lam[0], rtol=1e-10)
    assert rank == pytest.approx(np.sum(lam ** 2) / lam[0] ** 2, rel=1e-10)
    assert rank == pytest.approx(float(stable_rank(torch.tensor(c @ kernel @ c), hermitian=True)), rel=1e-8)
    assert 1.0 <= rank <= 11  # at most the rank of the centred features


def test_random_labels_replace_the_stated_share():
    y = torch.arange(1000) % 10
    noisy = spectra.random_labels(y, 0.2, 10, seed=0)
    changed = (noisy != y).float().mean().item()
    assert 0.2 * 0.85 <= changed <= 0.2  # a redrawn label keeps its class with probability 1/10
    assert torch.equal(noisy, spectra.random_labels(y, 0.2, 10, seed=0))


def _fake_cifar(root: Path) -> None:
    rng = np.random.default_rng(0)
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    with open(cifar / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, fh)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        y = np.arange(20) % 10
        x = rng.integers(0, 255, size=(20, 3 * 32 * 32)).astype(np.uint8)
        with open(cifar / name, "wb") as fh:
            pickle.dump({b"data": x, b"labels": y.tolist()}, fh)


def test_smoke_step_writes_every_named_metric(tmp_path):
    _fake_cifar(tmp_path / "data")
    options = {"tier": "smoke", "device": "cpu", "data_root": str(tmp_path / "data"),
               "cache_dir": str(tmp_path / "cache")}
    run_step("model", "lou2022", "vgg19_labels", out=tmp_path / "vgg19_labels.pt", **options)
    run_step("artifact", "lou2022", "fig19", out=tmp_path / "fig19.json",
             inputs={"vgg19_labels": tmp_path / "vgg19_labels.pt"}, **options)
    record = read_result(tmp_path / "fig19.json")
    assert record["status"] == "ok"
    for target in TARGETS["fig19"]["targets"]:
        assert evaluate_target("lou2022", "fig19", target, record).status != "fail", target["id"]
    assert record["metrics"]["stable_rank.mean.clean"] >= 1.0
