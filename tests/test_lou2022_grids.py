"""lou2022 Fig 4 and Figs 11–15 (batch size × learning rate grids): the correlation, gap,
centrality and stopping computations on hand-made cases, the stacked per-lr SGD against
separate runs, the batch-norm-free tangent view, and every grid step at the smoke tier on
synthetic data (CIFAR-100 absent: Fig 11 is ``not_run``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repalign.data.idx import write_idx
from repalign.experiments import ARTIFACTS
from repalign.experiments.lou2022 import grids
from repalign.experiments.lou2022.ffnn import StackedFFNN
from repalign.metrics import layer_tangent_alignment
from repalign.models import build
from repalign.models.batchnorm import tangent_view
from repalign.plots import draw
from repalign.results import read_result
from repalign.runner import run_step
from repalign.targets import evaluate_target, read_yaml
from repalign.train import EpochSampler, OptimConfig, train

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["lou2022"]["artifacts"]
FIGURES = ("fig4", "fig11", "fig12", "fig13", "fig14", "fig15")


def test_correlations_on_hand_made_cells():
    assert grids.correlations([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx((1.0, 1.0))
    r, rho = grids.correlations([1, 2, 3, 4], [1, 8, 27, 1000])  # monotone, not linear
    assert rho == pytest.approx(1.0) and 0 < r < 1
    assert grids.correlations([1, 2, 3], [3, 2, 1]) == pytest.approx((-1.0, -1.0))
    assert grids.correlations([1, 1, 1], [1, 2, 3]) == (0.0, 0.0)  # constant: no association


def _cell(b, lr, peak, test_loss, train_loss=0.1, test_acc=80.0, train_acc=97.0, layers=5, at=2):
    profile = np.full(layers, 0.1)
    profile[at] = peak
    return {"batch_size": b, "lr": lr, "profile": profile, "train_loss": train_loss, "test_loss": test_loss,
            "train_accuracy": train_acc, "test_accuracy": test_acc, "epochs": 3, "reached_target": True}


def test_cell_summary_gaps_peak_and_centrality():
    s = grids.cell_summary(_cell(32, 0.01, 0.7, test_loss=0.45, at=2))
    assert s["loss_gap"] == pytest.approx(0.35) and s["acc_gap"] == pytest.approx(17.0)
    assert s["layer_alignment.peak"] == 0.7 and s["argmax_layer"] == 3 and s["peak_centrality"] == 1.0
    assert grids.peak_centrality(np.array([3.0, 1, 1, 1, 1])) == 0.0
    assert grids.peak_centrality(np.array([1.0, 1, 1, 1, 3])) == 0.0
    assert grids.peak_centrality(np.array([1.0, 3, 1, 1, 1])) == pytest.approx(0.5)


def test_grid_correlations_follow_the_cells():
    """Peak rises with lr, falls with batch size; test loss falls as the peak rises."""
    cells = {}
    for b, lr, peak, loss in ((32, 0.001, 0.5, 0.5), (32, 0.01, 0.8, 0.3), (128, 0.001, 0.3, 0.7),
                              (128, 0.01, 0.6, 0.4)):
        cells[grids.cell_key(b, lr)] = _cell(b, lr, peak, loss)
    summaries = {k: grids.cell_summary(c) for k, c in cells.items()}
    corr = grids.grid_correlations(summaries, cells)
    assert corr["spearman.peak_height_vs_lr"] > 0 and corr["spearman.peak_height_vs_batch_size"] < 0
    assert corr["spearman.peak_height_vs_test_loss"] == pytest.approx(-1.0)
    assert corr["pearson.peak_height_vs_test_loss"] < -0.9
    assert corr["spearman.peak_centrality_vs_lr"] == 0.0  # every peak at the same layer
    assert all(np.isfinite(v) for v in corr.values())


def test_cross_and_full_grids():
    s = grids.STEPS["grid_vgg19_cifar10"].settings
    cross = s.quick.cells()
    assert len(cross) == 7 and len(set(cross)) == 7
    assert {(128, lr) for lr in s.quick.lrs} <= set(cross) and {(b, 0.0032) for b in s.quick.batch_sizes} <= set(cross)
    assert len(s.paper.cells()) == 16


def test_stop_at_train_loss_measures_each_model_at_its_epoch():
    stopper = grids.StopAtTrainLoss(3, steps_per_epoch=2, max_epochs=3, target=0.1,
                                    measure=lambda model, m: {"member": m}, device=torch.device("cpu"))
    per_epoch = [(0.5, 0.05, 1.0), (0.08, 0.5, 2.0), (0.5, 0.5, float("nan"))]
    stopped = []
    for epoch, losses in enumerate(per_epoch):
        for step in (2 * epoch + 1, 2 * epoch + 2):
            keep = stopper.observe(torch.tensor(losses))
            stopped.append(stopper(step, None))
    assert stopped == [False, False, False, False, False, True]
    assert stopper.done[1]["epochs"] == 1 and stopper.done[1]["reached_target"]
    assert stopper.done[0]["epochs"] == 2 and stopper.done[0]["member"] == 0
    assert stopper.done[2]["diverged"] and stopper.done[2]["epochs"] == 3
    assert not keep.any()  # every member finished (the diverged one on its NaN step)
    np.testing.assert_allclose(stopper.done[1]["epoch_train_loss"], [0.05])


def test_stacked_learning_rates_equal_separate_sgd_runs():
    """Training the stack with lr 1 on η_m(CE_m + λ/2‖w_m‖²) is SGD with lr η_m for each member."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    lrs, wd = [0.01, 0.2], 5e-3

    def run(net, loss_fn, lr):
        train(net, loss_fn, EpochSampler(64, 16, 1, seed=1), 12, OptimConfig("sgd", lr=lr, momentum=0.9,
              weight_decay=0.0 if lr == 1.0 else wd), desc="t")
        return net

    stack = StackedFFNN(6, 8, 3, 3, [5, 5])
    scale = torch.tensor(lrs)

    def stacked_loss(model, idx):
        ce = F.cross_entropy(model(x[idx[0]]).transpose(1, 2), y[idx[0]].expand(2, -1), reduction="none").mean(1)
        return scale * (ce + sum(w.pow(2).sum(dim=(1, 2)) for w in model.weights) * wd / 2)

    run(stack, stacked_loss, 1.0)
    for m, lr in enumerate(lrs):
        single = StackedFFNN(6, 8, 3, 3, [5])
        run(single, lambda model, idx: F.cross_entropy(model(x[idx[0]])[0], y[idx[0]]), lr)
        for w_stack, w_single in zip(stack.weights, single.weights):
            torch.testing.assert_close(w_stack[m], w_single[0], rtol=1e-4, atol=1e-5)


