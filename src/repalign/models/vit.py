"""sharon2024's ViT-B/16 (Figs 3, 17, 18; App. F.1): torchvision's ``VisionTransformer``, from scratch.

"We used the ViT-B/16 implementation of PyTorch": torchvision's model, patch 16, 12 encoder
blocks, 12 heads, hidden 768, MLP 3072, with its own initialisation. That model takes
224×224 inputs only, and the paper does not say how CIFAR's 32×32 images met it. Our choice:
the model is left unchanged (``image_size`` = 224) and inputs of any other size are resized
to it bilinearly inside ``forward``, so a 32×32 image becomes 14×14 = 196 patches, as with
the ``Resize(224)`` transform usual for torchvision ViTs. The alternative, ``image_size=32``
with patch 16, leaves 4 patches per image. For cheap tiers and tests every size is an option
(``image_size``, ``patch_size``, ``num_layers``, ``num_heads``, ``hidden_dim``, ``mlp_dim``);
e.g. ``image_size=32, patch_size=4`` trains on CIFAR without resizing (64 patches).

Measurement layers: ``conv1`` (the patch embedding ``conv_proj``), ``block1``… (each encoder
block's token sequence), ``penultimate`` (the class token after the final LayerNorm, the
head's input), ``logits``. torchvision is imported on construction only (jobs that never
build a ViT do not pay for it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repalign.models.measure import MeasurementLayer, declare_layers


class ResizingViT(nn.Module):
    """torchvision's ``VisionTransformer`` (as ``self.vit``), resizing inputs to ``image_size`` first."""

    def __init__(self, **vit_options):
        super().__init__()
        from torchvision.models.vision_transformer import VisionTransformer

        self.vit = VisionTransformer(**vit_options)
        self.image_size = self.vit.image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.vit(x)


def vit_b16(n_classes: int, *, image_size: int = 224, patch_size: int = 16, num_layers: int = 12,
            num_heads: int = 12, hidden_dim: int = 768, mlp_dim: int = 3072) -> ResizingViT:
    if image_size % patch_size:
        raise ValueError(f"vit_b16: image_size {image_size} is not a multiple of patch_size {patch_size}")
    model = ResizingViT(image_size=image_size, patch_size=patch_size, num_layers=num_layers, num_heads=num_heads,
                        hidden_dim=hidden_dim, mlp_dim=mlp_dim, num_classes=n_classes)
    return declare_layers(model, [MeasurementLayer("conv1", "vit.conv_proj")] + [
        MeasurementLayer(f"block{i + 1}", f"vit.encoder.layers.encoder_layer_{i}") for i in range(num_layers)] + [
        MeasurementLayer("penultimate", "vit.heads", at="input"), MeasurementLayer("logits", "vit.heads")])
