"""Every measure of the five papers, as pure functions of torch tensors.

One module per job: ``alignment`` (imani2022 representation alignment).
"""

from repalign.metrics.alignment import (
    alignment_auc,
    alignment_curve,
    gd_learning_curve,
    label_projection_spectrum,
    normalize_representation,
)

__all__ = [
    "alignment_auc",
    "alignment_curve",
    "gd_learning_curve",
    "label_projection_spectrum",
    "normalize_representation",
]
