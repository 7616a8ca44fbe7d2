"""The supervised tasks of imani2022 §4.2, §5 and §6.2, as device-resident tensors.

- ``mnist`` / ``cifar10``: classes 0 and 1 ("the first two classes", §5), pixels scaled
  to [0, 1] and flattened, labels ±1 (class 0 → −1, class 1 → +1; §2: y ∈ {−1, +1}ⁿ).
- ``ct``: UCI CT Position regression; 384 features as given, the target mapped linearly
  from the dataset's range onto [−1, 1] ("moved to the interval [−1, 1] for easier
  comparison with classification", Fig. 6 caption).

Train points are a seeded random subset of the train split (CT: of all rows); test points
come from the test split (CT: disjoint rows). With ``balanced=True`` (Fig 2: "5000 points
from each class") an image task draws the same number from each class, ``n // 2`` capped
at the smaller class's count (all of the smaller class when ``n`` is None). The subsets
depend only on the seed, so a measuring step regenerates exactly the data its model was
trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from repalign.data import class_subset, load_dataset, to_float
from repalign.experiments.registry import Context
from repalign.results import Result

TASKS = ("cifar10", "mnist", "ct")
DATASET_OF = {"cifar10": "cifar10", "mnist": "mnist", "ct": "ct_slice"}
SUBSET_SEED_OFFSET = 2_000_003  # keeps the data subset apart from init and batch streams


@dataclass
class Task:
    """One task's train and test data, float32 on the device."""

    name: str
    x_train: torch.Tensor  # [n_train, d]
    y_train: torch.Tensor  # [n_train], ±1 or in [-1, 1]
    x_test: torch.Tensor
    y_test: torch.Tensor
    classification: bool
    source: str

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the ``train`` or ``test`` split."""
        if which not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {which!r}")
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)

    def note(self) -> str:
        counts = ""
        if self.classification:
            per_class = [f"{int((y < 0).sum())}/{int((y > 0).sum())}" for y in (self.y_train, self.y_test)]
            counts = f" (class 0/1: train {per_class[0]}, test {per_class[1]})"
        return (f"{self.name}: {self.x_train.shape[0]} train / {self.x_test.shape[0]} test points{counts}, "
                f"{self.x_train.shape[1]} features; {self.source}")


def _pick(n_available: int, n: int | None, generator: torch.Generator) -> torch.Tensor:
    """A sorted random subset of ``min(n, n_available)`` indices (all when ``n`` is None)."""
    if n is None or n >= n_available:
        return torch.arange(n_available)
    return torch.randperm(n_available, generator=generator)[:n].sort().values


def balanced_per_class(labels: torch.Tensor, n: int | None) -> int:
    """Points per class of a class-balanced draw of ``n`` (None: as many as possible) from 0/1 ``labels``."""
    available = min(int((labels == c).sum()) for c in (0, 1))
    return available if n is None else min(n // 2, available)


def _image_task(ctx: Context, name: str, n_train: int | None, n_test: int | None,
                generator: torch.Generator, balanced: bool) -> Task:
    parts = []
    for split, n in (("train", n_train), ("test", n_test)):
        data = class_subset(load_dataset(DATASET_OF[name], split, root=ctx.data_root, cache_dir=ctx.cache_dir,
                                         device=ctx.device, download=ctx.download), [0, 1])
        if balanced and n != 0:
            data = class_subset(data, [0, 1], max_per_class=balanced_per_class(data.y, n), generator=generator)
            n = None
        keep = _pick(data.n, n, generator).to(ctx.device)
        x = to_float(data.x[keep], 0.0, 1.0).flatten(1)
        parts.append((x, 2.0 * data.y[keep].float() - 1.0, data.source))
    (x_tr, y_tr, src_tr), (x_te, y_te, src_te) = parts
    return Task(name, x_tr, y_tr, x_te, y_te, True, f"train: {src_tr}; test: {src_te}")


def _ct_task(ctx: Context, n_train: int | None, n_test: int | None, generator: torch.Generator) -> Task:
    data = load_dataset("ct_slice", "all", root=ctx.data_root, cache_dir=ctx.cache_dir, device=ctx.device)
    lo, hi = data.y.min(), data.y.max()
    y = 2.0 * (data.y - lo) / (hi - lo) - 1.0
    order = torch.randperm(data.n, generator=generator).to(ctx.device)
    n_train = data.n // 2 if n_train is None else n_train
    n_test = data.n - n_train if n_test is None else n_test
    if n_train + n_test > data.n:
        raise ValueError(f"CT Position has {data.n} rows; cannot draw {n_train} + {n_test} disjoint points")
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    return Task("ct", data.x[tr].float(), y[tr].float(), data.x[te].float(), y[te].float(), False,
                f"{data.source}; target mapped from [{float(lo):g}, {float(hi):g}] onto [-1, 1]")


def load_task(ctx: Context, name: str, n_train: int | None, n_test: int | None, seed: int,
              balanced: bool = False) -> Task:
    """Load task ``name`` (``cifar10``, ``mnist`` or ``ct``); ``None`` sizes take all points.

    ``balanced`` (image tasks only): as many points of class 0 as of class 1 (module docstring).
    Raises ``DatasetMissing`` when the dataset is not on disk.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {TASKS}")
    generator = torch.Generator().manual_seed(seed + SUBSET_SEED_OFFSET)
    if name == "ct":
        if balanced:
            raise ValueError("load_task: balanced=True needs a classification task; 'ct' is a regression")
        return _ct_task(ctx, n_train, n_test, generator)
    return _image_task(ctx, name, n_train, n_test, generator, balanced)


def per_example_loss(task: Task, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logistic loss log(1 + exp(−f·y)) for ±1 labels (§2), squared error for regression."""
    if task.classification:
        return torch.nn.functional.softplus(-output * y)
    return (output - y) ** 2


def mark_not_run(result: Result, names: list[str], reason: str) -> None:
    """Record that the metrics ``names`` could not be computed (one panel's data is missing).

    The rest of the artifact still runs, so the result stays ``ok`` for the panels that
    have data; the note names every metric left out and why.
    """
    result.not_run.update(dict.fromkeys(names, reason))
    result.notes.append(f"not run ({reason.splitlines()[0]}): {', '.join(names)}")
