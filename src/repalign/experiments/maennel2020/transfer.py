"""maennel2020 upstream → downstream experiments (App. A.1, A.4), Figs 1, 5, 6, 8, 9: pretrain on random labels, then
train downstream on real or random labels, against the same network from scratch.

One run (``transfer_run``): a disjoint upstream and downstream sample of the CIFAR-10
training split; the upstream net (He normal × init_scale) trains on ``classes_up`` uniform
random labels; each downstream variant starts from a freshly initialised net of the same
seed (new head) and trains with the same lr and schedule. Variants:

- ``pretrained``: all layers below the head transferred, each rescaled to its ℓ2 norm at
  initialisation (not for ResNet18, App. A.4);
- ``transfer_first``: only the first layer transferred (Figs 6, 9);
- ``no_rescaling``: transferred without rescaling (Fig 5, grey);
- ``covariance``: conv1's filters drawn from N(0, Σ_w) of the rescaled pretrained filters,
  bias 0, every other layer fresh (Fig 5, App. A.9);
- ``scratch``: no transfer.

``train_acc_auc`` = area under the accuracy curve on the whole downstream training set over
the downstream steps, divided by them (App. B); ``final_test_accuracy`` on test images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from repalign.experiments.maennel2020.protocol import (NO_RESCALE, AccuracyCurve, disjoint_splits, eval_steps, fit,
                                                       filter_matrix, layer_norms, load_cifar, make_model,
                                                       random_labels, transfer, weight_covariance)
from repalign.experiments.registry import Context, Resources, Tiered, artifact, model
from repalign.metrics import covariance_filters
from repalign.results import Result

PAPER = "maennel2020"
LABELS = ("real_labels", "random_labels")


@dataclass(frozen=True)
class Setup:
    """One upstream set-up of App. A (architecture, its options, and the upstream task)."""

    arch: str
    init_scale: float
    lr: float
    classes_up: int
    n_up: int
    steps_up: int
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TransferSettings:
    setups: dict[str, Setup]
    n_down: int
    steps_down: int
    variants: tuple[str, ...]
    n_test: int = 1000
    n_points: int = 10    # accuracy measurements along the downstream run
    n_runs: int = 1


def covariance_init(pretrained: nn.Module, fresh: nn.Module, init_norms: dict, seed: int) -> nn.Module:
    """``fresh`` with conv1's filters sampled from N(0, Σ_w) of the rescaled pretrained conv1, bias 0."""
    rescaled = transfer(pretrained, fresh, init_norms, n_layers=1)
    w = filter_matrix(rescaled.conv1).double()
    cov = weight_covariance(w)
    evals = torch.linalg.eigvalsh(cov).flip(0).clamp_min(0)
    sample = covariance_filters(cov, evals.sqrt(), w.shape[0], "sample", torch.Generator().manual_seed(seed))
    with torch.no_grad():
        rescaled.conv1.weight.copy_(sample.reshape(rescaled.conv1.weight.shape))
        rescaled.conv1.bias.zero_()
    return rescaled


def downstream_start(variant: str, pretrained: nn.Module, fresh: nn.Module, norms: dict | None, seed: int):
    if variant == "scratch":
        return fresh
    if variant == "pretrained":
        return transfer(pretrained, fresh, norms)
    if variant == "transfer_first":
        return transfer(pretrained, fresh, norms, n_layers=1)
    if variant == "no_rescaling":
        return transfer(pretrained, fresh, None)
    if variant == "covariance":
        return covariance_init(pretrained, fresh, norms, seed)
    raise ValueError(f"unknown transfer variant '{variant}'")


