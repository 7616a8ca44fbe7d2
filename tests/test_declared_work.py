"""Every registered step declares its work at every tier, computed from its own settings (issue 17).

``repalign estimate`` projects a tier's device time from a measured rate times this work; a step
without it has no estimate. A new step that forgets ``work=`` fails here.
"""

from __future__ import annotations

import pytest

from repalign.compute.estimate import declared_work
from repalign.experiments import ARTIFACTS, MODELS, TIERS
from repalign.experiments.registry import Work

STEPS = sorted([*MODELS.values(), *ARTIFACTS.values()], key=lambda s: (s.paper, s.kind, s.name))


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"{s.paper}/{s.kind}/{s.name}")
def test_every_step_declares_positive_work_at_every_tier(step):
    assert step.work is not None, (f"{step.paper}/{step.name} declares no work: pass work= to its @{step.kind} "
                                   "(registry.trained / analysed, computed from its settings)")
    works = {tier: declared_work(step, tier) for tier in TIERS}
    for tier, work in works.items():
        assert isinstance(work, Work) and work.amount > 0, f"{step.paper}/{step.name} at {tier}: {work}"
    assert len({w.kind for w in works.values()}) == 1  # a rate measured at one tier must apply to the others


def test_work_follows_the_settings_not_a_copy_of_them():
    """Changing a tier's settings changes its declared work: the work is read from them."""
    from dataclasses import replace

    step = MODELS[("imani2022", "peaks_h1")]
    s = step.settings_for("quick")
    assert step.work(replace(s, epochs=2 * s.epochs)).amount == 2 * step.work(s).amount
    grid = MODELS[("lou2022", "grid_resnet18_cifar10")]
    g = grid.settings_for("quick")
    assert grid.work(replace(g, lrs=g.lrs + (1.0,))).amount > grid.work(g).amount


def test_the_seed_override_scales_the_declared_work():
    step = MODELS[("imani2022", "peaks_h1")]
    assert declared_work(step, "quick", n_seeds=5).amount == declared_work(step, "quick").amount / 2
