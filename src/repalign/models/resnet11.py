"""canatar2022's custom ResNet with 11 convolutions (Sec. IV), after Page's DAWNBench ResNet [50].

"11 convolutional layers with max pooling after each residual block": a stem conv, three
stages (conv + BatchNorm + ReLU + 2×2 max-pool, then a residual block of two convs), and a
last conv, each conv 3×3 with BatchNorm and ReLU; global max-pooling and a linear head.
Channels (×``width`` / 64): 64 | 128, 128, 128 | 256, 256, 256 | 512, 512, 512 | 256, so the
penultimate layer has N_10 = 256 and layer 9 N_9 = 512 features, as the paper states. The
exact layout is not printed; this one is ours and matches those two widths. ``skip=False``
drops the residual additions (the paper's "without residual connections").

canatar2022's 10 layers ``layer1``…``layer10`` are the outputs of convs 2…11 (the stem,
``conv1``, is taken as part of the input map), each after its ReLU (and the pooling or the
residual addition where there is one); ``penultimate`` and ``logits`` as in every model.
"""

from __future__ import annotations

from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class _Residual(nn.Module):
    """x + conv(conv(x)) (or conv(conv(x)) without the skip); outputs of both convs are measured."""

    def __init__(self, c: int, skip: bool):
        super().__init__()
        self.conv_a, self.conv_b, self.skip = _conv(c, c), _conv(c, c), skip
        self.out = nn.Identity()  # the block's output, measured after the addition

    def forward(self, x):
        y = self.conv_b(self.conv_a(x))
        return self.out(x + y if self.skip else y)


class ResNet11(nn.Module):
    def __init__(self, n_classes: int, skip: bool, width: int, in_channels: int):
        super().__init__()
        c1, c2, c3, c4 = width, 2 * width, 4 * width, 8 * width
        self.stem = _conv(in_channels, c1)
        self.stages = nn.ModuleList()
        for c_in, c_out in ((c1, c2), (c2, c3), (c3, c4)):
            self.stages.append(nn.Sequential(_conv(c_in, c_out), nn.MaxPool2d(2), _Residual(c_out, skip)))
        self.last = _conv(c4, c3)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(c3, n_classes)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.pool(self.last(x)))


def resnet11(n_classes: int, *, skip: bool = True, width: int = 64, in_channels: int = 3) -> ResNet11:
    if width < 1:
        raise ValueError(f"resnet11: width must be at least 1, got {width}")
    model = ResNet11(n_classes, skip, width, in_channels)
    layers: list[tuple[str, str]] = []
    for s in range(3):
        base = f"stages.{s}"
        layers += [(f"{base}.1", "output"), (f"{base}.2.conv_a", "output"), (f"{base}.2.out", "output")]
    layers.append(("last", "output"))
    return declare_layers(model, [MeasurementLayer("conv1", "stem")] + [
        MeasurementLayer(f"layer{i + 1}", module, at) for i, (module, at) in enumerate(layers)] + [
        MeasurementLayer("penultimate", "head", at="input"), MeasurementLayer("logits", "head")])