def transfer_run(ctx: Context, setup: Setup, s: TransferSettings, seed: int, labels_set=LABELS,
                 watch=lambda phase: ()) -> dict:
    """AUCs ``{labels: {variant: auc}}``, test accuracies and curves of one seed of ``setup``.

    ``watch(phase)`` gives extra training callbacks (streamed measurements) for the phase
    ``"upstream"`` or ``"<labels>.<variant>"``."""
    split, test = load_cifar(ctx, "train"), load_cifar(ctx, "test")
    up, down = (i.to(ctx.device) for i in disjoint_splits(split.n, setup.n_up, s.n_down, seed))
    pick = torch.randperm(test.n, generator=torch.Generator().manual_seed(seed))[:s.n_test].to(ctx.device)
    up_net = make_model(setup.arch, setup.classes_up, seed, setup.init_scale, ctx.device, **setup.options)
    norms = None if setup.arch in NO_RESCALE else layer_norms(up_net)
    fit(up_net, split.x[up], random_labels(setup.n_up, setup.classes_up, seed, ctx.device), setup.steps_up, setup.lr,
        seed=seed, callbacks=watch("upstream"), desc=f"{PAPER}/{ctx.name} upstream")
    out = {"auc": {}, "test": {}, "curves": {}}
    for labels in labels_set:
        y = split.y[down] if labels == "real_labels" else random_labels(s.n_down, 10, seed + 1, ctx.device)
        for variant in s.variants:
            fresh = make_model(setup.arch, 10, seed + 7, setup.init_scale, ctx.device, **setup.options)
            net = downstream_start(variant, up_net, fresh, norms, seed)
            curve = AccuracyCurve(eval_steps(s.steps_down, s.n_points), split.x[down], y)
            fit(net, split.x[down], y, s.steps_down, setup.lr, seed=seed + 2,
                callbacks=[curve, *watch(f"{labels}.{variant}")],
                desc=f"{PAPER}/{ctx.name} {labels} {variant}")
            out["auc"][(labels, variant)] = curve.auc()
            out["curves"][(labels, variant)] = curve.curve()[1]
            if labels == "real_labels":
                out["test"][variant] = AccuracyCurve([], test.x[pick], test.y[pick]).measure(net)
    return out


def averaged(ctx: Context, setup: Setup, s: TransferSettings, labels_set=LABELS) -> dict:
    runs = [transfer_run(ctx, setup, s, seed, labels_set) for seed in ctx.seeds]
    return {"auc": {k: float(np.mean([r["auc"][k] for r in runs])) for k in runs[0]["auc"]},
            "test": {k: float(np.mean([r["test"][k] for r in runs])) for k in runs[0]["test"]},
            "curves": {k: np.mean([r["curves"][k] for r in runs], axis=0) for k in runs[0]["curves"]}}


RESOURCES = Tiered(smoke=Resources(runtime_min=3), quick=Resources(runtime_min=30, gpu=1, mem_mb=16000),
                   paper=Resources(runtime_min=600, gpu=1, mem_mb=16000))
SMOKE = dict(n_down=32, steps_down=2, n_test=32, n_points=2)


def _setup_smoke(setup: Setup) -> Setup:
    return Setup(setup.arch, setup.init_scale, setup.lr, setup.classes_up, 32, 1, setup.options)


# App. A.9 (Fig 5): Simple CNN 1 conv of 64 + dense 256, 10k + 10k, 10 classes, lr 5e-4, 10k steps
FIG5_SETUP = Setup("simple_cnn", 1.0, 0.0005, 10, 10000, 10000, {"n_conv": 1, "filters": 64, "units": 256})
FIG5_VARIANTS = ("pretrained", "covariance", "no_rescaling", "scratch")
FIG5 = Tiered(
    smoke=TransferSettings({"fig5": _setup_smoke(FIG5_SETUP)}, variants=FIG5_VARIANTS, **SMOKE),
    quick=TransferSettings({"fig5": Setup(**{**FIG5_SETUP.__dict__, "steps_up": 2000})}, n_down=10000,
                           steps_down=2000, variants=FIG5_VARIANTS, n_runs=3),
    paper=TransferSettings({"fig5": FIG5_SETUP}, n_down=10000, steps_down=10000, variants=FIG5_VARIANTS, n_runs=12))


