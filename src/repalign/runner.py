"""Run one registered step (a model or an artifact) and write its output with provenance.

This is what every Snakemake job calls, through ``python -m repalign train|run``. A
missing dataset (or an upstream model that could not be trained) becomes a ``not_run``
output carrying the reason, so the rest of the DAG still runs and the scorecard can say
why; with ``missing_data="error"`` it is raised instead.

A run never replaces an ``ok`` output of the same tier, seeds and settings by one that
lacks data the old one had (a wrong data root, data removed since): the old output is kept
and the log says why. The workflow marks these outputs ``update()``, so snakemake leaves the
old file in place while the job runs.

With ``data_key`` (the workflow passes it, see :mod:`repalign.availability`) the output
records the data the step ran with and which of it the run lacked, so that the workflow
re-runs the step once that data appears.

A step whose training diverges (:class:`NonFiniteLoss`), or an artifact that computes a NaN or
infinite metric (:class:`NonFiniteMetric`), writes no output: the job fails with the step, lr
(or the metrics) and seeds in the message, and leaves ``<out>.failed`` (that message) beside the
output, which the scorecard reports as ``fail`` on the artifact's targets (and on those of the
artifacts that need the model). The next successful run of the step removes it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from repalign import provenance
from repalign.availability import lacking, read_record
from repalign.data import resolve_cache_dir, resolve_data_root
from repalign.errors import DatasetMissing, NonFiniteLoss, NonFiniteMetric, RepalignError, datasets_reported_missing
from repalign.experiments import PAPERS, load_paper
from repalign.experiments.registry import ARTIFACTS, MODELS, Context, Step
from repalign.experiments.storage import UpstreamNotRun, save_model_file
from repalign.results import Result, flatten, require_writable, write_result

log = logging.getLogger(__name__)
TARGETS_FILE = Path(__file__).resolve().parents[2] / "paper_targets.yaml"  # in a source checkout


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' was requested but CUDA is not available here; "
                           "use --config device=cpu or device=auto")
    return device


def set_determinism(deterministic: bool) -> dict:
    """Turn PyTorch's deterministic algorithms on or off for this process; return the mode in use.

    On the CPU every step is bitwise reproducible either way; on a GPU ``deterministic``
    also makes cuBLAS and cuDNN pick reproducible kernels (slower), and an operation that has
    no deterministic kernel raises instead of running.
    """
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    # torch.use_deterministic_algorithms imports torch._inductor (and with it torch._dynamo,
    # sympy and sklearn: ~2 s of CPU per job); a process starts with the mode off, so
    # switching it off again is skipped.
    if deterministic or torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        torch.backends.cudnn.benchmark = False
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def lookup(kind: str, paper: str, name: str) -> Step:
    """The registered step; imports only ``paper``'s experiments (unless the step is unknown)."""
    table = MODELS if kind == "model" else ARTIFACTS
    if paper in PAPERS:
        load_paper(paper)
    elif paper in _papers_with_targets():
        raise RepalignError(f"{paper} has targets only; no experiments are implemented yet "
                            f"(papers with experiments: {', '.join(PAPERS)})")
    if (paper, name) not in table:
        for other in PAPERS:  # list every known step in the error
            load_paper(other)
        known = ", ".join(f"{p}/{n}" for p, n in sorted(table)) or "none"
        raise KeyError(f"no {kind} '{paper}/{name}' is implemented; known: {known}")
    return table[(paper, name)]


def _papers_with_targets() -> list[str]:
    if not TARGETS_FILE.is_file():
        return []
    return list(yaml.safe_load(TARGETS_FILE.read_text()) or {})


def _check_inputs(step: Step, tier: str, inputs: dict) -> None:
    """Every model the artifact needs is given as ``--input NAME=PATH``."""
    missing = [m for m in step.needs if m not in inputs]
    if missing:
        path = f"results/{step.paper}/models/{{}}.pt"
        raise RepalignError(
            f"{step.paper}/{step.name} needs the trained model(s) {', '.join(missing)}; pass "
            + " ".join(f"--input {m}={path.format(m)}" for m in missing)
            + ". Train each first: " + "; ".join(
                f"python -m repalign train {step.paper} {m} --tier {tier} --out {path.format(m)}"
                for m in missing))


def _plain(value):
    """``value`` as JSON would store it (tuples become lists), for comparing records."""
    return json.loads(json.dumps(value, default=str))


