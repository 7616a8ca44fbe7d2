"""The dataset registry and :func:`load_dataset`."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from repalign.errors import DatasetMissing

from ._common import NotFound, Request
from .cifar import load_cifar
from .ct_slice import load_ct_slice
from .folder import load_imagenet
from .mnist import load_idx_dataset
from .office31 import load_office31
from .paths import DATA_ENV, POINT_AT_LOCAL_COPY, resolve_cache_dir, resolve_data_root
from .tiny_imagenet import load_tiny_imagenet


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """One registry entry.

    splits: canonical split names; split_aliases maps other accepted names onto them.
    how: how to obtain the data (``DATA_ROOT`` stands for the data root in use).
    layouts: the folder layouts recognised under the data root, in the order tried.
    loader: ``loader(Request) -> ImageSplit | FolderSplit``; raises NotFound with the paths tried.
    torchvision_class: name in ``torchvision.datasets`` that can download it, or None.
    torchvision_dir: the folder that class creates under its root.
    present_when: the layouts as file globs under the data root; the dataset is on disk when
    every glob of one layout matches (a cheap check that reads nothing, see ``dataset_present``).
    """

    name: str
    description: str
    splits: tuple[str, ...]
    how: str
    loader: Callable = field(repr=False)
    layouts: tuple[str, ...] = ()
    split_aliases: dict = field(default_factory=dict)
    torchvision_class: str | None = None
    torchvision_dir: str | None = None
    present_when: tuple[tuple[str, ...], ...] = ()

    def canonical_split(self, split: str) -> str:
        s = self.split_aliases.get(split, split)
        if s not in self.splits:
            accepted = sorted(set(self.splits) | set(self.split_aliases))
            raise ValueError(f"dataset '{self.name}' has no split {split!r}; accepted: {', '.join(accepted)}")
        return s


def _torchvision_how(cls: str, folder: str, urls: str, plain: str) -> str:
    return (
        f"run load_dataset(..., download=True) or `torchvision.datasets.{cls}(root=DATA_ROOT, "
        f"download=True)`, which fetches {urls} into DATA_ROOT/{folder}/; or place the files "
        f"yourself as {plain}. {POINT_AT_LOCAL_COPY}"
    )


_IDX_FILES = "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"


def _idx_layouts(*folders: str) -> tuple[tuple[str, ...], ...]:
    """The four IDX files (gzipped or not) in each of ``folders``."""
    return tuple(tuple(f"{folder}/{prefix}-{kind}-ubyte*" for prefix in ("train", "t10k")
                       for kind in ("images-idx3", "labels-idx1")) for folder in folders)


_TRAIN_TEST = ("train", "test")


def _idx_dataset(name: str, what: str, tv_class: str, folder: str, url: str, extra: str = "") -> DatasetSpec:
    """An MNIST-format dataset (four IDX files, 28x28 grey, 10 classes) under DATA_ROOT/``folder``
    or torchvision's ``tv_class``/raw."""
    return DatasetSpec(
        name=name, description=f"{what}, 28x28 grey, 10 classes",
        splits=_TRAIN_TEST, split_aliases={"t10k": "test"},
        how=_torchvision_how(tv_class, f"{tv_class}/raw", f"{url}/{_IDX_FILES}",
                             f"DATA_ROOT/{folder}/{_IDX_FILES}{extra}"),
        loader=load_idx_dataset,
        layouts=(f"{folder}/{{train,t10k}}-*-ubyte[.gz]", f"{tv_class}/raw/{{train,t10k}}-*-ubyte[.gz]"),
        torchvision_class=tv_class, torchvision_dir=tv_class,
        present_when=_idx_layouts(folder, f"{tv_class}/raw"),
    )

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        _idx_dataset("mnist", "MNIST handwritten digits", "MNIST", "mnist",
                     "https://ossci-datasets.s3.amazonaws.com/mnist"),
        _idx_dataset("fashion_mnist", "Fashion-MNIST clothing images", "FashionMNIST", "fashion-mnist",
                     "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                     " (Debian/Ubuntu: `apt-get install dataset-fashion-mnist` puts them in "
                     "/usr/share/datasets/fashion-mnist/)"),
        _idx_dataset("kmnist", "Kuzushiji-MNIST cursive Japanese characters", "KMNIST", "kmnist",
                     "http://codh.rois.ac.jp/kmnist/dataset/kmnist"),
        DatasetSpec(
            name="cifar10",
            description="CIFAR-10, 32x32 colour, 10 classes (50k train, 10k test)",
            splits=_TRAIN_TEST,
            how=_torchvision_how(
                "CIFAR10", "cifar-10-batches-py",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extracted)",
                "DATA_ROOT/cifar-10-batches-py/ (the extracted tarball), or as class-folder zips "
                "DATA_ROOT/cifar10-jpeg/{train,test}.zip holding <split>/<class>/NNNN.jpg"),
            loader=load_cifar,
            layouts=("cifar10-jpeg/{train,test}.zip", "cifar-10-batches-py/"),
            torchvision_class="CIFAR10", torchvision_dir="cifar-10-batches-py",
            present_when=(("cifar10-jpeg/train.zip", "cifar10-jpeg/test.zip"),
                          tuple(f"cifar-10-batches-py/{f}" for f in
                                [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])),
        ),
        DatasetSpec(
            name="cifar100",
            description="CIFAR-100, 32x32 colour, 100 fine classes (50k train, 10k test)",
            splits=_TRAIN_TEST,
            how=_torchvision_how(
                "CIFAR100", "cifar-100-python",
                "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (extracted)",
                "DATA_ROOT/cifar-100-python/ (the extracted tarball), or as class-folder zips "
                "DATA_ROOT/cifar100-jpeg/{train,test}.zip holding <split>/<class>/NNNN.jpg"),
            loader=load_cifar,
            layouts=("cifar-100-python/", "cifar100-jpeg/{train,test}.zip"),
            torchvision_class="CIFAR100", torchvision_dir="cifar-100-python",
            present_when=(("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
                          ("cifar100-jpeg/train.zip", "cifar100-jpeg/test.zip")),
        ),
        DatasetSpec(
            name="office31",
            description="Office-31 (Saenko et al. 2010): 31 classes in domains amazon, dslr, webcam",
            splits=("all",), split_aliases={"train": "all"},
            how=("manual download (no automatic download exists): get domain_adaptation_images.tar.gz "
                 "from the Office-31 page https://faculty.cc.gatech.edu/~judy/domainadapt/ , extract it "
                 "and rename the extracted folder to DATA_ROOT/office31 so that images sit at "
                 "DATA_ROOT/office31/<amazon|dslr|webcam>/images/<class>/*.jpg. "
                 + POINT_AT_LOCAL_COPY),
            loader=load_office31,
            layouts=("office31/<domain>/images/<class>/*.jpg",),
            present_when=(tuple(f"office31/{d}/images/*" for d in ("amazon", "dslr", "webcam")),),
        ),
        DatasetSpec(
            name="imagenet",
            description="ImageNet ILSVRC-2012, 1000 classes (served as an ImageFolder, not a tensor)",
            splits=("train", "val"), split_aliases={"test": "val"},
            how=("manual download (needs an image-net.org account): download ILSVRC2012_img_train.tar and "
                 "ILSVRC2012_img_val.tar from https://image-net.org/download.php ; extract the train "
                 "archive and each per-class tar inside it into DATA_ROOT/imagenet/train/<wnid>/*.JPEG; "
                 "extract the val images and sort them into DATA_ROOT/imagenet/val/<wnid>/*.JPEG using the "
                 "devkit's ground truth (e.g. the widely used valprep.sh from PyTorch's ImageNet example). "
                 + POINT_AT_LOCAL_COPY),
            loader=load_imagenet,
            layouts=("imagenet/{train,val}/<wnid>/*.JPEG",),
            present_when=(("imagenet/train/*", "imagenet/val/*"),),
        ),
        DatasetSpec(
            name="tiny_imagenet",
            description="Tiny ImageNet, 200 classes, 64x64 colour (100k train, 10k val)",
            splits=("train", "val"), split_aliases={"test": "val"},
            how=("manual download: fetch http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it "
                 "into DATA_ROOT, giving DATA_ROOT/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, "
                 "val/images/*.JPEG, val/val_annotations.txt}. " + POINT_AT_LOCAL_COPY),
            loader=load_tiny_imagenet,
            layouts=("tiny-imagenet-200/{train/<wnid>/images, val/images + val/val_annotations.txt}",),
            present_when=(("tiny-imagenet-200/train/*", "tiny-imagenet-200/val/images",
                           "tiny-imagenet-200/val/val_annotations.txt"),),
        ),
        DatasetSpec(
            name="ct_slice",
            description=("UCI Relative Location of CT Slices on Axial Axis (CT Position): "
                         "53,500 rows, 384 features, regression target 'reference'"),
            splits=("all",), split_aliases={"train": "all"},
            how=("manual download: get the data from the UCI repository page "
                 "https://archive.ics.uci.edu/dataset/206/relative+location+of+ct+slices+on+axial+axis "
                 "and place slice_localization_data.csv (or slice_localization_data.zip) in "
                 "DATA_ROOT/ct_slice/. " + POINT_AT_LOCAL_COPY),
            loader=load_ct_slice,
            layouts=("ct_slice/slice_localization_data.{csv,zip}",),
            present_when=(("ct_slice/slice_localization_data.csv",), ("ct_slice/slice_localization_data.zip",)),
        ),
    ]
}


