"""maennel2020 Sec. 3 and App. F: specialising neurons (Figs 7, 10, 11, 24).

A unit (a dense unit, or one conv channel at one position) is active on an image when its
post-ReLU output is non-zero. ``repalign.metrics.activation_fractions`` gives, over held-out
test images, the fraction of images that activate each unit and the fraction of units each
image activates. Both stream from training: an ``EpochHook`` (one step per "epoch") reads the
held-out images at chosen steps of the upstream and downstream runs of ``transfer_run``
(its ``watch``), so nothing is rebuilt from checkpoints.

- ``vgg_activations`` (Figs 7, 10, 11; App. A.11): the positive (Fig 1 Exp. 1–2) and negative
  (Exp. 3–4) VGG16 set-ups at initialisation, after random-label pretraining, and after
  fine-tuning the transferred net (all layers below the head, rescaled, App. A.4) on fresh
  examples with real and with 10 random labels. The negative set-up runs on other seeds than
  the positive one (``SEED_OFFSET``): with one seed and zero biases the two inits differ only
  by a scale, ReLU patterns are scale-invariant, and "identical at initialisation" would hold
  by construction.
- ``fig24`` (App. F): each layer's mean active fraction against iterations across the
  upstream → downstream switch, Simple CNN with 1 or 3 conv layers of 256 and dense 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from repalign.experiments.maennel2020.protocol import eval_steps, load_cifar, make_model, to_unit_range
from repalign.experiments.maennel2020.transfer import (LABELS, RESOURCES, Setup, TransferSettings, _fig1,
                                                       _setup_smoke, transfer_run, transfer_work)
from repalign.experiments.registry import Context, Resources, Tiered, analysed, artifact, model
from repalign.metrics import activation_fractions
from repalign.models import layer_names, measure
from repalign.results import Result
from repalign.train.hooks import EpochHook

PAPER = "maennel2020"
SEED_OFFSET = 1000  # set-up k of one artifact runs on seeds + k · SEED_OFFSET (independent inits)
CHUNK = 250         # held-out images per forward pass of a measurement


@dataclass(frozen=True)
class ActivationSettings(TransferSettings):
    n_held_out: int = 5000  # App. A.11: 5k images of the test split
    bins: int = 20          # histogram bins over [0, 1]
    n_curve: int = 2        # measured steps per phase (0, the end, evenly spaced in between)


def held_out_fractions(net: nn.Module, images: torch.Tensor, layers) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: (fraction of ``images`` activating each unit [U], fraction of units each image activates [N]),
    from uint8 ``images`` in chunks of ``CHUNK``."""
    per_unit: dict[str, torch.Tensor] = {}
    per_example: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with torch.no_grad():
        for chunk in images.split(CHUNK):
            for name, acts in measure(net, to_unit_range(chunk), layers).items():
                unit, example = activation_fractions(acts)
                per_unit[name] = per_unit.get(name, 0) + unit.double() * chunk.shape[0]
                per_example[name].append(example)
    return {name: (per_unit[name] / images.shape[0], torch.cat(per_example[name])) for name in layers}


def histograms(fractions: dict, bins: int) -> dict[str, dict]:
    """Per layer: unit and example histograms over [0, 1] (counts) and the mean active fraction."""
    out = {}
    for name, (unit, example) in fractions.items():
        unit, example = unit.cpu().numpy(), example.cpu().numpy()
        out[name] = {"units": np.histogram(unit, bins, (0.0, 1.0))[0],
                     "examples": np.histogram(example, bins, (0.0, 1.0))[0], "mean": float(unit.mean())}
    return out


def means(fractions: dict) -> dict[str, float]:
    return {name: float(unit.mean()) for name, (unit, _) in fractions.items()}


class Watch:
    """``transfer_run``'s ``watch``: one held-out hook per phase at its grid of steps, kept by phase."""

    def __init__(self, images: torch.Tensor, layers, summarise, up_steps, down_steps):
        self.images, self.layers, self.summarise = images, list(layers), summarise
        self.grids = {"upstream": up_steps, "downstream": down_steps}
        self.hooks: dict[str, EpochHook] = {}

    def _measure(self, step: int, net: nn.Module):
        return self.summarise(held_out_fractions(net, self.images, self.layers))

    def __call__(self, phase: str) -> list[EpochHook]:
        grid = self.grids["upstream" if phase == "upstream" else "downstream"]
        self.hooks[phase] = EpochHook(grid, 1, self._measure)
        return [self.hooks[phase]]

    def records(self, phase: str) -> dict:
        return self.hooks[phase].records


def held_out(ctx: Context, n: int, seed: int) -> torch.Tensor:
    """``n`` test-split images (uint8, on the device), drawn by ``seed``."""
    test = load_cifar(ctx, "test")
    if n > test.n:
        raise ValueError(f"n_held_out={n} exceeds the {test.n} test images; lower n_held_out")
    return test.x[torch.randperm(test.n, generator=torch.Generator().manual_seed(seed))[:n].to(ctx.device)]


