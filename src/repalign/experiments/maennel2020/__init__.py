"""maennel2020: What Do Neural Networks Learn When Trained With Random Labels? (Maennel, Alabdulmohsin,
Tolstikhin, Baldock, Bousquet, Gelly, Keysers; NeurIPS 2020).

- ``protocol``: App. A shared by every artifact (splits, random labels, training, transfer, filters).
- ``eigen``: App. D.1 eigenvector stability (``appd1``) and App. D.3 / Fig 19.
- ``filter_alignment``: WRN-28-4 first-layer filters on random labels (``wrn_filters``) and Fig 3.
- ``tau``: the τ sequences f1, f2, f3 of App. E.3 (Fig 23).
- ``transfer_function``: f(σ) of Def. 3 on Gaussian inputs (Figs 4 left, 20) and the first-layer
  filters of a 1-conv CNN on CIFAR-10 over training (Fig 2 misalignment, Fig 4 centre/right).
- ``approximations`` / ``cifar_approximations``: App. E.2's CIFAR-10 approximations (global and
  per-position Gaussian, patch shuffling) and f(σ) on them and on real images at strides 3/2/1
  (Figs 21, 22).
- ``data_init``: data-only initialisation of conv layers (Table 1, Tables 2–7, App. E.3).
- ``transfer``: upstream random-label pretraining then downstream training (Figs 1, 5, 6, 8, 9).
- ``imagenet``: the App. B.6 ImageNet runs (Figs 16–18), not_run without ImageNet.
- ``activations``: held-out neuron-activation fractions streamed from training (Figs 7, 10, 11, 24).
- ``sweeps``: the App. B hyperparameter sweeps with random groups (Figs 12–15; ImageNet not_run offline).
- ``reduced``: run a step at its quick settings with stated overrides (CPU reductions).
"""

from repalign.experiments.maennel2020 import (  # noqa: F401  (registers steps)
    activations, cifar_approximations, data_init, eigen, filter_alignment, imagenet, sweeps, tau, transfer,
    transfer_function)
