"""maennel2020's WRN-28-4 with a 5×5 first conv (Fig 3, App. A.7).

"70 runs of a wide ResNet [54] on CIFAR10 with random labels. We used 4 blocks per group and
a width factor of 4 ... we replaced the initial 3×3 convolution with a 5×5 convolution ...
Training was run with batch normalization." Zagoruyko & Komodakis's pre-activation WRN:
three groups of 4 ``PreActBlock`` s (``preact_resnet.py``) of widths 16·4, 32·4, 64·4 =
``width``, 2·width, 4·width at strides 1, 2, 2, BatchNorm, a final BN–ReLU, global average
pooling and a linear head; no dropout (the paper mentions none).

Left open: the first conv's filter count. The paper shows "some of the 70·64 convolution
filters", so ``stem_width`` defaults to 64 (= ``width``); the original WRN has 16
(``stem_width=16``). He-normal × ``init_scale`` with zero biases (App. A.3), applied by
``build``. Measurement layers: ``conv1`` (the 5×5 conv), ``block1``–``block3`` (the groups),
``penultimate``, ``logits``.
"""

from __future__ import annotations

from torch import nn

from repalign.models.preact_resnet import PreActResNet


def wrn28_4(n_classes: int, *, width: int = 64, stem_width: int | None = None, in_channels: int = 3) -> PreActResNet:
    return PreActResNet(n_classes, widths=[width, 2 * width, 4 * width], blocks=[4, 4, 4], strides=[1, 2, 2],
                        norm=nn.BatchNorm2d, stem="cifar", stem_width=stem_width or width, stem_kernel=5,
                        final_norm=True, in_channels=in_channels)
