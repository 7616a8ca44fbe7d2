"""lou2022 Fig 19 (App. G.1): the spectrum of C Ψ_lᵀ Ψ_l C per layer of VGG19 on CIFAR-10,
trained with and without 20% random labels, and its stable rank.

Ψ_l are the layer-l tangent features, so Ψ_lᵀ Ψ_l = K_l is the layer tangent kernel of Eq. 7
over the (example, logit) pairs of the 200-image probe, and C = I − 11ᵀ/(n·o) the centring
matrix of Eq. 7 (the same C as in A_l). Per layer: the top 200 eigenvalues λ_i / λ_1 (Fig 19)
and the stable rank R_l = Σ λ_i² / λ_1² (App. G.1, Fig 20b) of C K_l C.

Runs (App. G, Fig 20 legend): ``clean`` lr 0.02 (90.59%, Fig 19b) and ``random20`` lr 0.001
with 20% of the training labels replaced by uniformly drawn classes (Fig 19a, green in
Fig 20). The paper gives neither epochs nor schedule: SGD with momentum 0.9, weight decay
5e-4, batch 128, constant lr, no augmentation, 200 epochs at the paper tier (ours). VGG19
is the CIFAR variant with batch norm of ``repalign.models``; kernels are taken on its inference-mode,
batch-norm-free view, whose parametrised layers are the 16 convolutions and the classifier.
Test accuracy is on the true test labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from repalign.experiments.lou2022.collinearity import as_images
from repalign.experiments.lou2022.training import (
    MEASURE_RESOURCES,
    ConfigStore,
    ImageTask,
    TrainingSettings,
    load_image_task,
    measure_work,
    training_work,
)
from repalign.experiments.registry import Context, Resources, Tiered, artifact, model
from repalign.metrics import center_gram, layer_tangent_kernels
from repalign.models import build
from repalign.models.batchnorm import tangent_view
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "lou2022"
N_EIGS = 200
RUNS = {"clean": (0.02, 0.0), "random20": (0.001, 0.2)}  # run -> (lr, share of random labels)
EVAL_CHUNK = 1000


@dataclass(frozen=True, kw_only=True)
class SpectraSettings(TrainingSettings):
    epochs: int
    cnn_width: int = 64            # VGG19's first-stage channels (smoke: a few)
    max_elements: int = 2**27      # bound on a block of per-example conv weight gradients


SETTINGS = Tiered(
    smoke=SpectraSettings(n_runs=1, n_train=60, n_test=60, probe_size=10, align_points=0, epochs=1,
                          cnn_width=2, batch_size=32),
    quick=SpectraSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=0, epochs=15),
    paper=SpectraSettings(n_runs=1, n_train=None, n_test=None, probe_size=200, align_points=0, epochs=200),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=3000),
    quick=Resources(runtime_min=30, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=600, mem_mb=16000, gpu=1),
)


def random_labels(y: torch.Tensor, share: float, n_classes: int, seed: int) -> torch.Tensor:
    """``y`` with ``round(share · n)`` entries (chosen at random) replaced by uniform random classes."""
    g = torch.Generator().manual_seed(seed)
    picked = torch.randperm(y.numel(), generator=g)[:int(round(share * y.numel()))]
    noisy = y.clone()
    noisy[picked.to(y.device)] = torch.randint(0, n_classes, (picked.numel(),), generator=g).to(y.device)
    return noisy


def kernel_spectrum(kernel: torch.Tensor, k: int = N_EIGS) -> tuple[np.ndarray, float]:
    """Top ``k`` eigenvalues of C K C divided by the largest, and its stable rank Σλ²/λ_1²
    (``repalign.metrics.stable_rank(·, hermitian=True)``, here from the one eigendecomposition)."""
    eigs = torch.linalg.eigvalsh(center_gram(kernel.double())).flip(0)
    return (eigs[:k] / eigs[0]).cpu().numpy(), float(eigs.pow(2).sum() / eigs[0] ** 2)


def layer_spectra(net: torch.nn.Module, probe_x: torch.Tensor, max_elements: int) -> dict[str, np.ndarray]:
    """``eigs`` [layers, ≤ N_EIGS] (λ_i / λ_1) and ``stable_rank`` [layers] of every layer's C K_l C."""
    eigs, ranks, names = [], [], []
    for name, kernel in layer_tangent_kernels(tangent_view(net), probe_x, max_elements=max_elements):
        top, rank = kernel_spectrum(kernel)
        eigs.append(top)
        ranks.append(rank)
        names.append(name)
    return {"eigs": np.stack(eigs), "stable_rank": np.array(ranks), "layers": np.array(names)}


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    hits = sum(int((net(x[i:i + EVAL_CHUNK]).argmax(1) == y[i:i + EVAL_CHUNK]).sum())
               for i in range(0, x.shape[0], EVAL_CHUNK))
    net.train()
    return 100.0 * hits / x.shape[0]


