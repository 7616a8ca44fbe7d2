"""imani2022 §7.3 (Figs 14, 15, 21): ImageNet-half pretraining, alignment differences, fine-tuning.

ImageNet is not available offline, so the whole path (four pretraining model steps, then
the three artifacts) runs at smoke tier on a tiny ImageNet-like folder written here (two
classes of each half, a few JPEGs each) and a synthetic CIFAR-10 pickle folder.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from standins import write_cifar_pickles
from repalign.experiments.imani2022 import imagenet_halves as ih
from repalign.experiments.imani2022 import task_similarity as ts
from repalign.experiments.imani2022.yosinski_split import load_split
from repalign.runner import run_step
from repalign.targets import parse_claim, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["imani2022"]["artifacts"]
MODELS = [f"imagenet_{half}_{arch}" for arch in ih.ARCHS for half in ("artificial", "natural")]


def target_metrics(artifact: str) -> set[str]:
    names = set()
    for t in TARGETS[artifact]["targets"]:
        names |= {t["metric"]} if "metric" in t else set(parse_claim(t["claim"])[1])
    return names


def write_imagenet(root: Path, per_class: int = 4) -> list[str]:
    """``<root>/imagenet/train/<wnid>/*.JPEG`` for the first two wnids of each half."""
    from PIL import Image

    split = load_split()
    wnids = split["artificial"][:2] + split["natural"][:2]
    g = torch.Generator().manual_seed(0)
    for k, wnid in enumerate(wnids):
        folder = root / "imagenet" / "train" / wnid
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = (torch.rand(40, 48, 3, generator=g) * 60 + 50 * k).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG")
    return wnids


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions: one intra-op thread is faster, and far faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_imagenet(root)
    write_cifar_pickles(root, 10, per_class=12)
    return root


def run(kind: str, name: str, out_dir: Path, data_root: Path, inputs=None) -> dict:
    out = out_dir / ("models" if kind == "model" else "") / (name + (".pt" if kind == "model" else ".json"))
    run_step(kind, "imani2022", name, tier="smoke", out=out, device="cpu", data_root=str(data_root),
             cache_dir=str(out_dir / "cache"), inputs=inputs)
    return {} if kind == "model" else json.loads(out.read_text())


def test_there_are_6_artificial_and_15_natural_binary_tasks():
    halves = [half for half, _, _ in ts.binary_tasks()]
    assert halves.count("artificial") == 6 and halves.count("natural") == 15


@pytest.mark.parametrize("arch", ih.ARCHS)
def test_last_hidden_gives_four_layers_closest_to_the_output_first(arch):
    net = ih.build(arch, 3, ih.SMOKE).eval()
    x = torch.randn(2, 3, 32, 32)
    layers = ih.last_hidden(net, x)
    assert len(layers) == ih.N_LAYERS and all(h.shape[0] == 2 and h.dim() == 2 for h in layers)
    head_input = net.fc if arch == "resnet18" else net.head
    assert torch.allclose(head_input(layers[0]), net(x), atol=1e-5)


def test_t2t_vit_layers_are_four_distinct_blocks():
    """last1 = the last block after the final norm, last2..last4 = the class token of the three blocks before it."""
    net = ih.build("t2t_vit", 3, ih.SMOKE).eval()
    tokens = []
    for block in net.blocks:
        block.register_forward_hook(lambda _m, _i, out: tokens.append(out[:, 0]))
    layers = ih.last_hidden(net, torch.randn(2, 3, 32, 32))
    depth = len(net.blocks)
    assert len(tokens) == depth >= ih.N_LAYERS
    for k in range(1, ih.N_LAYERS):
        torch.testing.assert_close(layers[k], tokens[depth - 1 - k])


def test_folder_batches_resume_with_the_same_batches(data_root):
    from torchvision import transforms

    from repalign.data import load_image_folder

    split = load_image_folder(data_root / "imagenet" / "train", transform=transforms.ToTensor())
    labels = torch.arange(split.n) % 3

    def batches(sampler, k):
        return [sampler.next() for _ in range(k)]

    a = ih.FolderBatches(split.dataset, torch.arange(split.n), labels, 5, 0, torch.device("cpu"), 0)
    first = batches(a, 5)
    b = ih.FolderBatches(split.dataset, torch.arange(split.n), labels, 5, 0, torch.device("cpu"), 0)
    batches(b, 2)
    c = ih.FolderBatches(split.dataset, torch.arange(split.n), labels, 5, 0, torch.device("cpu"), 0)
    c.load_state_dict(b.state_dict())
    for (x1, y1), (x2, y2) in zip(first[2:], batches(c, 3)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_the_whole_path_runs_on_a_tiny_imagenet_folder(data_root, tmp_path):
    for name in MODELS:
        run("model", name, tmp_path, data_root)
    inputs = {name: tmp_path / "models" / f"{name}.pt" for name in MODELS}
    payload = torch.load(inputs["imagenet_natural_resnet18"], weights_only=False)
    assert payload["wnids"] == load_split()["natural"][:2]
    for artifact in ("fig14", "fig21", "fig15"):
        record = run("artifact", artifact, tmp_path, data_root, inputs)
        assert record["status"] == "ok", record.get("reason")
        for metric in target_metrics(artifact):
            assert math.isfinite(record["metrics"][metric]), (artifact, metric)
        if artifact != "fig15":
            assert record["metrics"]["n_target_tasks"] == 21
    assert all(0 <= v <= 100 for v in record["metrics"].values())


def test_without_imagenet_pretraining_is_not_run_and_names_imagenet(tmp_path):
    run("model", "imagenet_natural_resnet18", tmp_path, tmp_path / "empty")
    payload = torch.load(tmp_path / "models/imagenet_natural_resnet18.pt", weights_only=False)
    assert payload["status"] == "not_run" and "imagenet" in payload["reason"]
    record = run("artifact", "fig14", tmp_path, tmp_path / "empty",
                 {name: tmp_path / "models/imagenet_natural_resnet18.pt" for name in MODELS})
    assert record["status"] == "not_run" and "imagenet" in record["reason"]
