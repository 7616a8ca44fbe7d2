"""``build(name, n_classes, seed=…, **options)``: every image architecture of the five papers.

Each architecture is a factory ``f(n_classes, *, option=default, …)`` in its family's module;
its keyword options are the only ones ``build`` accepts. maennel2020's models also take
``init_scale`` and ``init_algorithm`` (``"he"``: He-normal × init_scale, the default, or
``"orthogonal"``; zero biases: ``repalign.models.init``); the others
keep their reference code's initialisation (PyTorch's defaults, torchvision's for the ViT).

Seeding never touches the global RNG: construction runs under ``torch.random.fork_rng``
seeded with ``seed`` (so default-initialised models draw exactly what lou2022's
``make_cnn`` drew before the move), and He-normal weights are drawn from a local ``torch.Generator``.
Models are built on the CPU in float32.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from repalign.models.init import initialise_
from repalign.models.measure import layer_names
from repalign.models.preact_resnet import preact_resnet18, resnet18_v2_gn
from repalign.models.resnet import resnet18, resnet50
from repalign.models.resnet11 import resnet11
from repalign.models.simple_cnn import simple_cnn
from repalign.models.vgg import vgg16, vgg19
from repalign.models.vit import vit_b16
from repalign.models.wrn import wrn28_4

__all__ = ["ARCHITECTURES", "Architecture", "build", "options_of"]


@dataclass(frozen=True)
class Architecture:
    factory: Callable[..., nn.Module]
    paper: str
    he_init: bool = False  # maennel2020 App. A.3: He normal × init_scale, zero biases


ARCHITECTURES: dict[str, Architecture] = {
    "simple_cnn": Architecture(simple_cnn, "maennel2020 App. A.2", he_init=True),
    "vgg16": Architecture(vgg16, "maennel2020 App. A.2", he_init=True),
    "resnet18_v2_gn": Architecture(resnet18_v2_gn, "maennel2020 App. A.2", he_init=True),
    "wrn28_4": Architecture(wrn28_4, "maennel2020 Fig 3, App. A.7", he_init=True),
    "preact_resnet18": Architecture(preact_resnet18, "sharon2024 App. F.1"),
    "resnet50": Architecture(resnet50, "sharon2024 Fig 12, App. F.1"),
    "vit_b16": Architecture(vit_b16, "sharon2024 Figs 3, 17, App. F.1"),
    "resnet11": Architecture(resnet11, "canatar2022 Sec. IV"),
    "vgg19": Architecture(vgg19, "lou2022 Sec. 4"),
    "resnet18": Architecture(resnet18, "lou2022 Sec. 4"),
}


def options_of(name: str) -> dict[str, object]:
    """The options ``build(name, …)`` accepts, with their defaults."""
    arch = _architecture(name)
    options = {p.name: p.default for p in inspect.signature(arch.factory).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if arch.he_init:
        options["init_scale"] = 1.0
        options["init_algorithm"] = "he"
    return options


def build(name: str, n_classes: int, *, seed: int = 0, **options) -> nn.Module:
    """Architecture ``name`` with ``n_classes`` outputs, initialised from ``seed``.

    The global RNG is left as it was. Unknown names or options raise ``ValueError`` listing
    the valid ones (``options_of(name)`` gives them with their defaults).
    """
    arch = _architecture(name)
    valid = options_of(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"{name}: unknown options {unknown}; valid options (defaults): {valid}")
    if not (isinstance(n_classes, int) and n_classes >= 1):
        raise ValueError(f"{name}: n_classes must be a positive integer, got {n_classes!r}")
    init_scale = options.pop("init_scale", 1.0)
    init_algorithm = options.pop("init_algorithm", "he")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = arch.factory(n_classes, **options)
    if arch.he_init:
        initialise_(model, init_algorithm, init_scale, torch.Generator().manual_seed(seed))
    layer_names(model)  # every architecture declares its measurement layers
    return model


def _architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{name}'; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]