def train_vgg19(task: ImageTask, lr: float, share: float, seed: int, s: SpectraSettings, checkpoint,
                desc: str) -> dict:
    """Train one VGG19 on CIFAR-10 with ``share`` random training labels; measure its spectra."""
    device = task.x_train.device
    x, x_test, probe_x = as_images(task.x_train), as_images(task.x_test), as_images(task.probe_x)
    y = random_labels(task.y_train, share, task.n_classes, seed) if share else task.y_train
    net = build("vgg19", task.n_classes, seed=seed, width=s.cnn_width, in_channels=x.shape[1]).to(device)
    sampler = EpochSampler(x.shape[0], s.batch_size, seed=seed, device=device)

    def loss_fn(model, idx):
        return F.cross_entropy(model(x[idx[0]]), y[idx[0]])

    steps = s.epochs * -(-task.epoch_size // s.batch_size)
    log = train(net, loss_fn, sampler, steps,
                OptimConfig("sgd", lr=lr, momentum=s.momentum, weight_decay=s.weight_decay),
                checkpoint=checkpoint, desc=desc)
    out = {"lr": lr, "share": share, "epochs": s.epochs, "steps": steps, "final_train_loss": float(log.losses[-1].mean()),
           "test_accuracy": accuracy(net, x_test, task.y_test),
           "train_accuracy": accuracy(net, x, y), "train_accuracy_true_labels": accuracy(net, x, task.y_train)}
    out.update(layer_spectra(net, probe_x, s.max_elements))
    return out


@model(PAPER, "vgg19_labels", settings=SETTINGS, resources=TRAIN_RESOURCES,
       work=lambda s: training_work(s, "cifar10", s.epochs, networks=len(RUNS)))
def train_vgg19_labels(ctx: Context) -> dict:
    """VGG19 on CIFAR-10 without and with 20% random labels (Fig 19), spectra measured after training."""
    s: SpectraSettings = ctx.settings
    task = load_image_task(ctx, "cifar10", s)
    store = ConfigStore(ctx.checkpoint)
    runs = {}
    for run, (lr, share) in RUNS.items():
        for seed in ctx.seeds:
            key = f"{run}_s{seed}"
            runs[key] = store.run(key, lambda ckpt, lr=lr, share=share, seed=seed, key=key: train_vgg19(
                task, lr, share, seed, s, ckpt, f"{PAPER}/vgg19_labels/{key}"))
    store.clear()
    return {"seeds": list(ctx.seeds), "runs": runs, "notes": task.notes}


@artifact(PAPER, "fig19", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("vgg19_labels",),
          work=lambda s: measure_work(s, networks=len(RUNS)))
def fig19(ctx: Context) -> Result:
    """Fig 19: top-200 normalised eigenvalues of C Ψ_lᵀ Ψ_l C per layer, and the stable rank."""
    s: SpectraSettings = ctx.settings
    payload = ctx.load_model("vgg19_labels")
    result = Result(notes=list(payload["notes"]))
    m = result.metrics
    for run, (lr, share) in RUNS.items():
        runs = [payload["runs"][f"{run}_s{seed}"] for seed in payload["seeds"]]
        eigs = np.mean([r["eigs"] for r in runs], axis=0)  # [layers, k]
        ranks = np.mean([r["stable_rank"] for r in runs], axis=0)
        for key in ("test_accuracy", "train_accuracy", "train_accuracy_true_labels"):
            m[f"{key}.{run}"] = float(np.mean([r[key] for r in runs]))
        m[f"normalized_eig200.mean.{run}"] = float(eigs[:, -1].mean())
        m[f"stable_rank.mean.{run}"] = float(ranks.mean())
        result.arrays[f"{run}.eigs"] = eigs
        result.arrays[f"{run}.stable_rank"] = ranks
        result.notes.append(f"{run}: VGG19 (first-stage width {s.cnn_width}), lr {lr}, {share:.0%} random labels, "
                            f"{runs[0]['epochs']} epochs ({runs[0]['steps']} iterations), final train loss "
                            f"{runs[0]['final_train_loss']:.3g}; {eigs.shape[1]} eigenvalues per layer "
                            f"(normalized_eig200 = the last of them)")
    result.arrays["layers"] = payload["runs"][f"clean_s{payload['seeds'][0]}"]["layers"]
    return result
