"""lou2022 Figs 3, 8 and App. E Tables 1–3: the depth sweep behind the L^(3/5) law.

FFNNs (Eq. 8) of depth L = 10, 20, …, 100 on MNIST and Fashion-MNIST (width 100) and
CIFAR-10 (width 256), each depth with its own learning rate and number of epochs from
Tables 1–3. One model step per dataset (``sweep_<dataset>``) trains every depth in turn
(depths cannot share a stacked module; seeds of one depth do) and records the
alignment hierarchy along training.

Fig 3: the layer with the largest final alignment, l̂(L), against L; the fit
log l̂ = 3/5 log L + C (least squares over C) and a free-slope least-squares fit with
its 95% Student-t confidence interval (Sec. 3.4). Tables 1–3: test accuracy per depth.
Fig 8: the Fashion-MNIST sweep again with learning rates 4x smaller
(``sweep_fashion_mnist_lr_quarter``) and with batch size 512 (``sweep_fashion_mnist_bs512``);
the paper reports that both raise the intercept C (peak towards the last layer).
The quick tier runs every depth for 10% of the paper's epochs (about 10 minutes for the
three sweeps on one GPU, estimated). A CPU run at 3% (docs/lou2022.md) left the deep
networks early in training, with the alignment peak still moving from deep layers towards
the input, and a slope far above 3/5: the law needs the later part of training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from repalign.experiments.lou2022.training import (
    MEASURE_RESOURCES,
    ConfigStore,
    TrainingSettings,
    load_image_task,
    measure_work,
    n_epochs,
    train_ffnn,
    training_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, Work, artifact, model
from repalign.metrics import loglog_fit
from repalign.results import Result

PAPER = "lou2022"
DEPTHS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
EQUILIBRIUM_EXPONENT = 3 / 5  # Cor. 1


@dataclass(frozen=True)
class Schedule:
    """One of App. E Tables 1–3: width, and per depth (DEPTHS order) lr and epochs."""

    table: str
    width: int
    lrs: tuple[float, ...]
    epochs: tuple[int, ...]


SCHEDULES = {
    "mnist": Schedule("table3", 100,
                      (0.003, 0.003, 0.003, 0.002, 0.001, 0.0007, 0.0002, 0.0001, 0.0002, 0.0001),
                      (100, 100, 100, 100, 100, 100, 200, 200, 300, 300)),
    "fashion_mnist": Schedule("table2", 100,
                              (0.003, 0.004, 0.004, 0.002, 0.001, 0.0007, 0.0003, 0.0002, 0.0001, 0.00007),
                              (100, 100, 100, 100, 100, 100, 200, 200, 300, 300)),
    "cifar10": Schedule("table1", 256,
                        (0.005, 0.003, 0.003, 0.001, 0.001, 0.0007, 0.0005, 0.0005, 0.0001, 0.0001),
                        (100, 100, 150, 200, 250, 300, 300, 500, 500, 700)),
}


@dataclass(frozen=True, kw_only=True)
class SweepSettings(TrainingSettings):
    epoch_fraction: float   # share of the table's epochs this tier trains
    min_epochs: int


SETTINGS = Tiered(
    smoke=SweepSettings(n_runs=1, n_train=256, n_test=256, probe_size=20, align_points=1, width=16,
                        epoch_fraction=0.0, min_epochs=1),
    quick=SweepSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=5,
                        epoch_fraction=0.1, min_epochs=3),
    paper=SweepSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=12,
                        epoch_fraction=1.0, min_epochs=1),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=30, mem_mb=8000, gpu=1),
    paper=Resources(runtime_min=300, mem_mb=8000, gpu=1),
)


@dataclass(frozen=True)
class Variant:
    """A change to a Table's protocol (App. E, Fig 8): learning rates scaled, another batch size."""

    suffix: str = ""
    lr_scale: float = 1.0
    batch_size: int | None = None


# Fig 8: (a) is Fig 3b itself; (b) learning rates 4x smaller; (c) batch size 512.
FIG8_VARIANTS = {"lr_quarter": Variant("_lr_quarter", lr_scale=0.25), "bs512": Variant("_bs512", batch_size=512)}


