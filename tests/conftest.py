"""Shared fixtures: a scratch copy of the workflow, and the smoke DAG run once per session.

The whole smoke DAG is the most expensive thing the suite does, so every test that
needs smoke-tier results of registered steps reads them from ``smoke_dag`` instead of
re-running the steps. Data come from $REPALIGN_DATA (CI points it at ../shared/data);
without it, every data-backed step is ``not_run`` and only synthetic steps produce numbers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_PATHS = ("Snakefile", "workflow", "config", "envs", "profiles", "src", "paper_targets.yaml")


def copy_workflow(dest: Path) -> Path:
    """Copy what snakemake needs into ``dest`` so runs never touch the checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_PATHS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = False, timeout: int = 1200) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 <args>`` in ``workdir``; with ``check``, fail the test on a non-zero exit."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def smoke_dag(tmp_path_factory) -> Path:
    """The whole DAG at the smoke tier (results, figures, scorecard), run once per session."""
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke_dag"))
    snakemake(workdir, check=True)
    return workdir
