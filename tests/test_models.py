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
    "resnet18": (dict(width=2), (3, 32, 32)),
    "resnet50": (dict(width=2), (3, 32, 32)),
    "wrn28_4": (dict(width=2, stem_width=3), (3, 16, 16)),
    "resnet11": (dict(width=2), (3, 32, 32)),
    "vit_b16": (dict(image_size=8, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16),
                (3, 16, 16)),  # resized to 8×8 inside the model
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
    if name == "wrn28_4":
        w = o["width"]
        return preact_resnet_count([w, 2 * w, 4 * w], [4, 4, 4], o["stem_width"] or w, 5, True, n_classes)
    if name in ("resnet18", "resnet50"):
        return post_activation_resnet_count(name, o["width"], n_classes)
    if name == "resnet11":
        w = o["width"]
        pairs = [(3, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w), (4 * w, 4 * w),
                 (4 * w, 8 * w), (8 * w, 8 * w), (8 * w, 8 * w), (8 * w, 4 * w)]
        assert len(pairs) == 11
        return sum(conv(a, b, bias=False) + 2 * b for a, b in pairs) + 4 * w * n_classes  # bias-free head
    if name == "vit_b16":
        h, m, p = o["hidden_dim"], o["mlp_dim"], o["patch_size"]
        tokens = (o["image_size"] // p) ** 2 + 1  # patches + class token
        layer = 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + dense(h, m) + dense(m, h)
        return conv(3, h, p) + h + tokens * h + o["num_layers"] * layer + 2 * h + dense(h, n_classes)
    raise KeyError(name)


def post_activation_resnet_count(name, w, n_classes):
    """Stem conv–BN; BasicBlock: 2 conv3×3–BN; Bottleneck: 1×1, 3×3, 1×1 (4·planes) conv–BN;
    1×1 conv–BN projections."""
    blocks, expansion = ((2, 2, 2, 2), 1) if name == "resnet18" else ((3, 4, 6, 3), 4)
    total, c = conv(3, w, bias=False) + 2 * w, w
    for i, n in enumerate(blocks):
        p = w * 2 ** i
        for b in range(n):
            if expansion == 1:
                total += conv(c, p, bias=False) + 2 * p + conv(p, p, bias=False) + 2 * p
            else:
                total += conv(c, p, 1, False) + 2 * p + conv(p, p, 3, False) + 2 * p + conv(p, 4 * p, 1, False) + 8 * p
            if (i > 0 and b == 0) or c != expansion * p:
                total += conv(c, expansion * p, 1, bias=False) + 2 * expansion * p
            c = expansion * p
    return total + dense(c, n_classes)


def test_every_architecture_has_a_small_test_configuration():
    assert set(SMALL) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_parameter_count_and_output_shape_match_the_architecture(name):
    options, shape = SMALL[name]
    model = build(name, 7, **options)
    assert n_params(model) == expected_count(name, options, 7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize("name", ["preact_resnet18", "vgg16", "resnet18_v2_gn", "resnet18", "resnet50", "wrn28_4",
                                  "resnet11", "vgg19"])
def test_full_size_counts_match_the_formula(name):
    assert n_params(build(name, 10)) == expected_count(name, {}, 10)


def test_simple_cnn_valid_padding_and_large_vgg16_input():
    options = dict(n_conv=3, filters=3, units=5, padding="valid", image_size=12)
    assert n_params(build("simple_cnn", 4, **options)) == expected_count("simple_cnn", options, 4)
    model = build("vgg16", 3, width=1, image_size=40)  # 40 -> 20 -> 10 -> 5 -> 3 -> 2 (SAME pooling)
    assert n_params(model) == expected_count("vgg16", dict(width=1, image_size=40), 3)
    assert model(torch.randn(1, 3, 40, 40)).shape == (1, 3)


def _execution_order(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str]]:
    """("start" | "end", module name) events of one forward pass, in order."""
    events, handles = [], []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: events.append(("start", name))))
        handles.append(module.register_forward_hook(lambda m, a, o, name=name: events.append(("end", name))))
    model(x)
    for h in handles:
        h.remove()
    return events


@pytest.mark.parametrize("name", sorted(SMALL))
def test_measurement_layers_and_parametrised_modules_come_in_depth_order(name):
    options, shape = SMALL[name]
    model = build(name, 5, **options)
    x = torch.randn(2, *shape)
    events = _execution_order(model, x)
    declared = model.measurement_layers
    # an 'input' layer (the head's input) is read as its module starts, an 'output' one as it ends
    read_at = [events.index(("start" if layer.at == "input" else "end", layer.module)) for layer in declared]
    assert read_at == sorted(read_at), [layer.name for layer in declared]
    assert [l.name for l in declared][:1] == ["conv1"] and [l.name for l in declared][-2:] == ["penultimate", "logits"]
    # the listing that layerwise metrics use (named_modules with parameters) follows execution
    # (modules whose weights are used functionally, as in nn.MultiheadAttention, never start)
    started = [name for kind, name in events if kind == "start"]
    owners = [n for n, m in model.named_modules() if next(m.parameters(recurse=False), None) is not None
              and n in started]
    assert owners == sorted(owners, key=started.index)


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
    head_scale = 0.2 if name == "resnet11" else 1.0  # ffcv's ×0.2 after the head
    torch.testing.assert_close(head_scale * head(acts["penultimate"]), logits)
    assert all(a.shape[0] == 3 for a in acts.values())
    subset = measure(model, x, ["logits", "conv1", "logits"])
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