def hidden_layers(setup: Setup) -> list[str]:
    """The measurement layers of ``setup``'s net below the logits (conv1…, then penultimate)."""
    names = layer_names(make_model(setup.arch, 2, 0, setup.init_scale, "cpu", **setup.options))
    return [n for n in names if n != "logits"]


# --- Figs 7, 10, 11: VGG16 at init, after pretraining, after fine-tuning --------------------------------

STAGES = ("init", "pretrained", "finetuned_real", "finetuned_random")
SETUP_NAMES = {"positive": "exp12", "negative": "exp34"}  # Fig 1's set-ups
VGG_KW = dict(variants=("pretrained",), n_points=2)
# App. A.11: the Fig 1 set-ups pretrained for their full schedules (9,360 / 6,240 steps), fine-tuned
# 200 epochs of 25k (ours: 200 · floor(25000/256) steps, the flooring of 9,360 = 120 · floor(20000/256))
VGG = Tiered(
    smoke=ActivationSettings({k: _setup_smoke(v) for k, v in _fig1(32, 1, 1, 4).items()}, n_down=32, steps_down=2,
                             n_test=32, n_held_out=32, **VGG_KW),
    quick=ActivationSettings(_fig1(20000, 9360, 6240, 64), n_down=25000, steps_down=1000, n_test=1000, **VGG_KW),
    paper=ActivationSettings(_fig1(20000, 9360, 6240, 64), n_down=25000, steps_down=19400, n_test=1000, **VGG_KW))


@model(PAPER, "vgg_activations", settings=VGG, resources=RESOURCES, work=transfer_work)
def vgg_activations(ctx: Context) -> dict:
    """Held-out activation histograms of every VGG16 conv layer at the four stages, per set-up (seeds pooled)."""
    s: ActivationSettings = ctx.settings
    out = {}
    for k, (name, key) in enumerate(SETUP_NAMES.items()):
        setup = s.setups[key]
        layers = [n for n in hidden_layers(setup) if n != "penultimate"]  # penultimate = pooled conv13
        runs = []
        for seed in ctx.seeds:
            seed = seed + k * SEED_OFFSET
            watch = Watch(held_out(ctx, s.n_held_out, seed), layers, lambda f: histograms(f, s.bins),
                          [0, setup.steps_up], [s.steps_down])
            transfer_run(ctx, setup, s, seed, watch=watch)
            up = watch.records("upstream")
            runs.append({"init": up[0], "pretrained": up[setup.steps_up],
                         **{f"finetuned_{lab.split('_')[0]}": watch.records(f"{lab}.pretrained")[s.steps_down]
                            for lab in LABELS}})
        out[name] = {stage: {layer: pooled([r[stage][layer] for r in runs]) for layer in layers} for stage in STAGES}
    return {"setups": out, "layers": layers, "seeds": list(ctx.seeds)}


def pooled(records: list[dict]) -> dict:
    """Histogram counts summed and mean active fractions averaged over seeds."""
    return {"units": sum(r["units"] for r in records), "examples": sum(r["examples"] for r in records),
            "mean": float(np.mean([r["mean"] for r in records]))}


GROUPS = {"top3": slice(-3, None), "bottom3": slice(0, 3)}  # VGG16's last / first three conv layers


def _stage_metrics(result: Result, setups: dict, layers: list[str], names, stages, per_layer: bool) -> None:
    for name in names:
        for stage in stages:
            rec = setups[name][stage]
            for group, part in GROUPS.items():
                result.metrics[f"mean_active_fraction.{name}.{stage}.{group}"] = float(
                    np.mean([rec[layer]["mean"] for layer in layers[part]]))
            for layer in layers:
                if per_layer:
                    result.metrics[f"mean_active_fraction.{name}.{stage}.{layer}"] = rec[layer]["mean"]
                result.arrays[f"{name}.{stage}.{layer}.units"] = rec[layer]["units"]
                result.arrays[f"{name}.{stage}.{layer}.examples"] = rec[layer]["examples"]


def _vgg_result(ctx: Context, names, stages, per_layer: bool) -> Result:
    payload = ctx.load_model("vgg_activations")
    s: ActivationSettings = ctx.settings
    steps = {n: s.setups[SETUP_NAMES[n]].steps_up for n in SETUP_NAMES}
    result = Result(notes=[
        f"pretrained {steps['positive']} (positive) / {steps['negative']} (negative) steps, fine-tuned "
        f"{s.steps_down} steps on {s.n_down} fresh examples; {s.n_held_out} held-out test images; "
        f"seeds {payload['seeds']} (negative: +{SEED_OFFSET})",
        "init = step 0 (Figs 10/11 show 1 pretraining iteration); top3 / bottom3 = mean over conv11-13 / conv1-3"])
    _stage_metrics(result, payload["setups"], payload["layers"], names, stages, per_layer)
    result.arrays["layers"] = np.array(payload["layers"])
    return result


