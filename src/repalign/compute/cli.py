"""The compute verbs of ``python -m repalign``: ledger, estimate, gpu-run (heavy imports deferred)."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMANDS = ("ledger", "estimate", "gpu-run")


def add_parsers(sub) -> None:
    ledger = sub.add_parser("ledger", help="write docs/compute.md from the results' provenance")
    ledger.add_argument("--results", type=Path, action="append", default=None,
                        help="a results folder (repeatable; default: results)")
    ledger.add_argument("--out", type=Path, default=Path("docs/compute.md"))
    est = sub.add_parser("estimate", help="projected device-hours of a tier, from measured runs")
    est.add_argument("--tier", required=True, choices=("smoke", "quick", "paper"))
    est.add_argument("--device", default="cuda",
                     help="runs to use: cpu, cuda, or part of a device name such as H200 (default cuda)")
    est.add_argument("--results", type=Path, action="append", default=None,
                     help="a results folder (repeatable; default: results)")
    gpu = sub.add_parser("gpu-run", help="run a list of steps without snakemake, within a time budget")
    gpu.add_argument("steps", nargs="+", metavar="PAPER/NAME",
                     help="artifacts or models; the models an artifact needs are added and run first")
    gpu.add_argument("--out", required=True, type=Path, help="output folder: results/, logs/, gpu_run.log, ledger.md")
    gpu.add_argument("--tier", default="quick", choices=("smoke", "quick", "paper"))
    gpu.add_argument("--budget-min", required=True, type=float, help="stop cleanly before this many minutes")
    gpu.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    gpu.add_argument("--estimates-from", type=Path, action="append", default=[],
                     help="results folder of earlier runs on this device, for the skip decisions (repeatable)")
    gpu.add_argument("--data-root", default=None)
    gpu.add_argument("--cache-dir", default=None)


def run(args: argparse.Namespace) -> int:
    if args.command == "ledger":
        from repalign.compute.ledger import write_ledger

        print(f"wrote {write_ledger(args.results or [Path('results')], args.out)}")
    elif args.command == "estimate":
        from repalign.compute.estimate import run_estimate

        print(run_estimate(args.results or [Path("results")], args.tier, args.device))
    else:
        from repalign.compute.gpu_run import gpu_run

        return gpu_run(args.steps, out=args.out, tier=args.tier, budget_s=60 * args.budget_min,
                       device=args.device, estimates_from=args.estimates_from,
                       data_root=args.data_root, cache_dir=args.cache_dir)
    return 0
