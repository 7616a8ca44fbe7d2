"""Dataset loaders against small synthetic files the tests build (no real data needed)."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repalign.data import DATASETS, class_subset, load_dataset, read_idx, to_float
from repalign.data.cache import ArrayCache
from repalign.data.idx import write_idx
from repalign.errors import CorruptDataset, DatasetMissing

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


def _all_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


# ---------------------------------------------------------------- IDX parsing

def _digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip_reads_count_from_header(tmp_path, suffix):
    images, labels = _digits(7)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    got = read_idx(tmp_path / f"img{suffix}", expect_ndim=3)
    assert got.shape == (7, 28, 28) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"lab{suffix}", expect_ndim=1), labels)


def test_idx_wider_types_are_big_endian(tmp_path):
    arr = np.arange(12, dtype=np.int32).reshape(3, 4) * 1000 - 5000
    write_idx(tmp_path / "a.idx", arr)
    raw = (tmp_path / "a.idx").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 2])
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), arr)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_truncated_payload_raises_naming_file(tmp_path, suffix):
    images, _ = _digits(5)
    full = tmp_path / "full"
    write_idx(full, images)
    data = full.read_bytes()[:-100]
    bad = tmp_path / f"train-images-idx3-ubyte{suffix}"
    if suffix:
        bad.write_bytes(gzip.compress(data))
    else:
        bad.write_bytes(data)
    with pytest.raises(CorruptDataset, match="truncated") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)


def test_idx_truncated_gzip_stream_raises(tmp_path):
    images, _ = _digits(50)
    good = tmp_path / "x.gz"
    write_idx(good, images)
    bad = tmp_path / "cut.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptDataset) as info:
        read_idx(bad)
    assert "cut.gz" in str(info.value)


def test_idx_wrong_magic_and_wrong_ndim(tmp_path):
    images, labels = _digits(3)
    path = tmp_path / "img"
    write_idx(path, images)
    raw = bytearray(path.read_bytes())
    raw[0] = 0x1F  # not an IDX header
    (tmp_path / "bad").write_bytes(bytes(raw))
    with pytest.raises(CorruptDataset, match="magic"):
        read_idx(tmp_path / "bad")
    raw[0], raw[2] = 0, 0x07  # unknown type byte
    (tmp_path / "bad2").write_bytes(bytes(raw))
    with pytest.raises(CorruptDataset, match="magic"):
        read_idx(tmp_path / "bad2")
    with pytest.raises(CorruptDataset, match="dimensions"):
        read_idx(path, expect_ndim=1)


def test_idx_trailing_bytes_rejected(tmp_path):
    images, _ = _digits(2)
    path = tmp_path / "img"
    write_idx(path, images)
    path.write_bytes(path.read_bytes() + b"\0" * 10)
    with pytest.raises(CorruptDataset, match="trailing"):
        read_idx(path)


def _write_mnist(folder: Path, prefix: str, n: int, gz: bool, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = _digits(n, seed)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


def test_mnist_both_layouts_and_precedence(tmp_path):
    cache = tmp_path / "cache"
    tv_images, tv_labels = _write_mnist(tmp_path / "root" / "MNIST" / "raw", "train", 9, gz=False, seed=1)
    split = load_dataset("mnist", "train", root=tmp_path / "root", cache_dir=cache)
    assert split.x.shape == (9, 1, 28, 28) and split.x.dtype == torch.uint8
    assert split.y.dtype == torch.int64
    np.testing.assert_array_equal(split.x[:, 0].numpy(), tv_images)
    np.testing.assert_array_equal(split.y.numpy(), tv_labels)
    assert "MNIST/raw" in split.source
    # the plain layout comes first when both are present
    own_images, _ = _write_mnist(tmp_path / "root" / "mnist", "train", 4, gz=True, seed=2)
    split = load_dataset("mnist", "train", root=tmp_path / "root", cache_dir=cache)
    assert split.n == 4 and split.source.startswith("mnist/")
    np.testing.assert_array_equal(split.x[:, 0].numpy(), own_images)
    assert split.classes == [str(i) for i in range(10)]
    # a test split is required separately; t10k is an alias of test
    with pytest.raises(DatasetMissing):
        load_dataset("mnist", "t10k", root=tmp_path / "root", cache_dir=cache)
    assert not cache.exists()  # IDX is never cached


def test_a_file_whose_md5_differs_from_the_data_roots_md5sums_is_named(tmp_path):
    import hashlib
    x, y = _digits(4)
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", x)
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", y)
    good = hashlib.md5((root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    (root / "MD5SUMS").write_text(f"{good}  mnist/t10k-images-idx3-ubyte.gz\n")
    assert load_dataset("mnist", "test", root=root).n == 4  # listed and right; labels unlisted
    root2 = tmp_path / "root2"
    root2.mkdir()
    (root / "mnist").rename(root2 / "mnist")
    (root2 / "MD5SUMS").write_text(f"{'0' * 32}  mnist/t10k-images-idx3-ubyte.gz\n")
    with pytest.raises(CorruptDataset, match=rf"t10k-images-idx3-ubyte.gz: md5 {good}, but "
                                             rf".*MD5SUMS lists {'0' * 32}.*Copy it again"):
        load_dataset("mnist", "test", root=root2)


def test_mnist_count_mismatch_names_both_files(tmp_path):
    folder = tmp_path / "fashion-mnist"
    images, labels = _digits(6)
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[:5])
    with pytest.raises(CorruptDataset, match="count mismatch") as info:
        load_dataset("fashion_mnist", "test", root=tmp_path, cache_dir=tmp_path / "c")
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value)


# ---------------------------------------------------------------- CIFAR layouts

def _cifar_images(per_class: int, n_classes: int, seed=0, smooth=False):
    rng = np.random.default_rng(seed)
    if smooth:  # 8x8 flat blocks: JPEG reproduces them almost exactly
        low = rng.integers(16, 240, size=(per_class * n_classes, 3, 4, 4), dtype=np.uint8)
        x = low.repeat(8, axis=2).repeat(8, axis=3)
    else:
        x = rng.integers(0, 256, size=(per_class * n_classes, 3, 32, 32), dtype=np.uint8)
    y = np.repeat(np.arange(n_classes), per_class)
    return x, y


def _write_cifar10_pickles(folder: Path, splits: dict):
    folder.mkdir(parents=True)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, f)
    for split, (x, y) in splits.items():
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        parts = np.array_split(np.arange(len(y)), len(files))
        for name, idx in zip(files, parts):
            with open(folder / name, "wb") as f:
                pickle.dump({b"data": x[idx].reshape(len(idx), -1), b"labels": y[idx].tolist()}, f)


def _write_class_zip(path: Path, split: str, x, y, classes, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    counters = {}
    ext = "png" if fmt == "PNG" else "jpg"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for img, label in zip(x, y):
            k = counters.get(label, 0)
            counters[label] = k + 1
            buf = io.BytesIO()
            Image.fromarray(img.transpose(1, 2, 0)).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
            zf.writestr(f"{split}/{classes[label]}/{k:04d}.{ext}", buf.getvalue())


def test_cifar10_pickle_and_zip_layouts_give_same_arrays(tmp_path):
    x_test, y_test = _cifar_images(2, 10, seed=3)
    x_train, y_train = _cifar_images(1, 10, seed=4)
    pickles, zips = tmp_path / "a", tmp_path / "b"
    _write_cifar10_pickles(pickles / "cifar-10-batches-py", {"train": (x_train, y_train), "test": (x_test, y_test)})
    _write_class_zip(zips / "cifar10-jpeg" / "test.zip", "test", x_test, y_test, CIFAR10_CLASSES)
    cache = tmp_path / "cache"
    a = load_dataset("cifar10", "test", root=pickles, cache_dir=cache)
    b = load_dataset("cifar10", "test", root=zips, cache_dir=cache)
    assert a.x.shape == (20, 3, 32, 32) and a.x.dtype == torch.uint8
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert torch.equal(a.x, torch.from_numpy(x_test))
    assert a.classes == b.classes == CIFAR10_CLASSES
    assert "cifar-10-batches-py" in a.source and "pickle" in a.source
    assert "cifar10-jpeg/test.zip" in b.source and "lossy" not in b.source
    train = load_dataset("cifar10", "train", root=pickles, cache_dir=cache)
    assert train.n == 10 and torch.equal(train.x, torch.from_numpy(x_train))


def test_cifar_layout_order_and_jpeg_zip_cache(tmp_path):
    x, y = _cifar_images(2, 10, seed=5, smooth=True)
    root, cache = tmp_path / "root", tmp_path / "cache"
    _write_cifar10_pickles(root / "cifar-10-batches-py", {"test": (x, y)})
    _write_class_zip(root / "cifar10-jpeg" / "test.zip", "test", x, y, CIFAR10_CLASSES, fmt="JPEG")
    first = load_dataset("cifar10", "test", root=root, cache_dir=cache)
    assert first.source.startswith("cifar10-jpeg/test.zip") and "lossy" in first.source
    assert "from cache" not in first.source
    assert torch.equal(first.y, torch.from_numpy(y))
    err = (first.x.float() - torch.from_numpy(x).float()).abs().mean()
    assert 0 < err < 8  # lossy, but the same images
    markers = list((cache / "cifar10").glob("test-*.json"))
    assert len(markers) == 1
    second = load_dataset("cifar10", "test", root=root, cache_dir=cache)
    assert "from cache" in second.source and torch.equal(first.x, second.x)
    # touching the zip changes the key: decoded again, into a new entry
    st = (root / "cifar10-jpeg" / "test.zip").stat()
    os.utime(root / "cifar10-jpeg" / "test.zip", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_dataset("cifar10", "test", root=root, cache_dir=cache)
    assert "from cache" not in third.source
    assert len(list((cache / "cifar10").glob("test-*.json"))) == 2


def test_jpeg_zip_decoders_agree_and_damage_is_named(tmp_path):
    x, y = _cifar_images(3, 10, seed=7, smooth=True)
    root = tmp_path / "root"
    zpath = root / "cifar10-jpeg" / "train.zip"
    _write_class_zip(zpath, "train", x, y, CIFAR10_CLASSES, fmt="JPEG")
    tv = load_dataset("cifar10", root=root, cache_dir=tmp_path / "c1", decoder="torchvision")
    pil = load_dataset("cifar10", root=root, cache_dir=tmp_path / "c2", decoder="pil", workers=1)
    assert torch.equal(tv.x, pil.x) and torch.equal(tv.y, pil.y)
    # one flipped byte inside a STORED member: the CRC check names it
    raw = bytearray(zpath.read_bytes())
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo("train/bird/0001.jpg")
    raw[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    zpath.write_bytes(bytes(raw))
    with pytest.raises(CorruptDataset, match="train/bird/0001.jpg"):
        load_dataset("cifar10", root=root, cache_dir=tmp_path / "c3")
    # a member that is not an image at all (valid CRC): named as well, by either decoder
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("train/cat/0000.jpg", b"not a jpeg")
        zf.writestr("train/dog/0000.jpg", b"also not")
    for decoder in ("auto", "pil"):
        with pytest.raises(CorruptDataset, match="train/cat/0000.jpg"):
            load_dataset("cifar10", root=root, cache_dir=tmp_path / "c4", decoder=decoder, workers=1)
    assert not list((tmp_path / "c4").rglob("*.npy"))


def test_cifar10_zip_with_the_wrong_class_folders_is_named(tmp_path):
    x, y = _cifar_images(1, 3, seed=9)
    root = tmp_path / "root"
    _write_class_zip(root / "cifar10-jpeg" / "test.zip", "test", x, y, ["cats", "dogs", "frogs"])
    with pytest.raises(CorruptDataset, match=r"test.zip: class folders test/\{cats,dogs,frogs\} are "
                                             r"not CIFAR-10's test/\{airplane,.*truck\}"):
        load_dataset("cifar10", "test", root=root, cache_dir=tmp_path / "cache")


def test_cifar100_pickles_first_then_zip(tmp_path):
    classes = [f"c{i:02d}" for i in range(100)]
    x, y = _cifar_images(1, 100, seed=6)
    root = tmp_path / "root"
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [c.encode() for c in classes]}, f)
    with open(folder / "test", "wb") as f:
        pickle.dump({b"data": x.reshape(100, -1), b"fine_labels": y.tolist(), b"coarse_labels": (y // 5).tolist()}, f)
    _write_class_zip(root / "cifar100-jpeg" / "test.zip", "test", x[:10], y[:10], classes)
    got = load_dataset("cifar100", "test", root=root, cache_dir=tmp_path / "c")
    assert got.n == 100 and got.classes == classes and "cifar-100-python" in got.source
    assert torch.equal(got.x, torch.from_numpy(x))


def test_corrupt_zip_and_pickle(tmp_path):
    root = tmp_path / "root"
    (root / "cifar10-jpeg").mkdir(parents=True)
    (root / "cifar10-jpeg" / "test.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorruptDataset, match="test.zip"):
        load_dataset("cifar10", "test", root=root, cache_dir=tmp_path / "c")
    folder = root / "cifar-100-python"
    folder.mkdir()
    (folder / "meta").write_bytes(b"garbage")
    (folder / "test").write_bytes(b"garbage")
    with pytest.raises(CorruptDataset):
        load_dataset("cifar100", "test", root=root, cache_dir=tmp_path / "c")


# ---------------------------------------------------------------- Office-31, Tiny ImageNet, ImageNet, CT

def _save_jpg(path: Path, w: int, h: int, seed: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=90)


def _office31(root: Path):
    layout = {"amazon": ((30, 30), ["back_pack", "bike", "calculator"]),
              "dslr": ((100, 80), ["back_pack", "bike"]),
              "webcam": ((64, 48), ["bike", "calculator"])}
    seed = 0
    for domain, ((w, h), classes) in layout.items():
        for c in classes:
            for k in range(2):
                seed += 1
                _save_jpg(root / "office31" / domain / "images" / c / f"frame_{k:04d}.jpg", w, h, seed)


def test_office31_three_domains(tmp_path):
    root, cache = tmp_path / "root", tmp_path / "cache"
    _office31(root)
    amazon = load_dataset("office31", root=root, cache_dir=cache, domain="amazon", size=16)
    assert amazon.x.shape == (6, 3, 16, 16) and amazon.x.dtype == torch.uint8
    assert amazon.classes == ["back_pack", "bike", "calculator"]
    assert amazon.y.tolist() == [0, 0, 1, 1, 2, 2]
    webcam = load_dataset("office31", "all", root=root, cache_dir=cache, domain="W", size=16)
    assert webcam.y.tolist() == [1, 1, 2, 2]  # labels shared across domains
    dslr = load_dataset("office31", root=root, cache_dir=cache, domain="dslr", size=8)
    assert dslr.x.shape == (4, 3, 8, 8) and dslr.y.tolist() == [0, 0, 1, 1]
    again = load_dataset("office31", root=root, cache_dir=cache, domain="amazon", size=16)
    assert "from cache" in again.source and torch.equal(again.x, amazon.x)
    with pytest.raises(ValueError, match="domain"):
        load_dataset("office31", root=root, cache_dir=cache)
    with pytest.raises(ValueError, match="unknown domain"):
        load_dataset("office31", root=root, cache_dir=cache, domain="caltech")
    with pytest.raises(ValueError, match="no split"):
        load_dataset("office31", "test", root=root, cache_dir=cache, domain="amazon")


def test_tiny_imagenet_train_and_val(tmp_path):
    root = tmp_path / "root"
    base = root / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    (base).mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for i, w in enumerate(wnids):
        for k in range(2):
            _save_jpg(base / "train" / w / "images" / f"{w}_{k}.JPEG", 64, 64, 10 * i + k)
    lines = []
    for k, w in enumerate(["n01", "n02", "n02"]):
        _save_jpg(base / "val" / "images" / f"val_{k}.JPEG", 64, 64, 100 + k)
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t10\t10")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    train = load_dataset("tiny_imagenet", "train", root=root, cache_dir=tmp_path / "c")
    assert train.x.shape == (4, 3, 64, 64) and train.classes == ["n01", "n02"]
    assert train.y.tolist() == [0, 0, 1, 1]
    val = load_dataset("tiny_imagenet", "test", root=root, cache_dir=tmp_path / "c")
    assert val.y.tolist() == [0, 1, 1] and "val" in val.source


def test_imagenet_is_a_folder_split(tmp_path):
    root = tmp_path / "root"
    for w, k in [("n01440764", 2), ("n01443537", 3)]:
        for j in range(k):
            _save_jpg(root / "imagenet" / "val" / w / f"{j}.JPEG", 20, 10, j)
    split = load_dataset("imagenet", "val", root=root, cache_dir=tmp_path / "c")
    assert split.n == 5 and split.classes == ["n01440764", "n01443537"]
    assert split.y.tolist() == [0, 0, 1, 1, 1]
    img, label = split.dataset[2]
    assert img.size == (20, 10) and label == 1
    flat = tmp_path / "flat" / "imagenet" / "val"
    _save_jpg(flat / "ILSVRC2012_val_00000001.JPEG", 8, 8, 0)
    with pytest.raises(CorruptDataset, match="class folders"):
        load_dataset("imagenet", "val", root=tmp_path / "flat")
    with pytest.raises(DatasetMissing):
        load_dataset("imagenet", "train", root=root)


def _ct_csv(path: Path, n: int = 5, drop: str | None = None):
    rng = np.random.default_rng(0)
    feats = rng.random((n, 384)).round(6)
    ref = rng.random(n) * 100
    cols = ["patientId"] + [f"value{i}" for i in range(384)] + ["reference"]
    rows = [[str(i // 2)] + [f"{v:.6f}" for v in feats[i]] + [f"{ref[i]:.6f}"] for i in range(n)]
    if drop:
        j = cols.index(drop)
        cols.pop(j)
        rows = [r[:j] + r[j + 1:] for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(cols) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return feats, ref


def test_ct_slice_csv(tmp_path):
    root, cache = tmp_path / "root", tmp_path / "cache"
    feats, ref = _ct_csv(root / "ct_slice" / "slice_localization_data.csv")
    ct = load_dataset("ct_slice", root=root, cache_dir=cache)
    assert ct.x.shape == (5, 384) and ct.x.dtype == torch.float32
    assert ct.y.shape == (5,) and ct.y.dtype == torch.float32
    np.testing.assert_allclose(ct.x.numpy(), feats, rtol=1e-6)
    np.testing.assert_allclose(ct.y.numpy(), ref, rtol=1e-5)
    assert ct.classes == []
    assert "from cache" in load_dataset("ct_slice", "all", root=root, cache_dir=cache).source
    with pytest.raises(ValueError, match="no split"):
        load_dataset("ct_slice", "test", root=root, cache_dir=cache)
    _ct_csv(tmp_path / "bad" / "ct_slice" / "slice_localization_data.csv", drop="reference")
    with pytest.raises(CorruptDataset, match="reference"):
        load_dataset("ct_slice", root=tmp_path / "bad", cache_dir=cache)


# ---------------------------------------------------------------- cache atomicity

def test_cache_write_failure_leaves_no_entry(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    cache = ArrayCache(tmp_path / "cache", "toy", "train", [src])
    real_save = np.save
    calls = []

    def failing_save(f, arr, **kw):
        calls.append(1)
        if len(calls) == 2:  # the second array: partial write, then the disk fills up
            f.write(b"\x93NUMPY partial")
            raise OSError(28, "No space left on device")
        return real_save(f, arr, **kw)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.warns(UserWarning, match="could not write"):
        assert cache.save({"x": np.zeros((3, 2), np.uint8), "y": np.arange(3)}, {}) is False
    monkeypatch.setattr(np, "save", real_save)
    assert cache.load() is None and not cache.marker.exists()
    assert not [p for p in cache.dir.iterdir() if p.name.endswith(".tmp")]
    assert cache.save({"x": np.zeros((3, 2), np.uint8), "y": np.arange(3)}, {"k": 1})
    arrays, meta = cache.load()
    assert arrays["x"].shape == (3, 2) and meta["k"] == 1
    # a damaged array file is treated as a miss, never served
    cache.array_path("x").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="damaged"):
        assert cache.load() is None


def test_a_corrupt_npy_in_the_decode_cache_is_detected_and_rebuilt(tmp_path):
    """Same shape and dtype, one flipped byte: the marker's checksum catches it."""
    x, y = _cifar_images(2, 10, seed=8)
    root, cache = tmp_path / "root", tmp_path / "cache"
    _write_class_zip(root / "cifar10-jpeg" / "test.zip", "test", x, y, CIFAR10_CLASSES)
    first = load_dataset("cifar10", "test", root=root, cache_dir=cache)
    (npy,) = [p for p in (cache / "cifar10").glob("test-*.npy") if p.name.endswith(".x.npy")]
    raw = bytearray(npy.read_bytes())
    raw[-100] ^= 0xFF  # inside the pixel payload: np.load still reads an array of the right shape
    npy.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=r"cache entry .*test-.*\.json is damaged .*x has shape, dtype, crc32"):
        second = load_dataset("cifar10", "test", root=root, cache_dir=cache)
    assert "from cache" not in second.source and torch.equal(second.x, first.x)
    third = load_dataset("cifar10", "test", root=root, cache_dir=cache)  # the rebuilt entry is served
    assert "from cache" in third.source and torch.equal(third.x, first.x)