def test_a_callback_returning_true_ends_training():
    net = StackedFFNN(4, 4, 2, 2, [0])
    log = train(net, lambda model, idx: model(torch.ones(len(idx[0]), 4)).pow(2).mean(), EpochSampler(8, 4),
                50, OptimConfig("sgd", lr=0.01), callback=lambda step, model: step == 7, desc="t")
    assert log.losses.shape == (7, 1)


def test_tangent_profile_equals_layer_tangent_alignment(monkeypatch):
    net = tangent_view(build("vgg19", 10, seed=0, width=2))
    x, y = torch.randn(6, 3, 32, 32), F.one_hot(torch.arange(6) % 10, 10).float()
    expected = layer_tangent_alignment(net, x, y, method="fast")
    one_pass = grids.tangent_profile(net, x, y)
    monkeypatch.setattr(grids, "ONE_PASS_ELEMENTS", 0)  # the layer-at-a-time route
    per_layer = grids.tangent_profile(net, x, y)
    for profile in (one_pass, per_layer):
        assert list(profile) == list(expected)
        np.testing.assert_allclose(list(profile.values()), [float(v) for v in expected.values()], rtol=1e-4)


def test_tangent_view_is_the_same_function_without_batchnorm_parameters():
    net = build("resnet18", 10, seed=0, width=2)
    net.train()
    net(torch.randn(16, 3, 32, 32))  # move the running statistics
    net.eval()
    x = torch.randn(4, 3, 32, 32)
    view = tangent_view(net)
    torch.testing.assert_close(view(x), net(x))
    owners = {type(m) for m in view.modules() if next(m.parameters(recurse=False), None) is not None}
    assert owners == {torch.nn.Conv2d, torch.nn.Linear}


