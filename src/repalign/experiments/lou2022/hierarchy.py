"""lou2022 Figs 1, 2, 7, 9, 10: the alignment hierarchy during and at the end of training.

FFNNs (Eq. 8) of width 256 trained with SGD (momentum, weight decay), lr 0.003
(App. E, Fig 7 caption): depth 10 on MNIST and CIFAR-10 (Fig 2), KMNIST and
Fashion-MNIST (Fig 7), depth 20 on Fashion-MNIST and CIFAR-10 (Fig 1), and depth 10
at lr 0.0005 / 0.003 / 0.05 on Fashion-MNIST (Fig 9) and CIFAR-10 (Fig 10). One model
step per dataset (``hier_<dataset>``) trains that dataset's configurations; every figure
reads them. The paper does not state how long these networks trained; the paper tier
uses 100 epochs (Table 2's depth-10 budget), the quick tier 10.

Per configuration: A_l against iterations, the final A_l, the argmax layer, the first /
last / largest alignment, and the share of the peak layer's rise reached in the first
10% of iterations (footnote 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repalign.experiments.lou2022.training import (
    MEASURE_RESOURCES,
    ConfigStore,
    TrainingSettings,
    load_image_task,
    lr_key,
    measure_work,
    train_ffnn,
    training_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, artifact, model
from repalign.experiments.storage import UpstreamNotRun
from repalign.results import Result

PAPER = "lou2022"
WIDTH = 256
LRS = (0.0005, 0.003, 0.05)  # Figs 9, 10
BASE_LR = 0.003

# dataset -> (depth, lr) configurations trained by hier_<dataset>
RUNS = {
    "mnist": ((10, BASE_LR),),
    "kmnist": ((10, BASE_LR),),
    "fashion_mnist": tuple((10, lr) for lr in LRS) + ((20, BASE_LR),),
    "cifar10": tuple((10, lr) for lr in LRS) + ((20, BASE_LR),),
}
# figure -> panels (dataset, depth, lr, metric suffix)
FIGURES = {
    "fig1": (("fashion_mnist", 20, BASE_LR, "fashion_mnist"), ("cifar10", 20, BASE_LR, "cifar10")),
    "fig2": (("mnist", 10, BASE_LR, "mnist"), ("cifar10", 10, BASE_LR, "cifar10")),
    "fig7": (("kmnist", 10, BASE_LR, "kmnist"), ("fashion_mnist", 10, BASE_LR, "fashion_mnist")),
    "fig9": tuple(("fashion_mnist", 10, lr, lr_key(lr)) for lr in LRS),
    "fig10": tuple(("cifar10", 10, lr, lr_key(lr)) for lr in LRS),
}


@dataclass(frozen=True, kw_only=True)
class HierarchySettings(TrainingSettings):
    epochs: int


SETTINGS = Tiered(
    smoke=HierarchySettings(n_runs=1, n_train=256, n_test=256, probe_size=20, align_points=2, width=16,
                            epochs=1),
    quick=HierarchySettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=8, epochs=10),
    paper=HierarchySettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=16, epochs=100),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=20, mem_mb=8000, gpu=1),
    paper=Resources(runtime_min=180, mem_mb=8000, gpu=1),
)


def run_key(depth: int, lr: float) -> str:
    return f"d{depth}_{lr_key(lr)}"


def _register_model(dataset: str, configs: tuple[tuple[int, float], ...]) -> None:
    @model(PAPER, f"hier_{dataset}", settings=SETTINGS, resources=TRAIN_RESOURCES,
           work=lambda s: training_work(s, dataset, s.epochs, networks=len(RUNS[dataset])))
    def train_hierarchy(ctx: Context) -> dict:
        s: HierarchySettings = ctx.settings
        task = load_image_task(ctx, dataset, s)
        store = ConfigStore(ctx.checkpoint)
        runs = {}
        for depth, lr in configs:
            key = run_key(depth, lr)
            runs[key] = store.run(key, lambda ckpt, depth=depth, lr=lr, key=key: train_ffnn(
                task, depth=depth, width=s.width or WIDTH, lr=lr, epochs=s.epochs, seeds=ctx.seeds, s=s,
                checkpoint=ckpt, desc=f"{PAPER}/hier_{dataset}/{key}", keep_weights=True))
        store.clear()
        return {"dataset": dataset, "runs": runs, "notes": task.notes}

    train_hierarchy.__doc__ = f"Alignment-hierarchy runs on {dataset}: {[run_key(*c) for c in configs]}."


for _dataset, _configs in RUNS.items():
    _register_model(_dataset, _configs)


def early_rise_fraction(grid: np.ndarray, curve: np.ndarray) -> float:
    """Share of the rise A(T) − A(0) reached at 10% of the iterations (``grid`` holds that step)."""
    early = int(np.flatnonzero(grid == grid[-1] // 10)[0])
    rise = curve[-1] - curve[0]
    return float((curve[early] - curve[0]) / rise) if rise != 0 else 0.0


SUMMARY_METRICS = ("argmax_layer", "layer_alignment.first", "layer_alignment.last", "layer_alignment.max",
                   "layer_alignment.peak", "alignment_rise_frac_early", "test_accuracy", "test_loss",
                   "train_accuracy", "train_loss", "acc_gap", "loss_gap")


def hierarchy_summary(run: dict, suffix: str, result: Result) -> None:
    """Write the alignment metrics of one configuration (seed mean) as ``<SUMMARY_METRICS>.<suffix>``."""
    alignment = run["alignment"].mean(axis=1)  # [grid, layers]
    final = alignment[-1]
    peak = int(final.argmax())
    m = result.metrics
    m[f"argmax_layer.{suffix}"] = peak + 1
    m[f"layer_alignment.first.{suffix}"] = float(final[0])
    m[f"layer_alignment.last.{suffix}"] = float(final[-1])
    m[f"layer_alignment.max.{suffix}"] = m[f"layer_alignment.peak.{suffix}"] = float(final[peak])
    m[f"alignment_rise_frac_early.{suffix}"] = early_rise_fraction(run["grid"], alignment[:, peak])
    for key in ("test_accuracy", "test_loss", "train_accuracy", "train_loss"):
        m[f"{key}.{suffix}"] = float(run[key].mean())
    m[f"acc_gap.{suffix}"] = m[f"train_accuracy.{suffix}"] - m[f"test_accuracy.{suffix}"]
    m[f"loss_gap.{suffix}"] = m[f"test_loss.{suffix}"] - m[f"train_loss.{suffix}"]
    result.arrays.update({f"{suffix}.grid": run["grid"], f"{suffix}.alignment": alignment,
                          f"{suffix}.epoch_train_loss": run["epoch_train_loss"].mean(axis=1),
                          f"{suffix}.steps_per_epoch": np.array(run["steps"] // run["epochs"])})


def _register_figure(figure: str, panels: tuple) -> None:
    datasets = tuple(dict.fromkeys(p[0] for p in panels))

    @artifact(PAPER, figure, settings=SETTINGS, resources=MEASURE_RESOURCES,
              needs=tuple(f"hier_{d}" for d in datasets), work=lambda s: measure_work(s, networks=len(panels)))
    def hierarchy_figure(ctx: Context) -> Result:
        payloads, missing = {}, {}
        for d in datasets:
            try:
                payloads[d] = ctx.load_model(f"hier_{d}")
            except UpstreamNotRun as exc:  # e.g. KMNIST offline: the other panels still run
                missing[d] = str(exc)
        if not payloads:
            raise UpstreamNotRun("; ".join(missing.values()))
        result = Result(notes=[n for p in payloads.values() for n in p["notes"]])
        shown = []
        for dataset, depth, lr, suffix in panels:
            if dataset in missing:
                names = [f"{key}.{suffix}" for key in SUMMARY_METRICS]
                result.not_run.update(dict.fromkeys(names, missing[dataset]))
                result.notes.append(f"not run ({missing[dataset].splitlines()[0]}): panel {suffix}")
                continue
            run = payloads[dataset]["runs"][run_key(depth, lr)]
            hierarchy_summary(run, suffix, result)
            result.notes.append(f"{suffix}: {dataset}, depth {depth}, width {run['width']}, lr {lr}, "
                                f"{run['epochs']} epochs ({run['steps']} iterations)")
            shown.append(suffix)
        result.arrays["panels"] = np.array(shown)
        return result

    hierarchy_figure.__doc__ = f"{figure}: alignment hierarchy panels {[p[3] for p in panels]}."


for _figure, _panels in FIGURES.items():
    _register_figure(_figure, _panels)
