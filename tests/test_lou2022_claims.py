"""lou2022 claims that used to pass for a wrong result (issue 11): each is scored on the smallest
plausible wrong result and must fail, and on a right one and must pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]


def _status(artifact: str, target_id: str, metrics: dict) -> str:
    target = next(t for t in TARGETS[artifact]["targets"] if t["id"] == target_id)
    return evaluate_target("lou2022", artifact, target, {"tier": "paper", "metrics": metrics}).status


def test_a_tie_is_no_shift_of_the_frozen_peak():
    assert _status("fig18", "less_noise_more_central_peak", {"argmax_layer.noise0_01": 3,
                                                             "argmax_layer.noise1_0": 3}) == "fail"
    assert _status("fig18", "less_noise_more_central_peak", {"argmax_layer.noise0_01": 5,
                                                             "argmax_layer.noise1_0": 2}) == "pass"


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_a_wide_interval_around_three_fifths_does_not_pass(dataset):
    def ci(low, high):
        return {f"fitted_slope_ci_low.{dataset}": low, f"fitted_slope_ci_high.{dataset}": high}

    target = f"slope_ci_covers_three_fifths_{dataset}"
    assert _status("fig3", target, ci(0.2, 1.4)) == "fail"   # covers 0.6 only by being wide
    assert _status("fig3", target, ci(0.65, 0.9)) == "fail"  # narrow but misses
    assert _status("fig3", target, ci(0.5, 0.75)) == "pass"


def test_a_broken_lfm_does_not_pass_the_lfm_claims():
    """An LFM at chance is below the end-to-end net and has a low alignment; it must still fail."""
    broken = {"test_accuracy.lfm_w32": 11.0, "test_accuracy.lfm_w256": 10.0, "test_accuracy.e2e_w32": 96.9,
              "layer_alignment.max.lfm_w256": 0.01, "layer_alignment.max.e2e_w32": 0.2}
    working = {**broken, "test_accuracy.lfm_w32": 93.6, "test_accuracy.lfm_w256": 95.9}
    for target in ("lfm_underperforms", "lfm_lower_alignment"):
        assert _status("fig16", target, broken) == "fail", target
        assert _status("fig16", target, working) == "pass", target
    broken = {"test_accuracy.lfm_w256": 10.0, "test_accuracy.lfm_w1024": 10.0, "test_accuracy.e2e_w256": 56.7}
    working = {**broken, "test_accuracy.lfm_w256": 48.3, "test_accuracy.lfm_w1024": 49.2}
    assert _status("fig17", "lfm_generalises_worse", broken) == "fail"
    assert _status("fig17", "lfm_generalises_worse", working) == "pass"


def test_targets_true_by_construction_are_unit_tests_not_claims():
    ids = {t["id"] for t in TARGETS["theory"]["targets"]}
    assert not ids & {"correlation_map_at_0", "correlation_map_at_1", "equilibrium_layer_grows_with_depth"}
