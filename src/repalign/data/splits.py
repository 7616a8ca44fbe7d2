"""The in-memory split type and small helpers on it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch


@dataclass(frozen=True, eq=False)  # identity equality: tensors have no truth value
class ImageSplit:
    """One split of a dataset, held as whole tensors.

    x: uint8 ``[N, C, H, W]`` for images; float32 ``[N, d]`` for tabular data (CT).
    y: int64 ``[N]`` class labels; float32 ``[N]`` for a regression target (CT).
    classes: class names in label order (empty for regression).
    source: human-readable provenance (which files, which format).
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    source: str

    def __post_init__(self):
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x has {self.x.shape[0]} rows but y has {self.y.shape[0]} ({self.source})"
            )

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device) -> "ImageSplit":
        """The same split with both tensors on ``device``."""
        return replace(self, x=self.x.to(device), y=self.y.to(device))

    def __len__(self) -> int:
        return self.n


def to_float(
    x_uint8: torch.Tensor,
    low: float = -1.0,
    high: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Map uint8 pixels 0..255 linearly onto ``[low, high]`` (0 -> low, 255 -> high)."""
    if x_uint8.dtype != torch.uint8:
        raise TypeError(f"to_float expects a uint8 tensor, got {x_uint8.dtype}")
    if not high > low:
        raise ValueError(f"to_float needs high > low, got low={low}, high={high}")
    scale = (high - low) / 255.0
    return x_uint8.to(dtype).mul_(scale).add_(low)


def class_subset(
    split: ImageSplit,
    classes: Sequence[int],
    max_per_class: int | None = None,
    generator: torch.Generator | None = None,
    remap: bool = True,
) -> ImageSplit:
    """A new split holding only the examples whose label is in ``classes``.

    remap=True: labels become 0..k-1 in the order given by ``classes`` and
    ``.classes`` lists those k names. remap=False: labels and ``.classes`` are kept.
    max_per_class: keep at most this many per class; the first ones in split order
    when ``generator`` is None, otherwise a random choice drawn with ``generator``.
    The kept examples stay in their original relative order.
    """
    classes = [int(c) for c in classes]
    if not classes:
        raise ValueError("class_subset needs at least one class")
    if len(set(classes)) != len(classes):
        raise ValueError(f"class_subset got repeated classes: {classes}")
    if split.y.dtype.is_floating_point:
        raise TypeError("class_subset needs integer class labels (this split is a regression)")
    n_classes = len(split.classes)
    for c in classes:
        if n_classes and not 0 <= c < n_classes:
            raise ValueError(f"class {c} out of range 0..{n_classes - 1}")

    y_cpu = split.y.cpu()
    keep = []
    for c in classes:
        idx = torch.nonzero(y_cpu == c).flatten()
        if max_per_class is not None and idx.numel() > max_per_class:
            if generator is None:
                idx = idx[:max_per_class]
            else:
                pick = torch.randperm(idx.numel(), generator=generator, device=generator.device)
                idx = idx[pick[:max_per_class].cpu()]
        keep.append(idx)
    index = torch.sort(torch.cat(keep)).values
    index_dev = index.to(split.x.device)
    x = split.x.index_select(0, index_dev)
    y = split.y.index_select(0, index_dev)
    if remap:
        lut = torch.full((max(n_classes, max(classes) + 1),), -1, dtype=torch.int64)
        for new, old in enumerate(classes):
            lut[old] = new
        y = lut.to(y.device)[y]
        names = [split.classes[c] if n_classes else str(c) for c in classes]
    else:
        names = list(split.classes)
    how = "remapped to 0..%d" % (len(classes) - 1) if remap else "labels kept"
    cap = f", at most {max_per_class} per class" if max_per_class is not None else ""
    return ImageSplit(
        x=x, y=y, classes=names,
        source=f"{split.source}; classes {classes}{cap} ({how})",
    )
