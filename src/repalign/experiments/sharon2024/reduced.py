"""A CPU-reduced run on real CIFAR-10 outside the tiers: ``python -m repalign.experiments.sharon2024.reduced``.

Trains one RUNS configuration with explicit settings (e.g. small k on a class-balanced subset)
through the same run step and analysis, and writes its metrics and arrays as a JSON/NPZ
result, to see whether epoch-wise double descent shows without a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from repalign.data.paths import resolve_cache_dir, resolve_data_root
from repalign.experiments.registry import Context
from repalign.experiments.sharon2024.analysis import run_metrics
from repalign.experiments.sharon2024.runs import RUNS, SETTINGS, train_run
from repalign.results import Result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("prefix", choices=sorted(RUNS))
    ap.add_argument("--out", type=Path, required=True, help="result stem: writes <out>.json and <out>.npz")
    ap.add_argument("--width", type=int, required=True, help="ResNet-18 k")
    ap.add_argument("--n-train", type=int, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--grid-points", type=int, default=30)
    ap.add_argument("--lr", type=float, default=None, help="override the run's learning rate")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    spec = RUNS[args.prefix]
    if args.lr is not None:
        spec = dataclasses.replace(spec, optim=dataclasses.replace(spec.optim, lr=args.lr))
    spec = dataclasses.replace(spec, width=args.width, drs=False, other_init=False)
    settings = dataclasses.replace(SETTINGS.quick, width_scale=1.0, n_train=args.n_train, n_test=2000,
                                   epochs=args.epochs, grid_points=args.grid_points, probe_batches=2,
                                   probe_batch_size=256, batch_size=args.batch_size)
    ctx = Context(paper="sharon2024", name=f"reduced_{args.prefix}", tier="reduced", settings=settings,
                  device=torch.device("cpu"), seeds=[args.seed], data_root=resolve_data_root(None),
                  cache_dir=resolve_cache_dir(None))
    payload = train_run(ctx, args.prefix, spec)
    result = Result()
    run_metrics(payload, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"prefix": args.prefix, "args": {k: str(v) for k, v in vars(args).items()},
              "metrics": result.metrics, "not_run": result.not_run, "notes": result.notes}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    np.savez(args.out.with_suffix(".npz"), **{k: np.asarray(v) for k, v in result.arrays.items()})


if __name__ == "__main__":
    main()
