"""canatar2022: feature-space kernel measures against their n × n forms, the traced NTK of the
Sec. VI FFNN against per-example Jacobians, the grid's bookkeeping, and every smoke step writing
every metric its targets name (on real data from $REPALIGN_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, jacrev, vmap

from repalign.experiments.canatar2022.ffnn import make_ffnn
from repalign.experiments.canatar2022.kernels import cka, feature_spectrum, rank99
from repalign.experiments.canatar2022.resnet import MODEL_LAYER, SETTINGS, grid, layer_features, pearson
from repalign.experiments.canatar2022.spectra import pick
from repalign.metrics import cumulative_power, kernel_alignment, traced_ntk
from repalign.models import build, layer_names
from repalign.experiments.storage import load_model_file
from repalign.results import read_result
from repalign.targets import evaluate_target, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = read_yaml((ROOT / "paper_targets.yaml").read_text())["canatar2022"]["artifacts"]


@pytest.mark.parametrize("n, p", [(60, 8), (12, 30)])
def test_feature_space_cka_equals_the_n_by_n_form(n, p):
    g = torch.Generator().manual_seed(0)
    psi = torch.randn(n, p, generator=g, dtype=torch.float64) + 0.5
    y = F.one_hot(torch.arange(n) % 10, 10).double()
    x = torch.randn(n, 40, generator=g, dtype=torch.float64)
    for other in (y, x):
        full = kernel_alignment(psi @ psi.T, other @ other.T, centered=True)
        assert cka(psi, other) == pytest.approx(float(full), rel=1e-10)


@pytest.mark.parametrize("n, p", [(50, 7), (9, 20)])
def test_feature_spectrum_equals_the_n_by_n_eigendecomposition(n, p):
    g = torch.Generator().manual_seed(1)
    psi = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = F.one_hot(torch.arange(n) % 3, 3).double()
    spec = feature_spectrum(psi, y)
    kernel = psi @ psi.T
    eigs = torch.linalg.eigvalsh(kernel).flip(0).numpy()
    r = min(n, p)
    np.testing.assert_allclose(spec["eigs"][:r], eigs[:r], rtol=1e-9)
    np.testing.assert_allclose(spec["cum_power"][:r], cumulative_power(kernel, y).numpy()[:r], rtol=1e-9, atol=1e-12)


def test_rank99_counts_the_modes_holding_99_percent():
    assert rank99(np.array([50.0, 49.0, 0.5, 0.5])) == 2
    assert rank99(np.array([1.0] * 10)) == 10


def test_traced_ntk_of_the_ffnn_matches_per_example_jacobians():
    """Eq. 8, (1/C) Σ_c ∇f_c(x)·∇f_c(x'), through the NTK-parametrised layers (scales before each Linear)."""
    net = make_ffnn(6, 5, 4, 3, seed=0).double()
    for module in net:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.bias, generator=torch.Generator().manual_seed(2))  # nonzero biases count too
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    params = {k: v.detach() for k, v in net.named_parameters()}
    jac = vmap(jacrev(lambda p, xi: functional_call(net, p, (xi[None],))[0]), in_dims=(None, 0))(params, x)
    j = torch.cat([v.reshape(7, 3, -1) for v in jac.values()], 2)  # [n, C, params]
    naive = torch.einsum("icp,jcp->ij", j, j) / 3
    torch.testing.assert_close(traced_ntk(net, x), naive, rtol=1e-10, atol=1e-12)


def test_ffnn_effective_weights_have_variance_one_over_fan_in():
    net = make_ffnn(784, 200, 4, 10, seed=0)
    x = torch.randn(4000, 784, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        first = net[1](net[0](x))  # pre-activations of layer 1: variance ‖x‖²/784 ≈ 1
    assert first.var().item() == pytest.approx(1.0, rel=0.05)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in net if isinstance(m, torch.nn.Linear))


def test_resnet11_has_ten_measurement_layers_with_the_papers_last_widths():
    net = build("resnet11", 10, seed=0, width=8)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 11
    assert set(MODEL_LAYER.values()) <= set(layer_names(net))
    feats = layer_features(net, torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8))
    assert list(feats) == [f"layer{k}" for k in range(1, 11)]
    # the paper's N_9 = 512 and N_10 = 256 at width 64, i.e. 64 and 32 at width 8
    assert feats["layer9"].shape == (3, 64) and feats["layer10"].shape == (3, 32)


def test_the_grid_has_48_configurations_and_smoke_differs_in_every_factor():
    full = grid(SETTINGS.paper)
    assert len(full) == 48 and len({tuple(sorted(c.items())) for c in full}) == 48
    a, b = grid(SETTINGS.smoke)
    assert all(a[k] != b[k] for k in a)


def test_pearson_is_nan_for_a_constant_column():
    assert np.isnan(pearson(np.ones(4), np.arange(4.0)))
    assert pearson(np.arange(4.0), 2 * np.arange(4.0)) == pytest.approx(1.0)


def test_high_cka_pick_has_high_last_layer_cka_and_is_not_the_best():
    def run(acc, c9, c10):
        return {"test_accuracy": acc, "cka_target_train": np.r_[np.zeros(8), c9, c10]}

    runs = [run(50, 0.1, 0.1), run(60, 0.95, 0.97), run(70, 0.9, 0.99), run(80, 0.2, 0.3), run(90, 0.99, 0.99)]
    assert pick(runs, "high_cka")["test_accuracy"] == 60
    assert pick(runs, "worst")["test_accuracy"] == 50 and pick(runs, "best")["test_accuracy"] == 90


@pytest.fixture(scope="module")
def smoke_results(request):
    """canatar2022's results in the session's smoke DAG (``conftest.smoke_dag``: both models and every
    artifact at the smoke tier), read instead of running the steps again."""
    if not os.environ.get("REPALIGN_DATA"):
        pytest.skip("no $REPALIGN_DATA: the smoke steps read real MNIST and CIFAR-10")
    out = request.getfixturevalue("smoke_dag") / "results" / "canatar2022"
    for model in ("ffnn_mnist", "resnet_grid"):
        assert load_model_file(out / "models" / f"{model}.pt", torch.device("cpu"))["status"] == "ok", model
    return out


@pytest.mark.parametrize("artifact", sorted(TARGETS))
def test_smoke_step_writes_every_metric_its_targets_name(smoke_results, artifact):
    record = read_result(smoke_results / f"{artifact}.json")
    assert record["status"] == "ok", record.get("reason")
    for target in TARGETS[artifact]["targets"]:
        scored = evaluate_target("canatar2022", artifact, target, record)
        assert scored.status != "fail", (target["id"], scored.reason)
        if scored.status == "not_run" and "constant over" in (scored.reason or ""):
            assert artifact in ("fig1", "fig6", "table1"), (target["id"], scored.reason)  # tiny grid: chance accuracy
