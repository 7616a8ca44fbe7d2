"""``python -m repalign.bench train``: training images per second, this path against a reference.

Cases, each run against its reference in the same process:

1. ``preact_resnet18`` (width k, sharon2024) and ``vgg16`` (maennel2020) on CIFAR-10-sized
   input: :func:`repalign.train.train_images` (uint8 data and crop/flip on the device, bf16
   autocast and channels-last on CUDA, optional ``--compile``) against a textbook loop (a
   torchvision ``DataLoader`` over PIL images with ``RandomCrop(32, padding=4)``,
   ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` in ``--workers`` worker processes, fp32,
   NCHW), the same model and optimiser (SGD, momentum 0.9);
2. ``--stack`` Simple CNNs (maennel2020, no augmentation) trained together as one
   :class:`repalign.train.ModelStack` against the same number trained one after another on
   this path.

Images are random uint8 CIFAR-sized arrays (throughput does not depend on their content).
Each run times ``--steps`` steps after ``--warmup`` untimed ones (cuDNN autotuning,
compilation, worker start-up); the device is synchronised at both ends; with ``--repeats``
the two sides alternate and each side's best run counts. The rows are
printed and appended, with the date, device and command, to ``--record``
(``docs/performance.md``; ``--record ''`` appends nothing).

    python -m repalign.bench train                              # the GPU sizes
    python -m repalign.bench train --device cpu --width 16 --vgg-width 16 --batch 32 \\
        --steps 4 --warmup 1 --simple-cnn n_conv=2,filters=16,units=128   # a CPU-sized run
"""

from __future__ import annotations

import argparse
import datetime
import resource
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from repalign.bench.timing import device_name, synchronize
from repalign.models import build
from repalign.train import ImageTraining, ModelStack, Normalization, OptimConfig, train_images

N_CLASSES = 10
CIFAR = Normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
OPTIM = OptimConfig("sgd", lr=0.01, momentum=0.9)


@dataclass
class Rate:
    """Images per second of wall-clock time and per second of CPU time (this process and its reaped
    children, i.e. DataLoader workers); the CPU-time rate is the steadier one on a shared CPU."""

    wall: float
    cpu: float


class Clock:
    """Wall-clock and CPU time since ``start()``."""

    def __init__(self, device):
        self.device, self.t0 = device, None

    @staticmethod
    def _cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def start(self) -> None:
        synchronize(self.device)
        self.t0 = (time.perf_counter(), self._cpu())

    def rate(self, images: int) -> Rate:
        synchronize(self.device)
        return Rate(images / (time.perf_counter() - self.t0[0]), images / (self._cpu() - self.t0[1]))


@dataclass
class Row:
    case: str
    sizes: str
    reference: str
    reference_rate: Rate
    rate: Rate

    @property
    def ratio(self) -> Rate:
        return Rate(self.rate.wall / self.reference_rate.wall, self.rate.cpu / self.reference_rate.cpu)


def random_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    return g.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), g.integers(0, N_CLASSES, n)


class PilImages(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10`` does: an HWC uint8 array, one PIL image per item."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def textbook_rate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, args) -> Rate:
    """Images/s of the textbook loop: DataLoader + CPU transforms, fp32, NCHW."""
    from torchvision import transforms
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(CIFAR.mean, CIFAR.std)])
    device = torch.device(args.device)
    loader = torch.utils.data.DataLoader(PilImages(x, y, transform), batch_size=args.batch, shuffle=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda",
                                         drop_last=True, persistent_workers=False)
    model = model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=OPTIM.lr, momentum=OPTIM.momentum)
    clock = Clock(device)
    for step, (images, labels) in enumerate(loader):
        if step == args.warmup:
            clock.start()
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clock.rate(args.steps * args.batch)


class StartClock(Clock):
    """Callback: starts the clock once ``warmup`` steps are done."""

    def __init__(self, warmup: int, device):
        super().__init__(device)
        self.warmup = warmup

    def __call__(self, step: int, model) -> None:
        if step == self.warmup:
            self.start()


def path_rate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, args, *, augment: bool,
              batch: int, seed: int = 0) -> Rate:
    """Images/s of :func:`train_images` over one epoch of ``x`` (warm-up excluded)."""
    device = x.device
    n_models = model.n_models if isinstance(model, ModelStack) else 1
    cfg = ImageTraining(epochs=1, batch_size=batch, optim=OPTIM, crop_padding=4 if augment else 0, flip=augment,
                        precision=args.precision, compile=args.compile, check_every=10**9)
    clock = StartClock(args.warmup, device)
    train_images(model, x, y, cfg, normalization=CIFAR, seed=seed, callbacks=[clock], desc="bench")
    return clock.rate(args.steps * batch * n_models)


