"""imani2022 §7.3 and App. D: ResNet18 and T2T-ViT pretrained on ImageNet-Artificial / -Natural.

Model steps ``imagenet_<half>_<arch>`` (half ``artificial`` or ``natural``, the Yosinski
et al. split of :mod:`.yosinski_split`; arch ``resnet18`` or ``t2t_vit``) train the
network from scratch on the ImageNet train images of that half's classes. App. D:
SGD with momentum 0.9, weight decay 1e-4, images resized to 256×256 then randomly
cropped (224) and flipped; ResNet18 batch 1024, lr 0.1 ×0.1 every 30 epochs, 40 epochs;
T2T-ViT batch 256, lr 0.01, 30 epochs. The ×0.1 decay is done as consecutive training
stages (momentum restarts at each decay).

ImageNet is read lazily from ``<data_root>/imagenet/train/<wnid>/`` (a manual download);
without it the steps are not run with that reason. Also here: the layers read by Fig 14
(:func:`last_hidden`) and the CIFAR-10 preprocessing shared by Figs 14, 15 and 21.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from repalign.data import load_dataset, to_float
from repalign.errors import CorruptDataset
from repalign.experiments.imani2022.nets import clear_stages, staged
from repalign.experiments.imani2022.pretrained import IMAGENET_MEAN, IMAGENET_STD
from repalign.experiments.imani2022.yosinski_split import HALVES, load_split
from repalign.experiments.registry import Context, Resources, Tiered, Work, model, trained
from repalign.train import OptimConfig, train

PAPER = "imani2022"
ARCHS = ("resnet18", "t2t_vit")
N_LAYERS = 4  # "the last four hidden layers"


@dataclass(frozen=True)
class Recipe:
    """One SGD training run (App. D); ``decay_every`` epochs the lr is multiplied by 0.1 (0: never)."""

    batch_size: int
    lr: float
    epochs: float
    decay_every: int = 0


@dataclass(frozen=True)
class HalvesSettings:
    pretrain: dict = field(default_factory=lambda: {"resnet18": Recipe(1024, 0.1, 40, 30),
                                                    "t2t_vit": Recipe(256, 0.01, 30)})
    finetune: dict = field(default_factory=lambda: {"resnet18": Recipe(256, 0.01, 10, 30),
                                                    "t2t_vit": Recipe(64, 0.01, 10)})
    image_size: int = 224
    resize: int = 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    t2t: dict = field(default_factory=dict)       # T2TViT size overrides (default T2T-ViT_t-14)
    images_per_class: int | None = None           # cap on ImageNet train images per class
    points_per_class: int = 1000                  # Fig 14: 2,000 balanced points per binary task
    workers: int = 8                              # image-decoding processes


SMOKE = HalvesSettings(
    pretrain={"resnet18": Recipe(4, 0.01, 1), "t2t_vit": Recipe(4, 0.01, 1)},
    finetune={"resnet18": Recipe(8, 0.01, 0.2), "t2t_vit": Recipe(8, 0.01, 0.2)},
    image_size=32, resize=36, t2t={"embed_dim": 32, "depth": 4, "heads": 2, "token_dim": 16},
    images_per_class=4, points_per_class=4, workers=0)
SETTINGS = Tiered(
    smoke=SMOKE,
    # quick: a tenth of ImageNet per class, a quarter of the epochs, 112-pixel crops
    quick=HalvesSettings(pretrain={"resnet18": Recipe(256, 0.1, 10, 8), "t2t_vit": Recipe(128, 0.01, 8)},
                         finetune={"resnet18": Recipe(256, 0.01, 3), "t2t_vit": Recipe(64, 0.01, 3)},
                         image_size=112, resize=128, images_per_class=130, points_per_class=500),
    paper=HalvesSettings(),
)
PRETRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=4000),
    quick=Resources(runtime_min=120, mem_mb=32000, gpu=1, cpus=8),
    paper=Resources(runtime_min=3 * 24 * 60, mem_mb=64000, gpu=1, cpus=16),
)


def build(arch: str, num_classes: int, s: HalvesSettings) -> nn.Module:
    """A randomly initialised ``arch`` with ``num_classes`` outputs."""
    if arch == "resnet18":
        import torchvision  # lazy: importing it costs seconds in every job
        return torchvision.models.resnet18(num_classes=num_classes)
    if arch == "t2t_vit":
        from repalign.models.t2t_vit import T2TViT
        return T2TViT(num_classes, image_size=s.image_size, **s.t2t)
    raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")


def replace_head(net: nn.Module, num_classes: int) -> None:
    """A fresh linear output layer with ``num_classes`` outputs (fine-tuning)."""
    name = "fc" if hasattr(net, "fc") else "head"
    old = getattr(net, name)
    setattr(net, name, nn.Linear(old.in_features, num_classes).to(old.weight.device))


def last_hidden(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The last ``N_LAYERS`` hidden layers, flattened, closest to the output first (``last1`` … ``last4``).

    ResNet18: pooled features, the outputs of ``layer4``'s two blocks, the output of
    ``layer3``. T2T-ViT: the class token of four distinct blocks: the last block's after the
    final norm (the head's input), then the raw output of each of the three blocks before it
    (the last block's raw token would be the same block as ``last1`` again).
    """
    if hasattr(net, "hidden"):
        *blocks, head_input = net.hidden(x)
        return [head_input] + [h.flatten(1) for h in blocks[-2:-N_LAYERS - 1:-1]]
    h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    h3 = net.layer3(net.layer2(net.layer1(h)))
    b1 = net.layer4[0](h3)
    b2 = net.layer4[1](b1)
    return [torch.flatten(net.avgpool(b2), 1), b2.flatten(1), b1.flatten(1), h3.flatten(1)]


