"""repalign.models: parameter counts against formulas, shapes, depth order, seeding, init_scale."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from repalign.models import ARCHITECTURES, build, layer_names, measure, options_of

# Small but structurally complete configurations, cheap on a CPU: name -> (options, input shape).
SMALL = {
    "simple_cnn": (dict(n_conv=2, filters=4, units=8, pool=True, image_size=9), (3, 9, 9)),
    "vgg16": (dict(width=2), (3, 32, 32)),
    "resnet18_v2_gn": (dict(width=4, groups=2), (3, 32, 32)),
    "preact_resnet18": (dict(width=4), (3, 32, 32)),
    "vgg19": (dict(width=2), (3, 32, 32)),
    "resnet11": (dict(width=2, skip=False), (3, 32, 32)),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(c_in, c_out, k=3, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def dense(d_in, d_out):
    return d_in * d_out + d_out


def preact_resnet_count(widths, blocks, stem_width, stem_kernel, final_norm, n_classes, c_in=3):
    """A stem conv, then per block norm(c_in) conv3×3 norm(c_out) conv3×3 (+1×1 shortcut on a shape change)."""
    total, c = conv(c_in, stem_width, stem_kernel, bias=False), stem_width
    for i, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            projection = (i > 0 and b == 0) or c != w
            total += 2 * c + conv(c, w, bias=False) + 2 * w + conv(w, w, bias=False)
            total += conv(c, w, 1, bias=False) if projection else 0
            c = w
    return total + (2 * c if final_norm else 0) + dense(c, n_classes)


def expected_count(name: str, options: dict, n_classes: int) -> int:
    o = {**options_of(name), **options}
    if name == "simple_cnn":
        size = o["image_size"] if o["padding"] == "same" else o["image_size"] - 2 * o["n_conv"]
        size = math.ceil(size / 2) if o["pool"] else size
        convs = conv(o["in_channels"], o["filters"]) + (o["n_conv"] - 1) * conv(o["filters"], o["filters"])
        return convs + dense(o["filters"] * size ** 2, o["units"]) + dense(o["units"], n_classes)
    if name in ("vgg16", "vgg19"):
        w = o["width"]
        plan = [w, w, 2 * w, 2 * w] + [4 * w] * (3 if name == "vgg16" else 4) + [8 * w] * (6 if name == "vgg16" else 8)
        chans = [o["in_channels"]] + plan
        # vgg16: conv biases, no norm; vgg19: no conv bias, BatchNorm (2 per channel)
        convs = sum(conv(a, b, bias=name == "vgg16") + (0 if name == "vgg16" else 2 * b)
                    for a, b in zip(chans[:-1], chans[1:]))
        side = math.ceil(o.get("image_size", 32) / 32) if name == "vgg16" else 1
        return convs + dense(8 * w * side ** 2, n_classes)
    if name in ("preact_resnet18", "resnet18_v2_gn"):
        w = o["width"]
        stem_kernel = 7 if o.get("stem", "cifar") == "imagenet" else 3
        return preact_resnet_count([w, 2 * w, 4 * w, 8 * w], [2, 2, 2, 2], w, stem_kernel,
                                   name == "resnet18_v2_gn", n_classes)
    if name == "resnet11":  # canatar2022: 11 bias-free 3×3 convs with BatchNorm, a linear head
        w = o["width"]
        chans = [(o["in_channels"], w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w),
                 (4 * w, 4 * w), (4 * w, 8 * w), (8 * w, 8 * w), (8 * w, 8 * w), (8 * w, 4 * w)]
        return sum(conv(a, b, bias=False) + 2 * b for a, b in chans) + dense(4 * w, n_classes)
    raise KeyError(name)


def test_every_architecture_has_a_small_test_configuration():
    assert set(SMALL) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_parameter_count_and_output_shape_match_the_architecture(name):
    options, shape = SMALL[name]
    model = build(name, 7, **options)
    assert n_params(model) == expected_count(name, options, 7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize("name, count", [("preact_resnet18", "kuangliu"), ("vgg16", "config D"),
                                         ("resnet18_v2_gn", "imagenet stem")])
def test_full_size_counts_match_the_formula(name, count):
    assert n_params(build(name, 10)) == expected_count(name, {}, 10)


def test_simple_cnn_valid_padding_and_large_vgg16_input():
    options = dict(n_conv=3, filters=3, units=5, padding="valid", image_size=12)
    assert n_params(build("simple_cnn", 4, **options)) == expected_count("simple_cnn", options, 4)
    model = build("vgg16", 3, width=1, image_size=40)  # 40 -> 20 -> 10 -> 5 -> 3 -> 2 (SAME pooling)
    assert n_params(model) == expected_count("vgg16", dict(width=1, image_size=40), 3)
    assert model(torch.randn(1, 3, 40, 40)).shape == (1, 3)


def _execution_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Module names in the order their forward passes start."""
    order, handles = [], []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: order.append(name)))
    model(x)
    for h in handles:
        h.remove()
    return order


