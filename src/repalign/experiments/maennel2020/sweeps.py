"""maennel2020 App. B.1–B.4, Figs 12–15: hyperparameter sweeps of random-label pretraining.

A set of experiments (``Sweep``) is the settings every run shares and the ranges each *group*
draws from. A group (App. B) shares (1) architecture, (2) learning rate, (3) init algorithm and
scale, (4) num_examples_upstream, (5) num_classes_upstream and (6) num_epochs_upstream (plus
the Simple CNN's n_conv / units / filters); within it every seed × {pretrained, scratch} ×
{all layers, first layer (CIFAR-10 only)} × {real, random labels downstream} is run, through
``transfer.transfer_run``. ``draw_groups`` draws one architecture's groups one after another
from a fixed seed, so a tier with k groups per architecture runs the first k of the paper's.

Each group gives one point per panel and transfer variant, seed-averaged: x = AUC pretrained,
y = AUC scratch (below x = y: pretraining trains faster). Panels (App. B, "Visualizing"):
``train_real`` (TOP: accuracy on the whole downstream training set, real labels),
``test_real`` (CENTER: test accuracy, real labels) and ``train_random`` (BOTTOM: training
accuracy, 10 random labels). AUC = area under the accuracy curve / steps (``AccuracyCurve``).

Readings: epochs become steps as epochs × ⌊n / 256⌋ (App. A.5's 9,360 steps = 120 epochs of
20k); ImageNet Experiments A lists no num_epochs_upstream, so it is Fig 18's 100 (a group of
that set). A group whose loss diverges (NaN/inf) is recorded as diverged and has no point.
ImageNet (Figs 14, 15) is looked for first; offline it is missing and the figure is not_run.
The ImageNet runs themselves are not implemented (as for Figs 16–18).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from repalign.data import load_dataset
from repalign.errors import NonFiniteLoss, RepalignError
from repalign.experiments.maennel2020.protocol import BATCH_SIZE, AccuracyCurve, eval_steps, load_cifar
from repalign.experiments.maennel2020.transfer import LABELS, Setup, TransferSettings, transfer_run
from repalign.experiments.registry import Context, Resources, Tiered, Work, artifact, trained
from repalign.results import Result

PAPER = "maennel2020"
log = logging.getLogger(__name__)
ARCHS = {"simple_cnn": "simple_cnn", "vgg16": "vgg16", "resnet18": "resnet18_v2_gn"}  # name -> build()
PANELS = {"train_real": "real_labels", "test_real": "real_labels", "train_random": "random_labels"}
FIRST_LAYER = "_first_layer"  # metric suffix of the transfer_first points


@dataclass(frozen=True)
class Sweep:
    """One set of App. B experiments: what every run shares, and what each group draws."""

    seed: int  # of its group draws (each set draws its own groups)
    dataset: str
    groups_per_arch: int
    n_seeds: int
    n_down: int
    epochs_down: int
    init_scale: tuple[float, float]  # log-uniform
    lr: tuple[float, float]  # log-uniform
    n_up: tuple[int, ...]  # the rest: uniform over the listed values
    classes_up: tuple[int, ...]
    epochs_up: tuple[int, ...]
    n_conv: tuple[int, ...]  # Simple CNN only
    units: tuple[int, ...]
    filters: tuple[int, ...]
    init_algorithms: tuple[str, ...] = ("he",)
    transfer_first: bool = True  # (c) "transfer one layer / all layers [optional]"


@dataclass(frozen=True)
class Group:
    """One group's hyperparameters (App. B (1)–(6))."""

    arch: str
    init_algorithm: str
    init_scale: float
    lr: float
    n_up: int
    classes_up: int
    epochs_up: int
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.options.items())
        return (f"{self.arch} {self.init_algorithm}×{self.init_scale:.3f} lr={self.lr:.4g} n_up={self.n_up} "
                f"classes_up={self.classes_up} epochs_up={self.epochs_up}{extra}")


