"""lou2022 Fig 18 and Table 4 (App. F): MNIST FFNNs with every layer but the last frozen.

Network (Eq. 8, App. F): 10 bias-free ReLU layers, W_1 … W_9 ~ N(0, 2/fan_in) and
frozen, the readout W_10 ~ N(0, s² · 2/width) for the noise scale s (Fig 18 caption).
Only W_10 trains, so training is multinomial logistic regression on the fixed features
φ(z_9(x)).

The features are computed once per width, in column blocks whose weights are drawn
from a generator seeded by (seed, layer, block): a frozen layer is never stored whole
(width 75,000 would need ~22 GB per layer), and the same seed always gives the same
network whatever the device memory. The readouts of every noise scale are stacked and
train together on the GPU-resident features with the shared loop.

Fig 18 (width 2048): the alignment A_l (Eq. 7) of all ten layers during training; the
frozen layers' A_l still evolves through the backward kernel (App. F). Table 4: the best
train and test accuracy over epochs against width, of the s = 0.01 readout (``TABLE4_NOISE``):
Table 4's width-2048 test accuracy, 91.9%, is Fig 18a's (s = 0.01), not Fig 18b's (s = 1,
88.1%); we read the caption's N(0, 2/width) as the frozen layers' initialisation.

Protocol gaps in the paper, filled with the lou2022 defaults of ``training.py``: SGD with
momentum 0.9, weight decay 5e-4 (on the readout), batch 128, lr 0.003, cross-entropy,
pixels standardised; an epoch follows ``training.EPOCH_RULES`` (default: one pass over the
training images present; the offline copy holds 10,000 of 60,000). The paper does not say how
long the readout trained: 100 epochs here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.experiments.lou2022.training import (
    MEASURE_RESOURCES,
    TRAIN_SPLIT_SIZE,
    AlignmentRecorder,
    ConfigStore,
    ImageTask,
    TrainingSettings,
    alignment_grid,
    load_image_task,
    measure_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, Work, artifact, model, trained
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "lou2022"
DATASET = "mnist"
COL_BLOCK = 2048      # columns of a frozen layer drawn (and multiplied) at a time
ROW_CHUNK = 8192      # examples per matmul when evaluating the readout
TABLE4_WIDTHS = (75_000, 10_000, 2048)
TABLE4_NOISE = 0.01   # Table 4's rows are the runs of Fig 18a's noise scale (see the module docstring)


@dataclass(frozen=True, kw_only=True)
class FrozenSettings(TrainingSettings):
    widths: tuple[int, ...]               # Table 4 widths trained at this tier
    epochs: int
    depth: int = 10                       # weight matrices; the last one trains
    noise_scales: tuple[float, ...] = (0.01, 1.0)
    alignment_width: int = 2048           # Fig 18's width (smoke: 64): A_l is recorded for it only
    lr: float = 0.003


SETTINGS = Tiered(
    smoke=FrozenSettings(n_runs=1, n_train=64, n_test=64, probe_size=20, align_points=2,
                         widths=(2048,), epochs=2, alignment_width=64),
    quick=FrozenSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=8,
                         widths=(2048, 4096, 10_000), epochs=20),
    paper=FrozenSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=16,
                         widths=(2048, 10_000, 20_000, 75_000), epochs=100),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=20, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=120, mem_mb=32000, gpu=1),
)


def noise_key(scale: float) -> str:
    """0.01 -> 'noise0_01', 1.0 -> 'noise1_0' (paper_targets.yaml's spelling)."""
    return "noise" + np.format_float_positional(scale, trim="0").replace(".", "_")


def _block_generator(seed: int, layer: int, block: int, device: torch.device) -> torch.Generator:
    state = np.random.SeedSequence([seed, layer, block]).generate_state(1)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def frozen_block(seed: int, layer: int, block: int, fan_in: int, width: int,
                 device: torch.device) -> torch.Tensor:
    """Columns ``[block·COL_BLOCK, …)`` of frozen layer ``layer`` (1-based), He-scaled: [fan_in, ≤ COL_BLOCK]."""
    cols = min(COL_BLOCK, width - block * COL_BLOCK)
    w = torch.randn(fan_in, cols, generator=_block_generator(seed, layer, block, device), device=device)
    return w.mul_(math.sqrt(2.0 / fan_in))


def frozen_layer(seed: int, layer: int, fan_in: int, width: int, device: torch.device) -> torch.Tensor:
    """The whole frozen layer [fan_in, width], for widths small enough to hold (Fig 18)."""
    return torch.cat([frozen_block(seed, layer, b, fan_in, width, device)
                      for b in range(-(-width // COL_BLOCK))], 1)


@torch.no_grad()
def frozen_features(x: torch.Tensor, width: int, n_frozen: int, seed: int) -> torch.Tensor:
    """φ(z_{n_frozen}(x)) of the frozen network: z_1 = W_1 x, z_l = W_l φ(z_{l−1}) (Eq. 8).

    Each layer is multiplied one column block at a time, drawing the block's weights
    on the fly, so memory holds two [n, width] activations and one block.
    """
    h = x
    for layer in range(1, n_frozen + 1):
        a = h if layer == 1 else h.relu_()
        out = a.new_empty(a.shape[0], width)
        for b in range(-(-width // COL_BLOCK)):
            out[:, b * COL_BLOCK:(b + 1) * COL_BLOCK] = a @ frozen_block(seed, layer, b, a.shape[1], width, a.device)
        del a, h
        h = out
    return h.relu_()


class StackedReadout(nn.Module):
    """One trainable last layer per noise scale: logits = φ W_L, W_L ~ N(0, s² · 2/width)."""

    def __init__(self, width: int, n_out: int, scales: tuple[float, ...], seed: int, device: torch.device):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(len(scales), width, n_out, generator=g) * math.sqrt(2.0 / width)
        self.weight = nn.Parameter((w * torch.tensor(scales).view(-1, 1, 1)).to(device))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` [n_models, batch, width] -> [n_models, batch, n_out]."""
        return torch.bmm(h, self.weight)


@torch.no_grad()
def readout_accuracy(readout: StackedReadout, features: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Accuracy (percent) of every stacked readout on fixed features."""
    correct = torch.zeros(readout.weight.shape[0], device=features.device)
    for start in range(0, features.shape[0], ROW_CHUNK):
        logits = torch.einsum("nw,mwo->mno", features[start:start + ROW_CHUNK], readout.weight)
        correct += (logits.argmax(-1) == y[start:start + ROW_CHUNK]).sum(1)
    return (100 * correct / features.shape[0]).cpu().numpy()


class ReadoutRecorder:
    """Training callback: train/test accuracy after every epoch, and A_l of the whole
    network (frozen layers + current readouts) on the alignment grid when ``network`` is set."""

    def __init__(self, steps_per_epoch: int, train_xy, test_xy, network: StackedFFNN | None,
                 alignment: AlignmentRecorder | None):
        self.steps_per_epoch = steps_per_epoch
        self.train_xy, self.test_xy = train_xy, test_xy
        self.network, self.alignment = network, alignment
        self.train_acc: list[np.ndarray] = []
        self.test_acc: list[np.ndarray] = []

    def __call__(self, step: int, readout: StackedReadout) -> None:
        if step > 0 and step % self.steps_per_epoch == 0:
            self.train_acc.append(readout_accuracy(readout, *self.train_xy))
            self.test_acc.append(readout_accuracy(readout, *self.test_xy))
        if self.alignment is not None and step in self.alignment.grid:
            with torch.no_grad():
                self.network.weights[-1].copy_(readout.weight)
            self.alignment(step, self.network)

    def state_dict(self) -> dict:
        return {"train_acc": self.train_acc, "test_acc": self.test_acc,
                "alignment": self.alignment.state_dict() if self.alignment is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.train_acc, self.test_acc = list(state["train_acc"]), list(state["test_acc"])
        if self.alignment is not None:
            self.alignment.load_state_dict(state["alignment"])


def train_frozen(task: ImageTask, width: int, seed: int, s: FrozenSettings, checkpoint, desc: str) -> dict:
    """Train the readouts of one frozen width (all noise scales at once); return accuracies per
    epoch ``[epochs, scales]`` and, at ``s.alignment_width``, A_l on the grid ``[G, scales, depth]``."""
    n_frozen = s.depth - 1
    n_train = task.x_train.shape[0]
    features = frozen_features(torch.cat([task.x_train, task.x_test]), width, n_frozen, seed)
    features, test_features = features[:n_train], features[n_train:]
    readout = StackedReadout(width, task.n_classes, s.noise_scales, seed, features.device)
    n_models = len(s.noise_scales)
    steps_per_epoch = -(-task.epoch_size // s.batch_size)
    steps = s.epochs * steps_per_epoch
    network = alignment = None
    if width == s.alignment_width:
        d_in, dev = task.x_train.shape[1], features.device
        frozen = [frozen_layer(seed, layer, d_in if layer == 1 else width, width, dev).expand(n_models, -1, -1)
                  for layer in range(1, n_frozen + 1)]
        network = StackedFFNN.from_weights(frozen + [readout.weight.detach().clone()], [seed] * n_models)
        alignment = AlignmentRecorder(alignment_grid(steps, s.align_points), task.probe_x, task.probe_y)
    recorder = ReadoutRecorder(steps_per_epoch, (features, task.y_train), (test_features, task.y_test),
                               network, alignment)
    recorder(0, readout)
    sampler = EpochSampler(features.shape[0], s.batch_size, n_models=n_models, seed=seed, device=features.device)

    def loss_per_model(model, idx):
        return F.cross_entropy(model(features[idx]).transpose(1, 2), task.y_train[idx], reduction="none").mean(1)

    log = train(readout, loss_per_model, sampler, steps,
                OptimConfig("sgd", lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay),
                checkpoint=checkpoint, callback=recorder, desc=desc)
    out = {"width": width, "epochs": s.epochs, "steps": steps, "noise_scales": np.array(s.noise_scales),
           "train_accuracy": np.stack(recorder.train_acc), "test_accuracy": np.stack(recorder.test_acc),
           "epoch_train_loss": log.losses.reshape(s.epochs, steps_per_epoch, -1).mean(1)}
    if alignment is not None:
        out.update(grid=np.array(alignment.grid), alignment=alignment.stacked())
    return out


def frozen_work(s: FrozenSettings) -> Work:
    """Readouts of every noise scale on each width's frozen features, ``epochs`` each; cost grows with width."""
    widths = tuple(dict.fromkeys((*s.widths, s.alignment_width)))
    terms = [trained(epochs=s.epochs, examples=s.n_train or TRAIN_SPLIT_SIZE[DATASET], models=s.n_runs,
                     noise_scales=len(s.noise_scales), width=w) for w in widths]
    return sum(terms[1:], terms[0])


@model(PAPER, "frozen_mnist", settings=SETTINGS, resources=TRAIN_RESOURCES, work=frozen_work)
def train_frozen_mnist(ctx: Context) -> dict:
    """Frozen 10-layer MNIST networks at every width of the tier, readouts of every noise scale."""
    s: FrozenSettings = ctx.settings
    task = load_image_task(ctx, DATASET, s)
    widths = tuple(dict.fromkeys((*s.widths, s.alignment_width)))
    store = ConfigStore(ctx.checkpoint)
    runs = {}
    for width in widths:
        for seed in ctx.seeds:
            key = f"w{width}_s{seed}"
            runs[key] = store.run(key, lambda ckpt, width=width, seed=seed, key=key: train_frozen(
                task, width, seed, s, ckpt, f"{PAPER}/frozen_mnist/{key}"))
    store.clear()
    return {"widths": widths, "seeds": list(ctx.seeds), "runs": runs, "notes": task.notes}


def _seed_mean(payload: dict, width: int, key: str) -> np.ndarray:
    return np.mean([payload["runs"][f"w{width}_s{seed}"][key] for seed in payload["seeds"]], axis=0)


@artifact(PAPER, "fig18", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("frozen_mnist",), work=measure_work)
def fig18(ctx: Context) -> Result:
    """Fig 18: A_l during training of width-2048 frozen networks, noise scales 0.01 and 1.0."""
    s: FrozenSettings = ctx.settings
    payload = ctx.load_model("frozen_mnist")
    width = s.alignment_width
    run = payload["runs"][f"w{width}_s{payload['seeds'][0]}"]
    alignment = _seed_mean(payload, width, "alignment")  # [grid, scales, layers]
    test_acc, train_acc = _seed_mean(payload, width, "test_accuracy"), _seed_mean(payload, width, "train_accuracy")
    result = Result(notes=list(payload["notes"]))
    m = result.metrics
    for i, scale in enumerate(s.noise_scales):
        key = noise_key(scale)
        final, init = alignment[-1, i], alignment[0, i]
        m[f"test_accuracy.{key}"] = float(test_acc[-1, i])
        m[f"train_accuracy.{key}"] = float(train_acc[-1, i])
        m[f"max_test_accuracy.{key}"] = float(test_acc[:, i].max())
        m[f"argmax_layer.{key}"] = int(final.argmax()) + 1
        m[f"argmax_layer.init.{key}"] = int(init.argmax()) + 1
        m[f"layer_alignment.max.final.{key}"] = float(final.max())
        m[f"layer_alignment.max.init.{key}"] = float(init.max())
        result.arrays[f"{key}.alignment"] = alignment[:, i]
        result.arrays[f"{key}.test_accuracy"] = test_acc[:, i]
        result.arrays[f"{key}.train_accuracy"] = train_acc[:, i]
    result.arrays["grid"] = run["grid"]
    result.arrays["noise_scales"] = np.array(s.noise_scales)
    result.notes.append(f"width {width}, depth {s.depth} (W_1..W_{s.depth - 1} frozen), {run['epochs']} epochs "
                        f"({run['steps']} iterations), SGD lr {s.lr}, momentum {s.momentum}, "
                        f"weight decay {s.weight_decay}; test_accuracy = after the last epoch")
    return result


@artifact(PAPER, "table4", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("frozen_mnist",), work=measure_work)
def table4(ctx: Context) -> Result:
    """Table 4: best (over epochs) train / test accuracy of frozen networks against width.

    The target metrics are the ``TABLE4_NOISE`` (s = 0.01, Fig 18a) readout; the other noise
    scales are recorded as ``max_*_accuracy_<noise>.width<w>``. Widths the tier does not
    train are ``not_run``.
    """
    s: FrozenSettings = ctx.settings
    payload = ctx.load_model("frozen_mnist")
    result = Result(notes=list(payload["notes"]))
    m = result.metrics
    if TABLE4_NOISE not in s.noise_scales:
        raise ValueError(f"Table 4 needs the noise scale {TABLE4_NOISE} among the trained ones {s.noise_scales}")
    caption = s.noise_scales.index(TABLE4_NOISE)
    for width in payload["widths"]:
        train_acc = _seed_mean(payload, width, "train_accuracy")
        test_acc = _seed_mean(payload, width, "test_accuracy")
        for i, scale in enumerate(s.noise_scales):
            suffix = "" if i == caption else f"_{noise_key(scale)}"
            m[f"max_train_accuracy{suffix}.width{width}"] = float(train_acc[:, i].max())
            m[f"max_test_accuracy{suffix}.width{width}"] = float(test_acc[:, i].max())
        result.arrays[f"width{width}.test_accuracy"] = test_acc
        result.arrays[f"width{width}.train_accuracy"] = train_acc
    for width in TABLE4_WIDTHS:
        if width not in payload["widths"]:
            reason = f"width {width} is not trained at the {ctx.tier} tier (widths {list(payload['widths'])})"
            result.not_run.update({f"max_train_accuracy.width{width}": reason,
                                   f"max_test_accuracy.width{width}": reason})
    result.arrays["widths"] = np.array(payload["widths"])
    result.arrays["noise_scales"] = np.array(s.noise_scales)
    result.notes.append(f"depth {s.depth} (W_1..W_{s.depth - 1} frozen), {s.epochs} epochs, SGD lr {s.lr}; "
                        f"best over epochs; target metrics: noise scale {TABLE4_NOISE} (the Fig 18a run, whose "
                        f"91.9% test accuracy is Table 4's width-2048 value)")
    return result
