"""maennel2020 Figs 7, 10, 11, 24: held-out activation fractions streamed from training."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.experiments.maennel2020 import activations, protocol, reduced, transfer, transfer_function
from repalign.results import read_arrays
from repalign.runner import run_step

_ENV = os.environ.get("REPALIGN_DATA")
DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _net(seed=0, init_scale=1.0, n_conv=2):
    return protocol.make_model("simple_cnn", 3, seed, init_scale, "cpu", n_conv=n_conv, filters=4, units=8,
                               image_size=8)


def _images(n, seed=0):
    return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_held_out_fractions_in_chunks_match_a_loop_over_units_and_images(monkeypatch):
    monkeypatch.setattr(activations, "CHUNK", 7)  # 20 images in uneven chunks
    net, x = _net(), _images(20)
    with torch.no_grad():  # perturb the biases so fractions are not all near 1/2
        net.conv1.bias.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    got = activations.held_out_fractions(net, x, ["conv1", "penultimate"])
    with torch.no_grad():
        h = torch.relu(net.conv1(protocol.to_unit_range(x)))
        dense = torch.relu(net.dense(torch.relu(net.conv2(h)).flatten(1)))
    for name, acts in (("conv1", h), ("penultimate", dense)):
        flat = acts.reshape(20, -1)
        units = [sum(float(flat[i, u] > 0) for i in range(20)) / 20 for u in range(flat.shape[1])]
        examples = [sum(float(flat[i, u] > 0) for u in range(flat.shape[1])) / flat.shape[1] for i in range(20)]
        np.testing.assert_allclose(got[name][0].numpy(), units, atol=1e-6)
        np.testing.assert_allclose(got[name][1].numpy(), examples, atol=1e-6)


def test_watch_streams_each_grid_step_of_the_run_not_the_final_weights():
    net, x, y = _net(), _images(64), torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
    held = _images(30, seed=3)
    initial = copy.deepcopy(net)
    watch = activations.Watch(held, ["conv1", "penultimate"], activations.means, [0, 5], [0, 5])
    protocol.fit(net, x, y, 5, 0.5, seed=0, callbacks=watch("upstream"))
    records = watch.records("upstream")
    assert sorted(records) == [0, 5]
    assert records[0] == activations.means(activations.held_out_fractions(initial, held, ["conv1", "penultimate"]))
    assert records[5] == activations.means(activations.held_out_fractions(net, held, ["conv1", "penultimate"]))
    assert records[0] != records[5]  # lr 0.5 moves the ReLU patterns
    assert watch("real_labels.pretrained")[0].grid == [0, 5]


def test_one_seed_at_two_init_scales_gives_identical_patterns_so_the_setups_need_independent_seeds():
    """Why SEED_OFFSET exists: zero biases make the ReLU pattern scale-invariant, so 'identical at init'
    would hold by construction for Fig 1's two set-ups (init 0.526 and 0.612) on one seed."""
    held, layers = _images(40), ["conv1", "conv2", "penultimate"]
    a = activations.held_out_fractions(_net(0, 0.526), held, layers)
    b = activations.held_out_fractions(_net(0, 0.612), held, layers)
    c = activations.held_out_fractions(_net(0 + activations.SEED_OFFSET, 0.612), held, layers)
    assert all(torch.equal(a[k][0], b[k][0]) for k in layers)
    assert not all(torch.equal(a[k][0], c[k][0]) for k in layers)
    assert activations.SEED_OFFSET > 0


def test_histograms_count_every_unit_and_example_and_keep_the_mean():
    unit = torch.tensor([0.0, 0.05, 0.5, 1.0])
    example = torch.tensor([0.2, 0.8])
    h = activations.histograms({"conv1": (unit, example)}, 4)["conv1"]
    assert h["units"].tolist() == [2, 0, 1, 1] and h["examples"].tolist() == [1, 0, 0, 1]
    assert h["mean"] == pytest.approx(0.3875)


def test_switch_summary_reads_the_end_of_upstream_and_three_downstream_points():
    up = {0: {"d": 0.5}, 50: {"d": 0.45}, 100: {"d": 0.4}}
    down = {0: {"d": 0.39}, 10: {"d": 0.2}, 50: {"d": 0.25}, 100: {"d": 0.3}}
    assert activations.switch_summary(up, down, "d") == {"before_switch": 0.4, "at_switch": 0.39,
                                                         "after_switch": 0.2, "end": 0.3}


