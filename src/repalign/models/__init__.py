"""Model definitions.

- ``build(name, n_classes, seed=…, **options)``: every image architecture of the papers
  (``ARCHITECTURES``), seeded without touching the global RNG;
- ``measure(model, x, layers=None)``: the named measurement layers (conv1, blocks,
  penultimate, logits) of any built model, in depth order, from one forward pass;
- ``StackedMLP``: many tiny MLPs trained together as one stacked module.
"""

from repalign.models.measure import MeasurementLayer, layer_names, measure
from repalign.models.mlp import StackedMLP
from repalign.models.registry import ARCHITECTURES, build, options_of

__all__ = ["ARCHITECTURES", "MeasurementLayer", "StackedMLP", "build", "layer_names", "measure", "options_of"]
