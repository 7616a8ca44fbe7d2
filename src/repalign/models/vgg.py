"""VGG networks: maennel2020's VGG16 (App. A.2) and lou2022's CIFAR VGG19.

``vgg16`` (maennel2020): "Configuration D" of Simonyan & Zisserman (Table 1) with the two
FC-4096 layers removed: 13 conv 3×3 layers (with biases, SAME padding, stride 1, each
followed by ReLU) in five stages of 64, 64 | 128, 128 | 256 ×3 | 512 ×3 | 512 ×3 filters,
each stage ending in a 2×2 max-pool (SAME padding, stride 2), then the flattened features
feed the dense head. No batch norm. He-normal × ``init_scale`` with zero biases, applied by
``build``. ``width`` (64) is the first stage's filters (the others scale with it);
``image_size`` (32) sets the head's input (512 · ceil(size/32)² features; 1 for CIFAR).

``vgg19`` (lou2022 Fig 4, Figs 6, 11–14, 19; moved from ``experiments/lou2022/cnn.py``):
the paper names VGG19 but not its CIFAR adaptation; ours is the common 32×32 variant:
sixteen 3×3 conv–BatchNorm–ReLU layers (no conv bias) in five max-pooled stages and one
linear classifier, PyTorch's default initialisation. Its module layout (an ``nn.Sequential``
indexed 0, 1, …) is unchanged from lou2022's, so that its checkpoints still load.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers

VGG16_STAGES = ((1, 1), (2, 2), (4, 4, 4), (8, 8, 8), (8, 8, 8))  # filters / width, per conv
VGG19_STAGES = ((1, 1), (2, 2), (4, 4, 4, 4), (8, 8, 8, 8), (8, 8, 8, 8))


def vgg16(n_classes: int, *, width: int = 64, in_channels: int = 3, image_size: int = 32) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in, size, i = in_channels, image_size, 0
    for s, stage in enumerate(VGG16_STAGES, 1):
        for factor in stage:
            i += 1
            layers[f"conv{i}"] = nn.Conv2d(c_in, factor * width, 3, padding=1)
            layers[f"relu{i}"] = nn.ReLU()
            c_in = factor * width
        layers[f"pool{s}"] = nn.MaxPool2d(2, ceil_mode=True)  # SAME padding: ceil(size / 2)
        size = (size + 1) // 2
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(c_in * size * size, n_classes)
    model = nn.Sequential(layers)
    return declare_layers(model, [MeasurementLayer(f"conv{j}", f"relu{j}") for j in range(1, i + 1)] + [
        MeasurementLayer("penultimate", "head", at="input"), MeasurementLayer("logits", "head")])


def vgg19(n_classes: int, *, width: int = 64, in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    relus: list[int] = []
    c_in = in_channels
    for stage in VGG19_STAGES:
        for factor in stage:
            layers += [nn.Conv2d(c_in, factor * width, 3, padding=1, bias=False), nn.BatchNorm2d(factor * width),
                       nn.ReLU(inplace=True)]
            relus.append(len(layers) - 1)
            c_in = factor * width
        layers.append(nn.MaxPool2d(2))
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in, n_classes))
    head = str(len(model) - 1)
    return declare_layers(model, [MeasurementLayer(f"conv{j}", str(k)) for j, k in enumerate(relus, 1)] + [
        MeasurementLayer("penultimate", head, at="input"), MeasurementLayer("logits", head)])
