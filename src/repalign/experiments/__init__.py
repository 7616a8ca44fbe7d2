"""Experiments: one function per figure/table, registered with its per-tier settings.

Importing a paper's package (``load_paper``) registers its steps in
``registry.ARTIFACTS`` and ``registry.MODELS``. A job needs only its own paper, so the
runner loads just that one; reading ``ARTIFACTS`` or ``MODELS`` from this package loads
every paper first (the workflow, the scorecard and ``repalign list`` need them all).
"""

from __future__ import annotations

import importlib

from repalign.experiments import registry
from repalign.experiments.registry import TIERS, Context, Resources, Tiered

PAPERS = ("imani2022", "lou2022", "canatar2022")  # papers with implemented steps: repalign.experiments.<paper>

__all__ = ["ARTIFACTS", "MODELS", "PAPERS", "TIERS", "Context", "Resources", "Tiered", "load_paper"]


def load_paper(paper: str) -> None:
    """Register the steps of ``paper`` (imports its package once)."""
    if paper not in PAPERS:
        raise KeyError(f"paper '{paper}' has no implemented steps; papers with steps: {', '.join(PAPERS)}")
    importlib.import_module(f"repalign.experiments.{paper}")


def __getattr__(name: str):
    if name in ("ARTIFACTS", "MODELS"):
        for paper in PAPERS:
            load_paper(paper)
        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
