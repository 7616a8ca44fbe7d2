"""maennel2020 App. E.3 / Fig 23: the sequences τ_1..τ_16 weighting the 16 leading eigenvectors.

The paper prints only a plot of f1 and f3 ("a made-up curve (f1) ... which downweights the
largest eigenvalue", "another curve which downweights the largest eigenvalue less (f3)",
"adjusting some values f(σ) between 1 and 4") and f2 = 1. The plot's values are not in the
text, so f1 and f3 here are OUR curves with those three properties (rising from τ_16 = 1 to
4 at τ_2, τ_1 lowered: f1 to 1.5, f3 to 3): a reading, not a digitisation. The Fig 23
targets therefore only check that the curves used by Tables 1–3 are the ones described.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repalign.experiments.registry import Context, Resources, Tiered, analysed, artifact
from repalign.results import Result

N_TAU = 16
_TAIL = np.linspace(4.0, 1.0, N_TAU - 1)  # τ_2..τ_16


def tau_sequence(name: str) -> np.ndarray:
    """τ_1..τ_16 of ``f1``, ``f2`` (all 1) or ``f3``."""
    if name == "f1":
        return np.concatenate([[1.5], _TAIL])
    if name == "f2":
        return np.ones(N_TAU)
    if name == "f3":
        return np.concatenate([[3.0], _TAIL])
    raise ValueError(f"unknown tau sequence '{name}'; choose f1, f2 or f3")


@dataclass(frozen=True)
class TauSettings:
    n_tau: int = N_TAU  # the curves are fixed; nothing changes between tiers


@artifact("maennel2020", "fig23", settings=Tiered.same(TauSettings()), resources=Tiered.same(Resources(runtime_min=1)),
          work=lambda s: analysed(taus=s.n_tau))
def fig23(ctx: Context) -> Result:
    result = Result(notes=["f1 and f3 are our curves matching App. E.3's description (the plot's values are "
                           "not printed); f2 = 1"])
    for name in ("f1", "f2", "f3"):
        tau = tau_sequence(name)
        result.arrays[name] = tau
        result.metrics.update({f"tau.{name}.first": float(tau[0]), f"tau.{name}.min": float(tau.min()),
                               f"tau.{name}.max": float(tau.max())})
    return result
