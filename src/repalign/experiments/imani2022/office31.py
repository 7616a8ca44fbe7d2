"""imani2022 §7.3, Table 1 and Fig 16: negative transfer on Office-31.

Protocol (§7.3 and App. D, p. 25):

- Network: torchvision ResNet18 with its ImageNet weights ("pre-trained on ImageNet
  before the experiment"), up to the 512-d pooled layer, plus a fresh 31-way head.
- Source pretraining (model steps ``office31_pretrain_<domain>``): every image of the
  source domain gets a class drawn uniformly at random, once; Adam, lr 1e-3 multiplied
  by 0.1 every 30 epochs, weight decay 1e-4, batch 256, 500 epochs.
- Fine-tuning (Table 1): the body (ImageNet only for source ``none``, else the
  source-pretrained one) with a fresh head, trained on the target domain's train split:
  SGD momentum 0.9, the same lr, schedule, weight decay and batch, 100 epochs; test
  accuracy (percent) on the target's test split.
- Alignment (Fig 16): the last hidden layer before fine-tuning, on the target's train
  split. For every binary task between two classes of the target (±1 labels), the
  alignment curve of the ``none`` body minus that of the source-pretrained body; the
  differences are averaged over the binary tasks. Curves are on the relative grid
  τ/√n ∈ [0, 1] (``summary.alignment_stats``), so tasks of different size average
  point by point, and ``alignment_drop_auc`` is the same average of the areas;
  ``alignment_drop_positive_share`` = share of thresholds where the averaged (over tasks
  and runs) drop curve is positive (``summary.positive_share``; "the curves all have
  positive values").
- Images: resized to ``image_size`` (256) by the loader; random ``crop`` (224) and a
  horizontal flip in training, the centre crop otherwise; ImageNet mean and std.

Choices the paper leaves open (stated in every result's notes): Office-31 has no
train/test split, so ``test_fraction`` of each class is held out by a seeded draw; the
source is pretrained on all of its images; the head is re-initialised for fine-tuning;
on a GPU the forward pass runs in bfloat16 autocast.

The weights come from torchvision's weights API (``pretrained.pretrained_state``); the
data needs a manual download. Either missing raises ``DatasetMissing`` (paths tried, how
to get it), which the runner records as ``not_run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repalign.data import load_dataset, to_float
from repalign.errors import DatasetMissing
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.pretrained import IMAGENET_MEAN, IMAGENET_STD, feature_net, pretrained_state
from repalign.experiments.imani2022.summary import alignment_stats, positive_share, thresholds_for
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "imani2022"
ARCH = "resnet18"
FEATURE_DIM = 512
DOMAINS = ("dslr", "webcam", "amazon")  # Table 1's order
PRETRAIN_MODELS = tuple(f"office31_pretrain_{d}" for d in DOMAINS)
SPLIT_SEED_OFFSET = 5_000_011
LABEL_SEED_OFFSET = 6_000_001
HEAD_SEED_OFFSET = 7_000_003


@dataclass(frozen=True)
class OfficeSettings:
    n_runs: int = 1
    pretrain_epochs: int = 500
    finetune_epochs: int = 100
    image_size: int = 256
    crop: int = 224
    batch_size: int = 256
    lr: float = 1e-3
    decay_epochs: int = 30
    weight_decay: float = 1e-4
    momentum: float = 0.9
    test_fraction: float = 0.2
    max_per_class: int | None = None  # images kept per class and domain (None: all)
    eval_batch: int = 256


SETTINGS = Tiered(
    smoke=OfficeSettings(pretrain_epochs=1, finetune_epochs=1, image_size=32, crop=28, batch_size=16,
                         test_fraction=0.25, max_per_class=4, eval_batch=64),
    quick=OfficeSettings(pretrain_epochs=60, finetune_epochs=30),
    paper=OfficeSettings(),
)
PRETRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=20, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=90, mem_mb=16000, gpu=1),
)
TABLE_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=20, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=90, mem_mb=16000, gpu=1),
)
ALIGNMENT_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=15, mem_mb=16000, gpu=1),
    paper=Resources(runtime_min=20, mem_mb=16000, gpu=1),
)


# Office-31's images per domain (Saenko et al. 2010; 4,110 in 31 classes): a property of the data,
# used only to declare work where ``max_per_class`` does not cap it.
DOMAIN_IMAGES = {"amazon": 2817, "dslr": 498, "webcam": 795}
N_CLASSES = 31


def domain_images(s: OfficeSettings, domain: str) -> int:
    full = DOMAIN_IMAGES[domain]
    return full if s.max_per_class is None else min(full, N_CLASSES * s.max_per_class)


def pretrain_work(s: OfficeSettings, domain: str) -> Work:
    """A source domain's random-label pretraining: ``pretrain_epochs`` over all its kept images."""
    return trained(epochs=s.pretrain_epochs, examples=domain_images(s, domain), models=s.n_runs,
                   pixels=s.crop ** 2)


