"""Synthetic inputs used by the papers' toy figures.

- :func:`gaussian_inputs`: centred Gaussian inputs with a diagonal covariance
  (maennel2020, Fig 4).
- :func:`toy_circle` and :func:`toy_circle_labels`: unit vectors in two antipodal clusters
  and the two labelings of imani2022, Fig 4.

Every generator takes a ``torch.Generator`` (None: torch's global one) and ``dtype`` /
``device``. Samples are drawn on the generator's device and then moved, so a given seed
gives the same numbers whatever ``device`` is asked for.
"""

from __future__ import annotations

import math

import torch


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def gaussian_inputs(
    n: int,
    variances,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device="cpu",
) -> torch.Tensor:
    """``n`` samples of N(0, diag(variances)) as an ``[n, d]`` tensor (d = len(variances))."""
    var = torch.as_tensor(variances, dtype=torch.float64).flatten()
    if var.numel() == 0:
        raise ValueError("gaussian_inputs needs at least one variance")
    if (var < 0).any() or not torch.isfinite(var).all():
        raise ValueError("variances must be finite and non-negative")
    gdev = _gen_device(generator)
    z = torch.randn(int(n), var.numel(), generator=generator, dtype=torch.float64, device=gdev)
    x = z * var.sqrt().to(gdev)
    return x.to(device=device, dtype=dtype)


#: Cluster centres of imani2022 Fig 4: angles pi/4 (side +1) and -3pi/4 (side -1).
TOY_ANGLES = (math.pi / 4, -3 * math.pi / 4)
#: The axis through both clusters (first principal direction v1) and the one across them (v2).
TOY_V1 = (math.sqrt(0.5), math.sqrt(0.5))
TOY_V2 = (-math.sqrt(0.5), math.sqrt(0.5))


def toy_circle(
    n: int = 1000,
    spread: float = 0.3,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device="cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy representation of imani2022 Fig 4.

    Returns ``(x, side)``: ``x`` ``[n, 2]`` unit vectors, the first ``n // 2`` at angle
    pi/4 + e and the rest at -3pi/4 + e with e ~ N(0, spread^2) (radians); ``side``
    ``[n]`` is +1 for the pi/4 cluster and -1 for the other (in ``dtype``).

    The clusters are antipodal, so the first right singular vector of ``x`` is
    v1 = (1, 1)/sqrt(2) and the second v2 = (-1, 1)/sqrt(2). For unit rows
    sigma1^2 + sigma2^2 = n, and sigma2/sigma1 = sqrt(E sin^2 e / E cos^2 e), which is
    about 0.30 for spread=0.3 (the paper reports sigma1 = 9.58, sigma2 = 2.84: ratio 0.296).
    """
    n = int(n)
    if n < 2:
        raise ValueError("toy_circle needs n >= 2")
    gdev = _gen_device(generator)
    n_pos = n // 2
    centres = torch.full((n,), TOY_ANGLES[1], dtype=torch.float64, device=gdev)
    centres[:n_pos] = TOY_ANGLES[0]
    noise = torch.randn(n, generator=generator, dtype=torch.float64, device=gdev) * float(spread)
    angle = centres + noise
    x = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    side = torch.ones(n, dtype=torch.float64, device=gdev)
    side[n_pos:] = -1.0
    return x.to(device=device, dtype=dtype), side.to(device=device, dtype=dtype)


_LABELINGS = {"pc1": "pc1", "left": "pc1", "high": "pc1", "pc2": "pc2", "right": "pc2", "low": "pc2"}


def toy_circle_labels(x: torch.Tensor, labeling: str = "pc1") -> torch.Tensor:
    """The two labelings of imani2022 Fig 4, as a +-1 label vector in ``x``'s dtype.

    ``"pc1"`` (aliases ``"left"``, ``"high"``): the classes are split along the first
    principal direction v1 = (1, 1)/sqrt(2), where the data is spread out: y = sign(x . v1),
    i.e. which cluster a point is in (+1 for the pi/4 cluster). The label vector lies mostly
    along u1, so alignment is high.

    ``"pc2"`` (aliases ``"right"``, ``"low"``): the classes are split along the second
    principal direction v2 = (-1, 1)/sqrt(2), across both clusters: y = sign(x . v2), i.e.
    which side of the pi/4 -- -3pi/4 diameter a point falls on. The label vector lies
    mostly along u2 (small singular value), so alignment is low.

    Both labelings are linearly separable. The directions are the construction's exact
    principal axes, not estimated from ``x``; points exactly on the boundary get +1.
    """
    key = _LABELINGS.get(str(labeling).lower())
    if key is None:
        raise ValueError(f"unknown labeling {labeling!r}; use 'pc1' (left) or 'pc2' (right)")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"toy_circle_labels expects x of shape [n, 2], got {tuple(x.shape)}")
    v = torch.tensor(TOY_V1 if key == "pc1" else TOY_V2, dtype=x.dtype, device=x.device)
    proj = x @ v
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(proj >= 0, one, -one)
