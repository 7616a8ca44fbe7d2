"""The CPU-reduced canatar2022 runs recorded in docs/canatar2022.md (no GPU was lent).

``python -m repalign.experiments.canatar2022.cpu_reduced {ffnn_mnist|resnet_grid} OUTDIR`` trains
the model step with the settings below (the step functions and artifacts of the registry,
unchanged), writes ``OUTDIR/models/<model>.pt`` and every artifact reading it as
``OUTDIR/<artifact>.json`` with ``tier: cpu_reduced``; a reduced run is neither the quick nor the
paper tier, so docs/canatar2022.md applies both tiers' rules to it and says which.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from repalign import provenance
from repalign.data import resolve_cache_dir, resolve_data_root
from repalign.experiments import load_paper
from repalign.experiments.canatar2022.ffnn import SETTINGS as FFNN
from repalign.experiments.canatar2022.resnet import SETTINGS as GRID
from repalign.experiments.registry import ARTIFACTS, MODELS, Context
from repalign.experiments.storage import save_model_file
from repalign.results import flatten, write_result

PAPER = "canatar2022"
# The paper's data sizes for Figs 7-8 (10k/10k MNIST), 150 of 3,000 epochs, a 1,000-image NTK probe.
# The grid: all 48 configurations, width 8 (of 64), 500 CIFAR-10 training images, 4 epochs,
# every run kept (none reaches 95% train accuracy in 4 epochs).
REDUCED = {
    "ffnn_mnist": replace(FFNN.paper, epochs=150, n_grid=8, n_ntk=1000),
    "resnet_grid": replace(GRID.quick, n_train=500, n_test=500, epochs=4, middle_epoch=1, n_spectrum=500, width=8,
                           batch_divisor=50, keep_above=0.0),
}


def main(model: str, out: Path) -> None:
    load_paper(PAPER)
    torch.set_num_threads(1)  # two cores shared by several jobs: more threads only contend
    settings = REDUCED[model]
    ctx = Context(PAPER, model, "cpu_reduced", settings, torch.device("cpu"), [0], resolve_data_root(None),
                  resolve_cache_dir(None))
    start = time.perf_counter()
    payload = MODELS[(PAPER, model)].func(ctx)
    header = {"paper": PAPER, "tier": "cpu_reduced", "seeds": [0], "settings": asdict(settings), "status": "ok",
              "reason": None}
    model_path = out / "models" / f"{model}.pt"
    save_model_file(model_path, {**header, "artifact": model,
                                 "provenance": provenance.collect(ctx.device, time.perf_counter() - start), **payload})
    for (paper, name), step in ARTIFACTS.items():
        if paper != PAPER or model not in step.needs:
            continue
        actx = replace(ctx, name=name, inputs={model: model_path})
        t0 = time.perf_counter()
        result = step.func(actx)
        record = {**header, "artifact": name, "provenance": provenance.collect(ctx.device, time.perf_counter() - t0),
                  "metrics": flatten(result.metrics), "notes": result.notes, "not_run_metrics": result.not_run}
        write_result(out / f"{name}.json", record, result.arrays)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