def finetune_work(s: OfficeSettings) -> Work:
    """Table 1: each target fine-tuned on its train split from each body (ImageNet, or another domain's)."""
    terms = [trained(epochs=s.finetune_epochs, examples=round((1 - s.test_fraction) * domain_images(s, d)),
                     models=s.n_runs, bodies=len(DOMAINS), pixels=s.crop ** 2) for d in DOMAINS]
    return sum(terms[1:], terms[0])


def alignment_work(s: OfficeSettings) -> Work:
    """Fig 16: alignment of each target's images under each body."""
    return analysed(models=s.n_runs, bodies=len(DOMAINS), examples=sum(domain_images(s, d) for d in DOMAINS),
                    pixels=s.crop ** 2)


# --- inputs -----------------------------------------------------------------------------

def load_inputs(ctx: Context, s: OfficeSettings, domains) -> tuple[dict, dict]:
    """The ImageNet ResNet18 state dict and ``{domain: ImageSplit}`` (uint8 on the device).

    The data is checked first, so that without it the step ends before torchvision (seconds
    to import) is loaded; the reason then says that the weights are needed too. With the
    data present, absent weights are named by file and URL (``pretrained_state``).
    """
    splits, missing = {}, []
    for domain in domains:
        try:
            splits[domain] = load_dataset("office31", "all", root=ctx.data_root, cache_dir=ctx.cache_dir,
                                          device=ctx.device, domain=domain, size=s.image_size)
        except DatasetMissing as exc:
            missing.append(exc)
    if missing:
        how = (" ".join(dict.fromkeys(e.how for e in missing)) + " Also needed: torchvision's ImageNet "
               f"ResNet18 weights (IMAGENET1K_V1) in {Path(torch.hub.get_dir()) / 'checkpoints'}, "
               "checked once the data is present.")
        raise DatasetMissing("office31", [p for e in missing for p in e.tried], how)
    return pretrained_state(ARCH, ctx.download), splits


def split_indices(y: torch.Tensor, n_classes: int, s: OfficeSettings, seed: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded stratified ``(train, test)`` indices: ``test_fraction`` of each class held out.

    At most ``max_per_class`` images of a class are kept; a class with two or more keeps
    at least one test and one train image.
    """
    g = torch.Generator().manual_seed(seed + SPLIT_SEED_OFFSET)
    train_idx, test_idx = [], []
    labels = y.cpu()
    for c in range(n_classes):
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)][: s.max_per_class]
        n_test = min(max(round(s.test_fraction * len(idx)), 1), len(idx) - 1) if len(idx) > 1 else 0
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return torch.cat(train_idx).to(y.device), torch.cat(test_idx).to(y.device)


def random_labels(n: int, n_classes: int, seed: int, device) -> torch.Tensor:
    """Source labels replaced by classes drawn uniformly at random (§7.3), fixed per image."""
    g = torch.Generator().manual_seed(seed + LABEL_SEED_OFFSET)
    return torch.randint(n_classes, (n,), generator=g).to(device)


# --- images and the network --------------------------------------------------------------

def augment(x: torch.Tensor, crop: int) -> torch.Tensor:
    """Random ``crop``×``crop`` window and random horizontal flip of each uint8 image (App. D).

    Offsets and flips come from the global CPU generator, which the training loop's
    checkpoints save, so a resumed run sees the same crops.
    """
    b, c, size = x.shape[0], x.shape[1], x.shape[-1]
    offsets = torch.randint(0, size - crop + 1, (2, b)).to(x.device)
    flip = (torch.rand(b) < 0.5).to(x.device)
    ar = torch.arange(crop, device=x.device)
    rows = offsets[0, :, None] + ar
    cols = offsets[1, :, None] + torch.where(flip[:, None], crop - 1 - ar, ar)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def centre_crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    o = (x.shape[-1] - crop) // 2
    return x[..., o:o + crop, o:o + crop]


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float, scaled to [0, 1] and standardised with the ImageNet statistics."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
    return (to_float(x, 0.0, 1.0) - mean) / std


def autocast(device: torch.device):
    """bfloat16 autocast on a GPU; a no-op on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def classifier(weights: dict, body: dict | None, n_classes: int, seed: int, device) -> nn.Sequential:
    """ResNet18 body (ImageNet ``weights``, then a source-pretrained ``body`` when given) + fresh head."""
    net = feature_net(ARCH, None, {k: v.clone() for k, v in weights.items()}, device)  # clone: assign=True
    if body is not None:
        net.load_state_dict(body)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + HEAD_SEED_OFFSET)
        head = nn.Linear(FEATURE_DIM, n_classes)
    return nn.Sequential(net, head.to(device))


