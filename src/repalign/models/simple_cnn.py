"""maennel2020's "Simple CNN" (App. A.2): n conv 3×3 + ReLU layers, a dense ReLU layer, a head.

"num_conv_layers convolutional layers with 3×3 filters, each followed by the ReLU activation.
Each convolutional layer contains num_filters filters (with biases) that are applied with
stride 1. The outputs of the final convolutional layer are flattened and passed to a dense
layer (with biases) of num_units units, followed by the ReLU activation", then the head.
Options: ``n_conv`` (num_conv_layers), ``filters`` (num_filters), ``units`` (num_units);
the defaults are Fig 6's left column (3 conv layers, 16 filters, 1024 units). ``stride``
(default 1, as App. A.2) applies to every conv: App. E.2's Figs 21–22 use strides 3, 2, 1.

Left open by the paper: the padding (SAME here, the paper's VGG16 convention and Flax's
default; ``padding='valid'`` is the alternative) and pooling (none is mentioned; ``pool=True``
adds one 2×2 max-pool, SAME, stride 2, after the last conv). He-normal × ``init_scale``
initialisation with zero biases (``repalign.models.init``) is applied by ``build``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers

PADDINGS = ("same", "valid")


def simple_cnn(n_classes: int, *, n_conv: int = 3, filters: int = 16, units: int = 1024, pool: bool = False,
               padding: str = "same", in_channels: int = 3, image_size: int = 32, stride: int = 1) -> nn.Sequential:
    if n_conv < 1:
        raise ValueError(f"simple_cnn: n_conv must be at least 1, got {n_conv}")
    if padding not in PADDINGS:
        raise ValueError(f"simple_cnn: padding must be one of {PADDINGS}, got '{padding}'")
    if not (isinstance(stride, int) and stride >= 1):
        raise ValueError(f"simple_cnn: stride must be a positive integer, got {stride!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    size, c_in = image_size, in_channels
    for i in range(1, n_conv + 1):
        pad = 1 if padding == "same" else 0
        layers[f"conv{i}"] = nn.Conv2d(c_in, filters, 3, stride=stride, padding=pad)
        layers[f"relu{i}"] = nn.ReLU()
        size, c_in = (size + 2 * pad - 3) // stride + 1, filters
    if size < 1:
        raise ValueError(f"simple_cnn: {n_conv} {padding}-padded convs at stride {stride} leave nothing of a "
                         f"{image_size}-pixel image")
    if pool:
        layers["pool"] = nn.MaxPool2d(2, ceil_mode=True)  # SAME padding: ceil(size / 2)
        size = (size + 1) // 2
    layers["flatten"] = nn.Flatten()
    layers["dense"] = nn.Linear(filters * size * size, units)
    layers["relu_dense"] = nn.ReLU()
    layers["head"] = nn.Linear(units, n_classes)
    model = nn.Sequential(layers)
    return declare_layers(model, [MeasurementLayer(f"conv{i}", f"relu{i}") for i in range(1, n_conv + 1)] + [
        MeasurementLayer("penultimate", "head", at="input"), MeasurementLayer("logits", "head")])
