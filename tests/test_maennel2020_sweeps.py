"""maennel2020 App. B sweeps (Figs 12–15): group draws, tier sizes, the per-group summaries, and the
whole step on a tiny synthetic CIFAR stand-in (the real-data smoke run is in the smoke DAG)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.data.splits import ImageSplit
from repalign.errors import NonFiniteLoss
from repalign.experiments import load_paper
from repalign.experiments.maennel2020 import sweeps, transfer
from repalign.experiments.maennel2020.protocol import make_model
from repalign.experiments.registry import ARTIFACTS
from repalign.plots import draw
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml

TARGETS = read_yaml((Path(__file__).resolve().parents[1] / "paper_targets.yaml").read_text())["maennel2020"][
    "artifacts"]
load_paper("maennel2020")
SWEEPS = {"fig12": sweeps.EXPERIMENTS_A, "fig13": sweeps.EXPERIMENTS_B, "fig14": sweeps.IMAGENET_A,
          "fig15": sweeps.IMAGENET_B}


@pytest.mark.parametrize("fig", sorted(SWEEPS))
def test_groups_are_drawn_in_the_papers_ranges_and_the_tiers_share_a_prefix(fig):
    sweep = SWEEPS[fig]
    paper = sweeps.sweep_groups(ARTIFACTS[("maennel2020", fig)].settings.paper)
    quick = sweeps.sweep_groups(ARTIFACTS[("maennel2020", fig)].settings.quick)
    assert len(paper) == 3 * sweep.groups_per_arch
    assert [g for g in paper if g in quick] == quick  # quick runs the paper's first groups of each arch
    for g in paper:
        assert sweep.init_scale[0] <= g.init_scale <= sweep.init_scale[1] and sweep.lr[0] <= g.lr <= sweep.lr[1]
        assert g.n_up in sweep.n_up and g.classes_up in sweep.classes_up and g.epochs_up in sweep.epochs_up
        assert g.init_algorithm in sweep.init_algorithms
        if g.arch == "simple_cnn":
            assert g.options["n_conv"] in sweep.n_conv and g.options["units"] in sweep.units
            assert g.options["filters"] in sweep.filters
        else:
            assert g.options == {}
    assert paper == sweeps.sweep_groups(ARTIFACTS[("maennel2020", fig)].settings.paper)  # seeded


def test_log_uniform_draws_cover_the_range_on_a_log_scale():
    scales = np.array([g.init_scale for g in sweeps.draw_groups(sweeps.EXPERIMENTS_B, "vgg16", 400)])
    assert 0.4 < np.mean(scales < math.sqrt(0.5 * 2.0)) < 0.6  # geometric midpoint: a uniform draw gives 1/3
    assert np.mean(scales < 1.25) > 0.6  # arithmetic midpoint: log-uniform gives 0.66, a uniform draw 1/2


def test_sets_draw_their_own_groups_and_only_b_draws_orthogonal():
    a = sweeps.draw_groups(sweeps.EXPERIMENTS_A, "resnet18", 20)
    b = sweeps.draw_groups(sweeps.EXPERIMENTS_B, "resnet18", 20)
    assert {g.init_algorithm for g in a} == {"he"} and {g.init_algorithm for g in b} == {"he", "orthogonal"}
    assert [g.n_up for g in a] != [g.n_up for g in b]


def test_an_orthogonal_group_builds_an_orthogonal_network():
    group = next(g for g in sweeps.draw_groups(sweeps.EXPERIMENTS_B, "vgg16", 20) if g.init_algorithm == "orthogonal")
    setup = sweeps.group_setup(group, sweeps.SweepSettings(sweeps.EXPERIMENTS_B, 1, 1, width=4))
    net = make_model(setup.arch, 10, 0, setup.init_scale, "cpu", **setup.options)
    w = net.conv2.weight.detach().reshape(net.conv2.weight.shape[0], -1).double() / group.init_scale
    torch.testing.assert_close(w @ w.T, torch.eye(w.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)


def test_paper_tier_sizes_are_app_b():
    s = ARTIFACTS[("maennel2020", "fig12")].settings.paper
    ts = sweeps.transfer_settings(s)
    assert (s.groups_per_arch, s.n_runs, ts.n_down) == (20, 2, 25000)
    assert ts.steps_down == 200 * (25000 // 256)  # 200 epochs, last batch dropped
    assert ts.variants == ("pretrained", "transfer_first", "scratch")
    assert sweeps.transfer_settings(ARTIFACTS[("maennel2020", "fig14")].settings.paper).variants == \
        ("pretrained", "scratch")  # App. B.3: always all layers
    assert sweeps.steps(120, 20000, 1.0) == 9360 and sweeps.steps(80, 20000, 1.0) == 6240  # App. A.5 / Fig 10
    group = sweeps.draw_groups(sweeps.EXPERIMENTS_A, "vgg16", 1)[0]
    setup = sweeps.group_setup(group, s)
    assert (setup.n_up, setup.steps_up, setup.lr, setup.classes_up) == (
        group.n_up, group.epochs_up * (group.n_up // 256), group.lr, group.classes_up)
    assert setup.options == {"width": 64, "init_algorithm": "he"}


def _point(real, first, random, test=(0.5, 0.5, 0.5)):
    """A group's AUCs: (pretrained, transfer_first) against scratch = 0.5 everywhere."""
    return {("train_real", "pretrained"): real, ("train_real", "transfer_first"): first,
            ("train_real", "scratch"): 0.5, ("train_random", "pretrained"): random,
            ("train_random", "transfer_first"): 0.5, ("train_random", "scratch"): 0.5,
            ("test_real", "pretrained"): test[0], ("test_real", "transfer_first"): test[1],
            ("test_real", "scratch"): test[2]}