def sweep_work(s: SweepSettings, dataset: str, schedule: Schedule) -> Work:
    """Every depth of the sweep, its tier's share of the table's epochs; cost per example grows with depth."""
    terms = [training_work(s, dataset, n_epochs(e, s.epoch_fraction, s.min_epochs), layers=d)
             for d, e in zip(DEPTHS, schedule.epochs)]
    return sum(terms[1:], terms[0])


def _register_sweep(dataset: str, schedule: Schedule, variant: Variant = Variant()) -> None:
    name = f"sweep_{dataset}{variant.suffix}"

    @model(PAPER, name, settings=SETTINGS, resources=TRAIN_RESOURCES,
           work=partial(sweep_work, dataset=dataset, schedule=schedule))
    def train_sweep(ctx: Context) -> dict:
        s: SweepSettings = replace(ctx.settings, batch_size=variant.batch_size or ctx.settings.batch_size)
        task = load_image_task(ctx, dataset, s)
        store = ConfigStore(ctx.checkpoint)
        runs = {}
        for depth, table_lr, paper_epochs in zip(DEPTHS, schedule.lrs, schedule.epochs):
            epochs = n_epochs(paper_epochs, s.epoch_fraction, s.min_epochs)
            lr = table_lr * variant.lr_scale
            runs[depth] = store.run(f"d{depth}", lambda ckpt, depth=depth, lr=lr, epochs=epochs: train_ffnn(
                task, depth=depth, width=s.width or schedule.width, lr=lr, epochs=epochs, seeds=ctx.seeds,
                s=s, checkpoint=ckpt, desc=f"{PAPER}/{name}/depth{depth}"))
        store.clear()
        return {"dataset": dataset, "depths": DEPTHS, "runs": runs, "notes": task.notes}

    train_sweep.__doc__ = (f"Depth sweep on {dataset} with App. E {schedule.table}'s lr (x{variant.lr_scale}) and "
                           f"epochs per depth, batch size {variant.batch_size or 'of the tier'}.")


for _dataset, _schedule in SCHEDULES.items():
    _register_sweep(_dataset, _schedule)
for _variant in FIG8_VARIANTS.values():
    _register_sweep("fashion_mnist", SCHEDULES["fashion_mnist"], _variant)


def argmax_layers(run: dict) -> np.ndarray:
    """1-based layer of largest final alignment, one per seed."""
    return run["alignment"][-1].argmax(axis=1) + 1


