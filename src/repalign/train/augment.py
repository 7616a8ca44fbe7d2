"""Augmentation and normalisation of uint8 image batches on their own device.

The CIFAR recipe of the papers' code bases (``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize(mean, std)``) as two tensor
operations on a whole batch: one gather that crops and flips every example at its own
offsets, and one affine map per channel. The random draws come from
:class:`repalign.train.ImageSampler`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor,
              padding: int) -> torch.Tensor:
    """Crop every image of ``x`` (``[M, C, H, W]``) to ``H×W`` out of its zero-padded copy.

    Example m's window starts at row ``dy[m]``, column ``dx[m]`` of the image padded by
    ``padding`` zeros on each side (torchvision's ``RandomCrop(padding=...)``, fill 0), and
    is then mirrored left-right where ``flip[m]`` (``RandomHorizontalFlip``). Returns
    ``[M, C, H, W]`` of ``x``'s dtype whose memory is channels-last (NHWC): one gather.
    """
    m, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4) if padding else x
    rows = dy[:, None] + torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device).expand(m, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]
    batch = torch.arange(m, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [M,H,W,C] -> NCHW view


@dataclass(frozen=True)
class Normalization:
    """``(pixel / 255 − mean) / std`` per channel, torchvision's ``ToTensor`` + ``Normalize``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        if len(self.mean) != len(self.std) or not all(s > 0 for s in self.std):
            raise ValueError(f"Normalization needs one mean and one positive std per channel, got "
                             f"mean={self.mean}, std={self.std}")

    @classmethod
    def unit_range(cls, channels: int = 3) -> "Normalization":
        """Pixels mapped linearly onto [−1, 1] (maennel2020 App. A)."""
        return cls((0.5,) * channels, (0.5,) * channels)

    @classmethod
    def of(cls, x: torch.Tensor, chunk: int = 4096) -> "Normalization":
        """The per-channel mean and standard deviation of uint8 images ``x`` ``[N, C, H, W]``
        (accumulated in float64 over chunks, on ``x``'s device)."""
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise TypeError(f"Normalization.of expects uint8 images [N, C, H, W], got {x.dtype} {tuple(x.shape)}")
        total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
        squares = torch.zeros_like(total)
        for i in range(0, x.shape[0], chunk):
            part = x[i:i + chunk].double().div_(255)
            total += part.sum(dim=(0, 2, 3))
            squares += part.square().sum(dim=(0, 2, 3))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(0).sqrt()
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

    def __call__(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``x`` uint8 ``[..., C, H, W]`` -> ``dtype``, same shape and memory layout."""
        if x.shape[-3] != len(self.mean):
            raise ValueError(f"images have {x.shape[-3]} channels, the normalisation {len(self.mean)}")
        shape = (len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, dtype=dtype, device=x.device).reshape(shape)
        std = torch.tensor(self.std, dtype=dtype, device=x.device).reshape(shape)
        return x.to(dtype).div_(255).sub_(mean).div_(std)
