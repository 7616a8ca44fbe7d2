"""Command line: ``python -m repalign {train,run,plot,check,list,ledger,estimate,gpu-run}``.

Snakemake jobs call these, and so can a user without Snakemake (e.g. on a bare GPU box):

    python -m repalign train imani2022 peaks_h1 --tier quick --out results/imani2022/models/peaks_h1.pt
    python -m repalign run imani2022 fig10 --tier quick --input peaks_h1=results/imani2022/models/peaks_h1.pt \\
        --out results/imani2022/fig10.json
    python -m repalign plot imani2022 fig10 --result results/imani2022/fig10.json --out figures/imani2022/fig10.png
    python -m repalign check
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from repalign.compute import cli as compute_cli
from repalign.errors import RepalignError


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value
    return parse


def _step_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paper")
    p.add_argument("name")
    p.add_argument("--tier", required=True, choices=("smoke", "quick", "paper"))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--seed", type=_count(0), default=0, help="base seed; run i uses seed + i")
    p.add_argument("--n-seeds", type=_count(1), default=None, help="override the tier's number of runs")
    p.add_argument("--data-root", default=None, help="data root (default: $REPALIGN_DATA or ./data)")
    p.add_argument("--cache-dir", default=None, help="decoded-data cache (default: $REPALIGN_CACHE)")
    p.add_argument("--download", action="store_true", help="let torchvision download missing data")
    p.add_argument("--missing-data", choices=("not_run", "error"), default="not_run",
                   help="a missing dataset gives a not_run result (default) or an error")
    p.add_argument("--input", action="append", default=[], metavar="MODEL=PATH",
                   help="a trained model this step needs (repeatable)")
    p.add_argument("--deterministic", action="store_true",
                   help="PyTorch's deterministic algorithms (reproducible GPU kernels; slower); "
                        "the result records the mode")
    p.add_argument("--data-key", default=None, metavar="KEY",
                   help="the workflow's record of this step's datasets (e.g. 'mnist=present'); "
                        "stored in the output so that the step re-runs once missing data appears")


def _parse_inputs(pairs: list[str]) -> dict[str, Path]:
    inputs = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep:
            raise RepalignError(f"--input expects MODEL=PATH, got '{pair}'")
        inputs[name] = Path(path)
    return inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="repalign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _step_options(sub.add_parser("train", help="train a model shared by several artifacts"))
    _step_options(sub.add_parser("run", help="run the experiment behind one figure or table"))
    plot = sub.add_parser("plot", help="draw a figure from a result file (never retrains)")
    plot.add_argument("paper")
    plot.add_argument("name")
    plot.add_argument("--result", required=True, type=Path)
    plot.add_argument("--out", required=True, type=Path, help="PNG path; a PDF is written beside it")
    check = sub.add_parser("check", help="score existing results against paper_targets.yaml")
    check.add_argument("--results", type=Path, default=None,
                       help="result files (default results/; with --validate-only, only if given)")
    check.add_argument("--targets", type=Path, default=Path("paper_targets.yaml"))
    check.add_argument("--out", type=Path, default=Path("reports"))
    check.add_argument("--figures", type=Path, default=Path("figures"), help="PNGs the HTML scorecard embeds")
    check.add_argument("--no-fail", action="store_true", help="exit 0 even when a target fails")
    check.add_argument("--validate-only", action="store_true",
                       help="only check the targets file (keys, claims, tolerance tiers; and metric "
                            "names against the results that exist); exit 1 on any problem")
    sub.add_parser("list", help="list implemented artifacts and models")
    compute_cli.add_parsers(sub)  # ledger, estimate, gpu-run
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        if args.command in ("train", "run"):
            from repalign.data.paths import require_data_root
            from repalign.runner import run_step

            require_data_root(args.data_root)
            run_step("model" if args.command == "train" else "artifact", args.paper, args.name,
                     tier=args.tier, out=args.out, device=args.device, seed=args.seed,
                     n_seeds=args.n_seeds, data_root=args.data_root, cache_dir=args.cache_dir,
                     download=args.download, missing_data=args.missing_data,
                     inputs=_parse_inputs(args.input), data_key=args.data_key,
                     deterministic=args.deterministic)
        elif args.command == "plot":
            from repalign.plots import draw

            draw(args.paper, args.name, args.result, args.out)
        elif args.command == "check" and args.validate_only:
            from repalign.experiments import ARTIFACTS
            from repalign.targets import validate_only

            return 1 if validate_only(args.targets, args.results, set(ARTIFACTS)) else 0
        elif args.command == "check":
            from repalign.targets import run_check

            failed = run_check(args.results or Path("results"), args.targets, args.out, args.figures)
            return 1 if failed and not args.no_fail else 0
        elif args.command in compute_cli.COMMANDS:
            return compute_cli.run(args)
        elif args.command == "list":
            from repalign.experiments import ARTIFACTS, MODELS

            for kind, table in (("model", MODELS), ("artifact", ARTIFACTS)):
                for (paper, name), step in sorted(table.items()):
                    needs = f"  needs {', '.join(step.needs)}" if step.needs else ""
                    print(f"{kind:8s} {paper}/{name}{needs}")
    except (RepalignError, KeyError) as exc:
        logging.getLogger("repalign").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
