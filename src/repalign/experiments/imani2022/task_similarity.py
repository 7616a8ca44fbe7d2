"""imani2022 §7.3, Figs 14, 15 and 21: a more similar source task gives higher alignment.

Source tasks: ImageNet-Artificial and ImageNet-Natural (:mod:`.imagenet_halves`). Target
tasks (App. D): CIFAR-10-Natural = bird, cat, deer, dog, frog, horse; CIFAR-10-Artificial =
airplane, automobile, ship, truck; the binary tasks are every pair within a half
(15 natural + 6 artificial = 21).

- Fig 14 / Fig 21: per binary task, 2,000 balanced train images (±1 labels) are fed to
  both pretrained networks; each of the last four hidden layers gives an alignment curve
  (bias column, unit rows). For each layer the curve of the network pretrained on the
  dissimilar half is subtracted from that of the similar one. Fig 14 averages the
  differences over the 21 tasks; Fig 21 shows them per task. ``alignment_diff_auc`` is
  the difference of ``alignment_auc`` (the normalised area, linear in the curve).
  ``frac_tasks_positive_diff`` (Fig 21): the share of (task, layer) curves whose area
  difference is positive. ``diff_positive_share`` (Fig 14, "higher alignment ... across all
  values of threshold"): per layer, the share of thresholds at which the task-averaged
  difference curve is positive (``summary.positive_share``).
- Fig 15: each pretrained network is fine-tuned (new output layer, all weights trained;
  App. D recipe, 10 epochs) on CIFAR-10-Natural and on CIFAR-10-Artificial; test accuracy (%).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from repalign.data import class_subset, load_dataset
from repalign.experiments.imani2022.imagenet_halves import (
    ARCHS, N_LAYERS, SETTINGS, HalvesSettings, cifar_batch, last_hidden, load_pretrained, replace_head, sgd_stages)
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.summary import alignment_stats, positive_share, thresholds_for
from repalign.experiments.imani2022.yosinski_split import HALVES
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, trained
from repalign.results import Result
from repalign.train import EpochSampler

PAPER = "imani2022"
CIFAR_HALVES = {"natural": (2, 3, 4, 5, 6, 7), "artificial": (0, 1, 8, 9)}  # CIFAR-10 label indices
NEEDS = tuple(f"imagenet_{half}_{arch}" for arch in ARCHS for half in HALVES)
MEASURE_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=30, mem_mb=32000, gpu=1),
    paper=Resources(runtime_min=60, mem_mb=64000, gpu=1),
)
FINETUNE_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=60, mem_mb=32000, gpu=1),
    paper=Resources(runtime_min=240, mem_mb=64000, gpu=1),
)


def binary_tasks() -> list[tuple[str, int, int]]:
    """``(half, class a, class b)`` for every pair of CIFAR-10 classes within a half."""
    return [(half, a, b) for half, classes in CIFAR_HALVES.items() for a, b in itertools.combinations(classes, 2)]


CIFAR10_TRAIN_PER_CLASS = 5000  # a property of CIFAR-10, used only to declare work


def alignment_work(s: HalvesSettings) -> Work:
    """Figs 14, 21: the last layers of both sources' networks, per architecture, on every binary task."""
    return analysed(tasks=len(binary_tasks()), networks=len(ARCHS) * len(HALVES), examples=2 * s.points_per_class,
                    pixels=s.image_size ** 2)


def finetune_work(s: HalvesSettings) -> Work:
    """Fig 15: each architecture and source fine-tuned on each CIFAR-10 half's train images."""
    terms = [trained(epochs=s.finetune[arch].epochs, sources=len(HALVES),
                     examples=CIFAR10_TRAIN_PER_CLASS * len(CIFAR_HALVES[target]), pixels=s.image_size ** 2)
             for arch in ARCHS for target in HALVES]
    return sum(terms[1:], terms[0])


def other(half: str) -> str:
    return HALVES[1 - HALVES.index(half)]


def cifar10(ctx: Context, split: str):
    return load_dataset("cifar10", split, root=ctx.data_root, cache_dir=ctx.cache_dir, device=ctx.device,
                        download=ctx.download)


@torch.no_grad()
def hidden_layers(net: nn.Module, images: torch.Tensor, s: HalvesSettings, batch: int = 100) -> list[torch.Tensor]:
    """``last_hidden`` of uint8 CIFAR images, batched, as ``N_LAYERS`` tensors ``[N, d]``."""
    parts = [last_hidden(net, cifar_batch(x, s)) for x in images.split(batch)]
    return [torch.cat(layer) for layer in zip(*parts)]


