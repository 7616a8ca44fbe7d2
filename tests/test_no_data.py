"""The whole smoke DAG on a machine without data (empty data root, downloads off, no cached
weights) ends with exit code 0 and a scorecard; every data-dependent target is ``not_run`` with
its reason, and every figure is drawn (placeholders say what is missing).

(``download=False``: snakemake reads ``--config download=false`` as the string "false".)
"""

import json
from pathlib import Path

import pytest
from conftest import ROOT, copy_workflow, snakemake
from repalign.targets import read_yaml

pytestmark = pytest.mark.workflow


def data_dependent_artifacts() -> dict[tuple[str, str], set[str]]:
    """(paper, artifact) -> its datasets, for the artifacts of paper_targets.yaml that need more than synthetic data."""
    targets = read_yaml((ROOT / "paper_targets.yaml").read_text())
    return {(paper, artifact): set(spec.get("data") or []) for paper, entry in targets.items()
            for artifact, spec in entry["artifacts"].items() if set(spec.get("data") or []) - {"synthetic"}}


def assert_every_data_target_not_run(workdir: Path) -> None:
    """The scorecard scores no data-dependent target; the results and figures of those artifacts say why."""
    from repalign.experiments import ARTIFACTS

    assert (workdir / "reports/scorecard.md").stat().st_size > 0
    needs_data = data_dependent_artifacts()
    rows = [r for r in json.loads((workdir / "reports/scorecard.json").read_text())
            if (r["paper"], r["artifact"]) in needs_data]
    assert rows
    allowed = {True: {"not_run"}, False: {"not_run", "not_implemented"}}  # keyed by: the artifact has a step
    scored = [(r["paper"], r["artifact"], r["target"], r["status"]) for r in rows
              if r["status"] not in allowed[(r["paper"], r["artifact"]) in ARTIFACTS] or not (r["reason"] or "").strip()]
    assert not scored, scored

    for paper, artifact in sorted(ARTIFACTS):
        assert (workdir / f"figures/{paper}/{artifact}.png").stat().st_size > 1000, (paper, artifact)
        if (paper, artifact) not in needs_data or "synthetic" in needs_data[paper, artifact]:
            continue
        record = json.loads((workdir / f"results/{paper}/{artifact}.json").read_text())
        reasons = [record["reason"]] if record["status"] == "not_run" else list(record["not_run_metrics"].values())
        assert record["status"] == "not_run" or not record["metrics"], (paper, artifact, sorted(record["metrics"]))
        assert reasons and all("not found" in r for r in reasons), (paper, artifact, reasons)


def test_the_smoke_dag_without_data_ends_with_a_scorecard_and_every_data_target_not_run(tmp_path, monkeypatch):
    workdir = copy_workflow(tmp_path / "workflow")
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.delenv("REPALIGN_DATA", raising=False)
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no pretrained weights either
    proc = snakemake(workdir, "--config", f"data_root={empty}", "download=False", timeout=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-8000:]
    assert_every_data_target_not_run(workdir)
