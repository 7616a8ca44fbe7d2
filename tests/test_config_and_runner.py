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
    ("epochs", -1, "'epochs' was unexpected.*Allowed keys: tier"),  # epochs are per tier, in code
    ("seed", -1, "'seed': -1 is less than the minimum of 0"),
    ("download", "maybe", "'download': 'maybe' is not of type 'boolean'"),
    ("missing_data", "skip", "'missing_data'.*not_run"),
])
def test_bad_config_names_the_key(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        validate_config({**DEFAULT, key: value}, SCHEMA)


@pytest.mark.parametrize("text, value", [("false", False), ("FALSE", False), ("no", False),
                                         ("True", True), ("yes", True), (True, True)])
def test_boolean_strings_from_the_command_line_are_booleans(text, value):
    """`snakemake --config download=false` passes the string 'false'."""
    config = {**DEFAULT, "download": text}
    validate_config(config, SCHEMA)
    assert config["download"] is value


def test_a_cuda_device_this_machine_lacks_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    config = {**DEFAULT, "device": "cuda", "cache_dir": str(tmp_path)}
    validate_config(dict(config), SCHEMA)  # the schema alone accepts it (a cluster's GPU node may have one)
    with pytest.raises(ConfigError, match=r"'device' is 'cuda', but this machine has 0 CUDA.*device=cpu"):
        validate_config(config, SCHEMA, machine=True)


def test_an_unwritable_cache_dir_is_a_config_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # a file where a folder should be: unwritable even for root
    config = {**DEFAULT, "device": "cpu", "cache_dir": str(blocker / "cache")}
    with pytest.raises(ConfigError, match=r"'cache_dir' resolves to .*a_file/cache, which is not a "
                                          r"writable folder.*--config cache_dir="):
        validate_config(config, SCHEMA, machine=True)
    validate_config({**config, "cache_dir": str(tmp_path / "new" / "cache")}, SCHEMA, machine=True)


@pytest.mark.parametrize("argv, needle", [(["--n-seeds", "0"], "--n-seeds: must be an integer >= 1"),
                                          (["--seed", "-3"], "--seed: must be an integer >= 0")])
def test_cli_rejects_an_empty_seed_list_and_a_negative_seed(argv, needle, tmp_path, capsys):
    from repalign.cli import main
    with pytest.raises(SystemExit):
        main(["run", "imani2022", "fig10", "--tier", "smoke", "--out", str(tmp_path / "r.json"), *argv])
    assert needle in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@dataclass(frozen=True)
class Epochs:
    epochs: int
    n_runs: int = 1


def test_negative_epochs_or_zero_runs_in_settings_name_the_step_and_tier():
    @artifact("testpaper", "negepochs", settings=Tiered(smoke=Epochs(-1), quick=Epochs(2), paper=Epochs(2)),
              resources=Tiered.same(Resources(runtime_min=1)))
    def step(ctx):
        raise AssertionError("never runs")
    try:
        with pytest.raises(ConfigError, match="testpaper/negepochs at the smoke tier has epochs=-1"):
            ARTIFACTS["testpaper", "negepochs"].settings_for("smoke")
        with pytest.raises(ConfigError, match="n_runs=0.*--n-seeds"):
            ARTIFACTS["testpaper", "negepochs"].settings_for("quick", n_seeds=0)
        assert ARTIFACTS["testpaper", "negepochs"].settings_for("quick", n_seeds=3).n_runs == 3
    finally:
        del ARTIFACTS["testpaper", "negepochs"]


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
