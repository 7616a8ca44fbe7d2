"""imani2022 §7.2 and App. C, Fig 19: alignment of ImageNet CNN features on CIFAR.

For each run, 1,000 training images of two random classes (500 each, ±1 labels) are
represented three ways: ``original`` (the pixels), ``init`` (the last hidden layer of the
architecture at a random initialisation) and ``transfer`` (the same layer with the
torchvision ImageNet weights). Architectures VGG16, ResNet50, ResNet101; datasets CIFAR-10
and CIFAR-100. Images are scaled to [0, 1], resized to ``image_size`` and normalised with
the ImageNet mean and std (torchvision's preprocessing for these weights).

The weights are read from torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``);
when they are absent and cannot be downloaded the ``transfer`` metrics are not run, with
the file and its URL named. A missing CIFAR-100 skips that dataset's panel the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repalign.data import class_subset, load_dataset, to_float
from repalign.errors import DatasetMissing
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.summary import alignment_stats, thresholds_for
from repalign.experiments.imani2022.tasks import mark_not_run
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact
from repalign.results import Result

PAPER = "imani2022"
WEIGHTS = {"vgg16": "VGG16_Weights", "resnet50": "ResNet50_Weights", "resnet101": "ResNet101_Weights"}
DATASETS = ("cifar10", "cifar100")
CLASS_SEED_OFFSET = 4_000_037
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PretrainedSettings:
    n_runs: int
    points_per_class: int = 500
    image_size: int = 224
    batch_size: int = 100


SETTINGS = Tiered(
    smoke=PretrainedSettings(n_runs=1, points_per_class=8, image_size=32),
    quick=PretrainedSettings(n_runs=5),
    paper=PretrainedSettings(n_runs=5),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=20, mem_mb=8000, gpu=1),
    paper=Resources(runtime_min=30, mem_mb=8000, gpu=1),
)


def pretrained_state(arch: str, download: bool) -> dict:
    """The torchvision ImageNet state dict of ``arch``; ``DatasetMissing`` names the file when absent."""
    import torchvision  # lazy: importing it costs seconds in every job
    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    how = (f"download {weights.url} to {path} (torchvision does this itself when online, e.g. "
           f"torchvision.models.{arch}(weights='IMAGENET1K_V1'); $TORCH_HOME moves the folder)")
    if not download:
        raise DatasetMissing(f"weights:{arch}_imagenet", [path], how)
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # network, checksum, permissions
        raise DatasetMissing(f"weights:{arch}_imagenet", [path], f"{how}; download failed: {exc}") from exc


def feature_net(arch: str, seed: int | None, state: dict | None, device) -> nn.Module:
    """``arch`` up to its last hidden layer: the given weights, or a random init from ``seed``."""
    import torchvision  # lazy: importing it costs seconds in every job
    if state is not None:
        with torch.device("meta"):  # skip the random init that the weights replace
            net = getattr(torchvision.models, arch)(weights=None)
        net.load_state_dict(state, assign=True)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # torchvision initialises from the global generator
            net = getattr(torchvision.models, arch)(weights=None)
    if arch.startswith("resnet"):
        net.fc = nn.Identity()                   # 2048-d pooled features
    else:
        net.classifier = net.classifier[:-1]     # 4096-d, the second fully connected layer
    return net.eval().to(device)


@torch.no_grad()
def features(net: nn.Module, images: torch.Tensor, s: PretrainedSettings) -> torch.Tensor:
    """Last-hidden-layer features ``[N, d]`` of uint8 images ``[N, 3, H, W]``."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=images.device)[:, None, None]
    out = []
    for batch in images.split(s.batch_size):
        x = nn.functional.interpolate(to_float(batch, 0.0, 1.0), size=s.image_size, mode="bilinear",
                                      align_corners=False)
        out.append(net((x - mean) / std))
    return torch.cat(out)


def two_class_runs(ctx: Context, dataset: str, s: PretrainedSettings) -> tuple[list, str]:
    """Per run ``(uint8 images, ±1 labels)``: ``points_per_class`` train images of two random classes."""
    split = load_dataset(dataset, "train", root=ctx.data_root, cache_dir=ctx.cache_dir, device=ctx.device,
                         download=ctx.download)
    runs = []
    for seed in ctx.seeds:
        g = torch.Generator().manual_seed(seed + CLASS_SEED_OFFSET)
        classes = torch.randperm(len(split.classes), generator=g)[:2].tolist()
        pair = class_subset(split, classes, max_per_class=s.points_per_class, generator=g)
        runs.append((pair.x, 2.0 * pair.y.double() - 1.0))
    return runs, split.source


def pretrained_work(s: PretrainedSettings) -> Work:
    """Fig 19: each ImageNet CNN, pretrained and at init, on each run's two-class train images."""
    return analysed(models=s.n_runs, datasets=len(DATASETS), networks=2 * len(WEIGHTS),
                    examples=2 * s.points_per_class, pixels=s.image_size ** 2)


@artifact(PAPER, "fig19", settings=SETTINGS, resources=RESOURCES, work=pretrained_work)
def fig19(ctx: Context) -> Result:
    """Fig 19: original vs init vs transfer alignment, three ImageNet CNNs, CIFAR-10 and CIFAR-100."""
    s: PretrainedSettings = ctx.settings
    result = Result()
    states = {}
    for arch in WEIGHTS:
        try:
            states[arch] = pretrained_state(arch, ctx.download)
        except DatasetMissing as exc:
            mark_not_run(result, [f"alignment_auc.transfer.{arch}.{d}" for d in DATASETS], str(exc))
    data = {}
    for dataset in DATASETS:
        try:
            data[dataset], source = two_class_runs(ctx, dataset, s)
            result.notes.append(f"{dataset}: {source}")
        except DatasetMissing as exc:
            names = [f"alignment_auc.original.{dataset}"] + [
                f"alignment_auc.{rep}.{arch}.{dataset}" for rep in ("init", "transfer") for arch in WEIGHTS]
            mark_not_run(result, names, str(exc))
    reps = {d: {"original": [to_float(x, 0.0, 1.0, torch.float64).flatten(1) for x, _ in runs]}
            for d, runs in data.items()}
    for arch in WEIGHTS:  # one network in memory at a time, shared by both datasets
        for i, seed in enumerate(ctx.seeds):
            net = feature_net(arch, seed, None, ctx.device)
            for d, runs in data.items():
                reps[d].setdefault(f"init.{arch}", []).append(features(net, runs[i][0], s))
        if arch in states:
            net = feature_net(arch, None, states[arch], ctx.device)
            for d, runs in data.items():
                reps[d][f"transfer.{arch}"] = [features(net, x, s) for x, _ in runs]
    for dataset, runs in data.items():
        curves = []
        for name, per_run in reps[dataset].items():
            stats = [alignment_stats(rep, y) for rep, (_, y) in zip(per_run, runs)]
            metric = f"alignment_auc.{name}.{dataset}"
            result.metrics[metric], result.metrics[metric + "_se"] = mean_se(torch.stack([a for a, _ in stats]))
            curves.append(np.stack([c for _, c in stats]))
        result.arrays[f"curves.{dataset}"] = np.stack(curves)                 # [reps, runs, T]
        result.arrays[f"reps.{dataset}"] = np.array(list(reps[dataset]))
        result.arrays[f"thresholds.{dataset}"] = thresholds_for(runs[0][1].shape[0])
    result.notes.append(f"{2 * s.points_per_class} train images of two random classes per run, resized to "
                        f"{s.image_size} px; features = last hidden layer (ResNet: pooled 2048-d, VGG16: fc7)")
    return result
