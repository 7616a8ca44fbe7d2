"""Injected faults in snakemake itself (issue 16): killed mid-DAG, and two runs in one directory.

The DAG is two smoke-size imani2022 peaks models (one seed each, a few seconds apiece),
trained one after the other (``--cores 1``) in a scratch copy of the workflow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import copy_workflow, snakemake

MODELS = [f"results/imani2022/models/{name}.pt" for name in ("peaks_h1", "peaks_h3")]
ARGS = ["--cores", "1", *MODELS, "--config", "n_seeds=1", "device=cpu"]   # the "same command"
LOCKED = "Directory cannot be locked"


def start(workdir: Path) -> subprocess.Popen:
    """The snakemake command of ``ARGS`` in the background, in its own process group."""
    return subprocess.Popen([sys.executable, "-m", "snakemake", *ARGS], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended before {what}:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_snakemake_killed_mid_dag_recovers_with_unlock_and_redoes_only_the_unfinished_job(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    run = start(workdir)
    done = lambda: [m for m in MODELS if (workdir / m).exists()]  # noqa: E731
    wait_for(lambda: len(done()) == 1, run, "the first model")
    first = done()[0]
    second = next(m for m in MODELS if m != first)
    second_log = workdir / second.replace("results/", "logs/").replace(".pt", ".log")
    wait_for(second_log.exists, run, "the second training job to start")
    time.sleep(1.0)
    os.killpg(run.pid, signal.SIGKILL)        # an SSH drop: snakemake and its job, no clean-up
    run.wait()
    assert not (workdir / second).exists()
    finished_mtime = (workdir / first).stat().st_mtime_ns

    again = snakemake(workdir, *ARGS)     # what the README used to promise: the same command
    assert again.returncode != 0 and LOCKED in again.stderr, again.stderr[-2000:]

    snakemake(workdir, "--unlock", *ARGS, check=True)   # the documented recovery ...
    recovered = snakemake(workdir, *ARGS, check=True)     # ... then the same command
    assert (workdir / first).stat().st_mtime_ns == finished_mtime, "a finished result was recomputed"
    assert torch.load(workdir / second, weights_only=False)["status"] == "ok"
    assert "1 of 1 steps (100%) done" in recovered.stderr, recovered.stderr[-2000:]


def test_a_second_snakemake_in_the_same_directory_gets_the_lock_message_and_corrupts_nothing(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    first = start(workdir)
    wait_for(lambda: any((workdir / ".snakemake" / "locks").glob("*")), first, "the first run's lock")
    second = snakemake(workdir, *ARGS)
    assert second.returncode != 0 and LOCKED in second.stderr, second.stderr[-2000:]
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-3000:]
    for model in MODELS:
        assert torch.load(workdir / model, weights_only=False)["status"] == "ok"
    assert snakemake(workdir, "-n", *ARGS, check=True).stdout.count("Nothing to be done") == 1