def dataset_present(name: str, root=None) -> bool:
    """Whether one layout of dataset ``name`` is complete under ``root`` (globs only, nothing read).

    The workflow uses it to notice data that appeared after a step ran without it.
    """
    root = resolve_data_root(root)
    return any(all(next(root.glob(pattern), None) is not None for pattern in layout)
               for layout in DATASETS[name].present_when)


def _how_with_root(spec: DatasetSpec, root: Path) -> str:
    return f"{spec.how} (DATA_ROOT is now {root}; set by --config data_root=..., ${DATA_ENV}, or ./data)"


def _download(spec: DatasetSpec, root: Path, split: str) -> None:
    """Download with torchvision into a temporary folder under ``root``, then move the result in.

    Nothing is left behind on failure: the temporary folder is removed, and a ``root``
    this function created is removed again. On success every file is moved into place with
    ``os.replace`` (the archives torchvision downloaded are dropped). Raises on failure.
    """
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.torchvision_class)
    created = []
    p = root
    while not p.exists():
        created.append(p)
        p = p.parent
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".repalign-download-", dir=root))
        cls(root=str(tmp), train=(split == "train"), download=True)
        produced = tmp / spec.torchvision_dir
        if not produced.is_dir():
            raise RuntimeError(f"torchvision did not create {spec.torchvision_dir}/")
        dest = root / spec.torchvision_dir
        for dirpath, _dirs, files in os.walk(produced):
            target_dir = dest / Path(dirpath).relative_to(produced)
            target_dir.mkdir(parents=True, exist_ok=True)
            for name in files:
                os.replace(Path(dirpath) / name, target_dir / name)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break
        raise
    shutil.rmtree(tmp, ignore_errors=True)