def test_transfer_run_passes_watch_callbacks_to_every_phase(monkeypatch):
    """transfer_run's watch reaches the upstream fit and each downstream (labels, variant) fit."""
    phases, fits = [], []

    def fake_fit(model, x, y, steps, lr, *, callbacks=(), **kw):
        fits.append([c for c in callbacks if isinstance(c, str)])
        for c in callbacks:
            if not isinstance(c, str):  # the accuracy curve
                c.before_training(model)
                c(steps, model)
    monkeypatch.setattr(transfer, "fit", fake_fit)

    class Split:
        n, x, y = 8, _images(8), torch.zeros(8, dtype=torch.int64)
    monkeypatch.setattr(transfer, "load_cifar", lambda ctx, split="train": Split)
    ctx = type("Ctx", (), {"device": "cpu", "name": "t"})()
    setup = transfer.Setup("simple_cnn", 1.0, 0.01, 3, 4, 1, {"n_conv": 1, "filters": 2, "units": 4, "image_size": 8})
    s = transfer.TransferSettings({"a": setup}, n_down=4, steps_down=1, variants=("pretrained",), n_test=4)

    def watch(phase):
        phases.append(phase)
        return [phase]
    transfer.transfer_run(ctx, setup, s, 0, watch=watch)
    assert phases == ["upstream", "real_labels.pretrained", "random_labels.pretrained"]
    assert fits == [["upstream"], ["real_labels.pretrained"], ["random_labels.pretrained"]]


def test_reduced_overrides_every_setup_one_setup_and_options():
    s = reduced.with_overrides(activations.VGG.quick, {"setups.options.width": 8, "setups.n_up": 1000,
                                                       "setups.exp34.steps_up": 200, "n_down": 500})
    assert s.n_down == 500 and {v.n_up for v in s.setups.values()} == {1000}
    assert s.setups["exp34"].steps_up == 200 and s.setups["exp12"].steps_up == 9360
    assert s.setups["exp12"].options == {"width": 8} and s.setups["exp12"].init_scale == 0.526
    assert activations.VGG.quick.setups["exp12"].options == {"width": 64}  # the tier itself is untouched


def test_reduced_overrides_walk_into_nested_settings_and_name_a_bad_key():
    quick = transfer_function.CNN.quick
    s = reduced.with_overrides(quick, {"gaussian.steps": 500, "gaussian.settings.synthetic_fc256.n_inputs": 2000})
    assert s.gaussian.steps == 500 and s.gaussian.settings["synthetic_fc256"].n_inputs == 2000
    assert s.gaussian.settings["e1_left"] == quick.gaussian.settings["e1_left"]
    assert s.n_examples == quick.n_examples
    # the tier itself is untouched
    assert quick.gaussian.steps == 3000 and quick.gaussian.settings["synthetic_fc256"].n_inputs == 10000
    with pytest.raises(ValueError, match="gaussian.stepz.*no field or entry 'stepz'"):
        reduced.with_overrides(quick, {"gaussian.stepz": 1})


@pytest.mark.skipif(not (DATA / "cifar10-jpeg").is_dir(), reason="offline CIFAR-10 copy absent")
def test_smoke_vgg_activations_draw_the_two_setups_independently(tmp_path):
    out = tmp_path / "vgg.pt"
    assert run_step("model", "maennel2020", "vgg_activations", tier="smoke", out=out, device="cpu",
                    data_root=str(DATA), cache_dir=os.environ.get("REPALIGN_CACHE", str(tmp_path / "cache"))) == "ok"
    assert run_step("artifact", "maennel2020", "fig7", tier="smoke", out=tmp_path / "fig7.json", device="cpu",
                    inputs={"vgg_activations": str(out)}) == "ok"
    arrays = read_arrays(tmp_path / "fig7.json")
    pos, neg = (arrays[f"{n}.init.conv13.units"] for n in ("positive", "negative"))
    assert pos.sum() == neg.sum() and not np.array_equal(pos, neg)
