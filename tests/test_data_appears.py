"""Data that appears re-runs exactly the steps that lacked it; a wrong data root loses nothing.

Unit tests drive ``run_step`` and ``repalign.availability`` with a throw-away step; the
workflow test runs one small real figure (imani2022 fig2: one MNIST model and one
artifact) through snakemake in a scratch copy, on a synthetic MNIST written by the test.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_workflow, snakemake

from repalign.availability import current_key, read_data_record, step_datasets, workflow_key
from repalign.data.idx import write_idx
from repalign.data.paths import require_data_root
from repalign.data.registry import DATASETS, dataset_present
from repalign.errors import ConfigError, DatasetMissing
from repalign.experiments.registry import ARTIFACTS, Resources, Tiered, artifact
from repalign.results import Result
from repalign.runner import run_step


def write_mnist(root, folder="mnist", n=300):
    """A synthetic MNIST-like set (classes 0..9 cycling, random pixels) in the plain layout."""
    rng = np.random.default_rng(0)
    (root / folder).mkdir(parents=True)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{folder}/{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{folder}/{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))


@dataclass(frozen=True)
class Runs:
    n_runs: int


@pytest.fixture
def mnist_step():
    """A throw-away artifact: one metric from MNIST, a second from KMNIST when present."""
    key = ("testpaper", "figdata")

    @artifact(*key, settings=Tiered(Runs(1), Runs(2), Runs(2)), resources=Tiered.same(Resources(runtime_min=1)))
    def needs_mnist(ctx):
        from repalign.data import load_dataset
        from repalign.errors import DatasetMissing
        result = Result(metrics={"mean_pixel": float(load_dataset("mnist", root=ctx.data_root).x.float().mean())})
        try:
            result.metrics["kmnist_n"] = float(load_dataset("kmnist", root=ctx.data_root).x.shape[0])
        except DatasetMissing as exc:
            result.not_run["kmnist_n"] = str(exc)
        return result

    yield key
    del ARTIFACTS[key]


def run(key, out, root, tier="smoke", data_key=None):
    return run_step("artifact", *key, tier=tier, out=out, device="cpu", data_root=str(root),
                    cache_dir=str(root.parent / "cache"), data_key=data_key)


def test_a_not_run_result_changes_its_key_once_its_data_appears(mnist_step, tmp_path):
    root, out = tmp_path / "data", tmp_path / "results/figdata.json"
    root.mkdir()
    key = current_key(["kmnist", "mnist"], root)
    assert key == "kmnist=missing mnist=missing"
    assert run(mnist_step, out, root, data_key=key) == "not_run"
    # the step stopped at MNIST and never looked for KMNIST
    assert read_data_record(out) == {"key": key, "lacking": ["mnist"]}
    assert workflow_key(out, ["kmnist", "mnist"], root) == key          # same key: nothing re-runs

    write_mnist(root, "kmnist")                                         # data it never looked for:
    assert workflow_key(out, ["kmnist", "mnist"], root) == key          # still nothing re-runs
    shutil.rmtree(root / "kmnist")
    write_mnist(root)
    new_key = workflow_key(out, ["kmnist", "mnist"], root)
    assert new_key == "kmnist=missing mnist=present"                    # changed: the step re-runs
    assert run(mnist_step, out, root, data_key=new_key) == "ok"
    # partial (kmnist still missing): the key it ran with is kept, kmnist is looked up again
    assert read_data_record(out) == {"key": new_key, "lacking": ["kmnist"]}
    assert workflow_key(out, ["kmnist", "mnist"], root) == new_key


def test_a_complete_result_keeps_its_key_whatever_the_data_root_shows(mnist_step, tmp_path):
    root, out = tmp_path / "data", tmp_path / "results/figdata.json"
    write_mnist(root)
    write_mnist(root, "kmnist")               # KMNIST as well: the result is complete
    # a key saying kmnist=missing stands for data the run downloaded itself: no re-run afterwards
    key = "kmnist=missing mnist=present"
    assert run(mnist_step, out, root, data_key=key) == "ok"
    assert read_data_record(out)["lacking"] == []
    assert workflow_key(out, ["kmnist", "mnist"], root) == key
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    assert workflow_key(out, ["kmnist", "mnist"], empty) == key       # a wrong root re-runs nothing


def test_an_ok_result_is_kept_when_a_run_lacks_its_data(mnist_step, tmp_path, caplog):
    root, out = tmp_path / "data", tmp_path / "results/figdata.json"
    write_mnist(root)
    assert run(mnist_step, out, root) == "ok"
    before = out.read_bytes(), out.with_suffix(".npz").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(mnist_step, out, empty) == "kept"
    assert (out.read_bytes(), out.with_suffix(".npz").read_bytes()) == before
    assert "kept the existing output" in caplog.text and "mnist" in caplog.text
    # a partial run (KMNIST missing) does not replace a result that has the KMNIST metric
    write_mnist(root, "kmnist")
    assert run(mnist_step, out, root) == "ok"
    full = out.read_bytes()
    (root / "kmnist/train-labels-idx1-ubyte").unlink()
    assert run(mnist_step, out, root) == "kept"
    assert out.read_bytes() == full and "lacks 1 of its metrics (e.g. kmnist_n)" in caplog.text
    # another tier is another request: its not_run replaces the smoke result
    assert run(mnist_step, out, empty, tier="quick") == "not_run"
    assert json.loads(out.read_text())["status"] == "not_run"


def test_step_datasets_come_from_paper_targets_and_models_inherit_their_artifacts():
    targets = {"p": {"artifacts": {"a1": {"data": ["mnist", "synthetic"]},
                                   "a2": {"data": ["cifar10", "weights:resnet18_imagenet"]}}}}
    steps = {("p", "a1"): type("S", (), {"needs": ("m",)}), ("p", "a2"): type("S", (), {"needs": ("m",)})}
    assert step_datasets(targets, steps, "artifact", "p", "a1") == ("mnist",)
    assert step_datasets(targets, steps, "model", "p", "m") == ("cifar10", "mnist", "weights:resnet18_imagenet")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_no_dataset_is_present_in_an_empty_root(name, tmp_path):
    assert DATASETS[name].present_when, f"{name} declares no layout"
    assert not dataset_present(name, tmp_path)


def test_mnist_is_present_once_its_four_files_are_there(tmp_path):
    write_mnist(tmp_path)
    assert dataset_present("mnist", tmp_path)
    (tmp_path / "mnist/t10k-labels-idx1-ubyte").unlink()
    assert not dataset_present("mnist", tmp_path)                       # an incomplete layout is absent


def test_a_configured_data_root_must_exist(tmp_path, monkeypatch):
    monkeypatch.delenv("REPALIGN_DATA", raising=False)
    missing = tmp_path / "nonexistent/data"
    with pytest.raises(ConfigError, match=r"config key 'data_root'.*nonexistent/data"):
        require_data_root(str(missing))
    monkeypatch.setenv("REPALIGN_DATA", str(missing))
    with pytest.raises(ConfigError, match=r"REPALIGN_DATA.*nonexistent/data"):
        require_data_root(None)
    monkeypatch.delenv("REPALIGN_DATA")
    monkeypatch.chdir(tmp_path)
    assert require_data_root(None).name == "data"                       # the default may be absent


@pytest.mark.workflow
def test_added_data_reruns_only_what_it_unlocks_and_a_wrong_root_loses_nothing(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    data, empty = tmp_path / "data", tmp_path / "empty"
    data.mkdir()
    empty.mkdir()
    target = "imani2022_fig2"
    result, model = workdir / "results/imani2022/fig2.json", workdir / "results/imani2022/models/shuffled_mnist.pt"

    def smk(root, *args, check=True):  # --config last: it takes every word after it
        return snakemake(workdir, target, *args, "--config", f"data_root={root}", "download=False", check=check)

    smk(data, "imani2022_fig4")                       # no data yet (fig4: a step whose data key is empty)
    assert json.loads((workdir / "results/imani2022/fig4.json").read_text())["status"] == "ok"
    assert json.loads(result.read_text())["status"] == "not_run"
    assert "Nothing to be done" in smk(data, "-n").stdout

    write_mnist(data)                                                   # the data appears
    ran = smk(data)
    assert "rule train_model" in ran.stderr and "rule run_artifact" in ran.stderr
    assert json.loads(result.read_text())["status"] == "ok"
    assert "Nothing to be done" in smk(data, "-n").stdout

    assert "Nothing to be done" in smk(empty, "-n").stdout              # a wrong root re-runs nothing
    kept = result.read_bytes(), model.read_bytes()
    forced = smk(empty, "--forcerun", "train_model", "run_artifact")    # forced: jobs run, lack the data
    assert "kept the existing output" in forced.stderr
    assert (result.read_bytes(), model.read_bytes()) == kept            # ... and snakemake kept the files

    bad = smk(tmp_path / "nonexistent/data", check=False)               # a typo in the path
    assert bad.returncode != 0
    assert "data_root" in bad.stderr and "nonexistent/data" in bad.stderr
    assert (result.read_bytes(), model.read_bytes()) == kept


def test_weights_are_present_once_the_file_the_experiment_looks_for_exists(tmp_path, monkeypatch):
    from repalign.availability import is_present
    from repalign.experiments.imani2022.pretrained import pretrained_state

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert not is_present("weights:resnet18_imagenet")
    with pytest.raises(DatasetMissing) as info:
        pretrained_state("resnet18", download=False)
    wanted = Path(info.value.tried[0])
    wanted.parent.mkdir(parents=True)
    wanted.write_bytes(b"")
    assert is_present("weights:resnet18_imagenet")
    assert not is_present("weights:resnet50_imagenet")