@artifact(PAPER, "fig5", settings=FIG5, resources=RESOURCES)
def fig5(ctx: Context) -> Result:
    s: TransferSettings = ctx.settings
    out = averaged(ctx, s.setups["fig5"], s)
    result = Result(notes=[f"upstream {s.setups['fig5'].steps_up} steps, downstream {s.steps_down} steps, "
                           f"{len(ctx.seeds)} runs"])
    for (labels, variant), auc in out["auc"].items():
        result.metrics[f"train_acc_auc.{labels}.{variant}"] = auc
        result.arrays[f"{labels}.{variant}"] = out["curves"][(labels, variant)]
    result.arrays["steps"] = np.array(eval_steps(s.steps_down, s.n_points))
    return result


# App. A.12 (Fig 8): Simple CNN 2 conv of 16, dense 64 / 128 / 1024, init 1.218, lr 0.012, 2 classes,
# 10k examples, 100 epochs (40 steps each) upstream
def _fig8(n_up: int, steps: int) -> dict[str, Setup]:
    return {f"width{u}": Setup("simple_cnn", 1.218, 0.012, 2, n_up, steps, {"n_conv": 2, "filters": 16, "units": u})
            for u in (64, 128, 1024)}


FIG8 = Tiered(
    smoke=TransferSettings({k: _setup_smoke(v) for k, v in _fig8(32, 1).items()}, variants=("pretrained", "scratch"),
                           **SMOKE),
    quick=TransferSettings(_fig8(10000, 1000), n_down=10000, steps_down=1000, variants=("pretrained", "scratch")),
    paper=TransferSettings(_fig8(10000, 3920), n_down=10000, steps_down=3920, variants=("pretrained", "scratch"),
                           n_runs=3))


@artifact(PAPER, "fig8", settings=FIG8, resources=RESOURCES)
def fig8(ctx: Context) -> Result:
    s: TransferSettings = ctx.settings
    result = Result(notes=["downstream set size and steps are not given in App. A.12: n_down, steps_down are ours"])
    for width, setup in s.setups.items():
        out = averaged(ctx, setup, s)
        for labels in LABELS:
            gain = out["auc"][(labels, "pretrained")] - out["auc"][(labels, "scratch")]
            result.metrics[f"transfer_gain.{labels}.{width}"] = gain
            for variant in s.variants:
                result.metrics[f"train_acc_auc.{labels}.{width}.{variant}"] = out["auc"][(labels, variant)]
                result.arrays[f"{labels}.{width}.{variant}"] = out["curves"][(labels, variant)]
    result.arrays["steps"] = np.array(eval_steps(s.steps_down, s.n_points))
    return result


# App. A.5 (Fig 1): VGG16, 20k upstream; Exp. 1-2 (init 0.526, lr 0.01, 5 classes, 120 epochs) and
# Exp. 3-4 (init 0.612, lr 0.009, 50 classes, 80 epochs); downstream 25k (real: Exp. 1, 3; random: 2, 4)
def _fig1(n_up: int, steps12: int, steps34: int, width: int) -> dict[str, Setup]:
    return {"exp12": Setup("vgg16", 0.526, 0.01, 5, n_up, steps12, {"width": width}),
            "exp34": Setup("vgg16", 0.612, 0.009, 50, n_up, steps34, {"width": width})}


FIG1 = Tiered(
    smoke=TransferSettings({k: _setup_smoke(v) for k, v in _fig1(32, 1, 1, 4).items()},
                           variants=("pretrained", "scratch"), **SMOKE),
    quick=TransferSettings(_fig1(20000, 1000, 1000, 64), n_down=25000, steps_down=1000,
                           variants=("pretrained", "scratch")),
    paper=TransferSettings(_fig1(20000, 9360, 6240, 64), n_down=25000, steps_down=11720,
                           variants=("pretrained", "scratch"), n_test=10000, n_runs=12))


