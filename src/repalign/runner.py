"""Run one registered step (a model or an artifact) and write its output with provenance.

This is what every Snakemake job calls, through ``python -m repalign train|run``. A
missing dataset (or an upstream model that could not be trained) becomes a ``not_run``
output carrying the reason, so the rest of the DAG still runs and the scorecard can say
why; with ``missing_data="error"`` it is raised instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch

from repalign import provenance
from repalign.data import resolve_cache_dir, resolve_data_root
from repalign.errors import DatasetMissing
from repalign.experiments import PAPERS, load_paper
from repalign.experiments.registry import ARTIFACTS, MODELS, Context, Step
from repalign.experiments.storage import UpstreamNotRun, save_model_file
from repalign.results import Result, flatten, write_result

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' was requested but CUDA is not available here; "
                           "use --config device=cpu or device=auto")
    return device


def lookup(kind: str, paper: str, name: str) -> Step:
    """The registered step; imports only ``paper``'s experiments (unless the step is unknown)."""
    table = MODELS if kind == "model" else ARTIFACTS
    if paper in PAPERS:
        load_paper(paper)
    if (paper, name) not in table:
        for other in PAPERS:  # list every known step in the error
            load_paper(other)
        known = ", ".join(f"{p}/{n}" for p, n in sorted(table)) or "none"
        raise KeyError(f"no {kind} '{paper}/{name}' is implemented; known: {known}")
    return table[(paper, name)]


def run_step(kind: str, paper: str, name: str, *, tier: str, out: Path, device: str = "auto",
             seed: int = 0, n_seeds: int | None = None, data_root: str | None = None,
             cache_dir: str | None = None, download: bool = False, missing_data: str = "not_run",
             inputs: dict[str, Path] | None = None) -> str:
    """Run a step and write ``out``; return its status (``ok`` or ``not_run``)."""
    step = lookup(kind, paper, name)
    settings = step.settings_for(tier, n_seeds)
    n_runs = getattr(settings, "n_runs", 1)
    out = Path(out)
    ctx = Context(paper=paper, name=name, tier=tier, settings=settings,
                  device=resolve_device(device), seeds=[seed + i for i in range(n_runs)],
                  data_root=resolve_data_root(data_root), cache_dir=resolve_cache_dir(cache_dir),
                  download=download, inputs={k: Path(v) for k, v in (inputs or {}).items()},
                  checkpoint=out.with_name(out.name + ".ckpt") if kind == "model" else None)
    header = {"paper": paper, "artifact": name, "tier": tier, "seeds": ctx.seeds,
              "settings": asdict(settings),
              "config": {"device": device, "seed": seed, "n_seeds": n_seeds,
                         "data_root": str(ctx.data_root), "download": download}}
    start = time.perf_counter()
    try:
        output = step.func(ctx)
        status, reason = "ok", None
    except (DatasetMissing, UpstreamNotRun) as exc:
        if missing_data == "error":
            raise
        log.warning("%s/%s not run: %s", paper, name, exc)
        output, status, reason = None, "not_run", str(exc)
    record = {**header, "status": status, "reason": reason,
              "provenance": provenance.collect(ctx.device, time.perf_counter() - start)}
    if kind == "model":
        save_model_file(out, {**record, **(output or {})})
    else:
        result = output if isinstance(output, Result) else Result()
        record["metrics"] = flatten(result.metrics)
        record["notes"] = result.notes
        record["not_run_metrics"] = result.not_run
        write_result(out, record, result.arrays)
    log.info("%s %s/%s (%s tier): %s in %.1f s -> %s", kind, paper, name, tier, status,
             record["provenance"]["wall_time_s"], out)
    return status