def test_summary_counts_groups_where_pretraining_beats_scratch():
    groups = [sweeps.Group(a, "he", 1.0, 0.01, 5000, 10, 20) for a in ("simple_cnn", "vgg16", "vgg16", "resnet18")]
    points = [_point(0.6, 0.4, 0.4), _point(0.7, 0.55, 0.6, test=(0.4, 0.6, 0.5)), _point(0.45, 0.5, 0.6),
              _point(0.5, 0.6, 0.6)]  # the last: a tie with scratch is not faster
    m, not_run = sweeps.summarise(groups, points, ("pretrained", "transfer_first", "scratch"))
    assert not not_run and m["n_groups"] == 4
    assert m["frac_groups_faster.train_real.all"] == 0.5 and m["frac_groups_faster.train_real.vgg16"] == 0.5
    assert m["frac_groups_faster.train_real.simple_cnn"] == 1.0 and m["frac_groups_faster.train_real.resnet18"] == 0
    assert m["frac_groups_faster.train_random.all"] == 0.75
    assert m["frac_groups_faster.train_real.all_first_layer"] == 0.5
    assert m["mean_auc_gain.train_real.all"] == pytest.approx(0.0625)
    assert m["mean_auc_gain.train_real.all_first_layer"] == pytest.approx((-0.1 + 0.05 + 0.0 + 0.1) / 4)
    assert m["n_groups_test_improved.vgg16"] == 0 and m["n_groups_test_improved.vgg16_first_layer"] == 1
    assert m["n_groups_test_improved.all"] == 0


def test_an_architecture_without_points_is_not_run_not_nan():
    groups = [sweeps.Group("vgg16", "he", 1.0, 0.01, 5000, 10, 20)]
    m, not_run = sweeps.summarise(groups, [_point(0.6, 0.4, 0.4)], ("pretrained", "transfer_first", "scratch"))
    assert "frac_groups_faster.train_real.resnet18" in not_run and "frac_groups_faster.train_real.resnet18" not in m
    assert all(math.isfinite(v) for v in m.values())


@pytest.fixture
def tiny_cifar(monkeypatch):
    """A 100 + 40 image random stand-in for CIFAR-10 (labels = brightest channel, so learnable)."""
    def fake(ctx, split="train"):
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        x = torch.randint(0, 256, (100 if split == "train" else 40, 3, 32, 32), dtype=torch.uint8, generator=g)
        y = x.float().mean(dim=(2, 3)).argmax(1)
        return ImageSplit(x, y, [str(i) for i in range(10)], "fake")
    monkeypatch.setattr(transfer, "load_cifar", fake)
    monkeypatch.setattr(sweeps, "load_cifar", fake)


