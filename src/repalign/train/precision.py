"""Which dtype, autocast and memory format a training run uses on a device.

On CUDA, convolutions run in bfloat16 under ``torch.autocast`` on channels-last tensors
(the tensor-core layout). Parameters, optimiser state and the normalisation layers'
affine parameters and running statistics stay float32: the model is never cast, and
autocast runs ``batch_norm`` on float32 weights and statistics (its kernels accumulate in
float32) and ``group_norm`` / ``layer_norm`` in float32 altogether. On the CPU the default
is plain float32, so runs there are exact and reproducible bit for bit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp64")


@dataclass(frozen=True)
class Precision:
    """dtype: of the parameters and the inputs; autocast: lower-precision compute dtype or None."""

    device_type: str
    dtype: torch.dtype
    autocast: torch.dtype | None
    memory_format: torch.memory_format

    def context(self):
        """The autocast context of a forward pass (a no-op without autocast)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast)


def precision_policy(device: torch.device | str, precision: str = "auto") -> Precision:
    """The policy for ``device``.

    ``auto``: bf16 autocast and channels-last on CUDA, fp32 elsewhere. ``fp32``: no
    autocast (channels-last still on CUDA). ``bf16``: autocast on any device (on the CPU
    only to test this path). ``fp64``: float64 everything, for exactness tests.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose one of {PRECISIONS}")
    device_type = torch.device(device).type
    cuda = device_type == "cuda"
    layout = torch.channels_last if cuda else torch.contiguous_format
    if precision == "fp64":
        return Precision(device_type, torch.float64, None, torch.contiguous_format)
    lower = precision == "bf16" or (precision == "auto" and cuda)
    return Precision(device_type, torch.float32, torch.bfloat16 if lower else None, layout)
