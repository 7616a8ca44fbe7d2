"""maennel2020 App. E.2, Figs 21 and 22: f(σ) (Def. 3) of first-layer filters trained on random labels
with approximations of CIFAR-10, from the "ideal" Gaussian case to real images.

``approximation_filters`` (model) crops CIFAR-10 training images (in [-1, 1]) to 27×27 and
trains one net per data setting, all on the same 10 uniform random labels, from the same He
initialisation, with the same batches: two 3×3 convs (``simple_cnn(n_conv=2,
padding='valid', stride=s)``), a dense layer and the head (the paper's "two 3×3-convolutional
layers, one fully connected layer", counted as Fig 4 counts its "2-layer" 1-conv + dense net).
Settings (``approximations`` builds the data):

- stride 3: ``gaussian`` (Fig 21 green), ``per_position_gaussian`` (red), ``patch_shuffled``
  (black), ``real_stride3`` (Fig 22 blue), and ``gaussian_resampled``: the Gaussian redrawn with
  another data seed, whose gap to ``gaussian`` is the noise floor of every comparison;
- ``real_stride2``, ``real_stride1`` (Fig 22 green, red).

Every curve is f(σ_i) = sqrt(v_iᵀ Σ_w v_i) against ONE Σ_x, the covariance of all 3×3 patches
of the real crops (the Gaussian's covariance), so all curves share their σ_i and v_i and
``f_sigma_rel_dev`` compares them at the same σ. Unfixed by the paper, ours: lr 0.1 (at 0.05
the first-layer filters barely left their initialisation in 480 steps, docs/maennel2020.md run
A), dense 64 units and 256 filters as in Fig 4, the central crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from repalign.experiments.maennel2020 import approximations
from repalign.experiments.maennel2020.protocol import (BATCH_SIZE, disjoint_splits, filter_matrix, fit_tensors,
                                                       load_cifar, make_model, random_labels, to_unit_range)
from repalign.experiments.maennel2020.transfer_function import f_sigma_rel_dev, record_f_sigma
from repalign.experiments.registry import Context, Resources, Tiered, analysed, artifact, model, trained
from repalign.metrics import patch_covariance, transfer_function
from repalign.results import Result

PAPER = "maennel2020"
REFERENCE = "gaussian"
STRIDE3 = ("gaussian", "gaussian_resampled", "per_position_gaussian", "patch_shuffled", "real_stride3")
SETTINGS = {**{name: 3 for name in STRIDE3}, "real_stride2": 2, "real_stride1": 1}  # name -> conv stride
DATA_SEEDS = {"gaussian": 101, "gaussian_resampled": 202, "per_position_gaussian": 303, "patch_shuffled": 404}


@dataclass(frozen=True)
class ApproximationSettings:
    n_examples: int    # CIFAR-10 training images (and as many synthetic ones)
    epochs: int        # of n_examples at batch 256, the same for every setting
    filters: int       # in both convs
    units: int = 64
    lr: float = 0.1
    crop: int = 27


APPROXIMATIONS = Tiered(smoke=ApproximationSettings(n_examples=64, epochs=1, filters=8, units=8),
                        quick=ApproximationSettings(n_examples=50000, epochs=10, filters=64),
                        paper=ApproximationSettings(n_examples=50000, epochs=40, filters=256))


def setting_images(name: str, crops: torch.Tensor) -> torch.Tensor:
    """The training images of one setting, built from the real 27×27 crops (in [-1, 1])."""
    if name.startswith("real_stride"):
        return crops
    generator = torch.Generator().manual_seed(DATA_SEEDS[name])
    build = {"gaussian": approximations.global_gaussian, "gaussian_resampled": approximations.global_gaussian,
             "per_position_gaussian": approximations.per_position_gaussian,
             "patch_shuffled": approximations.shuffle_patches}[name]
    return build(crops, generator)


@model(PAPER, "approximation_filters", settings=APPROXIMATIONS,
       resources=Tiered(smoke=Resources(runtime_min=3), quick=Resources(runtime_min=30, gpu=1, mem_mb=16000),
                        paper=Resources(runtime_min=120, gpu=1, mem_mb=16000)),
       work=lambda s: trained(epochs=s.epochs, examples=s.n_examples, models=len(SETTINGS)))
def approximation_filters(ctx: Context) -> dict:
    s: ApproximationSettings = ctx.settings
    seed = ctx.seeds[0]
    split = load_cifar(ctx, "train")
    idx, _ = disjoint_splits(split.n, s.n_examples, 0, seed)
    crops = approximations.center_crop(to_unit_range(split.x[idx.to(ctx.device)]), s.crop).contiguous()
    labels = random_labels(crops.shape[0], 10, seed, ctx.device)
    steps = -(-crops.shape[0] // BATCH_SIZE) * s.epochs
    runs = {}
    for name, stride in SETTINGS.items():
        images = setting_images(name, crops)
        net = make_model("simple_cnn", 10, seed, 1.0, ctx.device, n_conv=2, filters=s.filters, units=s.units,
                         padding="valid", stride=stride, image_size=s.crop)
        init = filter_matrix(net.conv1).cpu().clone()
        losses = fit_tensors(net, images, labels, steps, s.lr, seed=seed, desc=f"{PAPER}/approximation_filters {name}")
        runs[name] = {"init": init, "final": filter_matrix(net.conv1).cpu().clone(), "stride": stride,
                      "loss_first": float(losses[:10].mean()), "loss_last": float(losses[-10:].mean())}
    return {"runs": runs, "data_cov": patch_covariance(crops.double(), 3).cpu(), "n_examples": int(crops.shape[0]),
            "steps": steps}


def f_sigma_result(ctx: Context, names: tuple[str, ...]) -> Result:
    """f(σ) of the final filters of each setting in ``names`` and of the reference at init, their shape
    summaries, and each curve's gap to the trained ``gaussian`` curve (``f_sigma_rel_dev``)."""
    payload = ctx.load_model("approximation_filters")
    data_cov = payload["data_cov"].double()
    f = lambda filters: transfer_function(data_cov, filters.double())[1].numpy()  # noqa: E731  (σ descending)
    sigma = transfer_function(data_cov, payload["runs"][REFERENCE]["init"].double())[0].numpy()
    curves = {name: f(payload["runs"][name]["final"]) for name in names}
    curves[f"{REFERENCE}_init"] = f(payload["runs"][REFERENCE]["init"])
    result = Result(notes=[f"{payload['n_examples']} CIFAR-10 27x27 crops, random labels, {payload['steps']} SGD "
                           f"steps per setting; one Sigma_x (all 3x3 patches of the real crops) for every curve"])
    for name in names:
        record_f_sigma(result, name, sigma, curves[name])
        result.metrics[f"loss.{name}.last"] = payload["runs"][name]["loss_last"]
        if name != REFERENCE:
            result.metrics[f"f_sigma_rel_dev.{name}_vs_{REFERENCE}"] = f_sigma_rel_dev(curves[name], curves[REFERENCE])
    record_f_sigma(result, f"{REFERENCE}.init", sigma, curves[f"{REFERENCE}_init"], arrays=f"{REFERENCE}_init")
    result.metrics[f"f_sigma_rel_dev.{REFERENCE}_vs_init"] = f_sigma_rel_dev(curves[REFERENCE],
                                                                             curves[f"{REFERENCE}_init"])
    result.metrics[f"loss.{REFERENCE}.first"] = payload["runs"][REFERENCE]["loss_first"]
    return result


CURVES = dict(settings=APPROXIMATIONS, resources=Tiered.same(Resources(runtime_min=2)),
              needs=("approximation_filters",), work=lambda s: analysed(settings=len(SETTINGS), filters=s.filters))


@artifact(PAPER, "fig21", **CURVES)
def fig21(ctx: Context) -> Result:
    return f_sigma_result(ctx, ("gaussian", "per_position_gaussian", "patch_shuffled", "gaussian_resampled"))


@artifact(PAPER, "fig22", **CURVES)
def fig22(ctx: Context) -> Result:
    return f_sigma_result(ctx, ("gaussian", "real_stride3", "real_stride2", "real_stride1", "patch_shuffled",
                                "gaussian_resampled"))