# ---------------------------------------------------------------- missing data and download

@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_missing_names_paths_and_how(tmp_path, name):
    root, cache = tmp_path / "root", tmp_path / "cache"
    root.mkdir()
    kwargs = {"domain": "amazon"} if name == "office31" else {}
    split = DATASETS[name].splits[0]
    with pytest.raises(DatasetMissing) as info:
        load_dataset(name, split, root=root, cache_dir=cache, **kwargs)
    err = info.value
    assert err.dataset == name and err.tried
    assert all(str(root) in t for t in err.tried)
    msg = str(err)
    assert f"'{name}'" in msg and "REPALIGN_DATA" in msg and "data_root" in msg
    assert "http" in err.how
    assert _all_files(root) == [] and not cache.exists()


def test_missing_kmnist_message_and_nothing_written(tmp_path):
    cache = tmp_path.parent / (tmp_path.name + "-cache")
    with pytest.raises(DatasetMissing) as info:
        load_dataset("kmnist", root=tmp_path, cache_dir=cache)
    msg = str(info.value)
    assert "kmnist" in msg
    for tried in [tmp_path / "kmnist" / "train-images-idx3-ubyte[.gz]",
                  tmp_path / "KMNIST" / "raw" / "train-labels-idx1-ubyte[.gz]"]:
        assert str(tried) in msg
    assert "torchvision.datasets.KMNIST" in msg and "codh.rois.ac.jp" in msg
    assert list(tmp_path.iterdir()) == [] and not cache.exists()