@pytest.mark.parametrize("fig", ["fig12", "fig13"])
def test_smoke_step_writes_every_target_metric_and_draws(fig, tiny_cifar, tmp_path):
    out = tmp_path / f"{fig}.json"
    assert run_step("artifact", "maennel2020", fig, tier="smoke", out=out, device="cpu") == "ok"
    result = read_result(out)
    assert result["metrics"]["n_groups"] == 3 and result["metrics"]["n_groups_diverged"] == 0
    for target in TARGETS[fig]["targets"]:
        assert evaluate_target("maennel2020", fig, target, result).status != "fail", target["id"]
        for name in _metric_names(target):
            assert math.isfinite(result["metrics"][name]), name
    draw("maennel2020", fig, out, tmp_path / f"{fig}.png")
    assert (tmp_path / f"{fig}.png").stat().st_size > 0


def _metric_names(target) -> list[str]:
    return re.findall(r"[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+|n_groups", target.get("metric") or target["claim"])


def test_a_diverged_group_has_no_point_and_is_counted(tiny_cifar, monkeypatch, tmp_path):
    real = sweeps.transfer_run

    def diverge_vgg(ctx, setup, *args, **kwargs):
        if setup.arch == "vgg16":
            raise NonFiniteLoss("the loss became non-finite at step 1")
        return real(ctx, setup, *args, **kwargs)
    monkeypatch.setattr(sweeps, "transfer_run", diverge_vgg)
    out = tmp_path / "fig12.json"
    assert run_step("artifact", "maennel2020", "fig12", tier="smoke", out=out, device="cpu") == "ok"
    record = json.loads(out.read_text())
    assert record["metrics"]["n_groups"] == 2 and record["metrics"]["n_groups_diverged"] == 1
    assert "frac_groups_faster.train_real.vgg16" in record["not_run_metrics"]
    assert any(n.startswith("DIVERGED (no point): vgg16") for n in record["notes"])


@pytest.mark.parametrize("fig", ["fig14", "fig15"])
def test_imagenet_sweeps_are_not_run_offline_naming_imagenet(fig, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / f"{fig}.json"
    status = run_step("artifact", "maennel2020", fig, tier="smoke", out=out, device="cpu",
                      data_root=str(tmp_path / "empty"))
    record = json.loads(out.read_text())
    assert status == "not_run" and "imagenet" in record["reason"] and str(tmp_path / "empty") in record["reason"]
    draw("maennel2020", fig, out, tmp_path / f"{fig}.png")
    assert (tmp_path / f"{fig}.png").stat().st_size > 0


def test_targets_name_metrics_the_sweep_writes():
    names = {n for fig in SWEEPS for t in TARGETS[fig]["targets"] for n in _metric_names(t)}
    suffixes = ("simple_cnn", "vgg16", "resnet18", "all")
    for name in names:
        head = name.split(".")[0]
        assert head in ("n_groups", "frac_groups_faster", "mean_auc_gain", "n_groups_test_improved"), name
        if head != "n_groups":
            assert name.split(".")[-1].removesuffix(sweeps.FIRST_LAYER) in suffixes, name


def test_the_test_panel_is_measured_on_test_images_for_every_real_label_run(tiny_cifar, monkeypatch):
    seen = []

    class Recording(sweeps.AccuracyCurve):
        def __init__(self, steps, images, labels):
            super().__init__(steps, images, labels)
            seen.append(images)
    monkeypatch.setattr(sweeps, "AccuracyCurve", Recording)
    s = ARTIFACTS[("maennel2020", "fig12")].settings.smoke
    ctx = type("Ctx", (), {"seeds": [0], "device": torch.device("cpu"), "name": "fig12"})()
    aucs = sweeps.group_aucs(ctx, sweeps.sweep_groups(s)[2], s)  # the ResNet18 group
    test = sweeps.load_cifar(ctx, "test")
    assert len(seen) == 3  # pretrained, transfer_first, scratch with real labels; none for random labels
    for images in seen:
        assert images.shape[0] == s.n_test and all(any(torch.equal(im, t) for t in test.x) for im in images)
    assert set(aucs) == {(p, v) for p in sweeps.PANELS for v in ("pretrained", "transfer_first", "scratch")}