def fit(ctx: Context, net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, optimiser: str,
        seed: int, desc: str, checkpoint=None) -> np.ndarray:
    """Train ``net`` on uint8 images ``x`` and labels ``y`` with the App. D recipe; per-epoch mean loss."""
    s: OfficeSettings = ctx.settings
    sampler = EpochSampler(len(y), s.batch_size, seed=seed, device=ctx.device)
    config = OptimConfig(optimiser, lr=s.lr, momentum=s.momentum if optimiser == "sgd" else 0.0,
                         weight_decay=s.weight_decay, schedule="step",
                         decay_every=s.decay_epochs * sampler.steps_per_epoch)

    def loss_fn(m, idx):
        idx = idx[0]
        with autocast(ctx.device):
            logits = m(normalise(augment(x[idx], s.crop)))
        return nn.functional.cross_entropy(logits.float(), y[idx])

    log = train(net, loss_fn, sampler, epochs * sampler.steps_per_epoch, config, checkpoint=checkpoint,
                desc=desc)
    return log.losses[:, 0].reshape(epochs, sampler.steps_per_epoch).mean(axis=1)


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, s: OfficeSettings, device) -> torch.Tensor:
    """``net`` in eval mode on the centre crops of uint8 images ``x``, in batches (float32)."""
    net.eval()
    out = []
    for batch in x.split(s.eval_batch):
        with autocast(device):
            out.append(net(normalise(centre_crop(batch, s.crop))).float())
    return torch.cat(out)


def notes(s: OfficeSettings) -> list[str]:
    return [f"ResNet18 from torchvision ImageNet weights; images resized to {s.image_size} px, random "
            f"{s.crop} px crops and flips in training, centre crop otherwise",
            f"Office-31 has no official split: {s.test_fraction:g} of each class held out for test by a "
            f"seeded draw (max {s.max_per_class or 'all'} images per class); sources pretrained on all "
            "their kept images; head re-initialised for fine-tuning; bfloat16 autocast on GPU"]


# --- source pretraining (one model step per domain) ---------------------------------------

def _pretrain(ctx: Context, domain: str) -> dict:
    s: OfficeSettings = ctx.settings
    weights, splits = load_inputs(ctx, s, [domain])
    split = splits[domain]
    bodies, epoch_loss, fit_acc = [], [], []
    for r, seed in enumerate(ctx.seeds):
        train_idx, test_idx = split_indices(split.y, len(split.classes), s, seed)
        keep = torch.cat([train_idx, test_idx])
        labels = random_labels(len(keep), len(split.classes), seed, ctx.device)
        net = classifier(weights, None, len(split.classes), seed, ctx.device)
        checkpoint = None if ctx.checkpoint is None else ctx.checkpoint.with_name(f"{ctx.checkpoint.name}.run{r}")
        epoch_loss.append(fit(ctx, net, split.x[keep], labels, s.pretrain_epochs, "adam", seed,
                              f"{PAPER}/office31_pretrain_{domain}", checkpoint))
        pred = evaluate(net, split.x[keep], s, ctx.device).argmax(1)
        fit_acc.append(100.0 * float((pred == labels).float().mean()))
        bodies.append({k: v.detach().cpu() for k, v in net[0].state_dict().items()})
    return {"domain": domain, "seeds": ctx.seeds, "classes": split.classes, "bodies": bodies,
            "epoch_loss": np.stack(epoch_loss), "random_label_train_accuracy": fit_acc,
            "n_images": int(len(keep)), "source": split.source}