@dataclass(frozen=True)
class DepthFit:
    """log l̂ = slope · log L + intercept (free), and log l̂ = 3/5 log L + fixed_intercept."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    fixed_intercept: float


def depth_fit(depths: np.ndarray, layers: np.ndarray, confidence: float = 0.95) -> DepthFit:
    """Both fits of Sec. 3.4 over the points (L, l̂), one point per depth and seed."""
    fit = loglog_fit(depths, layers, confidence)
    fixed = float(np.mean(np.log(layers) - EQUILIBRIUM_EXPONENT * np.log(depths)))
    return DepthFit(fit.slope, fit.intercept, fit.ci_low, fit.ci_high, fixed)


def sweep_summary(payload: dict, seeds: list[int], suffix: str, result: Result) -> None:
    """Fig 3 metrics of one sweep under ``suffix``: both fits, argmax layer, peak and accuracy per depth."""
    runs = payload["runs"]
    depths = np.concatenate([np.full(len(seeds), d) for d in DEPTHS])
    layers = np.concatenate([argmax_layers(runs[d]) for d in DEPTHS])
    fit = depth_fit(depths, layers)
    m = result.metrics
    m[f"fitted_slope.{suffix}"] = fit.slope
    m[f"fitted_slope_ci_low.{suffix}"], m[f"fitted_slope_ci_high.{suffix}"] = fit.ci_low, fit.ci_high
    m[f"free_fit_intercept.{suffix}"] = fit.intercept
    m[f"fit_intercept.{suffix}"] = fit.fixed_intercept
    heat = np.full((len(DEPTHS), max(DEPTHS)), np.nan)
    for i, d in enumerate(DEPTHS):
        final = runs[d]["alignment"][-1].mean(axis=0)
        heat[i, :d] = final / final.max()
        m[f"argmax_layer.depth{d}.{suffix}"] = float(argmax_layers(runs[d]).mean())
        m[f"peak_alignment.depth{d}.{suffix}"] = float(final.max())
        m[f"test_accuracy.depth{d}.{suffix}"] = float(runs[d]["test_accuracy"].mean())
    m[f"mean_test_accuracy.{suffix}"] = float(np.mean([runs[d]["test_accuracy"].mean() for d in DEPTHS]))
    result.arrays[f"{suffix}.relative_alignment"] = heat
    result.arrays[f"{suffix}.depths"], result.arrays[f"{suffix}.argmax"] = depths, layers
    result.arrays[f"{suffix}.fit"] = np.array([fit.slope, fit.intercept, fit.fixed_intercept])
    result.notes += payload["notes"] + [
        f"{suffix}: epochs per depth {[runs[d]['epochs'] for d in DEPTHS]}, lr per depth "
        f"{[runs[d]['lr'] for d in DEPTHS]}, width {runs[DEPTHS[0]]['width']}"]


FIT_NOTE = ("fitted_slope: least squares of log(argmax layer) on log(depth), one point per depth and seed, "
            "95% t interval in fitted_slope_ci_*; fit_intercept: C of log l = 3/5 log L + C")


@artifact(PAPER, "fig3", settings=SETTINGS, resources=MEASURE_RESOURCES,
          needs=tuple(f"sweep_{d}" for d in SCHEDULES), work=lambda s: measure_work(s, len(SCHEDULES), len(DEPTHS)))
def fig3(ctx: Context) -> Result:
    """Fig 3: argmax layer against depth on MNIST, Fashion-MNIST and CIFAR-10, with both fits."""
    result = Result()
    for dataset in SCHEDULES:
        sweep_summary(ctx.load_model(f"sweep_{dataset}"), ctx.seeds, dataset, result)
    result.arrays["panels"] = np.array(list(SCHEDULES))
    result.notes.append(FIT_NOTE)
    return result


@artifact(PAPER, "fig8", settings=SETTINGS, resources=MEASURE_RESOURCES,
          needs=("sweep_fashion_mnist",) + tuple(f"sweep_fashion_mnist{v.suffix}" for v in FIG8_VARIANTS.values()),
          work=lambda s: measure_work(s, 1 + len(FIG8_VARIANTS), len(DEPTHS)))
def fig8(ctx: Context) -> Result:
    """Fig 8: Fashion-MNIST sweep as in Fig 3b (base), with lr / 4 (lr_quarter) and with batch 512 (bs512)."""
    result = Result()
    sweep_summary(ctx.load_model("sweep_fashion_mnist"), ctx.seeds, "base", result)
    for key, variant in FIG8_VARIANTS.items():
        sweep_summary(ctx.load_model(f"sweep_fashion_mnist{variant.suffix}"), ctx.seeds, key, result)
    result.arrays["panels"] = np.array(["base", *FIG8_VARIANTS])
    result.notes.append(FIT_NOTE)
    return result


def _register_table(table: str, dataset: str) -> None:
    @artifact(PAPER, table, settings=SETTINGS, resources=MEASURE_RESOURCES, needs=(f"sweep_{dataset}",),
              work=lambda s: measure_work(s, networks=len(DEPTHS)))
    def depth_table(ctx: Context) -> Result:
        payload = ctx.load_model(f"sweep_{dataset}")
        result = Result(notes=list(payload["notes"]))
        for d in DEPTHS:
            run = payload["runs"][d]
            result.metrics[f"test_accuracy.depth{d}"] = float(run["test_accuracy"].mean())
            result.metrics[f"train_accuracy.depth{d}"] = float(run["train_accuracy"].mean())
            result.metrics[f"lr.depth{d}"] = run["lr"]
            result.metrics[f"epochs.depth{d}"] = run["epochs"]
        result.arrays["test_accuracy"] = np.stack([payload["runs"][d]["test_accuracy"] for d in DEPTHS])
        result.arrays["train_accuracy"] = np.stack([payload["runs"][d]["train_accuracy"] for d in DEPTHS])
        result.arrays["paper_epochs"] = np.array(SCHEDULES[dataset].epochs)
        return result

    depth_table.__doc__ = f"App. E {table}: {dataset} test accuracy per depth (companion of Fig 3)."


for _dataset, _schedule in SCHEDULES.items():
    _register_table(_schedule.table, _dataset)