NEEDS_VGG = dict(settings=VGG, resources=Tiered.same(Resources(runtime_min=2)), needs=("vgg_activations",),
                 work=lambda s: analysed(setups=len(SETUP_NAMES), stages=len(STAGES), images=s.n_held_out))


@artifact(PAPER, "fig7", **NEEDS_VGG)
def fig7(ctx: Context) -> Result:
    return _vgg_result(ctx, ("positive", "negative"), ("init", "pretrained", "finetuned_random"), per_layer=False)


@artifact(PAPER, "fig10", **NEEDS_VGG)
def fig10(ctx: Context) -> Result:
    return _vgg_result(ctx, ("negative",), STAGES, per_layer=True)


@artifact(PAPER, "fig11", **NEEDS_VGG)
def fig11(ctx: Context) -> Result:
    return _vgg_result(ctx, ("positive",), STAGES, per_layer=True)


# --- Fig 24: the active fraction across the upstream -> downstream switch -----------------------------

def _fig24(n: int, steps: int, filters: int) -> dict[str, Setup]:
    """App. F names only the nets; the rest is App. A.6's (Fig 2) net on 10 random classes, lr 0.01, init 1."""
    return {net: Setup("simple_cnn", 1.0, 0.01, 10, n, steps, {"n_conv": n_conv, "filters": filters, "units": 64})
            for net, n_conv in (("two_layer", 1), ("deep", 3))}


F24_KW = dict(variants=("pretrained",), n_points=2)
FIG24 = Tiered(
    smoke=ActivationSettings({k: _setup_smoke(v) for k, v in _fig24(32, 1, 8).items()}, n_down=32, steps_down=2,
                             n_test=32, n_held_out=32, n_curve=3, **F24_KW),
    quick=ActivationSettings(_fig24(25000, 2000, 256), n_down=25000, steps_down=2000, n_test=1000, n_curve=21,
                             **F24_KW),
    paper=ActivationSettings(_fig24(25000, 3880, 256), n_down=25000, steps_down=3880, n_test=1000, n_curve=41,
                             n_runs=3, **F24_KW))


def switch_summary(up: dict[int, dict], down: dict[int, dict], layer: str) -> dict[str, float]:
    """``layer``'s active fraction at the end of upstream (before_switch), at downstream step 0 (the
    transferred net, at_switch), at the first measured downstream step after it (after_switch) and at
    the end of downstream (end)."""
    d = sorted(down)
    return {"before_switch": up[max(up)][layer], "at_switch": down[d[0]][layer],
            "after_switch": down[d[1]][layer], "end": down[d[-1]][layer]}


@artifact(PAPER, "fig24", settings=FIG24, resources=RESOURCES, work=transfer_work)
def fig24(ctx: Context) -> Result:
    s: ActivationSettings = ctx.settings
    result = Result(notes=[
        "App. F gives only the nets: upstream = App. A.6's 10 random classes, lr 0.01, init 1 (ours); "
        f"{s.setups['two_layer'].n_up} upstream / {s.n_down} disjoint downstream examples, "
        f"{s.setups['two_layer'].steps_up} + {s.steps_down} steps; downstream on real and on 10 random labels; "
        f"{s.n_held_out} held-out test images; top_layer = the dense layer (penultimate)"])
    for k, (net, setup) in enumerate(s.setups.items()):
        layers = hidden_layers(setup)
        up_grid, down_grid = eval_steps(setup.steps_up, s.n_curve), eval_steps(s.steps_down, s.n_curve)
        runs = []
        for seed in ctx.seeds:
            seed = seed + k * SEED_OFFSET
            watch = Watch(held_out(ctx, s.n_held_out, seed), layers, means, up_grid, down_grid)
            transfer_run(ctx, setup, s, seed, watch=watch)
            runs.append(watch)
        for labels in LABELS:
            phases = [(w.records("upstream"), w.records(f"{labels}.pretrained")) for w in runs]
            for layer in layers:
                name = "top_layer" if layer == "penultimate" else layer
                for when in ("before_switch", "at_switch", "after_switch", "end"):
                    result.metrics[f"active_fraction.{net}.{labels}.{name}.{when}"] = float(
                        np.mean([switch_summary(up, down, layer)[when] for up, down in phases]))
                curve = [np.mean([up[t][layer] for up, _ in phases]) for t in up_grid] + \
                        [np.mean([down[t][layer] for _, down in phases]) for t in down_grid]
                result.arrays[f"{net}.{labels}.{name}"] = np.array(curve)
        result.arrays[f"{net}.iterations"] = np.array(up_grid + [setup.steps_up + t for t in down_grid])
        result.arrays[f"{net}.switch"] = np.array([setup.steps_up])
    return result
