"""The networks of sharon2024 App. F.1 with their measurement layers.

- PreAct ResNet-18 of width k: ``repalign.models.build('preact_resnet18', width=k)``; measured at
  conv1, block1–block4 and the final FC (``logits``), the paper's six layers.
- ResNet-50: kuangliu/pytorch-cifar's (torchvision's Bottleneck ResNet with the CIFAR 3×3
  stride-1 stem and no max-pool, standard width 64); other ``blocks`` and ``width`` shrink it
  for the cheaper tiers only. Measured at conv1, the four stages and the FC.
- ViT-B/16: torchvision's ``VisionTransformer`` (patch 16, 12 blocks, hidden 768, MLP 3072,
  12 heads at the paper tier), trained from scratch on 32×32 inputs (the paper does not say it
  resized CIFAR-10); smaller settings at the cheaper tiers. Measured at every encoder block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from repalign.models import build
from repalign.models.measure import MeasurementLayer, declare_layers

RESNET18_LAYERS = ("conv1", "block1", "block2", "block3", "block4", "fc")
MODEL_LAYER = {"fc": "logits"}  # our layer name -> repalign.models measurement layer


@dataclass(frozen=True)
class VitShape:
    patch: int = 16
    layers: int = 12
    heads: int = 12
    hidden: int = 768
    mlp: int = 3072


def resnet50_cifar(n_classes: int, blocks: tuple[int, ...] = (3, 4, 6, 3), width: int = 64) -> nn.Module:
    """kuangliu's CIFAR ResNet-50: 3×3 stem of ``width`` channels, Bottleneck stages of planes
    width·(1, 2, 4, 8) (×4 out) at strides 1, 2, 2, 2, average pool, linear (``width`` 64 standard)."""
    from torchvision.models.resnet import Bottleneck, ResNet  # heavy: only where a ResNet-50 is built

    model = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=n_classes)  # torchvision's pieces, rebuilt below
    model.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.maxpool = nn.Identity()
    model.inplanes = width
    for i, (n_blocks, stride) in enumerate(zip(blocks, (1, 2, 2, 2)), 1):
        setattr(model, f"layer{i}", model._make_layer(Bottleneck, width * 2 ** (i - 1), n_blocks, stride=stride))
    model.fc = nn.Linear(width * 8 * Bottleneck.expansion, n_classes)
    return declare_layers(model, [MeasurementLayer("conv1", "conv1")] + [
        MeasurementLayer(f"block{i}", f"layer{i}") for i in range(1, 5)] + [MeasurementLayer("logits", "fc")])


def vit(n_classes: int, shape: VitShape, image_size: int = 32) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer  # heavy: only where a ViT is built

    model = VisionTransformer(image_size=image_size, patch_size=shape.patch, num_layers=shape.layers,
                              num_heads=shape.heads, hidden_dim=shape.hidden, mlp_dim=shape.mlp,
                              num_classes=n_classes)
    return declare_layers(model, [MeasurementLayer(f"enc{i + 1}", f"encoder.layers.encoder_layer_{i}")
                                  for i in range(shape.layers)])


def make_network(arch: str, n_classes: int, *, seed: int, width: int | None = None,
                 resnet50_blocks: tuple[int, ...] = (3, 4, 6, 3), resnet50_width: int = 64,
                 vit_shape: VitShape = VitShape()) -> nn.Module:
    """``arch`` ('preact_resnet18', 'resnet50', 'vit_b16') initialised from ``seed`` (global RNG untouched)."""
    if arch == "preact_resnet18":
        return build("preact_resnet18", n_classes, seed=seed, width=width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "resnet50":
            return resnet50_cifar(n_classes, resnet50_blocks, resnet50_width)
        if arch == "vit_b16":
            return vit(n_classes, vit_shape)
    raise ValueError(f"unknown sharon2024 architecture '{arch}'; choose preact_resnet18, resnet50 or vit_b16")


def measured_layers(arch: str, vit_shape: VitShape) -> tuple[str, ...]:
    """Our layer names for ``arch``: the ResNets' six, or the ViT's encoder blocks."""
    if arch == "vit_b16":
        return tuple(f"enc{i + 1}" for i in range(vit_shape.layers))
    return RESNET18_LAYERS
