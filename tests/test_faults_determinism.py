"""Determinism (issue 16): on the CPU, the same config and seed give byte-identical results.

Two separate processes run the same cheap steps (imani2022 fig4, lou2022 theory) at the smoke
tier; the JSON records are equal except the provenance timing fields
(``repalign.provenance.TIMING_FIELDS``) and the ``.npz`` files are equal byte for byte.
``deterministic: true`` turns on PyTorch's deterministic algorithms and every result says
which mode it ran in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from conftest import ROOT, copy_workflow, snakemake
from repalign.provenance import TIMING_FIELDS
from repalign.results import read_result
from repalign.runner import run_step, set_determinism

STEPS = [("imani2022", "fig4"), ("lou2022", "theory")]


def run_in_new_process(out_dir: Path) -> None:
    calls = "; ".join(f"run_step('artifact', {p!r}, {n!r}, tier='smoke', device='cpu', "
                      f"out={str(out_dir / n) + '.json'!r})" for p, n in STEPS)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-c", f"from repalign.runner import run_step; {calls}"],
                   check=True, env=env, capture_output=True, timeout=600)


def without_timing(path: Path) -> dict:
    record = json.loads(path.read_text())
    for key in TIMING_FIELDS:
        record["provenance"].pop(key, None)
    return record


def test_same_config_and_seed_give_byte_identical_results_on_the_cpu(tmp_path):
    run_in_new_process(tmp_path / "a")
    run_in_new_process(tmp_path / "b")
    for _, name in STEPS:
        a, b = tmp_path / "a" / f"{name}.json", tmp_path / "b" / f"{name}.json"
        assert read_result(a)["status"] == "ok"
        assert without_timing(a) == without_timing(b), name
        assert a.with_suffix(".npz").read_bytes() == b.with_suffix(".npz").read_bytes(), name
        assert json.loads(a.read_text())["metrics"], f"{name} has no metrics to compare"


def test_deterministic_mode_is_switched_on_and_recorded(tmp_path):
    try:
        run_step("artifact", "lou2022", "theory", tier="smoke", device="cpu", out=tmp_path / "det.json",
                 deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        run_step("artifact", "lou2022", "theory", tier="smoke", device="cpu", out=tmp_path / "default.json")
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        set_determinism(False)
    det, default = read_result(tmp_path / "det.json"), read_result(tmp_path / "default.json")
    assert det["config"]["deterministic"] and det["determinism"]["deterministic_algorithms"]
    assert det["determinism"]["cudnn_deterministic"] and det["determinism"]["cublas_workspace_config"]
    assert not default["config"]["deterministic"] and not default["determinism"]["deterministic_algorithms"]
    assert det["metrics"] == default["metrics"]   # the CPU is deterministic either way


def test_config_deterministic_true_reaches_every_job(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    on = snakemake(workdir, "-n", "-p", "results/lou2022/theory.json", "--config", "deterministic=True", check=True)
    assert "--deterministic" in on.stdout
    off = snakemake(workdir, "-n", "-p", "results/lou2022/theory.json", check=True)
    assert "repalign run lou2022 theory" in off.stdout and "--deterministic" not in off.stdout
