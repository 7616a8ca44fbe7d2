"""Data-root and cache-dir precedence: configured > environment > default."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repalign.data import load_dataset, resolve_cache_dir, resolve_data_root
from repalign.data.idx import write_idx


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("REPALIGN_DATA", raising=False)
    assert resolve_data_root() == Path("data")
    assert resolve_data_root(None) == Path("data")
    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "cfg") == tmp_path / "cfg"
    assert resolve_data_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    monkeypatch.setenv("REPALIGN_DATA", "")
    assert resolve_data_root() == Path("data")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("REPALIGN_CACHE", raising=False)
    assert resolve_cache_dir() == Path.home() / ".cache" / "repalign"
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "cfg") == tmp_path / "cfg"


def test_load_dataset_uses_env_root_unless_configured(monkeypatch, tmp_path):
    def mnist_root(path, n):
        (path / "mnist").mkdir(parents=True)
        write_idx(path / "mnist" / "t10k-images-idx3-ubyte", np.zeros((n, 28, 28), np.uint8))
        write_idx(path / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(n, np.uint8))
        return path

    env_root = mnist_root(tmp_path / "env", 2)
    cfg_root = mnist_root(tmp_path / "cfg", 3)
    monkeypatch.setenv("REPALIGN_DATA", str(env_root))
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "cache"))
    assert load_dataset("mnist", "test").n == 2
    assert load_dataset("mnist", "test", root=cfg_root).n == 3
    monkeypatch.delenv("REPALIGN_DATA")
    monkeypatch.chdir(tmp_path / "env" / "..")
    (tmp_path / "data").symlink_to(cfg_root)
    assert load_dataset("mnist", "test").n == 3  # ./data
