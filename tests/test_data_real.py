"""The real offline copies in ../shared/data (or $REPALIGN_DATA). Skipped where absent."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repalign.data import load_dataset, to_float

_ENV = os.environ.get("REPALIGN_DATA")
SHARED = Path(_ENV) if _ENV else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _need(sub: str) -> Path:
    if not (SHARED / sub).is_dir():
        pytest.skip(f"real data folder {SHARED / sub} absent (set REPALIGN_DATA to the offline "
                    "copy, e.g. ../shared/data); synthetic-file tests cover the loader")
    return SHARED


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("repalign-cache")


def test_mnist_real(cache_dir):
    root = _need("mnist")
    train = load_dataset("mnist", "train", root=root, cache_dir=cache_dir)
    test = load_dataset("mnist", "test", root=root, cache_dir=cache_dir)
    assert train.n == 10_000 and test.n == 10_000  # the shared train file holds 10,000
    assert train.x.shape == (10_000, 1, 28, 28) and train.x.dtype == torch.uint8
    for s in (train, test):
        assert sorted(s.y.unique().tolist()) == list(range(10))
        assert s.y.dtype == torch.int64
    assert 30 < train.x.float().mean().item() < 40  # MNIST mean pixel is about 33


def test_fashion_mnist_real(cache_dir):
    root = _need("fashion-mnist")
    train = load_dataset("fashion_mnist", "train", root=root, cache_dir=cache_dir)
    assert train.n == 60_000 and train.x.shape[1:] == (1, 28, 28)
    assert torch.equal(torch.bincount(train.y), torch.full((10,), 6000))
    assert load_dataset("fashion_mnist", "test", root=root, cache_dir=cache_dir).n == 10_000


def test_cifar10_test_real_and_cache(cache_dir):
    root = _need("cifar10-jpeg")
    t0 = time.perf_counter()
    cold = load_dataset("cifar10", "test", root=root, cache_dir=cache_dir)
    cold_s = time.perf_counter() - t0
    assert "from cache" not in cold.source and "JPEG" in cold.source
    assert cold.x.shape == (10_000, 3, 32, 32) and cold.x.dtype == torch.uint8
    assert torch.equal(torch.bincount(cold.y), torch.full((10,), 1000))
    assert cold.classes[0] == "airplane" and cold.classes[-1] == "truck"
    means = cold.x.float().mean(dim=(0, 2, 3))
    torch.testing.assert_close(means, torch.tensor([125.2, 122.6, 113.1]), atol=3.0, rtol=0)
    assert list((cache_dir / "cifar10").glob("test-*.x.npy"))
    t0 = time.perf_counter()
    warm = load_dataset("cifar10", "test", root=root, cache_dir=cache_dir)
    warm_s = time.perf_counter() - t0
    assert "from cache" in warm.source
    assert torch.equal(warm.x, cold.x) and torch.equal(warm.y, cold.y)
    assert warm_s < cold_s
    # the batched torchvision decode is pixel-identical to Pillow's
    with zipfile.ZipFile(root / "cifar10-jpeg" / "test.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))
        for i in range(0, 10_000, 997):
            ref = np.array(Image.open(io.BytesIO(zf.read(names[i]))).convert("RGB"))
            assert torch.equal(cold.x[i].permute(1, 2, 0), torch.from_numpy(ref)), names[i]
    f = to_float(warm.x[:100])
    assert f.min() >= -1.0 and f.max() <= 1.0
