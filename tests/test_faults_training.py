"""Injected faults in a real ``python -m repalign train`` process (issue 16, fault tolerance).

A smoke-size imani2022 peaks model (48 optimiser steps, 16 per epoch) is SIGKILLed once at a
random step mid-epoch and once half-way through a checkpoint write; re-running the same
command resumes from the last complete checkpoint and ends with the weights and metrics of
an uninterrupted run, bit for bit. The image-training path's kill/resume is
``tests/test_train_images.py::test_killed_image_run_resumes_to_identical_weights_and_epoch_records``
(unit level), the loop's is ``tests/test_train_loop.py::test_killed_run_resumes_to_identical_result``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
STEPS_PER_EPOCH, STEPS, EVERY = 16, 48, 10
TRAIN = ["train", "imani2022", "peaks_h1", "--tier", "smoke", "--device", "cpu", "--n-seeds", "2"]


def repalign(out: Path, *fault: str) -> subprocess.CompletedProcess:
    """``python -m repalign train ... --out out`` through the fault injector (CPU, one thread)."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "fault_inject.py"), "--checkpoint-every", str(EVERY), *fault,
           "--", *TRAIN, "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def payload(path: Path) -> dict:
    """The trained-model file without its provenance (wall time, host)."""
    data = torch.load(path, weights_only=False)
    data.pop("provenance")
    return data


def assert_bitwise_equal(a, b, where="") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_bitwise_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("uninterrupted") / "peaks_h1.pt"
    proc = repalign(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return payload(out)


def test_sigkill_mid_epoch_then_rerun_resumes_to_bitwise_identical_weights(reference, tmp_path):
    step = random.choice([s for s in range(EVERY + 1, STEPS) if s % STEPS_PER_EPOCH and s % EVERY])
    out = tmp_path / "peaks_h1.pt"
    killed = repalign(out, "--kill-at-step", str(step))
    assert killed.returncode == -signal.SIGKILL, f"killed at step {step}: {killed.stderr[-2000:]}"
    assert not out.exists()
    ckpt = out.with_name(out.name + ".ckpt")
    assert ckpt.exists(), f"no checkpoint after a kill at step {step}"
    last_complete = (step - 1) // EVERY * EVERY
    rerun = repalign(out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed from {ckpt} at step {last_complete}/{STEPS}" in rerun.stderr, (step, rerun.stderr[-2000:])
    assert_bitwise_equal(reference, payload(out))
    assert not ckpt.exists()


def test_sigkill_during_a_checkpoint_write_never_loads_the_half_written_file(reference, tmp_path):
    out = tmp_path / "peaks_h1.pt"
    ckpt = out.with_name(out.name + ".ckpt")
    killed = repalign(out, "--kill-in-checkpoint-write", "2")   # the write at step 20
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    half = ckpt.with_name(ckpt.name + ".tmp")
    assert half.exists() and ckpt.exists()
    with pytest.raises(Exception):
        torch.load(half, weights_only=False)                     # really half a checkpoint
    assert torch.load(ckpt, weights_only=False)["step"] == EVERY  # the last complete one
    rerun = repalign(out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed from {ckpt} at step {EVERY}/{STEPS}" in rerun.stderr
    assert_bitwise_equal(reference, payload(out))


def test_diverged_training_fails_naming_step_lr_and_seed_and_the_scorecard_says_fail(tmp_path):
    from repalign.experiments import ARTIFACTS, load_paper
    from repalign.targets import run_check, load_targets, scorecard

    out = tmp_path / "results" / "imani2022" / "models" / "peaks_h1.pt"
    diverged = repalign(out, "--nan-at-step", "30")
    assert diverged.returncode == 2, diverged.stderr[-2000:]
    error = diverged.stderr.strip().splitlines()[-1]
    for needle in ("model imani2022/peaks_h1", "non-finite at step 29", "lr 0.001", "seeds [0, 1]"):
        assert needle in error, (needle, error)
    assert not out.exists() and not out.with_name(out.name + ".ckpt").exists()
    marker = out.with_name(out.name + ".failed")
    assert "diverged" in marker.read_text()

    load_paper("imani2022")
    needs = {k: tuple(s.needs) for k, s in ARTIFACTS.items()}
    users = [a for (p, a), models in needs.items() if p == "imani2022" and "peaks_h1" in models]
    targets = load_targets(HERE.parent / "paper_targets.yaml")
    records = [r for r in scorecard(targets, tmp_path / "results", set(ARTIFACTS), needs)
               if r.paper == "imani2022" and r.artifact in users]
    assert records and all(r.status == "fail" and "seeds [0, 1]" in r.reason for r in records)
    assert run_check(tmp_path / "results", HERE.parent / "paper_targets.yaml", tmp_path / "reports") >= len(records)
    assert "diverged" in (tmp_path / "reports" / "scorecard.md").read_text()

    healthy = repalign(out)   # the next good run clears the failure
    assert healthy.returncode == 0, healthy.stderr[-2000:]
    assert out.exists() and not marker.exists()


def test_a_nan_metric_fails_the_job_writes_no_result_and_the_scorecard_says_fail(tmp_path, monkeypatch):
    from dataclasses import replace

    from repalign.errors import NonFiniteMetric
    from repalign.experiments import ARTIFACTS, load_paper
    from repalign.results import Result
    from repalign.runner import run_step
    from repalign.targets import load_targets, scorecard

    load_paper("imani2022")
    step = ARTIFACTS[("imani2022", "fig4")]
    monkeypatch.setitem(ARTIFACTS, ("imani2022", "fig4"), replace(
        step, func=lambda ctx: Result(metrics={"sigma_1": float("nan"), "sigma_2": 2.0})))
    out = tmp_path / "results" / "imani2022" / "fig4.json"
    with pytest.raises(NonFiniteMetric, match=r"imani2022/fig4 .*seeds \[0, 1\].*sigma_1 = nan"):
        run_step("artifact", "imani2022", "fig4", tier="smoke", out=out)
    assert not out.exists() and not out.with_suffix(".npz").exists()
    assert "sigma_1 = nan" in out.with_name(out.name + ".failed").read_text()
    records = [r for r in scorecard(load_targets(HERE.parent / "paper_targets.yaml"), tmp_path / "results",
                                    set(ARTIFACTS)) if (r.paper, r.artifact) == ("imani2022", "fig4")]
    assert records and all(r.status == "fail" and "sigma_1 = nan" in r.reason for r in records)
