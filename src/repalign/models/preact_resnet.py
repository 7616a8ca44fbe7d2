"""Pre-activation ResNets (He et al. 2016, "Identity mappings"): sharon2024's width-k PreAct
ResNet-18 and maennel2020's GroupNorm ResNet-18-v2; ``wrn.py`` builds its WRN-28-4 from here.

A block is BN–ReLU–conv3×3(stride)–BN–ReLU–conv3×3 plus a shortcut: the identity of the
block input, or, where the shape changes, a 1×1 conv (stride, no norm) of the pre-activated
input, as in kuangliu/pytorch-cifar ``PreActBlock`` and in Zagoruyko & Komodakis's WRN code.
The projection shortcut is registered just before the block's first conv (it reads the
same tensor), so the modules of a model are listed in depth order. Convs have no bias.

``preact_resnet18`` (sharon2024 App. F.1): "an initial convolutional layer followed by four
ResNet blocks, each consisting of two BatchNorm-ReLU-Convolution layers", stage widths
k, 2k, 4k, 8k (``width`` = k, 64 standard), the implementation of Nakkiran et al. that
originates in kuangliu/pytorch-cifar: a 3×3 stride-1 stem conv (no norm), stages of two
blocks at strides 1, 2, 2, 2, and, as in that code, NO BatchNorm–ReLU after the last block:
the last block's sum is average-pooled straight into the linear head. Pooling is adaptive
(any input size), where kuangliu hard-codes ``avg_pool2d(out, 4)`` for 32×32. PyTorch's
default initialisation. Left open: nothing beyond what kuangliu's code fixes.

``resnet18_v2_gn`` (maennel2020 App. A.2): "vanilla ResNet-v2 architecture [22] with batch
normalization replaced by the group normalization". Read as the same pre-activation
ResNet-18 with GroupNorm (``groups``, 32 as in Wu & He, capped at the channel count) and
ResNet-v2's final norm–ReLU before the pooling. The paper uses "the same architectures for
both CIFAR10 and ImageNet datasets, by only adjusting the number of outputs", so the default
stem is ImageNet's (7×7 stride-2 conv, 3×3 stride-2 max-pool); ``stem='cifar'`` gives the
3×3 stride-1 stem. Left open: the group count and the stem on CIFAR (both options).
He-normal × ``init_scale`` with zero biases, applied by ``build``.

Measurement layers: ``conv1`` (the stem conv), ``block1``… (each stage's output, sharon2024's
"ResNet blocks"), ``penultimate`` (the pooled features the head reads), ``logits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers

Norm = Callable[[int], nn.Module]
STEMS = ("cifar", "imagenet")


class PreActBlock(nn.Module):
    """BN–ReLU–conv3×3–BN–ReLU–conv3×3 with an identity or 1×1-conv shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: Norm):
        super().__init__()
        self.bn1 = norm(c_in)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """A stem conv, stages of ``PreActBlock`` s, optional final norm–ReLU, adaptive average pool, linear."""

    def __init__(self, n_classes: int, *, widths: Sequence[int], blocks: Sequence[int], strides: Sequence[int],
                 norm: Norm, stem: str, stem_width: int, stem_kernel: int = 3, final_norm: bool,
                 in_channels: int = 3):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got '{stem}'")
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
            self.stem_pool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_width, stem_kernel, padding=stem_kernel // 2, bias=False)
        c_in = stem_width
        for i, (width, n_blocks, stride) in enumerate(zip(widths, blocks, strides), 1):
            stage = []
            for b in range(n_blocks):
                stage.append(PreActBlock(c_in, width, stride if b == 0 else 1, norm))
                c_in = width
            setattr(self, f"layer{i}", nn.Sequential(*stage))
        self.n_stages = len(widths)
        if final_norm:
            self.final_norm = norm(c_in)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(c_in, n_classes)
        declare_layers(self, [MeasurementLayer("conv1", "conv1")] + [
            MeasurementLayer(f"block{i}", f"layer{i}") for i in range(1, self.n_stages + 1)] + [
            MeasurementLayer("penultimate", "linear", at="input"), MeasurementLayer("logits", "linear")])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if hasattr(self, "stem_pool"):
            out = self.stem_pool(out)
        for i in range(1, self.n_stages + 1):
            out = getattr(self, f"layer{i}")(out)
        if hasattr(self, "final_norm"):
            out = torch.relu(self.final_norm(out))
        return self.linear(torch.flatten(self.pool(out), 1))


def group_norm(groups: int) -> Norm:
    """GroupNorm with ``min(groups, channels)`` groups; channels must divide evenly."""
    def make(channels: int) -> nn.GroupNorm:
        g = min(groups, channels)
        if channels % g:
            raise ValueError(f"GroupNorm: {channels} channels do not split into {g} groups; choose a width "
                             f"that is a multiple of groups={groups} or another groups")
        return nn.GroupNorm(g, channels)
    return make


def preact_resnet18(n_classes: int, *, width: int = 64, in_channels: int = 3) -> PreActResNet:
    return PreActResNet(n_classes, widths=[width, 2 * width, 4 * width, 8 * width], blocks=[2, 2, 2, 2],
                        strides=[1, 2, 2, 2], norm=nn.BatchNorm2d, stem="cifar", stem_width=width,
                        final_norm=False, in_channels=in_channels)


def resnet18_v2_gn(n_classes: int, *, width: int = 64, groups: int = 32, stem: str = "imagenet",
                   in_channels: int = 3) -> PreActResNet:
    return PreActResNet(n_classes, widths=[width, 2 * width, 4 * width, 8 * width], blocks=[2, 2, 2, 2],
                        strides=[1, 2, 2, 2], norm=group_norm(groups), stem=stem, stem_width=width,
                        final_norm=True, in_channels=in_channels)
