"""The image-training path: augmentation, normalisation, stacking, epoch hooks, resume, precision."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repalign.data.labels import relabel
from repalign.errors import NonFiniteLoss
from repalign.models import build, measure
from repalign.train import (EpochHook, EpochSampler, ImageSampler, ImageTraining, ModelStack, Normalization,
                            OptimConfig, crop_flip, epoch_grid, evaluate_images, precision_policy, train_images)

from fault_inject import KillAfterStep

N_IMAGES, SIZE, CLASSES = 40, 8, 3


def tiny_cnn(seed: int, norm: str = "batch", dtype=torch.float64) -> nn.Module:
    """Conv - norm - ReLU - max-pool - dense ReLU - head, built from ``seed`` without touching the global RNG."""
    norms = {"batch": lambda: nn.BatchNorm2d(4), "group": lambda: nn.GroupNorm(2, 4), "none": nn.Identity}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norms[norm](), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(4 * (SIZE // 2) ** 2, 8), nn.ReLU(), nn.Linear(8, CLASSES))
    return net.to(dtype)


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (N_IMAGES, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    y = torch.randint(0, CLASSES, (N_IMAGES,), generator=g)
    return x, y


NORM = Normalization((0.5, 0.4, 0.3), (0.25, 0.2, 0.3))


def config(**kw):
    base = dict(epochs=2, batch_size=16, optim=OptimConfig("sgd", lr=0.05, momentum=0.9), precision="fp64",
                checkpoint_every=2)
    base.update(kw)
    return ImageTraining(**base)


def same_weights(a: nn.Module, b: nn.Module, exact: bool = True) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if exact:
            assert torch.equal(sa[k], sb[k]), k
        else:
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-10, atol=1e-12, msg=k)


# --- augmentation and normalisation ------------------------------------------------------

def naive_crop_flip(x, dy, dx, flip, pad):
    out = []
    for img, a, b, f in zip(x, dy.tolist(), dx.tolist(), flip.tolist()):
        crop = F.pad(img, (pad,) * 4)[:, a:a + img.shape[1], b:b + img.shape[2]]
        out.append(torch.flip(crop, dims=[2]) if f else crop)
    return torch.stack(out)


def test_crop_flip_matches_per_example_pad_crop_flip_and_is_channels_last():
    x, _ = data()
    g = torch.Generator().manual_seed(3)
    dy, dx = torch.randint(0, 9, (2, N_IMAGES), generator=g)
    flip = torch.rand(N_IMAGES, generator=g) < 0.5
    out = crop_flip(x, dy, dx, flip, 4)
    assert torch.equal(out, naive_crop_flip(x, dy, dx, flip, 4))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(out, x)  # the draws do move pixels


def test_normalization_is_totensor_then_normalize_and_of_gives_channel_statistics():
    x, _ = data()
    ref = (x.float() / 255 - torch.tensor(NORM.mean)[:, None, None]) / torch.tensor(NORM.std)[:, None, None]
    assert torch.equal(NORM(x), ref)
    stats = Normalization.of(x, chunk=7)
    pixels = x.double().div(255).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(torch.tensor(stats.mean, dtype=torch.float64), pixels.mean(1))
    torch.testing.assert_close(torch.tensor(stats.std, dtype=torch.float64), pixels.std(1, unbiased=False))
    assert Normalization.unit_range()(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2).expand(3, 1, 2)).tolist() \
        == [[[-1.0, 1.0]]] * 3


# --- samplers -----------------------------------------------------------------------------

def test_shared_seed_sampler_draws_are_unchanged():
    sampler = EpochSampler(10, 4, n_models=3, seed=5)
    expected = torch.rand(3, 10, generator=torch.Generator().manual_seed(5)).argsort(dim=1)
    assert torch.equal(torch.cat([sampler.next() for _ in range(3)], dim=1), expected)


def test_image_sampler_row_s_is_the_single_model_sampler_of_seed_s():
    seeds = [4, 9, 2]
    stacked = ImageSampler(N_IMAGES, 16, seeds)
    alone = [ImageSampler(N_IMAGES, 16, [s]) for s in seeds]
    for _ in range(7):  # crosses two epoch boundaries
        batch = stacked.next()
        for s, single in enumerate(alone):
            for a, b in zip(batch, single.next()):
                assert torch.equal(a[s], b[0])


def test_image_sampler_draws_cover_the_crop_range_and_flip_half():
    sampler = ImageSampler(4000, 4000, [0])
    batch = sampler.next()
    assert set(batch.dy.unique().tolist()) == set(range(9)) == set(batch.dx.unique().tolist())
    assert 0.45 < batch.flip.float().mean() < 0.55
    off = ImageSampler(100, 100, [0], padding=0, flip=False).next()
    assert int(off.dy.abs().sum() + off.dx.abs().sum() + off.flip.sum()) == 0


# --- training: exactness, stacking, resume ------------------------------------------------

def test_cpu_fp32_training_path_is_bitwise_a_textbook_loop_on_the_same_batches():
    x, y = data()
    net = tiny_cnn(0, dtype=torch.float32)
    cfg = config(optim=OptimConfig("adam", lr=1e-2), precision="auto")
    train_images(net, x, y, cfg, normalization=NORM, seed=7)

    ref = tiny_cnn(0, dtype=torch.float32)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    sampler = ImageSampler(N_IMAGES, 16, [7])
    mean = torch.tensor(NORM.mean)[:, None, None]
    std = torch.tensor(NORM.std)[:, None, None]
    for _ in range(cfg.epochs * sampler.steps_per_epoch):
        idx, dy, dx, flip = (t[0] for t in sampler.next())
        images = (naive_crop_flip(x[idx], dy, dx, flip, 4).float() / 255 - mean) / std  # ToTensor, Normalize
        loss = F.cross_entropy(ref(images), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    same_weights(net, ref)


FACTORIES = {
    "batchnorm_cnn": lambda s: tiny_cnn(s, "batch"),
    "plain_cnn": lambda s: tiny_cnn(s, "none"),
    "simple_cnn": lambda s: build("simple_cnn", CLASSES, seed=s, n_conv=2, filters=4, units=8, pool=True,
                                  image_size=SIZE).double(),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_each_stacked_model_ends_with_the_weights_it_has_when_trained_alone(name):
    x, y = data()
    seeds = [0, 1, 2]
    noisy = torch.stack([relabel(y, 0.5, CLASSES, s).labels for s in seeds])  # each model its own labels
    stack = ModelStack(FACTORIES[name], seeds)
    log = train_images(stack, x, noisy, config(), normalization=NORM)
    assert log.losses.shape == (6, 3)
    for i, s in enumerate(seeds):
        alone = FACTORIES[name](s)
        alone_log = train_images(alone, x, noisy[i], config(), normalization=NORM, seed=s)
        same_weights(stack.member(i), alone, exact=False)
        torch.testing.assert_close(torch.from_numpy(log.losses[:, i]), torch.from_numpy(alone_log.losses[:, 0]))
    first = [next(stack.member(i).parameters()) for i in range(2)]
    assert not torch.equal(*first)
    if name == "simple_cnn":   # members keep the measurement layers of repalign.models
        assert list(measure(stack.member(0), NORM(x[:2], torch.float64))) == ["conv1", "conv2", "penultimate",
                                                                             "logits"]


def measure_first_weight(epoch, model):
    assert not model.training
    return model[0].weight.detach().clone()


def test_killed_image_run_resumes_to_identical_weights_and_epoch_records(tmp_path):
    x, y = data()
    cfg = config(epochs=4)   # 3 steps per epoch, checkpoints every 2 steps

    def run(ckpt=None, kill=None):
        net = tiny_cnn(0)
        hook = EpochHook([0, 1, 3, 4], 3, measure_first_weight)
        train_images(net, x, y, cfg, normalization=NORM, seed=1, checkpoint=ckpt,
                     callbacks=[hook] + ([KillAfterStep(kill)] if kill else []))
        return net, hook

    reference, ref_hook = run()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "c.ckpt", kill=9)   # last checkpoint at step 8, after the epoch-1 record
    resumed, hook = run(tmp_path / "c.ckpt")
    same_weights(reference, resumed)
    assert sorted(hook.records) == [0, 1, 3, 4]
    for e in ref_hook.records:
        assert torch.equal(ref_hook.records[e], hook.records[e])
    assert torch.equal(hook.records[0], tiny_cnn(0)[0].weight)   # epoch 0 is the initialisation
    assert not torch.equal(hook.records[1], hook.records[0])
    assert resumed.training


def test_epoch_hook_logs_each_measurement_with_its_time(caplog):
    hook = EpochHook([0, 2], 1, lambda epoch, model: epoch)
    net = nn.Linear(1, 1)
    with caplog.at_level("INFO", logger="repalign.train.hooks"):
        hook.before_training(net)
        hook(1, net)   # not a grid epoch: no measurement, no line
        hook(2, net)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("measured epoch 0 (1 of 2 grid epochs) in ") and lines[1].startswith("measured epoch 2 (2 of 2")


def test_image_run_that_diverges_stops_naming_the_step_and_leaves_no_checkpoint(tmp_path):
    x, y = data()
    cfg = config(epochs=3, optim=OptimConfig("sgd", lr=1e200), check_every=3)
    with pytest.raises(NonFiniteLoss, match="non-finite at step"):
        train_images(tiny_cnn(0, "none"), x, y, cfg, normalization=NORM, checkpoint=tmp_path / "c.ckpt")
    assert not (tmp_path / "c.ckpt").exists()


def test_compile_option_gives_the_eager_weights():
    x, y = data()
    a, b = tiny_cnn(0), tiny_cnn(0)
    train_images(a, x, y, config(epochs=1), normalization=NORM)
    train_images(b, x, y, config(epochs=1, compile="eager"), normalization=NORM)
    same_weights(a, b)


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_bf16_autocast_keeps_norm_statistics_and_parameters_in_fp32(norm):
    x, y = data()
    net = tiny_cnn(0, norm, dtype=torch.float32)
    seen = set()
    net[0].register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    log = train_images(net, x, y, config(epochs=1, precision="bf16"), normalization=NORM)
    assert seen == {torch.bfloat16}                                 # the convolution ran under autocast
    assert all(t.dtype == torch.float32 for t in net.state_dict().values() if t.is_floating_point())
    if norm == "batch":
        assert float(net[1].running_mean.abs().sum()) > 0   # the statistics did update
    assert torch.isfinite(torch.from_numpy(log.losses)).all()


def test_precision_policy_per_device():
    cuda, cpu = precision_policy("cuda"), precision_policy("cpu")
    assert (cuda.autocast, cuda.memory_format, cuda.dtype) == (torch.bfloat16, torch.channels_last, torch.float32)
    assert (cpu.autocast, cpu.memory_format, cpu.dtype) == (None, torch.contiguous_format, torch.float32)
    assert precision_policy("cuda", "fp32").autocast is None
    assert precision_policy("cpu", "fp64").dtype == torch.float64
    with pytest.raises(ValueError, match="fp8"):
        precision_policy("cpu", "fp8")


def test_wrong_inputs_are_rejected_with_the_fix():
    x, y = data()
    with pytest.raises(TypeError, match="uint8"):
        train_images(tiny_cnn(0), x.float(), y, config(), normalization=NORM)
    with pytest.raises(TypeError, match="float64"):
        train_images(tiny_cnn(0, dtype=torch.float32), x, y, config(), normalization=NORM)


def test_evaluate_images_of_a_stack_matches_each_member():
    x, y = data()
    stack = ModelStack(lambda s: tiny_cnn(s), [0, 1])
    out = evaluate_images(stack, x, y, normalization=NORM, precision="fp64", batch_size=16)
    for i in range(2):
        member = stack.member(i).eval()
        with torch.no_grad():
            logits = member(NORM(x, torch.float64))
        assert out["accuracy"][i] == pytest.approx(100 * float((logits.argmax(1) == y).double().mean()))
        assert out["loss"][i] == pytest.approx(float(F.cross_entropy(logits, y)))


# --- epoch grid and label noise -----------------------------------------------------------

def test_epoch_grids():
    assert epoch_grid("log", 100, 4) == [0, 1, 10, 100]
    assert epoch_grid("log", 100, 3) == [0, 1, 100]
    assert epoch_grid("log", 5, 6) == [0, 1, 2, 3, 4, 5]      # log spacing below one epoch: consecutive
    grid = epoch_grid("log", 4000, 40)
    assert len(grid) == len(set(grid)) == 40 and grid == sorted(grid) and grid[0] == 0 and grid[-1] == 4000
    assert epoch_grid("linear", 10, 3) == [0, 5, 10]
    assert epoch_grid("all", 3) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="n <= last"):
        epoch_grid("log", 5, 7)


def test_incorrect_label_noise_changes_exactly_the_fraction_and_never_keeps_the_label():
    y = torch.arange(1000) % 10
    noise = relabel(y, 0.2, 10, seed=3)
    changed = noise.labels != y
    assert int(changed.sum()) == 200 == noise.relabelled.numel()
    assert torch.equal(changed.nonzero().flatten(), noise.relabelled)
    shifts = (noise.labels[noise.relabelled] - y[noise.relabelled]) % 10
    assert set(shifts.tolist()) == set(range(1, 10))           # every other class is reachable
    assert torch.equal(relabel(y, 0.2, 10, seed=3).labels, noise.labels)
    assert not torch.equal(relabel(y, 0.2, 10, seed=4).labels, noise.labels)
    assert noise.record()["label_noise_relabelled"] == 200


def test_uniform_random_labels_may_keep_the_label_and_use_their_own_classes():
    y = torch.arange(3000) % 10
    noise = relabel(y, 1.0, 5, seed=0, convention="uniform")
    assert set(noise.labels.tolist()) == set(range(5))
    kept = float((noise.labels == y).double().mean())
    assert 0.08 < kept < 0.12                                  # P(label == true) = 1/5 · P(true < 5) = 0.1
    with pytest.raises(ValueError, match="n_classes"):
        relabel(y, 0.5, 5, seed=0)                             # 'incorrect' must know every true class
