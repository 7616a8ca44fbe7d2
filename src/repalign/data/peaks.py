"""Peaks functions (Caruana 1997), the synthetic transfer tasks of imani2022 §7.1.

Six variables A..F are drawn uniformly from [0, 1). A peaks function P_{X,Y,Z} labels a
point ``Y if X > 0.5 else Z``. Each variable is encoded by 10 RBF features centred at
0.0, 0.1, ..., 0.9 (height 0.5, standard deviation 0.1), giving 60 inputs that are then
scaled to unit length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

N_VARIABLES = 6
VARIABLE_NAMES = "ABCDEF"
RBF_CENTRES = tuple(i / 10 for i in range(10))
RBF_HEIGHT = 0.5
RBF_SD = 0.1


@dataclass(frozen=True)
class PeaksTasks:
    """Source task S, similar task T1 (S's variables reordered), dissimilar T2 (the other three)."""

    S: tuple[int, int, int]
    T1: tuple[int, int, int]
    T2: tuple[int, int, int]

    def named(self) -> dict[str, str]:
        return {k: "P_" + ",".join(VARIABLE_NAMES[i] for i in getattr(self, k)) for k in ("S", "T1", "T2")}


def draw_tasks(generator: torch.Generator) -> PeaksTasks:
    """Draw S from the 120 peaks functions, T1 as another order of S's variables, T2 from the rest."""
    order = torch.randperm(N_VARIABLES, generator=generator).tolist()
    source, rest = tuple(order[:3]), order[3:]
    while True:
        t1 = tuple(source[i] for i in torch.randperm(3, generator=generator).tolist())
        if t1 != source:
            break
    t2 = tuple(rest[i] for i in torch.randperm(3, generator=generator).tolist())
    return PeaksTasks(S=source, T1=t1, T2=t2)


def sample_variables(n: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """``[n, 6]`` values of A..F, uniform on [0, 1)."""
    return torch.rand(n, N_VARIABLES, generator=generator, dtype=dtype)


def encode(variables: torch.Tensor) -> torch.Tensor:
    """RBF-encode ``[n, 6]`` variables into ``[n, 60]`` unit-length inputs (variable-major order)."""
    centres = torch.tensor(RBF_CENTRES, dtype=variables.dtype, device=variables.device)
    feats = RBF_HEIGHT * torch.exp(-((variables[..., None] - centres) ** 2) / (2 * RBF_SD ** 2))
    feats = feats.flatten(start_dim=-2)
    return feats / torch.linalg.vector_norm(feats, dim=-1, keepdim=True)


def peaks_label(variables: torch.Tensor, task: tuple[int, int, int]) -> torch.Tensor:
    """P_{X,Y,Z}(v) = v_Y if v_X > 0.5 else v_Z."""
    x, y, z = task
    return torch.where(variables[..., x] > 0.5, variables[..., y], variables[..., z])