def _register_pretrain(domain: str) -> None:
    def pretrain(ctx: Context) -> dict:
        return _pretrain(ctx, domain)
    pretrain.__doc__ = f"ImageNet ResNet18 trained on Office-31 {domain} with uniformly random labels (§7.3)."
    model(PAPER, f"office31_pretrain_{domain}", settings=SETTINGS, resources=PRETRAIN_RESOURCES,
          work=partial(pretrain_work, domain=domain))(pretrain)


for _domain in DOMAINS:
    _register_pretrain(_domain)


def _pretrained_bodies(ctx: Context) -> tuple[dict, list[int]]:
    """``{source: [body state per run]}`` and the runs' seeds, from the three model steps."""
    payloads = {d: ctx.load_model(f"office31_pretrain_{d}") for d in DOMAINS}
    seeds = payloads[DOMAINS[0]]["seeds"]
    if any(p["seeds"] != seeds for p in payloads.values()):
        raise ValueError("the office31_pretrain_* models were trained with different seeds; retrain them together")
    return {d: p["bodies"] for d, p in payloads.items()}, seeds


def sources_for(target: str) -> tuple[str, ...]:
    return ("none",) + tuple(d for d in DOMAINS if d != target)


# --- Table 1 --------------------------------------------------------------------------------

@artifact(PAPER, "table1", settings=SETTINGS, resources=TABLE_RESOURCES, needs=PRETRAIN_MODELS, work=finetune_work)
def table1(ctx: Context) -> Result:
    """Table 1: target test accuracy after fine-tuning, without and after random-label pretraining."""
    s: OfficeSettings = ctx.settings
    bodies, seeds = _pretrained_bodies(ctx)
    weights, splits = load_inputs(ctx, s, DOMAINS)
    acc, losses = {}, {}
    result = Result(notes=notes(s) + [f"{d}: {splits[d].source}" for d in DOMAINS])
    for r, seed in enumerate(seeds):
        for target in DOMAINS:
            split = splits[target]
            train_idx, test_idx = split_indices(split.y, len(split.classes), s, seed)
            for source in sources_for(target):
                body = None if source == "none" else bodies[source][r]
                net = classifier(weights, body, len(split.classes), seed, ctx.device)
                loss = fit(ctx, net, split.x[train_idx], split.y[train_idx], s.finetune_epochs, "sgd", seed,
                           f"{PAPER}/table1 {source}->{target}")
                pred = evaluate(net, split.x[test_idx], s, ctx.device).argmax(1)
                acc.setdefault((source, target), []).append(100.0 * float((pred == split.y[test_idx]).float().mean()))
                losses.setdefault(f"finetune_loss.{source}_to_{target}", []).append(loss)
            if r == 0:
                result.notes.append(f"{target}: {len(train_idx)} train / {len(test_idx)} test images")
    table = np.full((1 + len(DOMAINS), len(DOMAINS)), np.nan)
    for (source, target), values in acc.items():
        name = f"{source}_to_{target}"
        result.metrics[f"test_accuracy.{name}"], result.metrics[f"test_accuracy_se.{name}"] = mean_se(
            torch.tensor(values))
        table[(("none",) + DOMAINS).index(source), DOMAINS.index(target)] = result.metrics[f"test_accuracy.{name}"]
    for source in DOMAINS:
        drops = [result.metrics[f"test_accuracy.none_to_{t}"] - result.metrics[f"test_accuracy.{source}_to_{t}"]
                 for t in DOMAINS if t != source]
        result.metrics[f"negative_transfer_drop.{source}"] = float(np.mean(drops))
    result.arrays = {k: np.stack(v) for k, v in losses.items()}  # [runs, epochs]
    result.arrays.update(accuracy=table, rows=np.array(("none",) + DOMAINS), cols=np.array(DOMAINS))
    return result