def normalise(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of images in [0, 1] ``[B, 3, H, W]``."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
    return (x - mean) / std


def cifar_batch(images: torch.Tensor, s: HalvesSettings, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 CIFAR images -> network input: resized to ``resize``², then a crop of ``image_size``.

    With a ``generator`` each image gets its own random crop and is flipped with
    probability 1/2 (training, App. D); without, the crop is central.
    """
    x = nn.functional.interpolate(to_float(images, 0.0, 1.0), size=(s.resize, s.resize), mode="bilinear",
                                  align_corners=False)
    b, margin = x.shape[0], s.resize - s.image_size
    if generator is None:
        return normalise(x[..., margin // 2:margin // 2 + s.image_size, margin // 2:margin // 2 + s.image_size])
    top, left = torch.randint(0, margin + 1, (2, b), generator=generator).to(x.device)
    span = torch.arange(s.image_size, device=x.device)
    rows, cols = (top[:, None] + span)[:, None, :, None], (left[:, None] + span)[:, None, None, :]
    x = x[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(3, device=x.device)[:, None, None],
          rows, cols]
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    return normalise(torch.where(flip[:, None, None, None], x.flip(-1), x))


class FolderBatches:
    """Minibatches ``(images, labels)`` of an image folder for the shared training loop.

    One seeded shuffle of ``indices`` per epoch; images are decoded and augmented by a
    ``DataLoader`` with ``workers`` processes. The state (generator, epoch order,
    position) is saved in checkpoints, so a resumed run continues with the same batches.
    """

    n_models = 1  # one network per batch (the loop's throughput counts examples per model)

    def __init__(self, dataset, indices: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device, workers: int):
        self.dataset, self.indices, self.labels = dataset, indices, labels
        self.n, self.batch_size, self.device, self.workers = len(indices), batch_size, device, workers
        self.generator = torch.Generator().manual_seed(seed)
        self._perm: torch.Tensor | None = None
        self._pos, self._batches = self.n, None

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    def _loader(self):
        from torch.utils.data import DataLoader

        order = self.indices[self._perm[self._pos:]].tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return iter(DataLoader(self.dataset, batch_sampler=batches, num_workers=self.workers,
                               pin_memory=self.device.type == "cuda"))

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pos >= self.n:
            self._perm = torch.randperm(self.n, generator=self.generator)
            self._pos, self._batches = 0, None
        if self._batches is None:
            self._batches = self._loader()
        x, _ = next(self._batches)
        y = self.labels[self._perm[self._pos:self._pos + self.batch_size]]
        self._pos += self.batch_size
        return x.to(self.device, non_blocking=True), y.to(self.device)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "pos": self._pos, "perm": self._perm}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._pos, self._perm, self._batches = state["pos"], state["perm"], None


def imagenet_half(ctx: Context, half: str, s: HalvesSettings):
    """ImageNet train images of ``half``'s classes: ``(dataset, indices, labels per index, wnids)``."""
    split = load_dataset("imagenet", "train", root=ctx.data_root, cache_dir=ctx.cache_dir)
    from torchvision import transforms  # lazy, after the cheap check that ImageNet is there

    split.dataset.transform = transforms.Compose([
        transforms.Resize((s.resize, s.resize)), transforms.RandomCrop(s.image_size),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    wnids = [w for w in load_split()[half] if w in set(split.classes)]
    if not wnids:
        raise CorruptDataset(f"{split.source}: none of the {half} classes of the Yosinski split is there")
    label_of = torch.full((len(split.classes),), -1, dtype=torch.int64)
    label_of[[split.classes.index(w) for w in wnids]] = torch.arange(len(wnids))
    labels = label_of[split.y]
    indices = (labels >= 0).nonzero().squeeze(1)
    if s.images_per_class is not None:
        g = torch.Generator().manual_seed(ctx.seeds[0])
        keep = [c[torch.randperm(len(c), generator=g)[:s.images_per_class]]
                for c in (indices[labels[indices] == k] for k in range(len(wnids)))]
        indices = torch.cat(keep).sort().values
    return split.dataset, indices, labels[indices], wnids, split.source


def sgd_stages(ctx: Context, net: nn.Module, loss_fn, sampler, recipe: Recipe, s: HalvesSettings,
               desc: str) -> None:
    """Train ``recipe.epochs`` epochs with SGD; the lr drops ×0.1 every ``decay_every`` epochs (one stage each)."""
    steps_per_epoch = sampler.steps_per_epoch
    total = max(1, math.ceil(recipe.epochs * steps_per_epoch))
    every = recipe.decay_every * steps_per_epoch or total
    for k, start in enumerate(range(0, total, every)):
        optim = OptimConfig("sgd", lr=recipe.lr * 0.1 ** k, momentum=s.momentum, weight_decay=s.weight_decay)

        def stage(checkpoint, steps=min(every, total - start), optim=optim):
            train(net, loss_fn, sampler, steps, optim, checkpoint=checkpoint, desc=f"{desc} stage {k}")
            return {"model": net.state_dict(), "sampler": sampler.state_dict()}

        done = staged(ctx, f"stage{k}", stage)
        net.load_state_dict(done["model"])
        sampler.load_state_dict(done["sampler"])
    clear_stages(ctx)


# ILSVRC-2012 train images per class on average (1,281,167 / 1,000): a property of the data, used
# only to declare work where ``images_per_class`` does not cap it.
IMAGENET_IMAGES_PER_CLASS = 1281


def pretrain_work(s: HalvesSettings, arch: str, half: str) -> Work:
    """``arch`` trained ``epochs`` over ImageNet-``half``'s images (the shipped Yosinski class list)."""
    per_class = s.images_per_class or IMAGENET_IMAGES_PER_CLASS
    return trained(epochs=s.pretrain[arch].epochs, examples=per_class * len(load_split()[half]),
                   pixels=s.image_size ** 2)


def pretrain(ctx: Context, arch: str, half: str) -> dict:
    """Train ``arch`` from scratch on ImageNet-``half`` (App. D)."""
    s: HalvesSettings = ctx.settings
    dataset, indices, labels, wnids, source = imagenet_half(ctx, half, s)
    net = build(arch, len(wnids), s).to(ctx.device)
    recipe = s.pretrain[arch]
    batches = FolderBatches(dataset, indices, labels, recipe.batch_size, ctx.seeds[0], ctx.device, s.workers)

    def loss_fn(m, batch):
        x, y = batch
        return nn.functional.cross_entropy(m(x), y)

    sgd_stages(ctx, net, loss_fn, batches, recipe, s, f"{PAPER}/{arch}/{half}")
    return {"arch": arch, "half": half, "wnids": wnids, "state": net.state_dict(),
            "note": f"{arch} on ImageNet-{half}: {len(wnids)} classes, {len(indices)} images of {source}; "
                    f"{recipe}"}


for _arch in ARCHS:
    for _half in HALVES:
        model(PAPER, f"imagenet_{_half}_{_arch}", settings=SETTINGS, resources=PRETRAIN_RESOURCES,
              work=partial(pretrain_work, arch=_arch, half=_half))(
            partial(pretrain, arch=_arch, half=_half))


def load_pretrained(ctx: Context, arch: str, half: str) -> tuple[nn.Module, dict]:
    """The network pretrained on ImageNet-``half`` (eval mode) and its model file."""
    payload = ctx.load_model(f"imagenet_{half}_{arch}")
    net = build(arch, len(payload["wnids"]), ctx.settings).to(ctx.device)
    net.load_state_dict(payload["state"])
    return net.eval(), payload