def alignment_differences(ctx: Context) -> tuple[dict, dict, dict, list[str]]:
    """Per arch: area differences ``[layers, tasks]``, curve differences and the larger curve ``[layers, tasks, T]``."""
    s: HalvesSettings = ctx.settings
    split, tasks = cifar10(ctx, "train"), binary_tasks()
    nets, notes = {}, [f"cifar10 train: {split.source}"]
    for arch in ARCHS:
        for half in HALVES:
            nets[arch, half], payload = load_pretrained(ctx, arch, half)
            notes.append(payload["note"])
    aucs = {arch: np.zeros((N_LAYERS, len(tasks))) for arch in ARCHS}
    curves = {arch: np.zeros((N_LAYERS, len(tasks), len(thresholds_for(2 * s.points_per_class)))) for arch in ARCHS}
    upper = {arch: np.zeros_like(curves[arch]) for arch in ARCHS}
    for t, (half, a, b) in enumerate(tasks):
        g = torch.Generator().manual_seed(ctx.seeds[0] + t)
        pair = class_subset(split, [a, b], max_per_class=s.points_per_class, generator=g)
        y = 2.0 * pair.y.double() - 1.0
        for arch in ARCHS:
            stats = {source: [alignment_stats(rep, y) for rep in hidden_layers(nets[arch, source], pair.x, s)]
                     for source in HALVES}
            for k in range(N_LAYERS):
                (auc_sim, curve_sim), (auc_dis, curve_dis) = stats[half][k], stats[other(half)][k]
                aucs[arch][k, t] = float(auc_sim - auc_dis)
                curves[arch][k, t] = curve_sim - curve_dis
                upper[arch][k, t] = np.maximum(curve_sim, curve_dis)
    notes.append(f"{len(tasks)} binary CIFAR-10 tasks ({2 * s.points_per_class} train images each); "
                 f"layers last1..last{N_LAYERS} from the output; images resized to {s.resize} px, "
                 f"centre crop {s.image_size}")
    return aucs, curves, upper, notes


def difference_result(ctx: Context, per_task: bool) -> Result:
    s: HalvesSettings = ctx.settings
    aucs, curves, upper, notes = alignment_differences(ctx)
    result = Result(notes=notes)
    result.metrics["n_target_tasks"] = float(len(binary_tasks()))
    result.arrays["thresholds"] = thresholds_for(2 * s.points_per_class)
    result.arrays["task_names"] = np.array([f"{h}:{a}-{b}" for h, a, b in binary_tasks()])
    for arch in ARCHS:
        for k in range(N_LAYERS):
            name = f"alignment_diff_auc.{arch}.last{k + 1}"
            result.metrics[name], result.metrics[name + "_se"] = mean_se(torch.from_numpy(aucs[arch][k]))
            result.metrics[f"diff_positive_share.{arch}.last{k + 1}"] = positive_share(
                curves[arch][k].mean(0), upper[arch][k].mean(0))
        result.metrics[f"frac_tasks_positive_diff.{arch}"] = float((aucs[arch] > 0).mean())
        result.arrays[f"diff_curve.{arch}"] = curves[arch].mean(1)          # [layers, T]
        if per_task:
            result.arrays[f"diff_curves.{arch}"] = curves[arch]             # [layers, tasks, T]
            result.arrays[f"diff_auc.{arch}"] = aucs[arch]
    return result


@artifact(PAPER, "fig14", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=NEEDS, work=alignment_work)
def fig14(ctx: Context) -> Result:
    """Fig 14: alignment difference (similar − dissimilar source), last 4 layers, mean over 21 tasks."""
    return difference_result(ctx, per_task=False)


@artifact(PAPER, "fig21", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=NEEDS, work=alignment_work)
def fig21(ctx: Context) -> Result:
    """Fig 21: the alignment-difference curves of each of the 21 tasks."""
    return difference_result(ctx, per_task=True)


def finetune_accuracy(ctx: Context, arch: str, source: str, target: str) -> float:
    """Test accuracy (%) on CIFAR-10-``target`` of the ImageNet-``source`` network after fine-tuning."""
    s: HalvesSettings = ctx.settings
    train_set, test_set = (class_subset(cifar10(ctx, split), list(CIFAR_HALVES[target])) for split in ("train", "test"))
    net, _ = load_pretrained(ctx, arch, source)
    replace_head(net, len(CIFAR_HALVES[target]))
    net.train()
    recipe = s.finetune[arch]
    sampler = EpochSampler(train_set.n, recipe.batch_size, seed=ctx.seeds[0], device=ctx.device)
    augment = torch.Generator().manual_seed(ctx.seeds[0])

    def loss_fn(m, idx):
        i = idx[0]
        return nn.functional.cross_entropy(m(cifar_batch(train_set.x[i], s, augment)), train_set.y[i])

    sgd_stages(ctx, net, loss_fn, sampler, recipe, s, f"{PAPER}/fig15/{arch}/{source}_to_{target}")
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(cifar_batch(x, s)).argmax(1) == y).sum())
                      for x, y in zip(test_set.x.split(200), test_set.y.split(200)))
    return 100.0 * correct / test_set.n


@artifact(PAPER, "fig15", settings=SETTINGS, resources=FINETUNE_RESOURCES, needs=NEEDS, work=finetune_work)
def fig15(ctx: Context) -> Result:
    """Fig 15: fine-tuning accuracy, ImageNet half (rows) × CIFAR-10 half (columns), per architecture."""
    s: HalvesSettings = ctx.settings
    result = Result()
    for arch in ARCHS:
        for source in HALVES:
            for target in HALVES:
                result.metrics[f"test_accuracy.{arch}.{source}_to_{target}"] = finetune_accuracy(
                    ctx, arch, source, target)
    result.notes += [f"fine-tuning recipes: {s.finetune}; CIFAR-10 halves (label indices): {CIFAR_HALVES}",
                     f"cifar10: {cifar10(ctx, 'test').source}"]
    return result
