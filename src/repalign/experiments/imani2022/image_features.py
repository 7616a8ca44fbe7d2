"""Hand-crafted image representations of imani2022 §7.2 (Fig 13b and App. C, Fig 20a).

All take uint8 images ``[N, 3, H, W]`` and return float features ``[N, d]`` on the
images' device:

- ``hog_features``: HOG (Dalal & Triggs 2005) of the grey image, scikit-image, "9
  orientations, 64 pixels per cell, and 4 cells per block", read as 8×8-pixel cells and
  2×2-cell blocks (on 32×32 CIFAR images: 3×3 blocks, 324 features).
- ``SiftBagOfWords``: SIFT (Lowe 1999) descriptors of the grey image, OpenCV's
  ``SIFT_create().compute`` on a dense grid of keypoints (CIFAR images are too small for
  the detector to find more than a handful), quantised with a k-means dictionary of
  ``words`` visual words (the paper's 2,048) learned on the train images; an image's
  feature is its histogram of words, divided by its descriptor count.
- ``rbf_features``: "RBF representation of the data with bandwidth 1.0. The input to
  Radial Basis Functions is a flattened image normalized to length one, and the centers
  are set to all the 1000 normalized flattened training data points":
  φ_j(x) = exp(−‖x̂ − ĉ_j‖² / (2h²)) with h = 1.

The libraries are imported where they are used, so importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np
import torch

from repalign.data import to_float

GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as OpenCV's and scikit-image's rgb2gray


def grey_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` uint8 -> ``[N, H, W]`` uint8 luma on the CPU."""
    weights = torch.tensor(GREY, device=images.device)[:, None, None]
    return (images.float() * weights).sum(1).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def hog_features(images: torch.Tensor, orientations: int = 9, cell: int = 8, block: int = 2) -> torch.Tensor:
    """HOG descriptors ``[N, d]`` (float32) of the grey images."""
    from skimage.feature import hog

    grey = grey_uint8(images)
    out = [hog(g, orientations=orientations, pixels_per_cell=(cell, cell), cells_per_block=(block, block),
               block_norm="L2-Hys", feature_vector=True) for g in grey]
    return torch.from_numpy(np.stack(out)).float().to(images.device)


def dense_sift(images: torch.Tensor, step: int, size: float) -> np.ndarray:
    """SIFT descriptors ``[N, K, 128]`` at ``K`` grid keypoints (spacing ``step``, diameter ``size``)."""
    import cv2

    grey = grey_uint8(images)
    h, w = grey.shape[1:]
    grid = [cv2.KeyPoint(float(x), float(y), size)
            for y in range(step // 2, h, step) for x in range(step // 2, w, step)]
    sift = cv2.SIFT_create()
    out = []
    for g in grey:
        keypoints, desc = sift.compute(g, grid)
        if desc is None or len(keypoints) != len(grid):
            raise RuntimeError(f"OpenCV SIFT kept {0 if desc is None else len(keypoints)} of {len(grid)} "
                               "grid keypoints; use a smaller size or a larger margin")
        out.append(desc)
    return np.stack(out).astype(np.float32)


class SiftBagOfWords:
    """Bag of visual words over dense SIFT: ``fit`` learns the dictionary, ``transform`` histograms."""

    def __init__(self, words: int, seed: int, step: int = 4, size: float = 8.0):
        self.words, self.seed, self.step, self.size = words, seed, step, size
        self.centres: torch.Tensor | None = None

    def fit(self, images: torch.Tensor) -> SiftBagOfWords:
        from sklearn.cluster import MiniBatchKMeans

        desc = dense_sift(images, self.step, self.size).reshape(-1, 128)
        if desc.shape[0] < self.words:
            raise ValueError(f"{desc.shape[0]} SIFT descriptors cannot make a dictionary of {self.words} words")
        kmeans = MiniBatchKMeans(n_clusters=self.words, batch_size=4096, n_init=1, random_state=self.seed)
        self.centres = torch.from_numpy(kmeans.fit(desc).cluster_centers_).float()
        return self

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """Word histograms ``[N, words]`` (each sums to one) on the images' device."""
        if self.centres is None:
            raise RuntimeError("SiftBagOfWords.transform before fit")
        desc = torch.from_numpy(dense_sift(images, self.step, self.size)).to(images.device)   # [N, K, 128]
        centres = self.centres.to(images.device)
        nearest = torch.cdist(desc, centres.expand(desc.shape[0], -1, -1)).argmin(-1)         # [N, K]
        hist = torch.zeros(desc.shape[0], self.words, device=images.device)
        hist.scatter_add_(1, nearest, torch.ones_like(nearest, dtype=hist.dtype))
        return hist / desc.shape[1]


def unit_rows(images: torch.Tensor) -> torch.Tensor:
    """Flattened images in [0, 1], float64, each scaled to length one."""
    x = to_float(images, 0.0, 1.0, torch.float64).flatten(1)
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)


def rbf_features(images: torch.Tensor, centres: torch.Tensor, bandwidth: float = 1.0) -> torch.Tensor:
    """Gaussian RBF features ``[N, M]`` (float64) at the normalised flattened ``centres`` images ``[M, ...]``."""
    x, c = unit_rows(images), unit_rows(centres)
    return torch.exp(-torch.cdist(x, c).pow(2) / (2 * bandwidth ** 2))