def _reason_to_keep(out: Path, header: dict, status: str, not_run_metrics: dict) -> str | None:
    """Why the existing ``ok`` output at ``out`` must not be replaced by this run's, else None.

    It is kept when it answers the same request (tier, seeds, settings) and this run lacks
    something it had: the whole run is not_run, or metrics it computed are not run now.
    """
    old = read_record(out)
    if not old or old.get("status") != "ok":
        return None
    if any(_plain(old.get(k)) != _plain(header[k]) for k in ("tier", "seeds", "settings")):
        return None
    if status == "not_run":
        return "instead of this run's not_run result"
    lost = sorted(set(not_run_metrics) - set(old.get("not_run_metrics") or {}))
    if lost:
        return f"instead of this run's result, which lacks {len(lost)} of its metrics (e.g. {lost[0]})"
    return None


def failure_marker(out: Path) -> Path:
    """Where a diverged step leaves its error (``<out>.failed``), for the scorecard."""
    return Path(out).with_name(Path(out).name + ".failed")


def require_finite_metrics(result: Result) -> None:
    """Raise :class:`NonFiniteMetric` naming every NaN or infinite metric of ``result``."""
    bad = {k: v for k, v in flatten(result.metrics).items()
           if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        listed = ", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))
        raise NonFiniteMetric(f"non-finite metric(s): {listed}. Nothing was written; a metric that "
                              "cannot be computed here belongs in Result.not_run with the reason.")


def run_step(kind: str, paper: str, name: str, *, tier: str, out: Path, device: str = "auto",
             seed: int = 0, n_seeds: int | None = None, data_root: str | None = None,
             cache_dir: str | None = None, download: bool = False, missing_data: str = "not_run",
             inputs: dict[str, Path] | None = None, data_key: str | None = None,
             deterministic: bool = False) -> str:
    """Run a step and write ``out``; return its status (``ok``, ``not_run``, or ``kept``:
    the existing output was computed with data this run lacked, and is left as it is)."""
    step = lookup(kind, paper, name)
    _check_inputs(step, tier, inputs or {})
    settings = step.settings_for(tier, n_seeds)
    n_runs = getattr(settings, "n_runs", 1)
    out = Path(out)
    require_writable(out)
    ctx = Context(paper=paper, name=name, tier=tier, settings=settings,
                  device=resolve_device(device), seeds=[seed + i for i in range(n_runs)],
                  data_root=resolve_data_root(data_root), cache_dir=resolve_cache_dir(cache_dir),
                  download=download, inputs={k: Path(v) for k, v in (inputs or {}).items()},
                  checkpoint=out.with_name(out.name + ".ckpt") if kind == "model" else None)
    header = {"paper": paper, "artifact": name, "tier": tier, "seeds": ctx.seeds,
              "settings": asdict(settings),
              "config": {"device": device, "seed": seed, "n_seeds": n_seeds,
                         "data_root": str(ctx.data_root), "download": download,
                         "deterministic": deterministic},
              "determinism": set_determinism(deterministic)}
    start = time.perf_counter()
    try:
        with datasets_reported_missing() as missed:
            output = step.func(ctx)
        if isinstance(output, Result):
            require_finite_metrics(output)
        status, reason = "ok", None
    except (DatasetMissing, UpstreamNotRun) as exc:
        if missing_data == "error":
            raise
        log.warning("%s/%s not run: %s", paper, name, exc)
        output, status, reason = None, "not_run", str(exc)
    except NonFiniteLoss as exc:
        message = f"{kind} {paper}/{name} ({tier} tier, seeds {ctx.seeds}) diverged: {exc}"
        failure_marker(out).parent.mkdir(parents=True, exist_ok=True)
        failure_marker(out).write_text(message + "\n")
        raise type(exc)(message) from exc
    record = {**header, "status": status, "reason": reason,
              "provenance": provenance.collect(ctx.device, time.perf_counter() - start)}
    result = output if isinstance(output, Result) else Result()
    keep = _reason_to_keep(out, header, status, result.not_run)
    if keep:
        cause = (reason or "; ".join(result.not_run.values())).splitlines()[0]
        log.warning("%s/%s: kept the existing output %s (computed with data) %s: %s",
                    paper, name, out, keep, cause)
        return "kept"
    if data_key is not None:
        complete = status == "ok" and not result.not_run
        record["data"] = {"key": data_key, "lacking": lacking(data_key, complete, missed, ctx.data_root)}
    if kind == "model":
        save_model_file(out, {**record, **(output or {})})
    else:
        record["metrics"] = flatten(result.metrics)
        record["notes"] = result.notes
        record["not_run_metrics"] = result.not_run
        write_result(out, record, result.arrays)
    failure_marker(out).unlink(missing_ok=True)
    log.info("%s %s/%s (%s tier): %s in %.1f s -> %s", kind, paper, name, tier, status,
             record["provenance"]["wall_time_s"], out)
    return status
