"""maennel2020 App. B.6, Figs 16–18: the detailed ImageNet transfer runs (ResNet18 and VGG16).

Offline, ImageNet (``<data_root>/imagenet/train/<wnid>/``, a manual download) is absent:
``load_dataset`` raises ``DatasetMissing`` naming the paths tried and the runner records each
figure as ``not_run`` with that reason. The runs themselves (500k + 500k examples, 100 + 100
epochs) belong to the paper tier only and are not implemented: with ImageNet present the step
stops with an error saying so rather than writing a result that is not the paper's experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

from repalign.data import load_dataset
from repalign.errors import RepalignError
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact
from repalign.results import Result

PAPER = "maennel2020"


@dataclass(frozen=True)
class ImageNetSettings:
    """App. B.6: the set-up of one figure (recorded; only the paper tier would run it)."""
    arch: str
    n_upstream: int
    n_downstream: int
    lr: float
    init_scales: tuple[float, ...]


FIGURES = {
    "fig16": ImageNetSettings("resnet18", 500_000, 500_000, 0.01, (0.5, 1.0, 1.5)),
    "fig17": ImageNetSettings("vgg16", 500_000, 500_000, 0.01, (1.0,)),
    "fig18": ImageNetSettings("vgg16", 50_000, 200_000, 0.008, (0.747,)),
}


def imagenet_transfer(ctx: Context) -> Result:
    """Look for ImageNet (``DatasetMissing`` → not_run); the runs are not implemented."""
    load_dataset("imagenet", "train", root=ctx.data_root, cache_dir=ctx.cache_dir)
    raise RepalignError(f"maennel2020 {ctx.name}: ImageNet was found, but the App. B.6 ImageNet transfer runs "
                        f"({ctx.settings}) are not implemented; only their offline not_run path is")


def lookup_work(s: ImageNetSettings) -> Work:
    """What the step does today: it looks for ImageNet once (the App. B.6 runs are not implemented)."""
    return analysed(dataset_lookups=1)


for _name, _s in FIGURES.items():
    artifact(PAPER, _name, settings=Tiered(smoke=_s, quick=_s, paper=_s),
             resources=Tiered(smoke=Resources(runtime_min=1), quick=Resources(runtime_min=1),
                              paper=Resources(runtime_min=1)), work=lookup_work)(imagenet_transfer)
