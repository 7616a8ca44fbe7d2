"""sharon2024: How Does Perfect Fitting Affect Representation Learning? (Sharon, Dar; arXiv 2405.17377).

- ``cka_store``: the per-epoch stored form of a layer (unit-norm U-centred Gram triangles of the
  probe batches) and the E×E minibatch-CKA map as one matrix product.
- ``architectures``: PreAct ResNet-18 (width k), ResNet-50, ViT-B/16 with measurement layers.
- ``runs``: the App. G training configurations, one model step each, measuring during training.
- ``analysis``: named epochs, double-descent bump, CKA-map summaries.
- ``drs``: per-layer linear probes and decision-region similarity (Eq. 5).
- ``figures``: the 21 figures.
"""

from repalign.experiments.sharon2024 import figures, runs  # noqa: F401  (registers steps)
