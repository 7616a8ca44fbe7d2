"""imani2022 task sampling: Fig 2's class-balanced draw ("5000 points from each class")."""

from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.data.idx import write_idx
from repalign.experiments.imani2022 import spectra
from repalign.experiments.imani2022.tasks import load_task
from repalign.experiments.registry import Context


def write_mnist(root: Path, counts: dict[int, int]) -> None:
    """A tiny MNIST folder whose train and test splits hold ``counts[c]`` images of class c."""
    labels = np.concatenate([np.full(n, c, dtype=np.uint8) for c, n in counts.items()])
    labels = labels[np.random.default_rng(0).permutation(len(labels))]
    images = np.random.default_rng(1).integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    (root / "mnist").mkdir(parents=True)
    for prefix in ("train", "t10k"):
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.fixture
def ctx(tmp_path) -> Context:
    write_mnist(tmp_path / "data", {0: 30, 1: 50, 2: 20})   # unbalanced, like the offline copy
    return Context("imani2022", "fig2", "smoke", spectra.SETTINGS.smoke, torch.device("cpu"), [0],
                   tmp_path / "data", tmp_path / "cache")


def class_counts(y: torch.Tensor) -> tuple[int, int]:
    return int((y < 0).sum()), int((y > 0).sum())


def test_balanced_draw_cuts_both_classes_to_the_smaller_one(ctx):
    everything = load_task(ctx, "mnist", None, 0, seed=0, balanced=True)
    assert class_counts(everything.y_train) == (30, 30)
    asked = load_task(ctx, "mnist", 40, 0, seed=0, balanced=True)
    assert class_counts(asked.y_train) == (20, 20)
    too_many = load_task(ctx, "mnist", 10_000, 0, seed=0, balanced=True)
    assert class_counts(too_many.y_train) == (30, 30)
    assert "class 0/1: train 30/30" in too_many.note()
    other = load_task(ctx, "mnist", 40, 0, seed=1, balanced=True)
    assert not torch.equal(asked.x_train, other.x_train)           # the draw depends on the seed


def test_unbalanced_draw_is_unchanged_for_the_sweeps(ctx):
    assert class_counts(load_task(ctx, "mnist", None, 0, seed=0).y_train) == (30, 50)


def test_fig2_data_is_class_balanced(ctx):
    """Fig 2 samples equally from both classes (the paper: 5,000 of each)."""
    ctx.settings = spectra.ShuffledSettings(n_runs=1, epochs=1, n_points=10_000)
    assert class_counts(spectra._data(ctx, 0).y_train) == (30, 30)


def test_balanced_regression_is_refused(ctx):
    with pytest.raises(ValueError, match="balanced=True needs a classification task"):
        load_task(ctx, "ct", 10, 10, seed=0, balanced=True)
