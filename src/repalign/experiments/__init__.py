"""Experiments: one function per figure/table, registered with its per-tier settings.

Importing this package registers every paper's steps in ``registry.ARTIFACTS`` and
``registry.MODELS``.
"""

from repalign.experiments import imani2022  # noqa: F401
from repalign.experiments import lou2022  # noqa: F401
from repalign.experiments.registry import ARTIFACTS, MODELS, TIERS, Context, Resources, Tiered

__all__ = ["ARTIFACTS", "MODELS", "TIERS", "Context", "Resources", "Tiered"]
