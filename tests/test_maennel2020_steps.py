"""maennel2020 synthetic steps at the smoke tier write every metric their targets name (finite).

The CIFAR-10 steps are covered by the smoke DAG (with $REPALIGN_DATA) in test_workflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repalign.plots import draw
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["maennel2020"]["artifacts"]


@pytest.mark.parametrize("artifact", ["fig19", "fig23", "fig20"])
def test_smoke_step_writes_every_target_metric(artifact, tmp_path):
    out = tmp_path / f"{artifact}.json"
    assert run_step("artifact", "maennel2020", artifact, tier="smoke", out=out, device="cpu") == "ok"
    result = read_result(out)
    for target in TARGETS[artifact]["targets"]:
        record = evaluate_target("maennel2020", artifact, target, result)
        assert record.status != "fail", (target["id"], record.reason)


@pytest.mark.parametrize("artifact", ["fig16", "fig17", "fig18"])
def test_imagenet_figures_are_not_run_offline_naming_imagenet(artifact, tmp_path):
    out = tmp_path / f"{artifact}.json"
    status = run_step("artifact", "maennel2020", artifact, tier="smoke", out=out, device="cpu",
                      data_root=str(tmp_path / "empty"))
    record = json.loads(out.read_text())
    assert status == "not_run" and record["status"] == "not_run"
    assert "imagenet" in record["reason"] and str(tmp_path / "empty") in record["reason"]
    draw("maennel2020", artifact, out, tmp_path / f"{artifact}.png")
    assert (tmp_path / f"{artifact}.png").stat().st_size > 0