@dataclass(frozen=True)
class SweepSettings:
    """A tier of a sweep: the first ``groups_per_arch`` groups, sizes scaled by the factors."""

    sweep: Sweep
    groups_per_arch: int
    n_runs: int  # seeds per group
    examples_scale: float = 1.0  # × num_examples upstream and downstream
    epochs_scale: float = 1.0  # × num_epochs upstream and downstream
    width: int = 64  # VGG16 / ResNet18 first-stage width (the paper's 64)
    cnn_cap: int | None = None  # smoke only: caps the Simple CNN's filters and units (tiny models)
    n_test: int = 10000
    n_points: int = 10  # accuracy measurements along each downstream run
    draw_seed: int = 0


# App. B.1: 20 groups per architecture, 2 seeds, He init
EXPERIMENTS_A = Sweep(12, "cifar10", groups_per_arch=20, n_seeds=2, n_down=25000, epochs_down=200,
                      init_scale=(0.5, 1.35), lr=(0.008, 0.0125), n_up=(5000, 10000, 15000, 20000, 25000),
                      classes_up=(2, 5, 10, 25, 50, 100), epochs_up=(20, 40, 80, 100, 120, 150, 200),
                      n_conv=(1, 2, 3, 4, 5), units=(64, 128, 256, 512, 1024), filters=(16, 32))
# App. B.2: wider ranges, He or orthogonal init
EXPERIMENTS_B = Sweep(13, "cifar10", groups_per_arch=20, n_seeds=2, n_down=25000, epochs_down=200,
                      init_scale=(0.5, 2.0), lr=(0.005, 0.02), n_up=(5000, 10000, 15000, 20000, 25000),
                      classes_up=(2, 5, 10, 25, 50, 100), epochs_up=(20, 40, 80, 100, 120, 150, 200),
                      n_conv=(1, 2, 3, 4, 5), units=(512, 1024, 2048), filters=(16, 32),
                      init_algorithms=("he", "orthogonal"))
# App. B.3 / B.4: ImageNet, 10 groups per architecture, 5 seeds, all layers transferred
_IMAGENET = dict(groups_per_arch=10, n_seeds=5, epochs_down=100, init_scale=(0.5, 1.5), lr=(0.008, 0.0125),
                 classes_up=(1000,), epochs_up=(100,), n_conv=(1, 2, 3), units=(32, 64, 128, 256, 512, 1024),
                 filters=(16, 32, 64), transfer_first=False)
IMAGENET_A = Sweep(14, "imagenet", n_down=200000, n_up=(50000, 100000), **_IMAGENET)
IMAGENET_B = Sweep(15, "imagenet", n_down=50000, n_up=(25000, 50000), **_IMAGENET)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_groups(sweep: Sweep, arch: str, n: int, draw_seed: int = 0) -> list[Group]:
    """The first ``n`` groups of ``arch`` in ``sweep``; group i depends only on draws 0..i."""
    if arch not in ARCHS:
        raise ValueError(f"unknown sweep architecture '{arch}'; choose one of {sorted(ARCHS)}")
    rng = np.random.default_rng([sweep.seed, draw_seed, list(ARCHS).index(arch)])
    groups = []
    for _ in range(n):
        init_algorithm = str(rng.choice(sweep.init_algorithms))
        init_scale, lr = _log_uniform(rng, *sweep.init_scale), _log_uniform(rng, *sweep.lr)
        n_up, classes_up, epochs_up = (int(rng.choice(v)) for v in (sweep.n_up, sweep.classes_up, sweep.epochs_up))
        options = {}
        if arch == "simple_cnn":
            options = {k: int(rng.choice(getattr(sweep, k))) for k in ("n_conv", "units", "filters")}
        groups.append(Group(arch, init_algorithm, init_scale, lr, n_up, classes_up, epochs_up, options))
    return groups