def test_download_failure_cleans_up(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    class FailingKMNIST:
        def __init__(self, root, train=True, download=False):
            raw = Path(root) / "KMNIST" / "raw"
            raw.mkdir(parents=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
            raise RuntimeError("simulated network failure")

    monkeypatch.setattr(tvd, "KMNIST", FailingKMNIST)
    root = tmp_path / "new" / "root"
    with pytest.raises(DatasetMissing) as info:
        load_dataset("kmnist", root=root, cache_dir=tmp_path / "c", download=True)
    assert "simulated network failure" in info.value.how
    assert "download" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # even the root it created is gone


def test_download_success_moves_complete_layout(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    images, labels = _digits(3, seed=9)

    class FakeKMNIST:
        def __init__(self, root, train=True, download=False):
            raw = Path(root) / "KMNIST" / "raw"
            raw.mkdir(parents=True)
            for prefix in ("train", "t10k"):
                write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
                write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)

    monkeypatch.setattr(tvd, "KMNIST", FakeKMNIST)
    split = load_dataset("kmnist", "test", root=tmp_path, cache_dir=tmp_path / "c", download=True)
    assert split.n == 3 and "KMNIST/raw" in split.source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["KMNIST"]
    np.testing.assert_array_equal(split.y.numpy(), labels)


# ---------------------------------------------------------------- registry, helpers

def test_registry_names_and_unknown():
    assert set(DATASETS) == {"mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100",
                             "office31", "imagenet", "tiny_imagenet", "ct_slice"}
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.description and spec.splits and callable(spec.loader)
    with pytest.raises(ValueError) as info:
        load_dataset("svhn")
    assert "cifar10" in str(info.value) and "ct_slice" in str(info.value)
    with pytest.raises(ValueError, match="no split"):
        load_dataset("mnist", "validation")
    with pytest.raises(ValueError, match="domain"):
        load_dataset("mnist", domain="amazon")


def test_to_float_and_class_subset():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    np.testing.assert_allclose(to_float(x).flatten().numpy(), [-1.0, -0.6, 1.0], atol=1e-6)
    f = to_float(x, 0.0, 1.0, dtype=torch.float64)
    assert f.dtype == torch.float64 and f.max() == 1.0 and f.min() == 0.0
    with pytest.raises(TypeError):
        to_float(x.float())

    from repalign.data import ImageSplit

    y = torch.tensor([0, 1, 2, 1, 0, 2, 1, 1])
    split = ImageSplit(x=torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1), y=y,
                       classes=["a", "b", "c"], source="toy")
    sub = class_subset(split, [2, 1])
    assert sub.y.tolist() == [1, 0, 1, 0, 1, 1] and sub.classes == ["c", "b"]
    assert sub.x.flatten().tolist() == [1, 2, 3, 5, 6, 7]
    kept = class_subset(split, [2, 1], remap=False)
    assert kept.y.tolist() == [1, 2, 1, 2, 1, 1] and kept.classes == ["a", "b", "c"]
    first = class_subset(split, [1], max_per_class=2)
    assert first.x.flatten().tolist() == [1, 3]
    g = torch.Generator().manual_seed(0)
    rand = class_subset(split, [1, 0], max_per_class=2, generator=g)
    assert rand.n == 4 and sorted(rand.y.tolist()) == [0, 0, 1, 1]
    assert "toy" in rand.source
