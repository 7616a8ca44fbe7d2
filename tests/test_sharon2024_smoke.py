"""sharon2024 at the smoke tier: every run and all 21 figures, and no target fails.

Needs real CIFAR-10 under $REPALIGN_DATA (CI points it at ../shared/data); Tiny ImageNet is
absent offline, so its runs and figures must come back ``not_run`` naming the dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from repalign.experiments import ARTIFACTS, MODELS
from repalign.experiments.sharon2024.figures import FIGURES
from repalign.experiments.sharon2024.runs import RUNS
from repalign.results import read_arrays, read_result
from repalign.targets import evaluate_target, read_yaml

TARGETS = read_yaml((Path(__file__).resolve().parents[1] / "paper_targets.yaml").read_text())["sharon2024"]
TINY = {name for name, fig in FIGURES.items() if any(p.startswith("tiny_") for p in fig.runs)}


def test_every_artifact_and_run_is_registered():
    assert {name for paper, name in ARTIFACTS if paper == "sharon2024"} == set(TARGETS["artifacts"]) == set(FIGURES)
    assert {name for paper, name in MODELS if paper == "sharon2024"} == {f"run_{p}" for p in RUNS}


@pytest.fixture(scope="module")
def smoke(request):
    """sharon2024's results in the session's smoke DAG (``conftest.smoke_dag``: every run and figure
    at the smoke tier, one thread per job), read instead of running the steps again."""
    if not os.environ.get("REPALIGN_DATA"):
        pytest.skip("no $REPALIGN_DATA: the sharon2024 runs need CIFAR-10")
    return request.getfixturevalue("smoke_dag") / "results" / "sharon2024"


@pytest.mark.parametrize("artifact", sorted(FIGURES, key=lambda a: int(a[3:])))
def test_smoke_figure_runs_and_no_target_fails(smoke, artifact):
    record = read_result(smoke / f"{artifact}.json")
    if artifact in TINY:
        assert record["status"] == "not_run" and "tiny_imagenet" in record["reason"], record["reason"]
        return
    assert record["status"] == "ok", record.get("reason")
    for target in TARGETS["artifacts"][artifact]["targets"]:
        scored = evaluate_target("sharon2024", artifact, target, record)
        assert scored.status != "fail", (target["id"], scored.reason)


def test_cka_maps_are_similarities_with_unit_diagonal(smoke):
    arrays = read_arrays(smoke / "fig2.json")
    for layer in ("conv1", "block1", "block2", "block3", "block4", "fc"):
        m = arrays[f"noise20.cka.{layer}"]
        assert m.shape == (4, 4)
        assert abs(m.diagonal() - 1).max() < 1e-5 and (m <= 1 + 1e-5).all()
    assert arrays["noise20.test_error"].shape == (4,)


def test_drs_figures_record_probe_errors_and_drs(smoke):
    record, arrays = read_result(smoke / "fig6.json"), read_arrays(smoke / "fig6.json")
    assert arrays["noise20.probe_error"].shape == (3, 6)
    assert 0 <= record["metrics"]["noise20.drs.min"] <= record["metrics"]["noise20.drs.max"] <= 1


def test_map_measured_during_training_equals_the_exact_map_from_kept_weights(smoke):
    """Epochs whose weights the run kept (DRS epochs): minibatch_cka on their probe features = the stored map."""
    from repalign.data.paths import resolve_cache_dir, resolve_data_root
    from repalign.experiments.registry import Context
    from repalign.experiments.sharon2024.architectures import make_network
    from repalign.experiments.sharon2024.cka_store import cka_map
    from repalign.experiments.sharon2024.runs import SETTINGS, load_run_data
    from repalign.experiments.storage import load_model_file
    from repalign.metrics import minibatch_cka
    from repalign.models import measure
    from repalign.train.images import prepare
    from repalign.train.precision import precision_policy

    payload = load_model_file(smoke / "models" / "run_noise0.pt", torch.device("cpu"))
    s = SETTINGS.smoke
    ctx = Context(paper="sharon2024", name="run_noise0", tier="smoke", settings=s, device=torch.device("cpu"),
                  seeds=[0], data_root=resolve_data_root(None), cache_dir=resolve_cache_dir(None))
    data = load_run_data(ctx, payload["spec"], s)
    net = make_network("preact_resnet18", 10, seed=0, width=payload["width"]).eval()
    x = prepare(data.probe_x, data.normalization, precision_policy("cpu", "fp32"))
    feats = {}
    for epoch, state in payload["drs_states"].items():
        net.load_state_dict(state)
        with torch.no_grad():
            feats[epoch] = measure(net, x, ["conv1", "block4"])
    grid = list(payload["grid"])
    epochs = sorted(feats)
    assert len(epochs) >= 2 and epochs[0] == 0
    for layer in ("conv1", "block4"):
        stored = cka_map(payload["vectors"][layer])
        for a in epochs:
            for b in epochs:
                exact = float(minibatch_cka(feats[a][layer], feats[b][layer], batch_size=s.probe_batch_size,
                                            n_batches=s.probe_batches))
                assert abs(float(stored[grid.index(a), grid.index(b)]) - exact) <= 1e-4, (layer, a, b)
