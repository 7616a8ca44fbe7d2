"""imani2022 Figs 2, 4, 6-9: the experiments' math on analytic and naive cases."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.experiments.imani2022 import convergence, nets, spectra, summary, toy
from repalign.experiments.imani2022.tasks import Task, per_example_loss
from repalign.experiments.registry import Context
from repalign.metrics import alignment_auc, gd_learning_curve, normalize_representation


def context(settings, seeds=(0,), checkpoint=None) -> Context:
    return Context(paper="imani2022", name="test", tier="smoke", settings=settings, device=torch.device("cpu"),
                   seeds=list(seeds), data_root=Path("."), cache_dir=Path("."), checkpoint=checkpoint)


def test_gd_trajectory_matches_prop1_exactly():
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(40, 7, generator=g, dtype=torch.float64)
    y = torch.randn(40, generator=g, dtype=torch.float64)
    lr = 0.9 / float(torch.linalg.matrix_norm(phi, 2)) ** 2
    losses, weights = convergence.gd_trajectory(phi, y, lr, 60)
    torch.testing.assert_close(losses, gd_learning_curve(phi, y, lr, 60), rtol=1e-10, atol=1e-12)
    assert convergence.prop1_error(phi, y, lr, losses) < 1e-12
    assert torch.all(weights[0] == 0)


def test_fig8_matches_the_closed_form_of_the_two_processes():
    s = convergence.FastSlowSettings()
    m = convergence.fig8(context(s)).metrics
    lr = s.lr_fraction / s.sigma_fast ** 2
    fast, slow = (1 - lr * s.sigma_fast ** 2) ** 2, (1 - lr * s.sigma_slow ** 2) ** 2  # per-step loss factors
    t_fast = math.ceil(math.log(s.fast_done) / math.log(fast))
    for name, share in (("high_alignment", s.high_share), ("low_alignment", 0.5)):
        assert m[f"loss_share_fast.{name}"] == pytest.approx(share, abs=1e-12)
        expected = share * (1 - fast ** t_fast) + (1 - share) * (1 - slow ** t_fast)
        assert m[f"loss_reduced_fast_phase.{name}"] == pytest.approx(expected, rel=1e-10)
        t = m[f"steps_to_fit.{name}"]
        loss_t = share * fast ** t + (1 - share) * slow ** t
        assert loss_t <= s.fit_level < share * fast ** (t - 1) + (1 - share) * slow ** (t - 1)
        w = [math.sqrt(q) / sig * (1 - math.sqrt(f) ** t)   # w_i(t) = (y_i / σ_i)(1 − (1 − ησ_i²)^t)
             for q, sig, f in ((share, s.sigma_fast, fast), (1 - share, s.sigma_slow, slow))]
        assert m[f"weight_norm_to_fit.{name}"] == pytest.approx(math.hypot(*w), rel=1e-10)
        assert m[f"prop1_max_rel_error.{name}"] < 1e-12


def test_fig4_scaling_and_spread():
    s = toy.ToySettings(n_runs=1, n_points=400_000)
    result = toy.fig4(context(s, seeds=(3,)))
    m = result.metrics
    assert m["sigma_1"] ** 2 + m["sigma_2"] ** 2 == pytest.approx(s.frobenius_sq, rel=1e-10)
    assert m["sigma_1_unit_rows"] ** 2 + m["sigma_2_unit_rows"] ** 2 == pytest.approx(s.n_points, rel=1e-10)
    # σ2²/σ1² = E sin²e / E cos²e = (1 − E cos 2e) / (1 + E cos 2e) = tanh(spread²) for e ~ N(0, spread²):
    # 0.2996 at spread 0.3 (the paper's printed 2.84 / 9.58 = 0.296 is not the analytic value)
    assert m["sigma_ratio"] == pytest.approx(math.sqrt(math.tanh(s.spread ** 2)), abs=0.001)
    assert abs(m["sigma_ratio"] - 2.84 / 9.58) > 0.002
    # labeling 2 = sign(sin e)·side: (u2ᵀy)²/‖y‖² = (E|sin e|)² / E sin² e
    e = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * s.spread
    assert m["label_mass.labeling2.u2"] == pytest.approx(float(e.sin().abs().mean() ** 2 / e.sin().pow(2).mean()),
                                                         abs=0.01)
    assert m["label_mass.labeling1.u1"] > 0.95 > m["label_mass.labeling2.u2"]


def test_alignment_stats_broadcasts_and_curves_start_at_one_then_the_share_in_span():
    g = torch.Generator().manual_seed(1)
    rep = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = torch.randn(3, 30, generator=g, dtype=torch.float64)
    auc, curves = summary.alignment_stats(rep, y)
    assert auc.shape == (3,) and curves.shape == (3, summary.N_THRESHOLDS)
    phi = normalize_representation(rep)
    for r in range(3):
        assert float(auc[r]) == pytest.approx(float(alignment_auc(phi, y[r])), rel=1e-12)
        projected = phi @ torch.linalg.lstsq(phi, y[r].unsqueeze(-1)).solution
        assert curves[r, 0] == pytest.approx(1.0, rel=1e-12)  # Eq. 2 at τ = 0: every singular value counts
        assert curves[r, 1] <= float(projected.pow(2).sum() / y[r].pow(2).sum()) + 1e-9
        assert np.all(np.diff(curves[r]) <= 1e-12)


def test_shuffled_labels_permute_each_run_independently():
    y = torch.arange(50, dtype=torch.float64)
    out = spectra.shuffled_labels(y, [0, 1])
    assert out.shape == (2, 50)
    for r in range(2):
        assert sorted(out[r].tolist()) == y.tolist()
    assert not torch.equal(out[0], out[1])
    torch.testing.assert_close(out, spectra.shuffled_labels(y, [0, 1]))


def _toy_task(n=64, d=6, classification=True) -> Task:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = torch.sign(x[:, 0]) if classification else torch.tanh(x[:, 0])
    return Task("toy", x, y, x[:8], y[:8], classification, "synthetic")


def test_per_example_loss_is_logistic_for_classification_and_squared_for_regression():
    out, y = torch.tensor([0.0, 2.0]), torch.tensor([1.0, -1.0])
    torch.testing.assert_close(per_example_loss(_toy_task(), out, y), torch.log1p(torch.exp(-out * y)))
    torch.testing.assert_close(per_example_loss(_toy_task(classification=False), out, y), (out - y) ** 2)


def test_training_configs_together_equals_training_each_alone():
    """One loop over several stacks = separate loops (Adam is per-parameter; losses are summed).

    In one epoch the first config's runs draw the same batches alone or in the group (the
    sampler's first rows of keys), so its weights must agree.
    """
    task = _toy_task()
    configs = [nets.NetConfig(depth=1, width=5), nets.NetConfig(depth=2, width=4, activation="tanh")]
    together = nets.train_group(context(None, seeds=(0, 1)), task, configs, epochs=1)
    alone = nets.train_group(context(None, seeds=(0, 1)), task, configs[:1], epochs=1)
    key = configs[0].key
    for name, value in alone[key]["final_state"].items():
        torch.testing.assert_close(together[key]["final_state"][name], value, rtol=1e-5, atol=1e-6)
    untrained = configs[0].build(6, [0, 1], "cpu").state_dict()
    assert not torch.equal(untrained["weights.0"], alone[key]["final_state"]["weights.0"])
    np.testing.assert_allclose(together[key]["final_train_loss"], alone[key]["final_train_loss"], rtol=1e-5)


def test_staged_resumes_finished_stages_and_clears_them(tmp_path):
    ctx = context(None, checkpoint=tmp_path / "m.pt.ckpt")
    calls = []

    def stage(ckpt):
        calls.append(ckpt)
        return {"value": torch.tensor(len(calls))}

    first = nets.staged(ctx, "a", stage)
    again = nets.staged(ctx, "a", stage)
    assert len(calls) == 1 and int(again["value"]) == int(first["value"]) == 1
    assert calls[0] == tmp_path / "m.pt.ckpt.a"
    nets.clear_stages(ctx)
    assert not list(tmp_path.glob("*.done"))


def test_a_stale_sweep_model_gives_an_actionable_error():
    from repalign.errors import RepalignError
    from repalign.experiments.imani2022.sweeps import trained_entry

    payload = {"task": "mnist", "configs": {nets.NetConfig().key: {}}}
    assert trained_entry(payload, nets.NetConfig()) == {}
    with pytest.raises(RepalignError, match="Delete results/imani2022/models/sweep_mnist.pt"):
        trained_entry(payload, nets.NetConfig(activation="prelu"))


def test_positive_share_counts_thresholds_inside_the_support_only():
    """Figs 14, 16: "positive across all thresholds" is read on the curves, not on their area."""
    tau = np.linspace(0, 1, 11)
    upper = np.clip(1 - tau / 0.6, 0, None)                  # both curves end at τ = 0.6: 5 thresholds count
    mostly_positive_area = np.array([0, .3, .3, .3, -.01, .2, 0, 0, 0, 0, 0])
    assert summary.positive_share(mostly_positive_area, upper) == pytest.approx(4 / 5)   # area > 0, not all
    assert summary.positive_share(np.abs(mostly_positive_area), upper) == 1.0
    assert summary.positive_share(-np.abs(mostly_positive_area), upper) == 0.0
    assert summary.positive_share(mostly_positive_area, np.zeros(11)) == 0.0              # no support: fails
