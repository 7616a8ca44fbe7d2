"""The training loop: determinism, kill-and-resume to identical weights, NaN handling."""

import pytest
import torch

from repalign.errors import NonFiniteLoss
from repalign.models import StackedMLP
from repalign.train import EpochSampler, OptimConfig, train
from repalign.train.loop import lr_factor

from fault_inject import KillAfterStep

N, D = 200, 5


def _problem(seed_list=(0, 1, 2)):
    g = torch.Generator().manual_seed(123)
    x = torch.randn(len(seed_list), N, D, generator=g)
    y = x[..., 0] - 2 * x[..., 1]
    net = StackedMLP([D, 8, 1], seeds=list(seed_list))
    axis = torch.arange(len(seed_list))[:, None]

    def loss_fn(m, idx):
        return ((m(x[axis, idx]).squeeze(-1) - y[axis, idx]) ** 2).mean(dim=1)
    return net, loss_fn


def _run(tmp_path=None, callback=None, steps=60):
    net, loss_fn = _problem()
    sampler = EpochSampler(N, 32, n_models=3, seed=7)
    ckpt = None if tmp_path is None else tmp_path / "run.ckpt"
    log = train(net, loss_fn, sampler, steps, OptimConfig("adam", lr=1e-2, schedule="cosine"),
                checkpoint=ckpt, checkpoint_every=10, callback=callback)
    return net, log


def test_same_seed_gives_identical_weights_and_losses():
    a, log_a = _run()
    b, log_b = _run()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert (log_a.losses == log_b.losses).all()
    assert log_a.losses[-1].mean() < log_a.losses[0].mean()


def test_killed_run_resumes_to_identical_result(tmp_path):
    reference, ref_log = _run()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, callback=KillAfterStep(at=35))      # last checkpoint at step 30
    assert (tmp_path / "run.ckpt").exists()
    resumed, log = _run(tmp_path)
    assert log.resumed_from_step == 30
    for pa, pb in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(pa, pb)
    assert (log.losses == ref_log.losses).all()
    assert not (tmp_path / "run.ckpt").exists()


def test_nan_loss_raises_with_the_step_and_leaves_no_checkpoint(tmp_path):
    net, loss_fn = _problem()

    calls = {"n": 0}

    def exploding(m, idx):  # finite for 12 steps, NaN from step 13 (1-based) on
        calls["n"] += 1
        loss = loss_fn(m, idx)
        return loss * float("nan") if calls["n"] > 12 else loss
    sampler = EpochSampler(N, 32, n_models=3, seed=0)
    with pytest.raises(NonFiniteLoss, match="step 12"):
        train(net, exploding, sampler, 40, OptimConfig(lr=1e-2), checkpoint=tmp_path / "c.ckpt",
              checkpoint_every=5, check_every=20)
    assert not (tmp_path / "c.ckpt").exists()


def test_stacked_model_is_independent_of_its_neighbours():
    alone = StackedMLP([D, 8, 1], seeds=[5])
    stacked = StackedMLP([D, 8, 1], seeds=[3, 5, 9])
    x = torch.randn(4, D)
    assert torch.equal(alone(x)[0], stacked(x)[1])


def test_stacked_prelu_matches_torch_prelu_and_learns_its_slope():
    net = StackedMLP([D, 8, 8, 1], seeds=[0, 1], activation="prelu")
    x = torch.randn(2, 6, D)
    _, hidden = net.forward_with_hidden(x)
    prelu = torch.nn.PReLU()
    pre = x[1] @ net.weights[0][1] + net.biases[0][1]
    torch.testing.assert_close(hidden[0][1], prelu(pre))
    net(x).sum().backward()
    assert net.prelu_slopes.grad.shape == (2, 2, 1, 1) and bool(net.prelu_slopes.grad.abs().sum() > 0)


def test_stacked_forward_matches_plain_linear_layers():
    net = StackedMLP([D, 8, 3], seeds=[0, 1])
    x = torch.randn(2, 6, D)
    out, hidden = net.forward_with_hidden(x)
    for s in range(2):
        h = torch.relu(x[s] @ net.weights[0][s] + net.biases[0][s])
        torch.testing.assert_close(hidden[0][s], h)
        torch.testing.assert_close(out[s], h @ net.weights[1][s] + net.biases[1][s])


def test_sampler_visits_every_example_once_per_epoch():
    sampler = EpochSampler(10, 4, n_models=2, seed=1)
    idx = torch.cat([sampler.next() for _ in range(sampler.steps_per_epoch)], dim=1)
    assert idx.shape == (2, 10)
    for row in idx:
        assert sorted(row.tolist()) == list(range(10))
    assert not torch.equal(idx[0], idx[1])


def test_thirds_schedule_divides_by_three_twice():
    assert [lr_factor("thirds", s, 90) for s in (0, 29, 30, 59, 60, 89)] == pytest.approx(
        [1, 1, 1 / 3, 1 / 3, 1 / 9, 1 / 9])
    assert lr_factor("linear", 45, 90) == pytest.approx(0.5)


def test_unknown_optimiser_is_rejected_by_name():
    with pytest.raises(ValueError, match="rmsprop"):
        OptimConfig(name="rmsprop")
