"""imani2022 §7.2 and App. C, Figs 13 and 20: ImageNet CNN features against hand-crafted ones.

Per run (5 in the paper), two random classes of CIFAR-100 (Fig 13) or CIFAR-10 (Fig 20):
1,000 train images (500 per class; the same draw as Fig 19) and, for the test curves, up to
``test_per_class`` test images of each class (the paper gives no test size; CIFAR-100 has
only 100 test images per class, so Fig 13 tests on 200, Fig 20 on 1,000); labels ±1. The
notes give the sizes actually drawn (:func:`split_sizes`). Representations:

- ``cnn``: the last hidden layer of ResNet101 with the torchvision ImageNet weights
  (metric name ``transfer.resnet101``); Fig 13a adds ``original`` (the pixels) and
  ``init`` (ResNet101 at a random initialisation) for its transfer > original > init claim;
- ``hog``, ``sift``, ``rbf``: see :mod:`.image_features` (SIFT dictionary 2,048 words, HOG
  9 orientations, RBF bandwidth 1 with the train images as centres).

Every representation gets the paper's preprocessing (bias column, unit rows; §2). Fig 13b:
alignment curves. Fig 13c, d: a zero-initialised linear model trained by full-batch GD on
the mean squared error and on the logistic loss, step sizes {0.01, 0.1, 1, 10} with the
best kept (the paper gives none for this figure; this is its Fig 1 protocol), train and
test learning curves. ``closed_form_train_accuracy``: the minimum-norm least-squares fit
(the paper's check that the RBF features separate the train points, p. 13).

Offline the ImageNet weights are absent: the ``cnn`` metrics are then not run, naming the
weights file (see :func:`.pretrained.pretrained_state`); a missing CIFAR-100 makes Fig 13
not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from repalign.data import class_subset, load_dataset, to_float
from repalign.errors import DatasetMissing
from repalign.experiments.imani2022.image_features import SiftBagOfWords, hog_features, rbf_features
from repalign.experiments.imani2022.peaks import gd_linear, mean_se
from repalign.experiments.imani2022.pretrained import CLASS_SEED_OFFSET, feature_net, features, pretrained_state
from repalign.experiments.imani2022.summary import alignment_stats, normalized_pair, thresholds_for
from repalign.experiments.imani2022.tasks import mark_not_run
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact
from repalign.results import Result

PAPER = "imani2022"
ARCH = "resnet101"
LOSSES = ("mse", "logistic")
LEARNERS = ("cnn", "hog", "sift", "rbf")


@dataclass(frozen=True)
class HandcraftedSettings:
    n_runs: int
    steps: int                       # full-batch GD steps of the linear models
    points_per_class: int = 500      # train images per class (1,000 per task)
    test_per_class: int = 500
    image_size: int = 224            # CNN input size (images are upsampled from 32 px)
    batch_size: int = 100            # CNN feature extraction
    sift_words: int = 2048
    lrs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    curve_points: int = 200          # learning curves are stored on a log-spaced grid of steps


SETTINGS = Tiered(
    smoke=HandcraftedSettings(n_runs=1, steps=20, points_per_class=8, test_per_class=8, image_size=32,
                              sift_words=16, curve_points=10),
    quick=HandcraftedSettings(n_runs=5, steps=2000),
    paper=HandcraftedSettings(n_runs=5, steps=10_000),
)
RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=30, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=60, mem_mb=16000, gpu=1),
)


def two_class_tasks(ctx: Context, dataset: str, s: HandcraftedSettings) -> tuple[list[dict], str]:
    """Per run ``{"train": (uint8 images, ±1 labels), "test": ...}`` of two random classes.

    The classes and train images are Fig 19's draw for the same seed.
    """
    splits = {split: load_dataset(dataset, split, root=ctx.data_root, cache_dir=ctx.cache_dir,
                                  device=ctx.device, download=ctx.download) for split in ("train", "test")}
    runs = []
    for seed in ctx.seeds:
        g = torch.Generator().manual_seed(seed + CLASS_SEED_OFFSET)
        classes = torch.randperm(len(splits["train"].classes), generator=g)[:2].tolist()
        run = {}
        for split, n in (("train", s.points_per_class), ("test", s.test_per_class)):
            pair = class_subset(splits[split], classes, max_per_class=n, generator=g)
            run[split] = (pair.x, 2.0 * pair.y.double() - 1.0)
        runs.append(run)
    return runs, f"train: {splits['train'].source}; test: {splits['test'].source}"


def split_sizes(runs: list[dict]) -> str:
    """The train / test sizes actually drawn (per class), e.g. ``1000 train (500 + 500) / 200 test (100 + 100)``."""
    parts = []
    for split in ("train", "test"):
        sizes = {(int((y < 0).sum()), int((y > 0).sum())) for _, y in (run[split] for run in runs)}
        parts.append(" or ".join(f"{a + b} {split} ({a} + {b})" for a, b in sorted(sizes)))
    return " / ".join(parts)


def gd_logistic(phi_train, y_train, phi_test, y_test, lrs, steps):
    """Full-batch GD on the mean logistic loss log(1 + exp(−y φᵀw)) of a zero-initialised linear model.

    ``phi_*`` are ``[runs, n, d]``, ``y_*`` ``[runs, n]`` (±1); every step size is one
    column of a weight matrix ``[runs, d, lrs]``. Returns train and test losses, each
    ``[lrs, runs, steps + 1]``.
    """
    lr = torch.tensor(lrs, dtype=phi_train.dtype, device=phi_train.device)
    w = torch.zeros(phi_train.shape[0], phi_train.shape[-1], len(lrs), dtype=phi_train.dtype,
                    device=phi_train.device)
    y_tr, y_te = y_train.unsqueeze(-1), y_test.unsqueeze(-1)
    train_loss, test_loss = [], []
    for t in range(steps + 1):
        margin = y_tr * (phi_train @ w)                                            # [runs, n, lrs]
        train_loss.append(torch.nn.functional.softplus(-margin).mean(-2))
        test_loss.append(torch.nn.functional.softplus(-y_te * (phi_test @ w)).mean(-2))
        if t < steps:
            grad = -phi_train.transpose(-1, -2) @ (y_tr * torch.sigmoid(-margin)) / phi_train.shape[-2]
            w = w - lr * grad
    return torch.stack(train_loss, -1).transpose(0, 1), torch.stack(test_loss, -1).transpose(0, 1)


def learning_curves(phi_tr, y_tr, phi_te, y_te, s: HandcraftedSettings) -> dict:
    """Train and test losses ``[lrs, runs, steps + 1]`` of GD on each loss."""
    mse_train, mse_test, _ = gd_linear(phi_tr, y_tr[None], phi_te, y_te[None], s.lrs, s.steps)
    return {"mse": (mse_train[:, 0], mse_test[:, 0]),
            "logistic": gd_logistic(phi_tr, y_tr, phi_te, y_te, s.lrs, s.steps)}


def best_step_size(train: torch.Tensor, lrs) -> tuple[int, torch.Tensor]:
    """Index of the step size with the lowest mean ``learning_auc`` and that measure per run.

    ``learning_auc``: the mean over GD steps of train loss / initial train loss (diverging
    step sizes excluded), as in Fig 1.
    """
    auc = torch.nan_to_num((train / train[..., :1]).mean(-1), nan=math.inf, posinf=math.inf)   # [lrs, runs]
    best = int(auc.mean(-1).argmin())
    return best, auc[best]


def closed_form_accuracy(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Train accuracy (%) per run of the minimum-norm least-squares fit of ``y`` on ``phi``."""
    w = torch.linalg.pinv(phi) @ y.unsqueeze(-1)
    return 100.0 * ((phi @ w).squeeze(-1).sign() == y.sign()).double().mean(-1)


