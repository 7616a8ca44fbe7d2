"""imani2022: every implemented artifact runs at the smoke tier and writes every metric its targets name.

Synthetic figures (4, 8) need nothing. CT Position figures (1, 5, 9, and the CT panels of
6, 7, 17, 18) run on a small synthetic stand-in CSV that this test writes, since the real
data is not shipped. MNIST / CIFAR-10 figures need ``REPALIGN_DATA`` and skip without it.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.data import resolve_cache_dir
from repalign.runner import run_step
from repalign.targets import parse_claim, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["imani2022"]["artifacts"]
REAL_DATA = os.environ.get("REPALIGN_DATA")
needs_real_data = pytest.mark.skipif(not REAL_DATA or not Path(REAL_DATA, "mnist").is_dir(),
                                     reason="REPALIGN_DATA with mnist/ and cifar10-jpeg/ is not set")


def target_metrics(artifact: str) -> set[str]:
    names = set()
    for t in TARGETS[artifact]["targets"]:
        names |= {t["metric"]} if "metric" in t else set(parse_claim(t["claim"])[1])
    return names


def write_ct_standin(root: Path, n: int = 1200) -> None:
    """A CSV in the UCI CT Position layout: 384 features driven by 8 latent factors, target in [0, 100]."""
    import pandas as pd

    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 8))
    x = np.tanh(z @ rng.normal(size=(8, 384)) / 3)
    frame = pd.DataFrame(x, columns=[f"value{i}" for i in range(384)])
    frame.insert(0, "patientId", np.arange(n) // 10)
    frame["reference"] = 50 + 45 * np.tanh(z[:, 0] + 0.5 * z[:, 1] ** 2 - 0.5)
    (root / "ct_slice").mkdir(parents=True)
    frame.to_csv(root / "ct_slice" / "slice_localization_data.csv", index=False)


def link_real_data(root: Path) -> None:
    for name in ("mnist", "cifar10-jpeg"):
        if Path(REAL_DATA, name).exists():
            (root / name).symlink_to(Path(REAL_DATA, name))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """The real MNIST / CIFAR-10 (linked, when available) plus the CT stand-in."""
    root = tmp_path_factory.mktemp("data")
    if REAL_DATA:
        link_real_data(root)
    write_ct_standin(root)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """A private cache whose CIFAR-10 folder is the user's, so JPEGs are decoded once per machine."""
    cache = tmp_path_factory.mktemp("cache")
    shared = resolve_cache_dir(None) / "cifar10"
    shared.mkdir(parents=True, exist_ok=True)
    (cache / "cifar10").symlink_to(shared)
    return cache


def run(kind, name, out_dir: Path, data_root, cache_dir: Path, inputs=None) -> dict:
    suffix = ".pt" if kind == "model" else ".json"
    out = out_dir / (f"models/{name}" if kind == "model" else name)
    out = out.with_suffix(suffix)
    run_step(kind, "imani2022", name, tier="smoke", out=out, device="cpu", data_root=str(data_root),
             cache_dir=str(cache_dir), inputs=inputs)
    return {} if kind == "model" else json.loads(out.read_text())


def assert_writes_targets(record: dict, artifact: str) -> None:
    assert record["status"] == "ok", record.get("reason")
    missing = [m for m in target_metrics(artifact)
               if not isinstance(record["metrics"].get(m), (int, float)) or not math.isfinite(record["metrics"][m])]
    assert not missing, f"{artifact} did not write {missing}"


@pytest.mark.parametrize("artifact", ["fig4", "fig8"])
def test_synthetic_artifacts_write_every_target_metric(artifact, tmp_path):
    assert_writes_targets(run("artifact", artifact, tmp_path, tmp_path, tmp_path), artifact)


