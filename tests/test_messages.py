"""Messages a new user meets: missing --input, targets-only papers, not-found data, typo'd keys,
and the README's `snakemake check` as written (no --cores)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow

from repalign.config import validate_config
from repalign.data import load_dataset
from repalign.errors import ConfigError, DatasetMissing, RepalignError
from repalign.runner import run_step

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_run_without_its_model_names_the_missing_input(tmp_path):
    with pytest.raises(RepalignError, match="--input peaks_h1=results/imani2022/models/peaks_h1.pt"):
        run_step("artifact", "imani2022", "fig10", tier="smoke", out=tmp_path / "fig10.json")
    assert not (tmp_path / "fig10.json").exists()


def test_cli_run_without_input_exits_with_the_input_to_pass(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "repalign", "run", "imani2022", "fig10", "--tier", "smoke",
                           "--out", str(tmp_path / "fig10.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "--input peaks_h1=" in proc.stderr and "did not declare" not in proc.stderr


def test_run_for_a_targets_only_paper_says_so(tmp_path, monkeypatch):
    """Every paper has experiments now; a paper added to paper_targets.yaml first must still say so."""
    import repalign.runner

    monkeypatch.setattr(repalign.runner, "PAPERS", ("imani2022",))
    with pytest.raises(RepalignError, match="canatar2022 has targets only; no experiments are implemented yet"):
        run_step("artifact", "canatar2022", "fig1", tier="smoke", out=tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_not_found_message_starts_with_a_complete_line_and_lists_every_path(tmp_path):
    with pytest.raises(DatasetMissing) as info:
        load_dataset("mnist", root=tmp_path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"dataset 'mnist' not found under {tmp_path} (4 paths tried)."
    listed = lines[lines.index("Paths tried:") + 1:]
    assert listed[0].startswith(f"  - {tmp_path}/mnist/")              # the list follows, not empty
    assert sum(line.startswith("  - ") for line in listed) == 4
    assert "Paths tried" not in str(DatasetMissing("x", [], "ask a colleague"))


def test_a_typo_in_a_config_key_gets_a_did_you_mean():
    config = {**DEFAULT, "dataroot": "/data"}
    del config["data_root"]
    with pytest.raises(ConfigError, match="Did you mean 'data_root' \\(not 'dataroot'\\)"):
        validate_config(config, SCHEMA)


def test_unrelated_unknown_key_gets_no_guess():
    with pytest.raises(ConfigError) as info:
        validate_config({**DEFAULT, "colour": "blue"}, SCHEMA)
    assert "Did you mean" not in str(info.value)


@pytest.mark.workflow
def test_snakemake_check_runs_as_written_in_the_readme(tmp_path):
    assert "`snakemake check`" in (ROOT / "README.md").read_text()
    workdir = copy_workflow(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "check"], cwd=workdir, capture_output=True,
                          text=True, timeout=600)
    assert "cores have to be specified" not in proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "reports/scorecard.md").is_file()


@pytest.mark.workflow
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA device")
def test_snakemake_with_device_cuda_on_a_cpu_machine_stops_before_any_job(tmp_path):
    """The workflow's config validation (onstart) says so; no job starts, no result is written."""
    from conftest import snakemake
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "imani2022_fig10", "--config", "device=cuda", "download=false")
    assert proc.returncode != 0
    assert "'device' is 'cuda', but this machine has 0 CUDA device(s)" in proc.stderr + proc.stdout
    assert "rule train_model" not in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()
