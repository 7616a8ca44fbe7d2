"""Post-activation CIFAR ResNets of kuangliu/pytorch-cifar: lou2022's ResNet18 and sharon2024's ResNet-50.

Both are a 3×3 stride-1 conv–BN–ReLU stem (no max-pool), four stages at strides 1, 2, 2, 2,
global average pooling and a linear classifier; ``width`` is the first stage's channels (64
in the papers; the stages have width, 2·width, 4·width, 8·width, times 4 for bottlenecks).
PyTorch's default initialisation. The module layout is lou2022's ``nn.Sequential`` (moved
from ``experiments/lou2022/cnn.py``), so its checkpoints still load and ``build`` draws the
weights it drew; the one change is that a block's projection shortcut is now registered (and
run) before the block's convs, so ``named_modules`` lists the layers in depth order.

``resnet18`` (lou2022 Fig 4, Figs 6, 15): the paper names ResNet18 but not its CIFAR
adaptation; this is the common 32×32 variant, two ``BasicBlock`` s per stage.
``resnet50`` (sharon2024 Fig 12, App. F.1: "a standard ResNet-50 implementation that
originates in https://github.com/kuangliu/pytorch-cifar ... No changes were applied"):
``Bottleneck`` blocks 3, 4, 6, 3, not ImageNet's 7×7 stem.

Measurement layers: ``conv1`` (the stem's ReLU), ``block1``–``block4`` (each stage's output),
``penultimate`` (the pooled features), ``logits``.
"""

from __future__ import annotations

import torch
from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers


def _conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class _Residual(nn.Module):
    """relu(body(x) + shortcut(x)), the shortcut an identity or a 1×1 conv–BN."""

    def __init__(self, body: list[nn.Module], c_in: int, c_out: int, stride: int):
        super().__init__()
        body = nn.Sequential(*body)  # drawn by the caller before the shortcut, as in lou2022's cnn.py
        shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))
        self.shortcut = shortcut  # registered first: it reads the block input, like the body's first conv
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        return torch.relu(self.body(x) + shortcut)


class BasicBlock(_Residual):
    """Two 3×3 conv–BN layers (ReLU between) with an identity or 1×1 conv–BN shortcut."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__([*_conv_bn(c_in, planes, 3, stride), nn.ReLU(inplace=True), *_conv_bn(planes, planes)],
                         c_in, planes, stride)


class Bottleneck(_Residual):
    """1×1 conv–BN–ReLU, 3×3 conv(stride)–BN–ReLU, 1×1 conv–BN to 4·planes, with a shortcut."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__([*_conv_bn(c_in, planes, 1), nn.ReLU(inplace=True), *_conv_bn(planes, planes, 3, stride),
                          nn.ReLU(inplace=True), *_conv_bn(planes, 4 * planes, 1)], c_in, 4 * planes, stride)


def _cifar_resnet(block: type[_Residual], blocks: tuple[int, ...], n_classes: int, width: int,
                  in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = _conv_bn(in_channels, width) + [nn.ReLU(inplace=True)]
    stage_ends, c_in = [], width
    for i, (factor, n) in enumerate(zip((1, 2, 4, 8), blocks)):
        for b in range(n):
            layers.append(block(c_in, factor * width, 2 if i > 0 and b == 0 else 1))
            c_in = factor * width * block.expansion
        stage_ends.append(len(layers) - 1)
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes))
    head = str(len(model) - 1)
    return declare_layers(model, [MeasurementLayer("conv1", "2")] + [
        MeasurementLayer(f"block{i}", str(k)) for i, k in enumerate(stage_ends, 1)] + [
        MeasurementLayer("penultimate", head, at="input"), MeasurementLayer("logits", head)])


def resnet18(n_classes: int, *, width: int = 64, in_channels: int = 3) -> nn.Sequential:
    return _cifar_resnet(BasicBlock, (2, 2, 2, 2), n_classes, width, in_channels)


def resnet50(n_classes: int, *, width: int = 64, in_channels: int = 3,
             blocks: tuple[int, ...] = (3, 4, 6, 3)) -> nn.Sequential:
    """``blocks`` per stage (3, 4, 6, 3 standard) shrinks it for cheap tiers and tests."""
    return _cifar_resnet(Bottleneck, tuple(blocks), n_classes, width, in_channels)