def sweep_groups(s: SweepSettings) -> list[Group]:
    """The tier's groups: the first ``groups_per_arch`` of every architecture."""
    if s.groups_per_arch > s.sweep.groups_per_arch:
        raise ValueError(f"groups_per_arch={s.groups_per_arch} exceeds the paper's {s.sweep.groups_per_arch}")
    return [g for arch in ARCHS for g in draw_groups(s.sweep, arch, s.groups_per_arch, s.draw_seed)]


def steps(epochs: int, n: int, epochs_scale: float) -> int:
    """SGD steps of ``epochs`` × ``epochs_scale`` epochs over ``n`` examples, last batch dropped."""
    return max(1, round(epochs * epochs_scale) * max(1, n // BATCH_SIZE))


def scaled(n: int, s: SweepSettings) -> int:
    return max(32, round(n * s.examples_scale))


def group_setup(group: Group, s: SweepSettings) -> Setup:
    """The ``transfer.Setup`` of ``group`` at the tier's sizes."""
    options = {"width": s.width}
    if group.arch == "simple_cnn":
        cap = lambda n: min(n, s.cnn_cap or n)  # noqa: E731
        options = {**group.options, "filters": cap(group.options["filters"]), "units": cap(group.options["units"])}
    n_up = scaled(group.n_up, s)
    return Setup(ARCHS[group.arch], group.init_scale, group.lr, group.classes_up, n_up,
                 steps(group.epochs_up, n_up, s.epochs_scale), {**options, "init_algorithm": group.init_algorithm})


def transfer_settings(s: SweepSettings) -> TransferSettings:
    n_down = scaled(s.sweep.n_down, s)
    variants = ("pretrained", "transfer_first", "scratch") if s.sweep.transfer_first else ("pretrained", "scratch")
    return TransferSettings({}, n_down, steps(s.sweep.epochs_down, n_down, s.epochs_scale), variants,
                            n_test=s.n_test, n_points=s.n_points)


def sweep_work(s: SweepSettings) -> Work:
    """Every group's upstream fit and its downstream fits (per label set and variant), for each of
    its seeds, as one total of SGD steps (``transfer_work`` would list the groups one by one)."""
    ts, setups = transfer_settings(s), [group_setup(g, s) for g in sweep_groups(s)]
    down = ts.steps_down * len(LABELS) * len(ts.variants) * len(setups)
    return trained(steps=sum(setup.steps_up for setup in setups) + down, batch=BATCH_SIZE, models=s.n_runs)


def group_aucs(ctx: Context, group: Group, s: SweepSettings) -> dict[tuple[str, str], float]:
    """``{(panel, variant): AUC}`` of ``group``, averaged over ``ctx.seeds``."""
    setup, ts = group_setup(group, s), transfer_settings(s)
    test = load_cifar(ctx, "test")
    runs = []
    for seed in ctx.seeds:
        pick = torch.randperm(test.n, generator=torch.Generator().manual_seed(seed))[:ts.n_test].to(ctx.device)
        test_curves: dict[str, AccuracyCurve] = {}

        def watch(phase: str):
            if not phase.startswith("real_labels."):
                return ()
            test_curves[phase] = AccuracyCurve(eval_steps(ts.steps_down, ts.n_points), test.x[pick], test.y[pick])
            return (test_curves[phase],)

        out = transfer_run(ctx, setup, ts, seed, LABELS, watch=watch)
        aucs = {(panel, v): out["auc"][(labels, v)] for panel, labels in PANELS.items() if panel != "test_real"
                for v in ts.variants}
        aucs.update({("test_real", v): test_curves[f"real_labels.{v}"].auc() for v in ts.variants})
        runs.append(aucs)
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def summarise(groups: list[Group], points: list[dict], variants: tuple[str, ...]) -> tuple[dict, dict]:
    """Metrics (and not_run reasons) of the evaluated groups' points (see paper_targets.yaml)."""
    metrics, not_run = {"n_groups": float(len(points))}, {}
    for variant in (v for v in variants if v != "scratch"):
        suffix = FIRST_LAYER if variant == "transfer_first" else ""
        for arch in (*ARCHS, "all"):
            mine = [p for g, p in zip(groups, points) if arch in ("all", g.arch)]
            for panel in PANELS:
                gain = np.array([p[(panel, variant)] - p[(panel, "scratch")] for p in mine])
                names = (f"frac_groups_faster.{panel}.{arch}{suffix}", f"mean_auc_gain.{panel}.{arch}{suffix}")
                if mine:
                    metrics.update(zip(names, (float(np.mean(gain > 0)), float(np.mean(gain)))))
                else:
                    not_run.update(dict.fromkeys(names, f"no group of {arch} was evaluated (every one diverged)"))
            metrics[f"n_groups_test_improved.{arch}{suffix}"] = float(
                sum(p[("test_real", variant)] > p[("test_real", "scratch")] for p in mine))
    return metrics, not_run


def sweep_result(ctx: Context) -> Result:
    """Figs 12–15: every group of the tier, its seed-averaged AUCs, the fractions faster."""
    s: SweepSettings = ctx.settings
    if s.sweep.dataset != "cifar10":  # raises DatasetMissing (→ not_run) offline
        load_dataset(s.sweep.dataset, "train", root=ctx.data_root, cache_dir=ctx.cache_dir)
        raise RepalignError(f"maennel2020 {ctx.name}: {s.sweep.dataset} was found, but the App. B {s.sweep.dataset} "
                            f"sweep runs are not implemented; only their offline not_run path is")
    ts = transfer_settings(s)
    result = Result(notes=[f"downstream {ts.n_down} examples, {ts.steps_down} steps; {len(ctx.seeds)} seeds per group; "
                           f"VGG16/ResNet18 width {s.width}"])
    groups, kept, points = sweep_groups(s), [], []
    for group in groups:
        try:
            points.append(group_aucs(ctx, group, s))
            kept.append(group)
            result.notes.append(group.describe())
        except NonFiniteLoss as exc:
            log.warning("%s: group diverged: %s (%s)", ctx.name, group.describe(), exc)
            result.notes.append(f"DIVERGED (no point): {group.describe()}")
    metrics, result.not_run = summarise(kept, points, ts.variants)
    result.metrics.update(metrics, n_groups_diverged=float(len(groups) - len(kept)))
    for (panel, variant) in (points[0] if points else {}):
        result.arrays[f"auc.{panel}.{variant}"] = np.array([p[(panel, variant)] for p in points])
    result.arrays["arch"] = np.array([list(ARCHS).index(g.arch) for g in kept], dtype=np.int64)
    return result


RESOURCES = Tiered(smoke=Resources(runtime_min=5), quick=Resources(runtime_min=30, gpu=1, mem_mb=16000),
                   paper=Resources(runtime_min=3000, gpu=1, mem_mb=32000))
OFFLINE = Tiered.same(Resources(runtime_min=1))


def _tiers(sweep: Sweep, quick_groups: int) -> Tiered:
    """smoke: one tiny group per architecture; quick: a sample of groups at reduced sizes (about
    10 minutes on one GPU); paper: the paper's groups, seeds and sizes."""
    return Tiered(
        smoke=SweepSettings(sweep, 1, 1, examples_scale=32 / 25000, epochs_scale=1 / 100, width=4, cnn_cap=4,
                            n_test=32, n_points=2),
        quick=SweepSettings(sweep, quick_groups, 1, examples_scale=0.2, epochs_scale=0.25, n_test=2000),
        paper=SweepSettings(sweep, sweep.groups_per_arch, sweep.n_seeds, n_points=20))


for _name, _sweep in (("fig12", EXPERIMENTS_A), ("fig13", EXPERIMENTS_B), ("fig14", IMAGENET_A),
                      ("fig15", IMAGENET_B)):
    artifact(PAPER, _name, settings=_tiers(_sweep, 4), resources=RESOURCES if _sweep.dataset == "cifar10" else OFFLINE,
             work=sweep_work)(sweep_result)
