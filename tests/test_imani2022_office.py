"""imani2022 Table 1 and Fig 16 (Office-31 negative transfer).

The whole pipeline (three random-label pretraining steps, nine fine-tunings, six
alignment differences) runs end to end at the smoke tier on a synthetic three-domain
image folder written here, with randomly initialised ResNet18 weights saved where
torchvision keeps the ImageNet checkpoint, so the real code path loads them. Without
data or weights, every step is ``not_run`` with a reason naming what is missing.
"""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from test_imani2022_smoke import assert_writes_targets

from repalign.experiments.imani2022 import office31
from repalign.plots import draw
from repalign.runner import run_step
from repalign.train.loop import OptimConfig, lr_factor

WEIGHTS_FILE = "resnet18-f37072fd.pth"
CLASSES = ("back_pack", "bike", "mug")


def write_office_standin(root, per_class=4, size=20):
    """``root/office31/<domain>/images/<class>/*.jpg``: a colour per class, a brightness per domain."""
    rng = np.random.default_rng(0)
    for d, domain in enumerate(office31.DOMAINS):
        for c, name in enumerate(CLASSES):
            folder = root / "office31" / domain / "images" / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((size, size, 3), 40 + 50 * d, dtype=np.float64)
                pixels[..., c] += 120
                pixels += rng.normal(0, 20, pixels.shape)
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"frame_{i:04d}.jpg")


