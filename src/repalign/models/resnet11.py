"""canatar2022's ResNet with 11 conv layers (Sec. IV), read from the ffcv ResNet-9 it cites [50].

The paper: "a custom ResNet architecture with 11 convolutional layers with max pooling after
each residual block based on the methods and the architecture introduced in [50]" (ffcv's
CIFAR-10 example), trained with batch normalization, with or without residual connections,
and with layer kernels of rank N_9 = 512 and N_10 = 256 (Layer 10 being the penultimate).
It gives no layer table. Our reading extends ffcv's ResNet-9 pattern (conv–BN–ReLU units;
a residual block adds its input to two such units; a narrowing conv before a global
max-pool; a bias-free linear head scaled by 0.2) to 11 convs:

    conv1 64 · conv2 128 · res1 [conv3, conv4] 128 · max-pool · conv5 256 ·
    res2 [conv6, conv7] 256 · max-pool · conv8 512 · res3 [conv9, conv10] 512 · max-pool ·
    conv11 256 · global max-pool · linear (no bias) · ×0.2

(widths for ``width`` = 64; all 3×3, stride 1, padding 1). conv10 (512 channels) and the
pooled conv11 (256) match the paper's N_9 and N_10, so the paper's Layer ℓ is read as
conv(ℓ+1) here, Layer 10 the ``penultimate``; the paper's choice of 10 probed layers out of
11 is not stated. ``skip=False`` drops the three residual additions (the paper's
"without residual connections"). ffcv's second conv is 5×5 stride 2; ours is 3×3 stride 1,
so that the downsampling is the max-pooling "after each residual block". PyTorch's default
initialisation. Measurement layers: conv1 … conv11 (a residual block's second conv is
measured after the skip addition), ``penultimate``, ``logits``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers


def _unit(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Residual(nn.Sequential):
    """x + units(x) (ffcv's ``Residual``), or units(x) alone with ``skip=False``."""

    def __init__(self, units: OrderedDict[str, nn.Module], skip: bool):
        super().__init__(units)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return x + out if self.skip else out


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def resnet11(n_classes: int, *, skip: bool = True, width: int = 64, head_scale: float = 0.2,
             in_channels: int = 3) -> nn.Sequential:
    w = width
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv1"] = _unit(in_channels, w)
    layers["conv2"] = _unit(w, 2 * w)
    layers["res1"] = Residual(OrderedDict(conv3=_unit(2 * w, 2 * w), conv4=_unit(2 * w, 2 * w)), skip)
    layers["pool1"] = nn.MaxPool2d(2)
    layers["conv5"] = _unit(2 * w, 4 * w)
    layers["res2"] = Residual(OrderedDict(conv6=_unit(4 * w, 4 * w), conv7=_unit(4 * w, 4 * w)), skip)
    layers["pool2"] = nn.MaxPool2d(2)
    layers["conv8"] = _unit(4 * w, 8 * w)
    layers["res3"] = Residual(OrderedDict(conv9=_unit(8 * w, 8 * w), conv10=_unit(8 * w, 8 * w)), skip)
    layers["pool3"] = nn.MaxPool2d(2)
    layers["conv11"] = _unit(8 * w, 4 * w)
    layers["pool"] = nn.AdaptiveMaxPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(4 * w, n_classes, bias=False)
    layers["scale"] = Scale(head_scale)
    model = nn.Sequential(layers)
    paths = {"conv3": "res1.conv3", "conv4": "res1", "conv6": "res2.conv6", "conv7": "res2",
             "conv9": "res3.conv9", "conv10": "res3"}
    return declare_layers(model, [MeasurementLayer(f"conv{i}", paths.get(f"conv{i}", f"conv{i}"))
                                  for i in range(1, 12)] + [
        MeasurementLayer("penultimate", "head", at="input"), MeasurementLayer("logits", "scale")])