def _images(n: int, shape: tuple, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0..n_classes-1 in turn; each class brightens its own band of pixels, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = rng.integers(0, 100, size=(n, int(np.prod(shape))))
    band = x.shape[1] // n_classes
    for i, label in enumerate(y):
        x[i, label * band:(label + 1) * band] += 150
    return x.reshape(n, *shape).astype(np.uint8), y


def _write_fake_root(root: Path, n: int = 200) -> None:
    """Fashion-MNIST (idx) and CIFAR-10 (python pickles) stand-ins of ``n`` images per split."""
    (root / "fashion-mnist").mkdir(parents=True)
    for seed, prefix in enumerate(("train", "t10k")):
        x, y = _images(n, (28, 28), 10, seed)
        write_idx(root / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    with open(cifar / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, fh)
    for seed, names in enumerate(([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"])):
        x, y = _images(n, (3, 32, 32), 10, seed + 2)
        for name, idx in zip(names, np.array_split(np.arange(n), len(names))):
            with open(cifar / name, "wb") as fh:
                pickle.dump({b"data": x[idx].reshape(len(idx), -1), b"labels": y[idx].tolist()}, fh)


def _run_grid_steps(work: Path) -> None:
    options = {"tier": "smoke", "device": "cpu", "data_root": str(work / "data"), "cache_dir": str(work / "cache")}
    for name in grids.STEPS:
        run_step("model", "lou2022", name, out=work / "models" / f"{name}.pt", **options)
    for figure in FIGURES:
        inputs = {m: work / "models" / f"{m}.pt" for m in ARTIFACTS[("lou2022", figure)].needs}
        run_step("artifact", "lou2022", figure, out=work / f"{figure}.json", inputs=inputs, **options)


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    work = tmp_path_factory.mktemp("lou2022_grids")
    _write_fake_root(work / "data")
    (work / "models").mkdir()
    _run_grid_steps(work)
    return work


@pytest.mark.parametrize("figure", FIGURES)
def test_smoke_step_writes_every_named_metric_and_plots(smoke_results, figure):
    record = read_result(smoke_results / f"{figure}.json")
    draw("lou2022", figure, smoke_results / f"{figure}.json", smoke_results / "figures" / f"{figure}.png")
    assert (smoke_results / "figures" / f"{figure}.png").stat().st_size > 1000
    if figure == "fig11":  # no CIFAR-100 among the synthetic datasets
        assert record["status"] == "not_run" and "cifar100" in record["reason"]
        return
    assert record["status"] == "ok"
    for target in TARGETS[figure]["targets"]:
        scored = evaluate_target("lou2022", figure, target, record)
        assert scored.status != "fail", (target["id"], scored.reason)


def test_colour_bar_ticks_keep_enough_decimals_to_differ():
    """A narrow test-loss range (2.30802 ... 2.30804 at the smoke tier) must not print as one repeated tick."""
    from repalign.plots.lou2022_grids import _decimals
    ticks = np.linspace(2.30802, 2.30804, 5)
    labels = {f"{t:.{_decimals(ticks[-1] - ticks[0])}f}" for t in ticks}
    assert len(labels) == len(ticks)
    assert _decimals(0.3) == 2
