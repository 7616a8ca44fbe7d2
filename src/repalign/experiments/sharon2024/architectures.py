"""The networks of sharon2024 App. F.1, all from ``repalign.models``, with their measured layers.

- PreAct ResNet-18 of width k: ``build('preact_resnet18', width=k)``; measured at conv1,
  block1–block4 and the final FC (``logits``), the paper's six layers.
- ResNet-50: ``build('resnet50')``, kuangliu/pytorch-cifar's CIFAR ResNet-50 (3×3 stride-1 stem,
  no max-pool, width 64); ``blocks`` and ``width`` shrink it for the cheaper tiers only. Measured
  at conv1, the four stages and the FC.
- ViT-B/16: ``build('vit_b16', image_size=32)``: torchvision's ``VisionTransformer`` (patch 16,
  12 blocks, hidden 768, MLP 3072, 12 heads at the paper tier) trained from scratch on 32×32
  inputs without resizing (the paper does not say it resized CIFAR-10); smaller settings at the
  cheaper tiers. Measured at every encoder block (``enc1``… here, ``block1``… in the model).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from repalign.models import build

RESNET18_LAYERS = ("conv1", "block1", "block2", "block3", "block4", "fc")


def model_layer(layer: str) -> str:
    """Our layer name -> the ``repalign.models`` measurement layer it reads."""
    if layer == "fc":
        return "logits"
    return f"block{layer[3:]}" if layer.startswith("enc") else layer


@dataclass(frozen=True)
class VitShape:
    patch: int = 16
    layers: int = 12
    heads: int = 12
    hidden: int = 768
    mlp: int = 3072


def make_network(arch: str, n_classes: int, *, seed: int, width: int | None = None,
                 resnet50_blocks: tuple[int, ...] = (3, 4, 6, 3), resnet50_width: int = 64,
                 vit_shape: VitShape = VitShape()) -> nn.Module:
    """``arch`` ('preact_resnet18', 'resnet50', 'vit_b16') initialised from ``seed`` (global RNG untouched)."""
    if arch == "preact_resnet18":
        return build("preact_resnet18", n_classes, seed=seed, width=width)
    if arch == "resnet50":
        return build("resnet50", n_classes, seed=seed, width=resnet50_width, blocks=resnet50_blocks)
    if arch == "vit_b16":
        return build("vit_b16", n_classes, seed=seed, image_size=32, patch_size=vit_shape.patch,
                     num_layers=vit_shape.layers, num_heads=vit_shape.heads, hidden_dim=vit_shape.hidden,
                     mlp_dim=vit_shape.mlp)
    raise ValueError(f"unknown sharon2024 architecture '{arch}'; choose preact_resnet18, resnet50 or vit_b16")


def measured_layers(arch: str, vit_shape: VitShape) -> tuple[str, ...]:
    """Our layer names for ``arch``: the ResNets' six, or the ViT's encoder blocks."""
    if arch == "vit_b16":
        return tuple(f"enc{i + 1}" for i in range(vit_shape.layers))
    return RESNET18_LAYERS
