"""Training an FFNN on an image dataset while recording the alignment hierarchy.

Shared by the depth sweep (Fig 3, Tables 1–3) and the alignment-hierarchy runs
(Figs 1, 2, 7, 9, 10). Protocol (App. E): SGD with momentum and weight decay,
batch size 128 (Fig 8 caption), cross-entropy loss (App. B.4). The paper gives no
momentum, weight-decay or preprocessing values; ours are 0.9, 5e-4 and pixels
scaled to [0, 1] then standardised by the training set's mean and std.

The layer alignments A_l (Eq. 7) are measured with
``repalign.metrics.layer_tangent_alignment(method="fast")`` on a fixed, class-balanced
probe subset of the training examples, at iterations on a log-spaced grid
(the rise happens early, footnote 3), by a training callback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from repalign.data import class_subset, load_dataset, to_float
from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, trained
from repalign.experiments.storage import save_model_file
from repalign.metrics import layer_tangent_alignment
from repalign.train import EpochSampler, OptimConfig, train

# A step that only reads trained models and measures them: the same small job at every tier.
MEASURE_RESOURCES = Tiered.same(Resources(runtime_min=5, mem_mb=2000))

PROBE_SEED = 20_220_717  # the probe subset is the same for every run and seed
EVAL_CHUNK = 2048
# Training-set sizes the paper's epochs refer to; used only by the "paper_steps" epoch rule.
PAPER_TRAIN_SIZE = {"mnist": 60_000, "kmnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
# What an epoch is when the training split present is smaller than the paper's (the offline
# MNIST copy holds the first 10,000 of 60,000 images), the one rule for every lou2022 step:
#   "pass" (default): one pass over the examples present. Each example is seen as often as in
#       the paper (epochs x 1), so memorisation, the train/test gap and the train accuracies
#       the paper prints (Table 4, Figs 9-10) keep their meaning; a run takes fewer SGD steps
#       (1/6 of the paper's on the 10,000-image MNIST copy).
#   "paper_steps": as many examples' worth of iterations as the paper's training set, so a run
#       takes the paper's number of SGD steps but sees each example 6 times per "epoch" (this
#       inflated Table 4's train accuracy at width 2048 to 97.1% against the paper's 92.6%).
EPOCH_RULES = ("pass", "paper_steps")


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """What every lou2022 FFNN training step shares; ``None`` sizes mean the whole split."""

    n_runs: int                   # seeds, stacked in one StackedFFNN per configuration
    n_train: int | None           # n training examples: the first n / 10 of each class
    n_test: int | None            # n test examples, likewise
    probe_size: int               # alignment probe: probe_size / 10 training examples per class
    align_points: int             # log-spaced alignment measurements (plus 0, 10% and the end)
    width: int | None = None      # None: the paper's width; smoke shrinks it
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epoch_rule: str = "pass"      # EPOCH_RULES: what an epoch is on a partial training split

    def __post_init__(self):
        if self.epoch_rule not in EPOCH_RULES:
            raise ValueError(f"epoch_rule {self.epoch_rule!r} is not one of {EPOCH_RULES} (see training.EPOCH_RULES)")

TRAIN_SPLIT_SIZE = {**PAPER_TRAIN_SIZE, "cifar100": 50_000}  # whole train splits, for declared work


def training_work(s: TrainingSettings, dataset: str, epochs: float, networks: int = 1,
                  layers: int | None = None) -> Work:
    """Declared work of ``networks`` configurations trained ``epochs`` on ``dataset`` under ``s``
    (``n_train`` None: the whole split, ``TRAIN_SPLIT_SIZE``), ``n_runs`` seeds stacked; ``layers``
    counts depth where the configurations differ in it."""
    examples = epoch_size(dataset, s.n_train or TRAIN_SPLIT_SIZE[dataset], s.epoch_rule)
    factors = dict(epochs=epochs, examples=examples, models=s.n_runs, networks=networks)
    return trained(**factors, **({} if layers is None else {"layers": layers}))


def measure_work(s: TrainingSettings, datasets: int = 1, networks: int = 1) -> Work:
    """A figure that loads trained networks and measures them on their alignment probe."""
    return analysed(datasets=datasets, networks=networks, models=s.n_runs, examples=s.probe_size)


def epoch_size(dataset: str, n_present: int, rule: str) -> int:
    """Examples per epoch for a training split of ``n_present`` examples under ``rule`` (EPOCH_RULES)."""
    return max(n_present, PAPER_TRAIN_SIZE.get(dataset, n_present)) if rule == "paper_steps" else n_present


@dataclass
class ImageTask:
    """A classification dataset flattened and standardised on the device, plus the probe."""

    name: str
    x_train: torch.Tensor         # [N, d] float32
    y_train: torch.Tensor         # [N] int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    probe_x: torch.Tensor         # [P, d]
    probe_y: torch.Tensor         # [P, classes] one-hot
    epoch_size: int               # examples per epoch (see EPOCH_RULES)
    notes: list[str]

    @property
    def n_classes(self) -> int:
        return self.probe_y.shape[1]


def load_image_task(ctx: Context, dataset: str, s: TrainingSettings) -> ImageTask:
    """Load ``dataset`` (train and test) onto ``ctx.device``; raises DatasetMissing if absent.

    ``s`` needs ``n_train``, ``n_test``, ``probe_size`` and optionally ``epoch_rule``
    (``grids.GridSettings`` has none: its steps count epochs as passes over the data).
    """
    def load(split: str, n: int | None):
        data = load_dataset(dataset, split, root=ctx.data_root, cache_dir=ctx.cache_dir,
                            device=ctx.device, download=ctx.download)
        if n is None or n >= data.n:
            return data
        return class_subset(data, range(len(data.classes)), max_per_class=n // len(data.classes))

    train_split, test_split = load("train", s.n_train), load("test", s.n_test)
    n_classes = len(train_split.classes)
    probe = class_subset(train_split, range(n_classes), max_per_class=s.probe_size // n_classes,
                         generator=torch.Generator().manual_seed(PROBE_SEED))
    x_train = to_float(train_split.x.flatten(1), 0.0, 1.0)
    mean, std = x_train.mean(), x_train.std()

    def standardise(x_uint8):
        return (to_float(x_uint8.flatten(1), 0.0, 1.0) - mean) / std

    # an explicit subset (n_train) is its own training set: one epoch is one pass over it
    rule = getattr(s, "epoch_rule", "pass") if s.n_train is None else "pass"  # grids count passes themselves
    examples = epoch_size(dataset, train_split.n, rule)
    paper_n = PAPER_TRAIN_SIZE.get(dataset, train_split.n)
    partial = f" of the paper's {paper_n}" if s.n_train is None and train_split.n < paper_n else ""
    notes = [f"{dataset} train: {train_split.source} ({train_split.n} examples{partial}; epoch rule "
             f"'{rule}': one epoch = {examples} examples' worth of iterations)",
             f"{dataset} test: {test_split.source} ({test_split.n} examples)",
             f"{dataset} alignment probe: {probe.n} training examples, {s.probe_size // n_classes} per class"]
    return ImageTask(dataset, (x_train - mean) / std, train_split.y, standardise(test_split.x), test_split.y,
                     standardise(probe.x), F.one_hot(probe.y, n_classes).to(torch.float32), examples, notes)


def alignment_grid(total_steps: int, n_log: int) -> np.ndarray:
    """Iterations at which A_l is measured: 0, ``n_log`` log-spaced steps, 10% and the end."""
    log_steps = np.geomspace(1, total_steps, n_log) if n_log > 0 else np.array([])
    steps = np.concatenate([[0, total_steps // 10, total_steps], np.round(log_steps)])
    return np.unique(steps.astype(np.int64))


class AlignmentRecorder:
    """Training callback: A_l of every layer of every stacked model at the grid iterations."""

    def __init__(self, grid: np.ndarray, probe_x: torch.Tensor, probe_y: torch.Tensor):
        self.grid = [int(g) for g in grid]
        self.probe_x, self.probe_y = probe_x, probe_y
        self.values: dict[int, np.ndarray] = {}

    def __call__(self, step: int, model: StackedFFNN) -> None:
        if step not in self.grid:
            return
        per_model = []
        for s in range(len(model.seeds)):
            a = layer_tangent_alignment(model.member(s), self.probe_x, self.probe_y, method="fast")
            per_model.append([float(v) for v in a.values()])
        self.values[step] = np.array(per_model)

    def stacked(self) -> np.ndarray:
        """``[grid points, models, layers]``."""
        return np.stack([self.values[g] for g in self.grid])

    def state_dict(self) -> dict:
        return {"values": self.values}

    def load_state_dict(self, state: dict) -> None:
        self.values = dict(state["values"])


@torch.no_grad()
def evaluate(model: StackedFFNN, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy (percent) and mean cross-entropy of every stacked model on (x, y)."""
    correct = torch.zeros(len(model.seeds), dtype=torch.float64, device=x.device)
    loss = torch.zeros_like(correct)
    for start in range(0, x.shape[0], EVAL_CHUNK):
        logits = model(x[start:start + EVAL_CHUNK])
        target = y[start:start + EVAL_CHUNK].expand(logits.shape[0], -1)
        correct += (logits.argmax(-1) == target).sum(1)
        loss += F.cross_entropy(logits.transpose(1, 2), target, reduction="none").sum(1)
    return (100 * correct / x.shape[0]).cpu().numpy(), (loss / x.shape[0]).cpu().numpy()