def representations(ctx: Context, runs: list[dict], state: dict | None, baselines: bool,
                    s: HandcraftedSettings) -> dict[str, dict[str, torch.Tensor]]:
    """``{rep: {"train": [runs, n, d], "test": ...}}``; ``original``/``init`` (train only) when ``baselines``."""
    reps: dict[str, dict[str, list]] = {}

    def add(rep, split, value):
        reps.setdefault(rep, {}).setdefault(split, []).append(value.double())

    for i, (seed, run) in enumerate(zip(ctx.seeds, runs)):
        x_tr, x_te = run["train"][0], run["test"][0]
        sift = SiftBagOfWords(s.sift_words, seed).fit(x_tr)
        for split, x in (("train", x_tr), ("test", x_te)):
            add("hog", split, hog_features(x))
            add("sift", split, sift.transform(x))
            add("rbf", split, rbf_features(x, x_tr))
        if baselines:
            add("original", "train", to_float(x_tr, 0.0, 1.0, torch.float64).flatten(1))
            add("init", "train", features(feature_net(ARCH, seed, None, ctx.device), x_tr, s))
    if state is not None:
        net = feature_net(ARCH, None, state, ctx.device)
        for run in runs:
            for split in ("train", "test"):
                add("cnn", split, features(net, run[split][0], s))
    return {rep: {split: torch.stack(v) for split, v in per_split.items()} for rep, per_split in reps.items()}


