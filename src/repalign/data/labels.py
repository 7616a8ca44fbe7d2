"""Label noise: one fixed, seed-reproducible relabelling of a fraction of a training set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

CONVENTIONS = ("incorrect", "uniform")


@dataclass(frozen=True, eq=False)
class Relabelling:
    """The noisy labels and what made them; ``record()`` goes into a result's metrics/notes."""

    labels: torch.Tensor      # int64 [n], on the device of the true labels
    relabelled: torch.Tensor  # int64 indices of the examples given a drawn label, sorted
    fraction: float
    n_classes: int
    convention: str
    seed: int

    def record(self) -> dict:
        """Fraction, convention, seed, counts and a SHA-1 of the labels: enough to identify the relabelling."""
        digest = hashlib.sha1(self.labels.cpu().numpy().tobytes()).hexdigest()
        return {"label_noise_fraction": self.fraction, "label_noise_convention": self.convention,
                "label_noise_seed": self.seed, "label_noise_classes": self.n_classes,
                "label_noise_relabelled": int(self.relabelled.numel()), "label_noise_sha1": digest}


def relabel(y: torch.Tensor, fraction: float, n_classes: int, seed: int, *,
            convention: str = "incorrect") -> Relabelling:
    """Replace the labels of ``round(fraction · n)`` examples, chosen uniformly without replacement.

    ``convention="incorrect"`` (sharon2024, which follows Nakkiran et al. 2021, "Deep
    Double Descent", §3: "a uniformly random *incorrect* label"): the new label is drawn
    uniformly from the ``n_classes − 1`` classes other than the true one, so a noisy label
    never equals the true label and exactly ``fraction`` of the labels are wrong; "20%
    label noise" then means 20% wrong labels, which is what sets the epoch-wise double
    descent. ``convention="uniform"`` (maennel2020 §2.1, App. A: labels drawn i.i.d.
    uniformly over ``num_classes_upstream``, independent of the image): the new label is
    uniform over all ``n_classes`` and may equal the true one (with probability 1/K), and
    ``n_classes`` may differ from the dataset's; ``fraction=1`` gives fully random labels.

    The same ``(y, fraction, n_classes, seed, convention)`` gives the same labels on
    every device (all draws on a CPU generator).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown label-noise convention '{convention}'; choose one of {CONVENTIONS}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label-noise fraction must be in [0, 1], got {fraction}")
    if y.dtype != torch.int64 or y.dim() != 1:
        raise TypeError(f"relabel needs int64 labels [n], got {y.dtype} {tuple(y.shape)}")
    if n_classes < 2:
        raise ValueError(f"label noise needs n_classes >= 2, got {n_classes}")
    true = y.cpu()
    if convention == "incorrect" and true.numel() and int(true.max()) >= n_classes:
        raise ValueError(f"labels go up to {int(true.max())} but n_classes={n_classes}: the 'incorrect' "
                         f"convention draws among the other true classes, so n_classes must cover them")
    g = torch.Generator().manual_seed(int(seed))
    picked = torch.randperm(true.numel(), generator=g)[:int(round(fraction * true.numel()))].sort().values
    noisy = true.clone()
    if convention == "incorrect":
        shift = torch.randint(1, n_classes, (picked.numel(),), generator=g)
        noisy[picked] = (true[picked] + shift) % n_classes
    else:
        noisy[picked] = torch.randint(0, n_classes, (picked.numel(),), generator=g)
    return Relabelling(noisy.to(y.device), picked.to(y.device), float(fraction), int(n_classes), convention,
                       int(seed))