# --- Fig 16 ---------------------------------------------------------------------------------

def binary_alignment(features: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, int]:
    """Alignment of stacked representations over every two-class task of ``y``.

    ``features`` [models, n, d], ``y`` [n] class labels -> (alignment_auc [tasks, models],
    curves [tasks, models, T] on the relative grid τ/√n, number of tasks). In each task
    the first class is labelled −1 and the second +1; only classes present in ``y`` count.
    """
    aucs, curves = [], []
    for a, b in combinations(torch.unique(y).tolist(), 2):
        mask = (y == a) | (y == b)
        auc, curve = alignment_stats(features[:, mask], torch.where(y[mask] == b, 1.0, -1.0))
        aucs.append(auc)
        curves.append(curve)
    if not aucs:
        raise ValueError("fig16 needs at least two classes with train images in every target domain")
    return torch.stack(aucs).cpu(), np.stack(curves), len(aucs)


@artifact(PAPER, "fig16", settings=SETTINGS, resources=ALIGNMENT_RESOURCES, needs=PRETRAIN_MODELS, work=alignment_work)
def fig16(ctx: Context) -> Result:
    """Fig 16: alignment without pretraining minus alignment after random-label pretraining, six pairs."""
    s: OfficeSettings = ctx.settings
    bodies, seeds = _pretrained_bodies(ctx)
    weights, splits = load_inputs(ctx, s, DOMAINS)
    result = Result(notes=notes(s) + [f"{d}: {splits[d].source}" for d in DOMAINS])
    drop_auc, drop_curves, upper, auc = {}, {}, {}, {}
    for r, seed in enumerate(seeds):
        for target in DOMAINS:
            split = splits[target]
            train_idx, _ = split_indices(split.y, len(split.classes), s, seed)
            sources = sources_for(target)
            feats = []
            for source in sources:
                body = None if source == "none" else bodies[source][r]
                feats.append(evaluate(classifier(weights, body, len(split.classes), seed, ctx.device)[0],
                                      split.x[train_idx], s, ctx.device))
            task_auc, task_curves, n_tasks = binary_alignment(torch.stack(feats), split.y[train_idx])
            for k, source in enumerate(sources):
                auc.setdefault((source, target), []).append(float(task_auc[:, k].mean()))
                if source != "none":
                    pair = f"{source}_to_{target}"
                    drop_auc.setdefault(pair, []).append(float((task_auc[:, 0] - task_auc[:, k]).mean()))
                    drop_curves.setdefault(pair, []).append((task_curves[:, 0] - task_curves[:, k]).mean(0))
                    upper.setdefault(pair, []).append(np.maximum(task_curves[:, 0], task_curves[:, k]).mean(0))
            if r == 0:
                result.notes.append(f"{target}: {n_tasks} binary tasks on {len(train_idx)} train images")
    for (source, target), values in auc.items():
        result.metrics[f"alignment_auc.{source}.{target}"], _ = mean_se(torch.tensor(values))
    for pair, values in drop_auc.items():
        result.metrics[f"alignment_drop_auc.{pair}"], result.metrics[f"alignment_drop_auc_se.{pair}"] = mean_se(
            torch.tensor(values))
    for source in DOMAINS:
        result.metrics[f"alignment_drop_auc.source_mean.{source}"] = float(np.mean(
            [result.metrics[f"alignment_drop_auc.{source}_to_{t}"] for t in DOMAINS if t != source]))
    for pair in drop_curves:   # "The curves all have positive values": share of thresholds with a positive drop
        result.metrics[f"alignment_drop_positive_share.{pair}"] = positive_share(
            np.mean(drop_curves[pair], 0), np.mean(upper[pair], 0))
    pairs = list(drop_curves)
    result.arrays.update(difference_curves=np.stack([np.stack(drop_curves[p]) for p in pairs]),  # [pairs, runs, T]
                         pairs=np.array(pairs), thresholds=thresholds_for(1))
    result.notes.append("curves: mean over the target's binary tasks of alignment/‖y‖² (none) minus "
                        "(source-pretrained), last hidden layer before fine-tuning, against τ/√n")
    return result
