"""maennel2020 App. E.2: approximations of CIFAR-10 images, from the "ideal" Gaussian case to real images.

Images are cropped to 27×27 (``center_crop``) and cut into the 9×9 grid of non-overlapping
3×3 tiles that a 3×3 convolution with stride 3 sees (``to_tiles`` / ``from_tiles``; a tile is
flattened in the (C, kh, kw) order of ``repalign.metrics.patch_covariance`` and of the conv
weights). From real images in [-1, 1]:

- ``global_gaussian``: every tile drawn i.i.d. from N(0, Σ), Σ = the covariance of all 3×3
  patches (Fig 21, green: "the normal distribution with mean 0 and the covariance of all 3×3
  patches").
- ``per_position_gaussian``: the tile at position p drawn from N(0, Σ_p), Σ_p = the covariance
  of the patches at p over the images (Fig 21, red: "replace the one global covariance by the
  covariances corresponding to the possible patch positions"; the mean stays 0, as the text
  replaces only the covariance).
- ``shuffle_patches``: for each of the 9×9 positions, the tiles at that position permuted over
  the images (Fig 21, black), so each position keeps its set of real patches but neighbouring
  tiles come from different images.

Gaussian draws use the symmetric square root from ``eigh`` (eigenvalues clamped at 0), which
also works when few images make Σ_p singular.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repalign.metrics import patch_covariance

TILE = 3


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size``×``size`` window of images ``[N, C, H, W]``."""
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"center_crop: cannot crop {h}×{w} images to {size}×{size}")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def to_tiles(images: torch.Tensor, k: int = TILE) -> torch.Tensor:
    """Non-overlapping k×k tiles ``[N, P, C·k·k]`` (P positions, row-major) of images whose side is a
    multiple of k."""
    h, w = images.shape[-2:]
    if h % k or w % k:
        raise ValueError(f"to_tiles: a {h}×{w} image is not a whole number of {k}×{k} tiles; crop it first")
    return F.unfold(images, k, stride=k).transpose(1, 2)


def from_tiles(tiles: torch.Tensor, size: int, k: int = TILE) -> torch.Tensor:
    """Inverse of ``to_tiles`` for square ``size``×``size`` images."""
    return F.fold(tiles.transpose(1, 2), (size, size), k, stride=k)


def _sqrt_psd(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root(s) of covariance matrices ``[..., D, D]`` by ``eigh``."""
    evals, vecs = torch.linalg.eigh(cov)
    return vecs @ torch.diag_embed(evals.clamp_min(0).sqrt()) @ vecs.transpose(-1, -2)


def _gaussian_tiles(root: torch.Tensor, n: int, n_positions: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, P, D]`` draws of N(0, root·rootᵀ); ``root`` is ``[D, D]`` (every position) or ``[P, D, D]``."""
    z = torch.randn(n, n_positions, root.shape[-1], generator=generator, dtype=root.dtype).to(root.device)
    return z @ root.T if root.dim() == 2 else torch.einsum("pij,npj->npi", root, z)  # roots are symmetric


def global_gaussian(images: torch.Tensor, generator: torch.Generator, k: int = TILE) -> torch.Tensor:
    """As many images as ``images``, each tile i.i.d. N(0, covariance of all k×k patches of ``images``)."""
    size, n_positions = images.shape[-1], to_tiles(images[:1], k).shape[1]
    root = _sqrt_psd(patch_covariance(images.double(), k, stride=1))
    return from_tiles(_gaussian_tiles(root, images.shape[0], n_positions, generator), size, k).to(images.dtype)


def position_covariances(images: torch.Tensor, k: int = TILE) -> torch.Tensor:
    """Σ_p ``[P, D, D]``: the (unbiased) covariance over the images of the tile at each position p."""
    tiles = to_tiles(images.double(), k)
    centred = (tiles - tiles.mean(0)).transpose(0, 1)  # [P, N, D]
    return centred.transpose(1, 2) @ centred / (tiles.shape[0] - 1)


def per_position_gaussian(images: torch.Tensor, generator: torch.Generator, k: int = TILE) -> torch.Tensor:
    """As many images as ``images``, the tile at position p drawn from N(0, Σ_p)."""
    root = _sqrt_psd(position_covariances(images, k))
    tiles = _gaussian_tiles(root, images.shape[0], root.shape[0], generator)
    return from_tiles(tiles, images.shape[-1], k).to(images.dtype)


def shuffle_patches(images: torch.Tensor, generator: torch.Generator, k: int = TILE) -> torch.Tensor:
    """``images`` with the tiles at every position permuted over the images, one permutation per position."""
    tiles = to_tiles(images, k)
    n, n_positions = tiles.shape[:2]
    perms = torch.stack([torch.randperm(n, generator=generator) for _ in range(n_positions)], 1).to(tiles.device)
    return from_tiles(torch.gather(tiles, 0, perms[..., None].expand_as(tiles)), images.shape[-1], k)
