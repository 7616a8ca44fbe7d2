"""End-to-end: the smoke DAG, the regression check, dry runs of every tier, lint, bad config.

These run snakemake in a copy of the workflow so the checkout stays clean. Data come
from $REPALIGN_DATA (CI points it at ../shared/data); the implemented smoke DAG needs none.
"""

import json
import shutil

import pytest
from conftest import ROOT, copy_workflow, snakemake
from repalign.targets import read_yaml

pytestmark = pytest.mark.workflow


def implemented():
    from repalign.experiments import ARTIFACTS
    return sorted(ARTIFACTS)


def test_smoke_dag_writes_every_result_figure_and_the_scorecard(smoke_dag):
    for paper, artifact in implemented():
        record = json.loads((smoke_dag / f"results/{paper}/{artifact}.json").read_text())
        assert record["tier"] == "smoke"
        for key in ("git_commit", "versions", "device_name", "wall_time_s"):
            assert key in record["provenance"]
        if record["status"] == "not_run":      # only for data that is not available here
            assert "not found" in record["reason"], f"{paper}/{artifact}: {record['reason']}"
        else:
            assert record["status"] == "ok" and record["metrics"], f"{paper}/{artifact} wrote no metrics"
        if (paper, artifact) in {("imani2022", "fig10"), ("imani2022", "fig11"), ("imani2022", "fig12")}:
            assert record["status"] == "ok"                  # synthetic: must always run
        for ext in ("png", "pdf"):
            assert (smoke_dag / f"figures/{paper}/{artifact}.{ext}").stat().st_size > 1000
    scorecard = json.loads((smoke_dag / "reports/scorecard.json").read_text())
    targets = read_yaml((ROOT / "paper_targets.yaml").read_text())
    listed = {(r["paper"], r["artifact"]) for r in scorecard}
    expected = {(p, a) for p, e in targets.items() for a in e["artifacts"]}
    assert listed == expected
    assert {"paper", "artifact", "target", "status", "paper_value", "value", "tolerance", "tier",
            "reason"} <= set(scorecard[0])
    failed = [(r["paper"], r["artifact"], r["target"], r["reason"]) for r in scorecard if r["status"] == "fail"]
    assert not failed, failed   # at smoke a fail is a metric that is missing or not finite


def test_every_metric_a_target_names_is_written_by_its_smoke_result(smoke_dag):
    """`check --validate-only` with the smoke results: no target names a metric its
    artifact's experiment never writes (a typo in paper_targets.yaml)."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "repalign", "check", "--validate-only", "--results",
                           "results"], cwd=smoke_dag, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problem(s)" in proc.stdout


def test_check_passes_then_fails_when_a_result_is_perturbed(smoke_dag, tmp_path):
    workdir = copy_workflow(tmp_path)
    shutil.copytree(smoke_dag / "results", workdir / "results")
    assert snakemake(workdir, "check").returncode == 0

    path = workdir / "results/imani2022/fig10.json"
    record = json.loads(path.read_text())
    record["metrics"]["alignment_auc.transfer.S"] = None          # a NaN fails at every tier
    path.write_text(json.dumps(record))
    proc = snakemake(workdir, "check")
    assert proc.returncode != 0
    assert "alignment_auc.transfer.S" in proc.stdout + proc.stderr

    record["tier"] = "quick"                                       # a claim that no longer holds
    record["metrics"]["alignment_auc.transfer.S"] = record["metrics"]["alignment_auc.init.S"] - 0.01
    path.write_text(json.dumps(record))
    assert snakemake(workdir, "check").returncode != 0
    failed = [r for r in json.loads((workdir / "reports/scorecard.json").read_text())
              if r["status"] == "fail"]
    assert ("fig10", "source_rises") in [(r["artifact"], r["target"]) for r in failed]
    assert {r["artifact"] for r in failed} == {"fig10"}


def test_replotting_never_retrains(smoke_dag):
    (smoke_dag / "figures/imani2022/fig10.png").unlink()
    proc = snakemake(smoke_dag, "-n", "figures/imani2022/fig10.png")
    assert proc.returncode == 0
    assert "plot_artifact" in proc.stdout
    assert "train_model" not in proc.stdout and "run_artifact" not in proc.stdout
    snakemake(smoke_dag, "figures/imani2022/fig10.png", check=True)


@pytest.mark.parametrize("tier", ["quick", "paper"])
def test_dry_run_of_the_larger_tiers(tier, tmp_path):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "-n", "--config", f"tier={tier}", check=True)
    assert "train_model" in proc.stdout and "run_artifact" in proc.stdout


def test_named_targets_exist_for_papers_and_artifacts(tmp_path):
    workdir = copy_workflow(tmp_path)
    papers = ("imani2022", "maennel2020", "lou2022", "sharon2024", "canatar2022")
    proc = snakemake(workdir, "-n", "imani2022_fig12", *papers, check=True)
    assert "plot_artifact" in proc.stdout


def test_lint_is_clean(tmp_path):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("override, needle", [("tier=huge", "'tier'"), ("colour=blue", "'colour'")])
def test_bad_config_stops_before_any_job(override, needle, tmp_path):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "--config", override)
    assert proc.returncode != 0
    assert needle in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()
