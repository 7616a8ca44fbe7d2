"""Model definitions. Many tiny models train together as one stacked module."""

from repalign.models.mlp import StackedMLP

__all__ = ["StackedMLP"]
