"""Speed benchmarks, each case against its reference in the same run (not tests: nothing is asserted).

    python -m repalign.bench metrics [options]   # fast metric paths vs naive references
    python -m repalign.bench train [options]     # the image-training path vs a textbook loop

``python -m repalign.bench <suite> --help`` lists each suite's sizes. Results are recorded
in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse

import torch

from repalign.bench import metrics, train

SUITES = {"metrics": metrics, "train": train}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m repalign.bench", description=__doc__.split("\n")[0])
    suites = parser.add_subparsers(dest="suite", required=True, metavar="{" + ",".join(SUITES) + "}")
    for name, module in SUITES.items():
        sub = suites.add_parser(name, help=module.__doc__.split("\n")[0], description=module.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
        module.add_arguments(sub)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    SUITES[args.suite].run(args)