def bench_model(name: str, options: dict, args) -> Row:
    device = torch.device(args.device)
    n = (args.warmup + args.steps) * args.batch
    x_np, y_np = random_images(n)
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(y_np).to(device)
    reference, rate = alternate(
        lambda: textbook_rate(build(name, N_CLASSES, **options), x_np, y_np, args),
        lambda: path_rate(build(name, N_CLASSES, **options).to(device), x, y, args, augment=True, batch=args.batch),
        args.repeats)
    sizes = ", ".join(f"{k}={v}" for k, v in options.items()) + f"; batch {args.batch}, {args.steps} steps"
    return Row(name, sizes, f"DataLoader ({args.workers} workers) + CPU transforms, fp32", reference, rate)


def bench_stack(args) -> Row:
    device = torch.device(args.device)
    n = (args.warmup + args.steps) * args.stack_batch
    x_np, y_np = random_images(n)
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(y_np).to(device)
    seeds = list(range(args.stack))

    def factory(seed):
        return build("simple_cnn", N_CLASSES, seed=seed, **args.simple_cnn)

    def one_by_one() -> Rate:  # the total images over the summed times
        alone = [path_rate(factory(s).to(device), x, y, args, augment=False, batch=args.stack_batch, seed=s)
                 for s in seeds]
        return Rate(*(len(seeds) / sum(1 / getattr(r, k) for r in alone) for k in ("wall", "cpu")))
    reference, rate = alternate(one_by_one, lambda: path_rate(ModelStack(factory, seeds).to(device), x, y, args,
                                                              augment=False, batch=args.stack_batch), args.repeats)
    opts = ", ".join(f"{k}={v}" for k, v in args.simple_cnn.items()) or "defaults"
    return Row(f"{len(seeds)} × simple_cnn, stacked", f"{opts}; batch {args.stack_batch}, {args.steps} steps",
               f"{len(seeds)} trained one after another (this path)", reference, rate)


def alternate(reference, candidate, repeats: int) -> tuple[Rate, Rate]:
    """The best rate of each side over ``repeats`` runs, alternating reference and candidate, so a
    change of load on a shared machine hits both (as the metrics suite's best-of-N does)."""
    runs = [(reference(), candidate()) for _ in range(repeats)]
    return tuple(Rate(max(r[i].wall for r in runs), max(r[i].cpu for r in runs)) for i in (0, 1))


def table(rows: list[Row], args) -> str:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m repalign.bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [f"### Training throughput, {date}, {device_name(args.device)}", "",
             f"`{command}` (torch {torch.__version__}, precision {args.precision}, compile {args.compile}, "
             f"best of {args.repeats} alternating runs)", "",
             "| case | sizes | reference | reference images/s | this path images/s | ratio | "
             "ratio of images per CPU second |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.case} | {r.sizes} | {r.reference} | {r.reference_rate.wall:,.1f} | {r.rate.wall:,.1f} | "
              f"**{r.ratio.wall:.2f}x** | {r.ratio.cpu:.2f}x |" for r in rows]
    return "\n".join(lines) + "\n"


def options(text: str) -> dict:
    """``"n_conv=2,filters=16"`` -> ``{"n_conv": 2, "filters": 16}`` (ints, floats, true/false)."""
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"'{item}' is not key=value")
        low = value.lower()
        out[key.strip()] = (low == "true" if low in ("true", "false") else
                            int(value) if value.lstrip("-").isdigit() else float(value))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", default="preact_resnet18,vgg16,stack",
                        help="comma-separated subset of preact_resnet18, vgg16, stack")
    parser.add_argument("--width", type=int, default=64, help="PreAct ResNet-18 width k")
    parser.add_argument("--vgg-width", type=int, default=64, help="VGG16 first-stage filters")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each side; the best counts")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of the textbook loop")
    parser.add_argument("--stack", type=int, default=16, help="Simple CNNs in the stack")
    parser.add_argument("--stack-batch", type=int, default=256, help="batch of each Simple CNN (maennel2020)")
    parser.add_argument("--simple-cnn", type=options, default={}, help="build options, e.g. n_conv=2,units=128")
    parser.add_argument("--precision", default="auto", help="see repalign.train.precision_policy")
    parser.add_argument("--compile", action="store_true", help="torch.compile the forward pass of this path")
    parser.add_argument("--record", default="docs/performance.md", help="file the table is appended to ('' = none)")


def run(args: argparse.Namespace) -> None:
    print(f"device: {device_name(args.device)}, torch {torch.__version__}")
    rows = []
    for case in args.cases.split(","):
        if case == "preact_resnet18":
            rows.append(bench_model("preact_resnet18", {"width": args.width}, args))
        elif case == "vgg16":
            rows.append(bench_model("vgg16", {"width": args.vgg_width}, args))
        elif case == "stack":
            rows.append(bench_stack(args))
        else:
            raise SystemExit(f"unknown case '{case}'; choose from preact_resnet18, vgg16, stack")
        r = rows[-1]
        print(f"{r.case} ({r.sizes}): reference {r.reference_rate.wall:,.1f} images/s, this path "
              f"{r.rate.wall:,.1f} images/s, ratio {r.ratio.wall:.2f}x (per CPU second {r.ratio.cpu:.2f}x)",
              flush=True)
    text = table(rows, args)
    print(text)
    if args.record:
        with open(Path(args.record), "a") as f:
            f.write("\n" + text)
        print(f"appended to {args.record}")