def alignment_name(rep: str) -> str:
    """The metric name of a representation in the alignment targets (Fig 19's names)."""
    return {"cnn": f"transfer.{ARCH}", "init": f"init.{ARCH}"}.get(rep, rep)


def compare(ctx: Context, dataset: str, baselines: bool) -> Result:
    """Alignment and learning curves of every representation on ``dataset`` (Figs 13, 20)."""
    s: HandcraftedSettings = ctx.settings
    result = Result()
    runs, source = two_class_tasks(ctx, dataset, s)
    result.notes.append(f"{dataset}: {source}")
    try:
        state = pretrained_state(ARCH, ctx.download)
    except DatasetMissing as exc:
        state = None
        mark_not_run(result, [f"alignment_auc.{alignment_name('cnn')}.{dataset}"] + [
            f"{m}.{loss}.cnn.{dataset}" for m in ("learning_auc", "test_loss") for loss in LOSSES], str(exc))
    reps = representations(ctx, runs, state, baselines, s)
    y_tr = torch.stack([r["train"][1] for r in runs]).to(ctx.device)
    y_te = torch.stack([r["test"][1] for r in runs]).to(ctx.device)
    grid = np.unique(np.geomspace(1, s.steps + 1, s.curve_points).astype(int) - 1)
    result.arrays["steps"], result.arrays["thresholds"] = grid, thresholds_for(y_tr.shape[-1])
    for rep, data in reps.items():
        auc, curves = alignment_stats(data["train"], y_tr)
        name = f"alignment_auc.{alignment_name(rep)}.{dataset}"
        result.metrics[name], result.metrics[name + "_se"] = mean_se(auc)
        result.arrays[f"alignment.{rep}"] = curves
        if rep not in LEARNERS:
            continue
        phi_tr, _ = normalized_pair(data["train"], y_tr)
        phi_te, _ = normalized_pair(data["test"], y_te)
        result.metrics[f"closed_form_train_accuracy.{rep}.{dataset}"], _ = mean_se(closed_form_accuracy(phi_tr, y_tr))
        for loss, (train, test) in learning_curves(phi_tr, y_tr, phi_te, y_te, s).items():
            best, auc = best_step_size(train, s.lrs)
            key = f"{loss}.{rep}.{dataset}"
            result.metrics[f"best_lr.{key}"] = s.lrs[best]
            result.metrics[f"learning_auc.{key}"], result.metrics[f"learning_auc_se.{key}"] = mean_se(auc)
            result.metrics[f"test_loss.{key}"], result.metrics[f"test_loss_se.{key}"] = mean_se(test[best, :, -1])
            result.arrays[f"train_curve.{loss}.{rep}"] = train[best][:, grid].cpu().numpy()
            result.arrays[f"test_curve.{loss}.{rep}"] = test[best][:, grid].cpu().numpy()
    result.notes += [
        f"{s.n_runs} runs; {split_sizes(runs)} images of two random classes per run (test: at most "
        f"{s.test_per_class} per class, all the split has when fewer); CNN = {ARCH} last hidden layer at {s.image_size} px; SIFT: dense grid, {s.sift_words} words; "
        "HOG: 9 orientations, 8x8-pixel cells, 2x2-cell blocks; RBF: bandwidth 1, train images as centres",
        f"linear models: full-batch GD, {s.steps} steps, step size from {list(s.lrs)} by the lowest mean "
        "learning_auc (mean over steps of train loss / initial train loss); test_loss at the last step",
    ]
    return result


def compare_work(s: HandcraftedSettings, baselines: bool) -> Work:
    """Figs 13, 20: CNN features of each run's two-class images (the ImageNet CNN, and its random init
    for Fig 13), counted as examples x input pixels; the linear models fitted on them afterwards are
    small next to these CNN passes and not counted."""
    return analysed(models=s.n_runs, networks=1 + baselines, examples=2 * (s.points_per_class + s.test_per_class),
                    pixels=s.image_size ** 2)


@artifact(PAPER, "fig13", settings=SETTINGS, resources=RESOURCES, work=partial(compare_work, baselines=True))
def fig13(ctx: Context) -> Result:
    """Fig 13: CIFAR-100; original/init/transfer alignment, then CNN vs SIFT/HOG/RBF."""
    return compare(ctx, "cifar100", baselines=True)


@artifact(PAPER, "fig20", settings=SETTINGS, resources=RESOURCES, work=partial(compare_work, baselines=False))
def fig20(ctx: Context) -> Result:
    """Fig 20: CIFAR-10; CNN vs SIFT/HOG/RBF alignment and learning curves."""
    return compare(ctx, "cifar10", baselines=False)