@artifact(PAPER, "fig1", settings=FIG1, resources=RESOURCES)
def fig1(ctx: Context) -> Result:
    s: TransferSettings = ctx.settings
    result = Result(notes=["downstream steps are not given in App. A.5 (ours: quick 1,000; paper 120 epochs of 25k)"])
    for pair, (real, random) in (("exp12", ("exp1", "exp2")), ("exp34", ("exp3", "exp4"))):
        out = averaged(ctx, s.setups[pair], s)
        for exp, labels in ((real, "real_labels"), (random, "random_labels")):
            for variant in s.variants:
                result.metrics[f"train_acc_auc.{exp}.{variant}"] = out["auc"][(labels, variant)]
                result.arrays[f"{exp}.{variant}"] = out["curves"][(labels, variant)]
        for variant in s.variants:
            result.metrics[f"final_test_accuracy.{real}.{variant}"] = out["test"][variant]
    result.arrays["steps"] = np.array(eval_steps(s.steps_down, s.n_points))
    return result


# App. A.10 (Figs 6, 9): Simple CNN (3 conv of 16, dense 1024; init 0.518, lr 0.01, 25 classes, 15k,
# 40 epochs), VGG16 as Exp. 1, ResNet18 (init 0.671, lr 0.01, 50 classes, 25k, 80 epochs); downstream 25k
def _fig6(scale: float, width: int) -> dict[str, Setup]:
    n = lambda k: max(32, int(k * scale))  # noqa: E731
    return {"simple_cnn": Setup("simple_cnn", 0.518, 0.01, 25, n(15000), n(2344),
                                {"n_conv": 3, "filters": 16, "units": 1024}),
            "vgg16": Setup("vgg16", 0.526, 0.01, 5, n(20000), n(9360), {"width": width}),
            "resnet18": Setup("resnet18_v2_gn", 0.671, 0.01, 50, n(25000), n(7800), {"width": width})}


LAYER_VARIANTS = ("pretrained", "transfer_first", "scratch")
LAYERS = Tiered(
    smoke=TransferSettings({k: _setup_smoke(v) for k, v in _fig6(0.0, 4).items()}, variants=LAYER_VARIANTS, **SMOKE),
    quick=TransferSettings({k: Setup(**{**v.__dict__, "steps_up": 1000}) for k, v in _fig6(1.0, 64).items()},
                           n_down=25000, steps_down=1000, variants=LAYER_VARIANTS),
    paper=TransferSettings(_fig6(1.0, 64), n_down=25000, steps_down=7800, variants=LAYER_VARIANTS, n_runs=3))


@model(PAPER, "layer_transfer", settings=LAYERS, resources=RESOURCES)
def layer_transfer(ctx: Context) -> dict:
    """Figs 6 and 9: all layers, the first layer, or none transferred, per architecture."""
    s: TransferSettings = ctx.settings
    return {"runs": {arch: averaged(ctx, setup, s) for arch, setup in s.setups.items()}}


def _layers_result(ctx: Context, labels_set) -> Result:
    payload = ctx.load_model("layer_transfer")
    result = Result(notes=["pretrained = transfer_all (every layer below the head); ResNet18 not rescaled (App. A.4)"])
    for arch, out in payload["runs"].items():
        for labels in labels_set:
            for variant in LAYER_VARIANTS:
                name = "transfer_all" if variant == "pretrained" else variant
                result.metrics[f"train_acc_auc.{labels}.{arch}.{name}"] = out["auc"][(labels, variant)]
                result.arrays[f"{labels}.{arch}.{name}"] = out["curves"][(labels, variant)]
    return result


@artifact(PAPER, "fig6", settings=LAYERS, resources=Tiered.same(Resources(runtime_min=2)), needs=("layer_transfer",))
def fig6(ctx: Context) -> Result:
    return _layers_result(ctx, ("random_labels",))


@artifact(PAPER, "fig9", settings=LAYERS, resources=Tiered.same(Resources(runtime_min=2)), needs=("layer_transfer",))
def fig9(ctx: Context) -> Result:
    return _layers_result(ctx, LABELS)
