"""The CIFAR-style VGG19 and ResNet18 of lou2022 (Fig 4, Figs 6, 11–15, 19).

The paper names the architectures but not their CIFAR adaptation; ours are the common
32×32 variants: VGG19 = sixteen 3×3 conv–BatchNorm–ReLU layers in five max-pooled stages
and one linear classifier; ResNet18 = a 3×3 stride-1 stem (no max-pool), four stages of two
BasicBlocks, global average pooling and a linear classifier. ``width`` is the first stage's
channels (64 in the paper's networks); smaller widths scale every stage for cheap tiers.
PyTorch's default initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

VGG19_STAGES = ((1, 1), (2, 2), (4, 4, 4, 4), (8, 8, 8, 8), (8, 8, 8, 8))  # channels / width per conv


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out)]


def vgg19(n_classes: int, width: int = 64, in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = in_channels
    for stage in VGG19_STAGES:
        for factor in stage:
            layers += _conv_bn(c_in, factor * width) + [nn.ReLU(inplace=True)]
            c_in = factor * width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in, n_classes))


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers with an identity (or 1×1 conv–BN) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, stride), nn.ReLU(inplace=True), *_conv_bn(c_out, c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet18(n_classes: int, width: int = 64, in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = _conv_bn(in_channels, width) + [nn.ReLU(inplace=True)]
    c_in = width
    for i, factor in enumerate((1, 2, 4, 8)):
        layers += [BasicBlock(c_in, factor * width, 1 if i == 0 else 2), BasicBlock(factor * width, factor * width, 1)]
        c_in = factor * width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes))


ARCHITECTURES = {"vgg19": vgg19, "resnet18": resnet18}


def make_cnn(arch: str, n_classes: int, width: int, seed: int, in_channels: int = 3) -> nn.Module:
    """``arch`` ('vgg19' or 'resnet18') initialised from ``seed`` without touching the global RNG."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{arch}'; choose one of {sorted(ARCHITECTURES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[arch](n_classes, width, in_channels)