def train_ffnn(task: ImageTask, *, depth: int, width: int, lr: float, epochs: int, seeds: list[int],
               s: TrainingSettings, checkpoint: Path | None, desc: str, keep_weights: bool = False) -> dict:
    """Train ``len(seeds)`` FFNNs of one configuration together; return measurements.

    Returns ``grid`` [G] iterations, ``alignment`` [G, seeds, depth], ``epoch_train_loss``
    [epochs, seeds], and final ``test_accuracy`` / ``test_loss`` / ``train_accuracy`` /
    ``train_loss`` [seeds] (plus ``final_state`` with ``keep_weights``).
    """
    net = StackedFFNN(task.x_train.shape[1], width, depth, task.n_classes, seeds).to(task.x_train.device)
    sampler = EpochSampler(task.x_train.shape[0], s.batch_size, n_models=len(seeds), seed=seeds[0],
                           device=task.x_train.device)
    steps_per_epoch = -(-task.epoch_size // s.batch_size)
    steps = epochs * steps_per_epoch
    recorder = AlignmentRecorder(alignment_grid(steps, s.align_points), task.probe_x, task.probe_y)
    recorder(0, net)

    def loss_per_model(model, idx):
        logits = model(task.x_train[idx])
        return F.cross_entropy(logits.transpose(1, 2), task.y_train[idx], reduction="none").mean(1)

    log = train(net, loss_per_model, sampler, steps,
                OptimConfig("sgd", lr=lr, momentum=s.momentum, weight_decay=s.weight_decay),
                checkpoint=checkpoint, callback=recorder, desc=desc)
    test_acc, test_loss = evaluate(net, task.x_test, task.y_test)
    train_acc, train_loss = evaluate(net, task.x_train, task.y_train)
    out = {"depth": depth, "width": width, "lr": lr, "epochs": epochs, "steps": steps,
           "grid": np.array(recorder.grid), "alignment": recorder.stacked(),
           "epoch_train_loss": log.losses.reshape(epochs, steps_per_epoch, -1).mean(1),
           "test_accuracy": test_acc, "test_loss": test_loss,
           "train_accuracy": train_acc, "train_loss": train_loss}
    if keep_weights:
        out["final_state"] = {k: v.cpu() for k, v in net.state_dict().items()}
    return out


class ConfigStore:
    """Lets a model step that trains several configurations resume after being killed.

    Each configuration trains with its own checkpoint (``<out>.ckpt.<key>``), and a
    finished one is kept in ``<out>.ckpt.<key>.done`` until the whole step is done, so a
    re-run only trains what is missing. Without a checkpoint path it just runs.
    """

    def __init__(self, checkpoint: Path | None):
        self.checkpoint = checkpoint
        self.done: list[Path] = []

    def run(self, key: str, compute: Callable[[Path | None], dict]) -> dict:
        if self.checkpoint is None:
            return compute(None)
        done = self.checkpoint.with_name(f"{self.checkpoint.name}.{key}.done")
        self.done.append(done)
        if done.exists():
            return torch.load(done, weights_only=False)
        out = compute(self.checkpoint.with_name(f"{self.checkpoint.name}.{key}"))
        save_model_file(done, out)
        return out

    def clear(self) -> None:
        for path in self.done:
            path.unlink(missing_ok=True)


def lr_key(lr: float) -> str:
    """0.003 -> 'lr0_003' (paper_targets.yaml's spelling of learning rates)."""
    text = np.format_float_positional(lr, trim="-")
    return "lr" + text.replace(".", "_")


def n_epochs(paper_epochs: int, fraction: float, minimum: int) -> int:
    """A tier's share of the paper's epochs, at least ``minimum``."""
    return max(minimum, int(math.floor(paper_epochs * fraction + 0.5)))
