"""Small synthetic stand-ins for datasets, written in their on-disk formats, for tests that must not
depend on the offline copies (or need datasets the machine lacks)."""

import pickle
from pathlib import Path

import numpy as np

from repalign.data.idx import write_idx

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar_pickles(root: Path, n_classes: int, per_class: int = 24) -> None:
    """A CIFAR pickle folder (torchvision's layout) of class-dependent random images."""
    rng = np.random.default_rng(n_classes)
    spec = {10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                 b"label_names", b"labels"),
            100: ("cifar-100-python", ["train"], "test", "meta", b"fine_label_names", b"fine_labels")}
    folder, train_files, test_file, meta, names_key, labels_key = spec[n_classes]
    (root / folder).mkdir(parents=True)
    means = rng.integers(40, 215, size=(n_classes, 3, 1, 1))
    for files, n in ((train_files, per_class), ([test_file], per_class // 2)):
        labels = np.repeat(np.arange(n_classes), n)
        x = np.clip(means[labels] + rng.normal(0, 40, size=(labels.size, 3, 32, 32)), 0, 255).astype(np.uint8)
        for name, part in zip(files, np.array_split(np.arange(labels.size), len(files))):
            with open(root / folder / name, "wb") as f:
                pickle.dump({b"data": x[part].reshape(part.size, -1), labels_key: labels[part].tolist()}, f)
    with open(root / folder / meta, "wb") as f:
        names = CIFAR10_NAMES if n_classes == 10 else [f"class{i}" for i in range(n_classes)]
        pickle.dump({names_key: [n.encode() for n in names]}, f)


def write_mnist_idx(root: Path, n: int = 100) -> None:
    """MNIST's IDX files (``n`` train and ``n`` test 28×28 images), one bright row per class."""
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir(parents=True)
    for prefix in ("train", "t10k"):
        y = np.arange(n) % 10
        x = rng.integers(0, 100, size=(n, 28, 28))
        x[np.arange(n), y * 2, :] += 150
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", x.astype(np.uint8))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))