def load_dataset(
    name: str,
    split: str = "train",
    root=None,
    cache_dir=None,
    device="cpu",
    download: bool = False,
    domain: str | None = None,
    **options,
):
    """Load one split of a registered dataset.

    root / cache_dir: resolved with :func:`resolve_data_root` / :func:`resolve_cache_dir`
    (argument, then ``$REPALIGN_DATA`` / ``$REPALIGN_CACHE``, then ``./data`` /
    ``~/.cache/repalign``). The layouts of ``DATASETS[name].layouts`` are tried in order
    under the root; the first complete one wins.

    Returns an :class:`ImageSplit` with both tensors on ``device``; for ``imagenet`` a
    :class:`FolderSplit` wrapping a torchvision ImageFolder (``device`` not applied).

    download=True: for datasets torchvision can download (mnist, fashion_mnist, kmnist,
    cifar10, cifar100), a missing dataset is downloaded into the root in torchvision's
    layout first. Other datasets ignore the flag.

    domain: the Office-31 domain (amazon/dslr/webcam or A/D/W); an error for other datasets.
    options: loader-specific. office31: ``size`` (224), ``workers``; cifar10/cifar100
    class-folder zips: ``workers``, ``decoder`` ("auto" | "torchvision" | "pil");
    tiny_imagenet: ``workers``; imagenet: ``transform``. Others take none.

    Raises ValueError for an unknown name or split, DatasetMissing (dataset name, every
    path tried, how to obtain it) when no layout is present, CorruptDataset for a file
    that exists but cannot be parsed.
    """
    spec = DATASETS.get(name)
    if spec is None:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    canonical = spec.canonical_split(split)
    if domain is not None and name != "office31":
        raise ValueError(f"dataset '{name}' has no domains (domain={domain!r} is for office31)")
    root = resolve_data_root(root)
    cache = resolve_cache_dir(cache_dir)
    req = Request(name=name, split=canonical, root=root, cache_dir=cache, domain=domain,
                  options=dict(options))
    try:
        result = spec.loader(req)
    except NotFound as missing:
        tried = missing.tried
        how = _how_with_root(spec, root)
        if not (download and spec.torchvision_class):
            raise DatasetMissing(name, tried, how) from None
        try:
            _download(spec, root, canonical)
        except Exception as exc:  # network, permissions, checksum, ...
            raise DatasetMissing(
                name, tried,
                f"{how}\nAutomatic download with torchvision.datasets.{spec.torchvision_class} "
                f"into {root} failed: {type(exc).__name__}: {exc}",
            ) from exc
        try:
            result = spec.loader(req)
        except NotFound as still:
            raise DatasetMissing(
                name, tried + still.tried,
                f"{how}\nThe torchvision download finished but no recognised layout appeared.",
            ) from None
    if hasattr(result, "to"):
        result = result.to(device)
    return result
