"""Shared by the lou2022 step tests: a smoke run of one model step and the artifacts that read it, on
stand-in data (``standins``), scored against paper_targets.yaml."""

from __future__ import annotations

from pathlib import Path

from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]


def smoke_chain(tmp_path: Path, model: str, artifacts: tuple[str, ...]) -> dict[str, tuple[dict, dict]]:
    """Train ``model`` and run ``artifacts`` at smoke on the stand-in data under ``tmp_path/data``.

    Returns ``{artifact: (record, {target id: scored})}``; asserts each result is ok and no
    target of it fails (smoke numbers can't be judged, but every named metric must exist).
    """
    options = {"tier": "smoke", "device": "cpu", "data_root": str(tmp_path / "data"),
               "cache_dir": str(tmp_path / "cache")}
    run_step("model", "lou2022", model, out=tmp_path / f"{model}.pt", **options)
    out = {}
    for artifact in artifacts:
        run_step("artifact", "lou2022", artifact, out=tmp_path / f"{artifact}.json",
                 inputs={model: tmp_path / f"{model}.pt"}, **options)
        record = read_result(tmp_path / f"{artifact}.json")
        assert record["status"] == "ok"
        scored = {t["id"]: evaluate_target("lou2022", artifact, t, record) for t in TARGETS[artifact]["targets"]}
        for target_id, score in scored.items():
            assert score.status != "fail", (artifact, target_id, score.reason)
        out[artifact] = (record, scored)
    return out
