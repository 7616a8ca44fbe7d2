"""Every measure of the five papers, as pure functions of torch tensors.

One module per job:

- ``alignment``: imani2022 representation alignment (Eq. 2, Prop. 1).
- ``covariance``: maennel2020 patch covariance, misalignment, transfer
  function, data-only filters, activation fractions.
- ``cka``: linear CKA (full, unbiased, minibatch) and epoch×epoch CKA matrices
  (sharon2024).
- ``kernels``: canatar2022 kernel-target alignment and cumulative power.
- ``tangent``: lou2022 layerwise tangent-kernel alignment and the
  canatar2022 traced NTK.
- ``equilibrium``: lou2022 infinite-width equilibrium layer (numpy).
- ``fits``: power-law (log–log) fits with a slope confidence interval.
- ``probes``: stable rank (lou2022) and decision-region similarity (sharon2024).
"""

from repalign.metrics.alignment import (
    alignment_auc,
    alignment_curve,
    gd_learning_curve,
    label_projection_spectrum,
    normalize_representation,
)
from repalign.metrics.cka import (
    center_gram,
    centered_normalized_gram,
    cka_matrix,
    linear_cka,
    minibatch_cka,
)
from repalign.metrics.covariance import (
    activation_fractions,
    covariance_filters,
    misalignment,
    patch_covariance,
    transfer_function,
)
from repalign.metrics.equilibrium import (
    EquilibriumProfile,
    SlopeFit,
    equilibrium_profile,
    equilibrium_slope,
    relu_correlation_map,
)
from repalign.metrics.fits import LogLogFit, loglog_fit
from repalign.metrics.kernels import cumulative_power, kernel_alignment, spectrum_and_power, symmetric_eigh
from repalign.metrics.probes import drs, stable_rank, triplet_planes
from repalign.metrics.tangent import layer_tangent_alignment, layer_tangent_kernels, traced_ntk

__all__ = [
    "EquilibriumProfile",
    "LogLogFit",
    "SlopeFit",
    "activation_fractions",
    "alignment_auc",
    "alignment_curve",
    "center_gram",
    "centered_normalized_gram",
    "cka_matrix",
    "covariance_filters",
    "cumulative_power",
    "spectrum_and_power",
    "symmetric_eigh",
    "drs",
    "equilibrium_profile",
    "equilibrium_slope",
    "gd_learning_curve",
    "kernel_alignment",
    "label_projection_spectrum",
    "layer_tangent_alignment",
    "layer_tangent_kernels",
    "linear_cka",
    "loglog_fit",
    "minibatch_cka",
    "misalignment",
    "normalize_representation",
    "patch_covariance",
    "relu_correlation_map",
    "stable_rank",
    "traced_ntk",
    "transfer_function",
    "triplet_planes",
]