def test_ct_artifacts_run_on_a_standin(data_root, cache_dir, tmp_path):
    pytest.importorskip("sklearn")
    run("model", "ct_features", tmp_path, data_root, cache_dir)
    model = {"ct_features": tmp_path / "models/ct_features.pt"}
    for artifact in ("fig1", "fig5"):
        assert_writes_targets(run("artifact", artifact, tmp_path, data_root, cache_dir, model), artifact)
    fig9 = run("artifact", "fig9", tmp_path, data_root, cache_dir)
    assert_writes_targets(fig9, "fig9")
    assert max(fig9["metrics"][f"prop1_max_rel_error.{y}"] for y in ("y1", "y2")) < 1e-9


def test_missing_ct_gives_not_run_with_the_dataset_named(tmp_path):
    record = run("artifact", "fig9", tmp_path, tmp_path / "empty", tmp_path)
    assert record["status"] == "not_run" and "ct_slice" in record["reason"]


@needs_real_data
def test_image_artifacts_write_every_target_metric_including_the_ct_panels(data_root, cache_dir, tmp_path):
    for name in ("shuffled_mnist", "sweep_mnist", "sweep_cifar10", "sweep_ct"):
        run("model", name, tmp_path, data_root, cache_dir)
    models = {p.stem: p for p in (tmp_path / "models").glob("*.pt")}
    for artifact in ("fig2", "fig6", "fig7", "fig17", "fig18"):
        assert_writes_targets(run("artifact", artifact, tmp_path, data_root, cache_dir, models), artifact)


@needs_real_data
def test_without_ct_the_image_panels_still_run_and_ct_metrics_are_named(cache_dir, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    link_real_data(root)
    for name in ("sweep_mnist", "sweep_ct"):
        run("model", name, tmp_path, root, cache_dir)
    models = {p.stem: p for p in (tmp_path / "models").glob("*.pt")}
    record = run("artifact", "fig7", tmp_path, root, cache_dir, models)
    assert record["status"] == "ok"
    assert "alignment_auc.trained_layer3.mnist" in record["metrics"]
    assert not any(k.endswith(".ct") for k in record["metrics"])
    assert any("alignment_auc.trained_layer3.ct" in note and "ct_slice" in note for note in record["notes"])


def test_missing_weights_name_the_checkpoint_file_and_url(tmp_path, monkeypatch):
    from repalign.errors import DatasetMissing
    from repalign.experiments.imani2022 import pretrained

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(DatasetMissing) as info:
        pretrained.pretrained_state("resnet101", download=False)
    message = str(info.value)
    assert "weights:resnet101_imagenet" in message and str(tmp_path / "checkpoints/resnet101-63fe2227.pth") in message
    assert "https://download.pytorch.org/models/resnet101-63fe2227.pth" in message


@needs_real_data
def test_fig19_runs_with_a_local_checkpoint_of_random_weights(data_root, cache_dir, tmp_path, monkeypatch):
    """The transfer path with a checkpoint where torchvision keeps it (random weights stand in for ImageNet's)."""
    import torchvision

    from repalign.experiments.imani2022 import pretrained

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(pretrained, "WEIGHTS", {"resnet50": "ResNet50_Weights"})
    torch.save(torchvision.models.resnet50().state_dict(), hub / "checkpoints/resnet50-0676ba61.pth")
    record = run("artifact", "fig19", tmp_path, data_root, cache_dir)
    assert record["status"] == "ok"
    for name in ("original.cifar10", "init.resnet50.cifar10", "transfer.resnet50.cifar10"):
        assert math.isfinite(record["metrics"][f"alignment_auc.{name}"])
    assert any("alignment_auc.original.cifar100" in note for note in record["notes"])  # CIFAR-100 is absent


@needs_real_data
def test_fig19_offline_writes_or_declares_every_target_metric(data_root, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))
    record = run("artifact", "fig19", tmp_path, data_root, cache_dir)
    notes = " ".join(record["notes"])
    undeclared = [m for m in target_metrics("fig19") if m not in record["metrics"] and m not in notes]
    assert record["status"] == "ok" and not undeclared, undeclared
    assert "alignment_auc.init.resnet101.cifar10" in record["metrics"]