@pytest.mark.parametrize("name", sorted(SMALL))
def test_measurement_layers_and_parametrised_modules_come_in_depth_order(name):
    options, shape = SMALL[name]
    model = build(name, 5, **options)
    x = torch.randn(2, *shape)
    order = _execution_order(model, x)
    declared = model.measurement_layers
    first_call = [order.index(layer.module) for layer in declared]
    # an 'input' layer (the head's input) is read as its module starts, an 'output' one as it ends
    assert first_call == sorted(first_call), [layer.name for layer in declared]
    assert [l.name for l in declared][:1] == ["conv1"] and [l.name for l in declared][-2:] == ["penultimate", "logits"]
    # the listing that layerwise metrics use (named_modules with parameters) follows execution
    owners = [n for n, m in model.named_modules() if next(m.parameters(recurse=False), None) is not None]
    assert owners == sorted(owners, key=order.index)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_measure_returns_every_layer_from_one_pass_and_logits_equal_the_output(name):
    options, shape = SMALL[name]
    model = build(name, 5, **options).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        acts = measure(model, x)
        logits = model(x)
    assert list(acts) == layer_names(model)
    torch.testing.assert_close(acts["logits"], logits)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    torch.testing.assert_close(head(acts["penultimate"]), logits)
    assert all(a.shape[0] == 3 for a in acts.values())
    subset = measure(model, x, ["logits", "conv1"])
    assert list(subset) == ["logits", "conv1"]


def test_measure_copies_activations_before_in_place_ops_and_rejects_unknown_layers():
    model = build("vgg19", 3, width=1).eval()  # nn.ReLU(inplace=True) after every BatchNorm
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        conv1 = measure(model, x, ["conv1"])["conv1"]
        expected = torch.relu(model[1](model[0](x)))
    torch.testing.assert_close(conv1, expected)
    with pytest.raises(ValueError, match="unknown measurement layers.*choose from"):
        measure(model, x, ["conv99"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_weights_other_seed_other_weights(name):
    options, _ = SMALL[name]
    a, b, c = build(name, 4, seed=3, **options), build(name, 4, seed=3, **options), build(name, 4, seed=4, **options)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_build_neither_reads_nor_moves_the_global_rng(name):
    options, _ = SMALL[name]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = build(name, 4, seed=1, **options)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    second = build(name, 4, seed=1, **options)
    for va, vb in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(va, vb)


@pytest.mark.parametrize("name", sorted(n for n, a in ARCHITECTURES.items() if a.he_init))
def test_init_scale_scales_he_normal_weights_and_biases_are_zero(name):
    options, _ = SMALL[name]
    unit = build(name, 4, seed=0, **options)
    half = build(name, 4, seed=0, init_scale=0.5, **options)
    layers = [(m, h) for m, h in zip(unit.modules(), half.modules()) if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m, h in layers:
        torch.testing.assert_close(h.weight, 0.5 * m.weight)  # fails if init_scale were ignored
        if m.bias is not None:
            assert not m.bias.any() and not h.bias.any()
    # He normal: std sqrt(2 / fan_in), pooled over the layers as z-scores
    z = torch.cat([m.weight.flatten() / math.sqrt(2.0 / m.weight[0].numel()) for m, _ in layers])
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1.0) < 0.05


def test_he_normal_std_at_full_size():
    model = build("simple_cnn", 10, init_scale=2.0, n_conv=1, filters=64, units=256)
    w = model.dense.weight
    assert w.std().item() == pytest.approx(2.0 * math.sqrt(2.0 / w.shape[1]), rel=0.01)


def test_unknown_name_option_and_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match="unknown architecture 'vgg17'.*preact_resnet18"):
        build("vgg17", 10)
    with pytest.raises(ValueError, match=r"preact_resnet18: unknown options \['init_scale'\].*width"):
        build("preact_resnet18", 10, init_scale=0.5)  # not a maennel2020 model
    with pytest.raises(ValueError, match="init_scale must be a positive number"):
        build("vgg16", 10, init_scale=0.0)
    with pytest.raises(ValueError, match="GroupNorm: 48 channels"):
        build("resnet18_v2_gn", 10, width=48)