@pytest.mark.parametrize("name", sorted(n for n, a in ARCHITECTURES.items() if a.he_init))
def test_orthogonal_init_gives_semi_orthogonal_layers_times_init_scale(name):
    """maennel2020 App. B.2: W [out, fan_in] has orthonormal rows (or columns) × init_scale."""
    options, _ = SMALL[name]
    model = build(name, 4, seed=0, init_algorithm="orthogonal", init_scale=0.7, **options)
    he = build(name, 4, seed=0, init_scale=0.7, **options)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m in layers:
        w = m.weight.detach().reshape(m.weight.shape[0], -1).double() / 0.7
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
        if m.bias is not None:
            assert not m.bias.any()
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), he.parameters()))  # not He's draw


def test_orthogonal_init_is_not_just_qr_of_a_gaussian():
    """QR without R's diagonal signs is not Haar: its Q has a positive-biased diagonal (a square
    layer's mean diagonal is ~0 under the Haar measure)."""
    diag = torch.cat([torch.diagonal(build("simple_cnn", 4, seed=s, init_algorithm="orthogonal", n_conv=2, filters=27,
                                           units=8).conv1.weight.reshape(27, 27)) for s in range(20)])
    assert abs(diag.mean().item()) < 0.05


def test_unknown_init_algorithm_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown init_algorithm 'xavier'.*orthogonal"):
        build("vgg16", 10, init_algorithm="xavier", width=4)


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


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "preact_resnet18", "resnet18_v2_gn", "wrn28_4"])
def test_a_projection_shortcut_is_listed_before_its_blocks_convs(name):
    """Layerwise metrics index layers by ``named_modules`` order (lou2022's argmax layer): a
    shortcut reads the block input, so it must not be listed after the block's convs."""
    options, _ = SMALL[name]
    model = build(name, 3, **options)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    blocks = [n for n, m in model.named_modules()
              if isinstance(getattr(m, "shortcut", None), (nn.Conv2d, nn.Sequential))]
    assert len(blocks) == (4 if name == "resnet50" else 3)  # resnet50's first block widens 64 -> 256
    for block in blocks:
        mine = [c for c in convs if c.startswith(block + ".")]
        assert "shortcut" in mine[0] and all("shortcut" not in c for c in mine[1:]), mine


def test_resnet11_skip_option_removes_the_residual_additions():
    x = torch.randn(2, 3, 32, 32)
    on, off = build("resnet11", 4, width=2).eval(), build("resnet11", 4, width=2, skip=False).eval()
    off.load_state_dict(on.state_dict())
    with torch.no_grad():
        a, b = measure(on, x, ["conv3", "conv4"]), measure(off, x, ["conv3", "conv4"])
        block_input = on.conv2(on.conv1(x))
        torch.testing.assert_close(a["conv4"], block_input + b["conv4"])  # same weights: skip adds the input
        torch.testing.assert_close(a["conv3"], b["conv3"])


def test_vit_resizes_inputs_to_its_image_size():
    options, _ = SMALL["vit_b16"]
    model = build("vit_b16", 3, **options).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        resized = torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(x), model(resized))
        assert measure(model, x, ["block1"])["block1"].shape == (2, (8 // 4) ** 2 + 1, 8)


def test_a_compiled_model_is_measured_through_its_eager_module():
    model = build("simple_cnn", 3, **SMALL["simple_cnn"][0]).eval()
    compiled = torch.compile(model)  # lazy: nothing compiles unless compiled(x) is called
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert layer_names(compiled) == layer_names(model)
        torch.testing.assert_close(measure(compiled, x)["logits"], model(x))


def test_lou2022_resnet18_keeps_the_weights_it_had_before_the_move():
    """lou2022's cnn.py drew each block's body before its shortcut; ``build`` lists the shortcut
    first but keeps those draws, so lou2022's seeds give the networks they gave before."""
    model = build("resnet18", 10, seed=7, width=2)
    redrawn = build("resnet18", 10, seed=0, width=2)
    old_order = []
    for child in redrawn.children():
        parts = [child.body, child.shortcut] if hasattr(child, "body") else [child]
        old_order += [m for part in parts for m in part.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        for module in old_order:
            module.reset_parameters()
    for (k, a), b in zip(model.state_dict().items(), redrawn.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("name", sorted(n for n, a in ARCHITECTURES.items() if a.he_init))
def test_maennel2020_logits_are_not_rectified(name):
    """A public reproduction of maennel2020 put a ReLU on the logits; ours are an affine head's output."""
    options, shape = SMALL[name]
    model = build(name, 10, **options).eval()
    with torch.no_grad():
        logits = model(torch.randn(8, *shape))
    assert (logits < 0).any() and (logits > 0).any()
