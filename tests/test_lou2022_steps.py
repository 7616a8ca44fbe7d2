"""Every lou2022 step at the smoke tier, read from the session's smoke DAG: each artifact writes
every metric its targets name. KMNIST and CIFAR-100 need a download: offline, Fig 7's KMNIST panel
and Fig 11 (VGG19 on CIFAR-100) are ``not_run`` with a reason that names the dataset.
The theory artifact also meets its numeric targets at the smoke and quick tiers."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.data.idx import write_idx
from repalign.experiments import ARTIFACTS
from repalign.experiments.lou2022.sweep import SETTINGS
from repalign.experiments.lou2022.training import load_image_task
from repalign.experiments.registry import Context
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]
N_PER_SPLIT = 200
DOWNLOAD_ONLY = {"fig11": "cifar100"}  # artifacts whose whole dataset is absent from ../shared/data


def _images(n: int, shape: tuple, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0..9 in turn; each class brightens its own band of pixels, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 100, size=(n, *shape))
    flat = x.reshape(n, -1)
    band = flat.shape[1] // 10
    for i, label in enumerate(y):
        flat[i, label * band:(label + 1) * band] += 150
    return x.astype(np.uint8), y.astype(np.uint8)


def _write_fake_mnist(root: Path) -> None:
    (root / "mnist").mkdir(parents=True)
    for seed, prefix in enumerate(("train", "t10k")):
        x, y = _images(N_PER_SPLIT, (28, 28), seed)
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", y)


def implemented() -> list[str]:
    return sorted(name for paper, name in ARTIFACTS if paper == "lou2022")


def test_every_target_in_lou2022_has_an_experiment_or_is_listed_as_missing():
    assert set(implemented()) <= set(TARGETS)
    assert {"theory", "fig1", "fig2", "fig3", "fig7", "fig8", "fig9", "fig10", "table1", "table2", "table3"} \
        <= set(implemented())


@pytest.mark.parametrize("artifact", implemented())
def test_smoke_dag_step_writes_every_named_metric(smoke_dag, artifact):
    """The session's smoke DAG (real data from $REPALIGN_DATA) ran this step; KMNIST is absent here."""
    record = read_result(smoke_dag / "results" / "lou2022" / f"{artifact}.json")
    if record["status"] == "not_run" and not os.environ.get("REPALIGN_DATA"):
        pytest.skip(f"no $REPALIGN_DATA: {record['reason']}")
    if record["status"] == "not_run" and artifact in DOWNLOAD_ONLY:
        assert f"dataset '{DOWNLOAD_ONLY[artifact]}' not found" in record["reason"], record["reason"]
        return
    assert record["status"] == "ok", record.get("reason")
    for target in TARGETS[artifact]["targets"]:
        scored = evaluate_target("lou2022", artifact, target, record)
        assert scored.status != "fail", (target["id"], scored.reason)
        if "kmnist" in target["id"]:  # KMNIST needs a download: its panel is declared not run
            assert scored.status == "not_run" and "kmnist" in scored.reason.lower()


@pytest.mark.parametrize("tier", ["smoke", "quick"])
def test_theory_meets_its_targets(tmp_path, tier):
    run_step("artifact", "lou2022", "theory", tier=tier, out=tmp_path / "theory.json", device="cpu")
    record = read_result(tmp_path / "theory.json")
    for target in TARGETS["theory"]["targets"]:
        scored = evaluate_target("lou2022", "theory", target, record)
        assert scored.status == "pass", (target["id"], scored.value, scored.reason)
    m = record["metrics"]  # implementation checks (not paper claims): g(0) = 1/pi, g(1) = 1, l* grows with L
    assert m["correlation_map.g_at_0"] == pytest.approx(1 / np.pi, abs=1e-12)
    assert m["correlation_map.g_at_1"] == pytest.approx(1.0, abs=1e-12)
    assert m["equilibrium_index.depth1000"] > 3 * m["equilibrium_index.depth100"]
    # over Fig 3's depths the infinite-width law is steeper than its 3/5 asymptote
    assert 0.8 < m["equilibrium_slope_fig3"] < 0.95 and m["equilibrium_slope_fig3"] > m["equilibrium_slope"] + 0.15


def test_an_epoch_is_one_pass_over_the_examples_present_unless_told_otherwise(tmp_path):
    """The offline MNIST copy holds 10,000 of 60,000 images: by default an epoch is one pass over
    the split present (the run saw each example 6x per epoch before); "paper_steps" keeps the
    paper's SGD steps; the rule is stated in the notes every result inherits."""
    _write_fake_mnist(tmp_path / "data")
    ctx = Context("lou2022", "test", "smoke", None, torch.device("cpu"), [0], tmp_path / "data", tmp_path / "cache")
    whole = load_image_task(ctx, "mnist", replace(SETTINGS.smoke, n_train=None))
    assert whole.x_train.shape[0] == N_PER_SPLIT and whole.epoch_size == N_PER_SPLIT
    assert f"({N_PER_SPLIT} examples of the paper's 60000; epoch rule 'pass'" in whole.notes[0]
    steps = load_image_task(ctx, "mnist", replace(SETTINGS.smoke, n_train=None, epoch_rule="paper_steps"))
    assert steps.epoch_size == 60_000 and "epoch rule 'paper_steps'" in steps.notes[0]
    part = load_image_task(ctx, "mnist", replace(SETTINGS.smoke, n_train=100, epoch_rule="paper_steps"))
    assert part.x_train.shape[0] == 100 and part.epoch_size == 100  # an explicit subset is its own set
    assert "epoch rule 'pass'" in part.notes[0] and "of the paper's" not in part.notes[0]
    assert part.probe_x.shape == (20, 784) and torch.all(part.probe_y.sum(0) == 2)
    with pytest.raises(ValueError, match="epoch_rule 'steps' is not one of"):
        replace(SETTINGS.smoke, epoch_rule="steps")