@pytest.fixture
def one_thread():
    """ResNet18 on a shared 2-core machine: one thread avoids OpenMP spin-waiting (about 6x faster here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def random_weights_hub(tmp_path, monkeypatch):
    """A torch.hub folder whose ResNet18 ImageNet checkpoint holds random weights."""
    import torchvision

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), hub / "checkpoints" / WEIGHTS_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def run(kind, name, out_dir, data_root, inputs=None):
    out = out_dir / (f"models/{name}.pt" if kind == "model" else f"{name}.json")
    status = run_step(kind, "imani2022", name, tier="smoke", out=out, device="cpu", data_root=str(data_root),
                      cache_dir=str(out_dir / "cache"), inputs=inputs)
    return status, out


def test_pipeline_end_to_end_on_synthetic_domains(tmp_path, random_weights_hub, one_thread):
    data = tmp_path / "data"
    write_office_standin(data)
    models = {}
    for name in office31.PRETRAIN_MODELS:
        status, models[name] = run("model", name, tmp_path, data)
        assert status == "ok"
    payload = torch.load(models["office31_pretrain_amazon"], weights_only=False)
    assert payload["classes"] == list(CLASSES) and len(payload["bodies"]) == 1
    assert np.isfinite(payload["epoch_loss"]).all()
    for artifact in ("table1", "fig16"):
        status, out = run("artifact", artifact, tmp_path, data, models)
        record = json.loads(out.read_text())
        assert_writes_targets(record, artifact)
        draw("imani2022", artifact, out, tmp_path / "figures" / f"{artifact}.png")
        assert (tmp_path / "figures" / f"{artifact}.png").stat().st_size > 0
    arrays = np.load(tmp_path / "fig16.npz")
    assert arrays["difference_curves"].shape == (6, 1, 200) and np.isfinite(arrays["difference_curves"]).all()
    table = np.load(tmp_path / "table1.npz")["accuracy"]
    assert table.shape == (4, 3) and np.isnan(np.diag(table[1:])).all()
    assert np.isfinite(table[0]).all() and ((table[0] >= 0) & (table[0] <= 100)).all()


def test_offline_every_step_is_not_run_naming_the_data_and_the_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))
    status, model = run("model", "office31_pretrain_dslr", tmp_path, tmp_path / "empty")
    assert status == "not_run"
    reason = torch.load(model, weights_only=False)["reason"]
    for needle in ("office31", str(tmp_path / "empty" / "office31" / "dslr" / "images"), "domain_adaptation_images",
                   "ResNet18", str(tmp_path / "no-hub" / "checkpoints")):
        assert needle in reason
    inputs = {name: model for name in office31.PRETRAIN_MODELS}
    for artifact in ("table1", "fig16"):
        status, out = run("artifact", artifact, tmp_path, tmp_path / "empty", inputs)
        assert status == "not_run" and "office31" in json.loads(out.read_text())["reason"]


def test_with_the_data_but_no_weights_the_checkpoint_file_and_url_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))
    write_office_standin(tmp_path / "data", per_class=1, size=4)
    status, model = run("model", "office31_pretrain_webcam", tmp_path, tmp_path / "data")
    reason = torch.load(model, weights_only=False)["reason"]
    assert status == "not_run" and "weights:resnet18_imagenet" in reason
    assert str(tmp_path / "no-hub" / "checkpoints" / WEIGHTS_FILE) in reason
    assert "https://download.pytorch.org/models/" + WEIGHTS_FILE in reason


def test_augment_crops_and_flips_each_image_and_centre_crop_is_central():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.uint8).reshape(2, 3, 6, 6)
    torch.manual_seed(0)
    out = office31.augment(x, 4)
    assert out.shape == (2, 3, 4, 4)
    for b in range(2):
        windows = [x[b, :, i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
        assert any(torch.equal(out[b], w) or torch.equal(out[b], w.flip(-1)) for w in windows)
    full = office31.augment(x, 6)
    assert all(torch.equal(full[b], x[b]) or torch.equal(full[b], x[b].flip(-1)) for b in range(2))
    assert torch.equal(office31.centre_crop(x, 4), x[..., 1:5, 1:5])


def test_split_is_stratified_disjoint_and_seeded():
    y = torch.tensor([0] * 10 + [1] * 5 + [2] * 2 + [3])
    s = office31.SETTINGS.paper
    train, test = office31.split_indices(y, 4, s, seed=3)
    assert set(train.tolist()).isdisjoint(test.tolist()) and len(train) + len(test) == len(y)
    assert [int((y[test] == c).sum()) for c in range(4)] == [2, 1, 1, 0]
    again = office31.split_indices(y, 4, s, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])
    capped = office31.split_indices(y, 4, office31.SETTINGS.smoke, seed=3)
    assert [int((y[torch.cat(capped)] == c).sum()) for c in range(4)] == [4, 4, 2, 1]


def test_random_labels_are_uniform_over_the_classes():
    labels = office31.random_labels(31_000, 31, seed=0, device="cpu")
    counts = torch.bincount(labels, minlength=31).double()
    assert labels.min() >= 0 and labels.max() < 31 and (counts / 1000 - 1).abs().max() < 0.15


def test_binary_alignment_covers_every_class_pair_and_is_zero_for_identical_bodies():
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    good = torch.nn.functional.one_hot(y, 3).double()             # every task's y lies in its span
    blind = torch.ones(9, 3, dtype=torch.float64)                 # identical rows: balanced y is orthogonal
    aucs, curves, n_tasks = office31.binary_alignment(torch.stack([good, good, blind]), y)
    assert n_tasks == 3 and aucs.shape == (3, 3) and curves.shape == (3, 3, 200)
    assert torch.equal(aucs[:, 0], aucs[:, 1]) and np.array_equal(curves[:, 0], curves[:, 1])
    assert (aucs[:, 0] > 0.4).all() and torch.allclose(aucs[:, 2], torch.zeros(3, dtype=torch.float64))
    assert np.allclose(curves[:, :, 0], 1.0)                      # Eq. 2 at τ = 0: ‖y‖² for every body
    assert np.allclose(curves[:, 2, 1:], 0.0)


def test_step_schedule_multiplies_the_lr_every_decay_interval():
    assert [lr_factor("step", s, 100, decay_every=30) for s in (0, 29, 30, 59, 60, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.001])
    with pytest.raises(ValueError):
        OptimConfig(schedule="step")
    assert math.isclose(lr_factor("step", 45, 100, decay_every=15, decay_factor=0.5), 0.125)
