"""Model definitions.

- ``build(name, n_classes, seed=…, **options)``: every image architecture of the papers
  (``ARCHITECTURES``), seeded without touching the global RNG;
- ``measure(model, x, layers=None)``: the named measurement layers (conv1, blocks,
  penultimate, logits) of any built model, in depth order, from one forward pass;
- ``he_normal_(module, init_scale, generator)``: maennel2020's initialisation (e.g. of a
  fresh head);
- ``StackedMLP``: many tiny MLPs trained together as one stacked module.
"""

from repalign.models.init import he_normal_
from repalign.models.measure import MeasurementLayer, layer_names, measure
from repalign.models.mlp import StackedMLP
from repalign.models.registry import ARCHITECTURES, build, options_of

__all__ = ["ARCHITECTURES", "MeasurementLayer", "StackedMLP", "build", "he_normal_", "layer_names", "measure",
           "options_of"]
