"""Config validation names the bad key; a missing dataset gives a clear not_run or error."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from repalign.config import config_errors, validate_config
from repalign.errors import ConfigError, DatasetMissing
from repalign.experiments.registry import ARTIFACTS, Resources, Tiered, artifact
from repalign.runner import run_step

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_shipped_config_is_valid():
    assert config_errors(DEFAULT, SCHEMA) == []


@pytest.mark.parametrize("key, value, needle", [
    ("tier", "huge", "'tier'"),
    ("seed", "abc", "'seed'"),
    ("n_seeds", 0, "'n_seeds'"),
    ("device", "gpu7", "'device'"),
    ("colour", "blue", "'colour' was unexpected"),
])
def test_bad_config_names_the_key(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        validate_config({**DEFAULT, key: value}, SCHEMA)


@dataclass(frozen=True)
class NoSettings:
    pass


@pytest.fixture
def kmnist_step():
    """A throw-away artifact that needs KMNIST, which is not available offline."""
    key = ("testpaper", "fig1")

    @artifact(*key, settings=Tiered.same(NoSettings()),
              resources=Tiered.same(Resources(runtime_min=1)))
    def needs_kmnist(ctx):
        from repalign.data import load_dataset
        load_dataset("kmnist", root=ctx.data_root, cache_dir=ctx.cache_dir)

    yield key
    del ARTIFACTS[key]


def test_missing_dataset_becomes_not_run_with_the_reason(kmnist_step, tmp_path):
    out = tmp_path / "results/testpaper/fig1.json"
    status = run_step("artifact", *kmnist_step, tier="smoke", out=out, device="cpu",
                      data_root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    assert status == "not_run"
    record = json.loads(out.read_text())
    assert record["status"] == "not_run"
    assert "kmnist" in record["reason"] and str(tmp_path / "data") in record["reason"]


def test_missing_dataset_with_missing_data_error_raises_and_writes_nothing(kmnist_step, tmp_path):
    out = tmp_path / "results/testpaper/fig1.json"
    with pytest.raises(DatasetMissing, match="kmnist"):
        run_step("artifact", *kmnist_step, tier="smoke", out=out, device="cpu",
                 data_root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                 missing_data="error")
    assert not out.exists() and not out.with_suffix(".npz").exists()


def test_unknown_artifact_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="imani2022/fig10"):
        run_step("artifact", "imani2022", "fig99", tier="smoke", out=tmp_path / "x.json")


def test_tiered_same_gives_every_tier_the_value_and_rejects_an_unknown_tier():
    light = Resources(runtime_min=5, mem_mb=2000)
    tiered = Tiered.same(light)
    assert [tiered[t] for t in ("smoke", "quick", "paper")] == [light] * 3
    with pytest.raises(ValueError, match="unknown tier 'huge'"):
        tiered["huge"]
