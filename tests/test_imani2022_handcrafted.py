"""imani2022 Figs 13 and 20: hand-crafted features, linear learners, and both artifacts at smoke tier.

The artifacts run on tiny synthetic CIFAR-10 and CIFAR-100 pickle folders written here
(CIFAR-100 is not available offline). The ImageNet weights are absent offline, so one
test checks that the CNN metrics are declared not run with the weights file named, and
another puts a checkpoint of random ResNet18 weights where torch.hub keeps checkpoints
(standing in for ResNet101's ImageNet weights, to keep the test small) to run the
transfer path end to end.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from standins import write_cifar_pickles
from repalign.runner import run_step
from repalign.targets import parse_claim, read_yaml

pytest.importorskip("cv2")
pytest.importorskip("skimage")

from repalign.experiments.imani2022 import handcrafted, pretrained  # noqa: E402
from repalign.experiments.imani2022.image_features import (  # noqa: E402
    SiftBagOfWords, hog_features, rbf_features, unit_rows)

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["imani2022"]["artifacts"]


def target_metrics(artifact: str) -> set[str]:
    names = set()
    for t in TARGETS[artifact]["targets"]:
        names |= {t["metric"]} if "metric" in t else set(parse_claim(t["claim"])[1])
    return names


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_pickles(root, 10)
    write_cifar_pickles(root, 100)
    return root


def run(artifact: str, out_dir: Path, data_root: Path) -> dict:
    out = out_dir / f"{artifact}.json"
    run_step("artifact", "imani2022", artifact, tier="smoke", out=out, device="cpu", data_root=str(data_root),
             cache_dir=str(out_dir / "cache"))
    return json.loads(out.read_text())


# --- features -------------------------------------------------------------------------------------------------

def test_hog_has_the_dalal_triggs_layout_on_32px_images():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    assert hog_features(x).shape == (3, 3 * 3 * 2 * 2 * 9)  # 3x3 blocks of 2x2 cells, 9 orientations


def test_sift_bag_of_words_gives_word_frequencies():
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    bow = SiftBagOfWords(words=8, seed=0).fit(x)
    hist = bow.transform(x[:2])
    assert hist.shape == (2, 8) and torch.allclose(hist.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="dictionary"):
        SiftBagOfWords(words=10_000, seed=0).fit(x)


def test_rbf_features_match_the_gaussian_of_normalised_distances():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    u = unit_rows(x)
    assert torch.allclose(u.norm(dim=1), torch.ones(4, dtype=u.dtype))
    phi = rbf_features(x, x[:3])
    expected = torch.exp(-((u[:, None] - u[None, :3]) ** 2).sum(-1) / 2)
    assert torch.allclose(phi, expected) and torch.allclose(phi[:3, :3].diagonal(), torch.ones(3, dtype=phi.dtype))


# --- linear learners ------------------------------------------------------------------------------------------

def test_gd_logistic_matches_autograd_gradient_descent():
    g = torch.Generator().manual_seed(0)
    phi, y = torch.randn(2, 12, 5, generator=g, dtype=torch.float64), torch.randn(2, 12, generator=g).sign().double()
    lrs, steps = (0.1, 1.0), 7
    train, test = handcrafted.gd_logistic(phi, y, phi[:, :6], y[:, :6], lrs, steps)
    assert train.shape == (2, 2, steps + 1) and test.shape == (2, 2, steps + 1)
    for i, lr in enumerate(lrs):
        for r in range(2):
            w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
            for t in range(steps + 1):
                loss = torch.nn.functional.softplus(-y[r] * (phi[r] @ w)).mean()
                assert math.isclose(loss.item(), float(train[i, r, t]), rel_tol=1e-12)
                (grad,) = torch.autograd.grad(loss, w)
                w = (w - lr * grad).detach().requires_grad_(True)
    assert torch.allclose(train[:, :, 0], torch.full((2, 2), math.log(2), dtype=torch.float64))


def test_best_step_size_skips_diverging_runs():
    train = torch.tensor([[[1.0, 0.9, 0.8]], [[1.0, 0.1, 0.0]], [[1.0, float("nan"), float("nan")]]])
    best, auc = handcrafted.best_step_size(train, (0.1, 1.0, 10.0))
    assert best == 1 and torch.allclose(auc, torch.tensor([1.1 / 3]))


def test_closed_form_accuracy_separates_a_full_rank_representation():
    phi = torch.eye(6, dtype=torch.float64) + 0.1
    y = torch.tensor([1.0, -1, 1, -1, -1, 1], dtype=torch.float64)
    assert float(handcrafted.closed_form_accuracy(phi[None], y[None])[0]) == 100.0


# --- the artifacts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("artifact", ["fig13", "fig20"])
def test_offline_the_cnn_metrics_are_declared_with_the_weights_file(artifact, data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))
    record = run(artifact, tmp_path, data_root)
    assert record["status"] == "ok", record.get("reason")
    written = {m for m, v in record["metrics"].items() if isinstance(v, (int, float)) and math.isfinite(v)}
    declared = set(record.get("not_run_metrics", {}))
    assert target_metrics(artifact) <= written | declared, target_metrics(artifact) - written - declared
    assert declared == {m for m in target_metrics(artifact) if ".cnn." in m or ".transfer." in m}
    assert all(str(tmp_path / "no-hub/checkpoints/resnet101-") in why for why in record["not_run_metrics"].values())


def test_fig13_runs_the_transfer_path_with_random_weights_standing_in(data_root, tmp_path, monkeypatch):
    import torchvision

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(handcrafted, "ARCH", "resnet18")
    monkeypatch.setitem(pretrained.WEIGHTS, "resnet18", "ResNet18_Weights")
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    torch.save(torchvision.models.resnet18().state_dict(), hub / "checkpoints" / Path(url).name)
    record = run("fig13", tmp_path, data_root)
    assert record["status"] == "ok" and not record.get("not_run_metrics")
    for name in (m.replace("resnet101", "resnet18") for m in target_metrics("fig13")):
        assert math.isfinite(record["metrics"][name]), name
    assert record["metrics"]["closed_form_train_accuracy.rbf.cifar100"] == 100.0


def test_the_notes_state_the_test_size_actually_drawn(data_root, tmp_path):
    """CIFAR-100 has 100 test images per class, so asking for 500 gives 200 test points, not 1,000."""
    from dataclasses import replace

    from repalign.experiments.registry import Context

    s = replace(handcrafted.SETTINGS.smoke, test_per_class=500)
    ctx = Context("imani2022", "fig13", "smoke", s, torch.device("cpu"), [0, 1], data_root, tmp_path)
    runs, _ = handcrafted.two_class_tasks(ctx, "cifar100", s)
    assert all(run["test"][1].numel() == 24 for run in runs)     # the stand-in's 12 test images per class
    assert handcrafted.split_sizes(runs) == "16 train (8 + 8) / 24 test (12 + 12)"
