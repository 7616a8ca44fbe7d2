"""imani2022 §3 and §4.2, Figs 1 and 5: three 1024-dim representations of CT Position.

Model ``ct_features`` builds, per run, on 1,000 train points (labels mapped to [−1, 1]):
- ``nn``: the hidden layer of a one-hidden-layer ReLU network trained with Adam on MSE;
- ``rbf``: the hidden layer of a two-layer RBF network (Gaussian units whose centres
  and widths are trained with the output layer; centres start at random train points);
- ``dictionary``: sparse codes from dictionary learning (Mairal et al. 2009,
  scikit-learn's ``MiniBatchDictionaryLearning``), an unsupervised representation.
It stores each representation of the train and the 1,000 test points.

- Fig 1: a zero-initialised linear model trained by full-batch GD on each normalised
  representation (bias column, unit rows), step sizes {0.01, 0.1, 1, 10}, best kept
  (lowest mean normalised train loss); learning curves, test MSE, and the closed-form
  least-squares fit.
- Fig 5: alignment curves of the three representations with the train labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from repalign.experiments.imani2022.nets import clear_stages, staged
from repalign.experiments.imani2022.peaks import gd_linear, mean_se
from repalign.experiments.imani2022.summary import normalized_pair, thresholds_for
from repalign.experiments.imani2022.tasks import Task, load_task
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.metrics import alignment_auc, alignment_curve
from repalign.models import StackedMLP
from repalign.results import Result
from repalign.train import EpochSampler, OptimConfig, train

PAPER = "imani2022"
REPS = ("nn", "rbf", "dictionary")


@dataclass(frozen=True)
class CTFeatureSettings:
    n_runs: int
    epochs: int              # NN and RBF network training
    dictionary_iter: int     # passes of dictionary learning over the train points
    linear_steps: int
    features: int = 1024
    n_train: int = 1000
    n_test: int = 1000
    batch_size: int = 64
    linear_lrs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


SETTINGS = Tiered(
    smoke=CTFeatureSettings(n_runs=1, epochs=1, dictionary_iter=1, linear_steps=50, features=32,
                            n_train=100, n_test=100),
    quick=CTFeatureSettings(n_runs=3, epochs=200, dictionary_iter=20, linear_steps=2000),
    paper=CTFeatureSettings(n_runs=5, epochs=1000, dictionary_iter=100, linear_steps=10_000),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=30, mem_mb=4000, gpu=1),
    paper=Resources(runtime_min=120, mem_mb=8000, gpu=1),
)
MEASURE_RESOURCES = Tiered.same(Resources(runtime_min=10, mem_mb=4000))


class StackedRBF(nn.Module):
    """``n_models`` RBF networks: φ_j(x) = exp(−‖x − c_j‖² / (2 s_j²)), then a linear output.

    Centres start at ``features`` random rows of ``x`` (drawn per model from its seed),
    widths at the median distance between points and centres.
    """

    def __init__(self, x: torch.Tensor, features: int, seeds: list[int]):
        super().__init__()
        picks = [torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s))[:features] for s in seeds]
        centres = torch.stack([x[p.to(x.device)] for p in picks])                      # [models, F, d]
        width = torch.cdist(x.expand(len(seeds), -1, -1), centres).median()
        self.centres = nn.Parameter(centres.clone())
        self.log_width = nn.Parameter(torch.full((len(seeds), 1, features), float(torch.log(width)),
                                                 device=x.device))
        self.out = StackedMLP([features, 1], seeds=seeds).to(x.device)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.centres.shape[0], -1, -1)
        return torch.exp(-torch.cdist(x, self.centres).pow(2) / (2 * torch.exp(2 * self.log_width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def _fit(ctx: Context, task: Task, net: nn.Module, checkpoint, desc: str) -> None:
    """Adam (lr 1e-3, batch 64) on the train MSE, every run at once."""
    s: CTFeatureSettings = ctx.settings

    def mse(m, idx):
        return ((m(task.x_train[idx]).squeeze(-1) - task.y_train[idx]) ** 2).mean(dim=1)

    sampler = EpochSampler(task.x_train.shape[0], s.batch_size, n_models=len(ctx.seeds), seed=ctx.seeds[0],
                           device=ctx.device)
    train(net, mse, sampler, s.epochs * sampler.steps_per_epoch, OptimConfig("adam", lr=1e-3),
          checkpoint=checkpoint, desc=desc)


def _network_features(ctx: Context, task: Task, kind: str, checkpoint) -> dict:
    """Train the ``nn`` or ``rbf`` network and return its hidden layer on train and test points."""
    s: CTFeatureSettings = ctx.settings
    if kind == "nn":
        net = StackedMLP([task.x_train.shape[1], s.features, 1], seeds=ctx.seeds).to(ctx.device)
    else:
        net = StackedRBF(task.x_train, s.features, ctx.seeds)
    _fit(ctx, task, net, checkpoint, f"{PAPER}/ct_features/{kind}")
    with torch.no_grad():
        return {split: (net.forward_with_hidden(x)[1][-1] if kind == "nn" else net.features(x)).cpu()
                for split, x in (("train", task.x_train), ("test", task.x_test))}


def _dictionary_features(task: Task, s: CTFeatureSettings, seeds: list[int]) -> dict:
    """Sparse codes of train and test points under a dictionary learned per run on the train points."""
    from sklearn.decomposition import MiniBatchDictionaryLearning

    codes = {"train": [], "test": []}
    for seed in seeds:
        learner = MiniBatchDictionaryLearning(n_components=s.features, alpha=1.0, batch_size=256,
                                              max_iter=s.dictionary_iter, fit_algorithm="cd",
                                              transform_algorithm="lasso_cd", transform_alpha=1.0,
                                              random_state=seed)
        learner.fit(task.x_train.double().cpu().numpy())
        for split in codes:
            codes[split].append(torch.from_numpy(learner.transform(task.split(split)[0].double().cpu().numpy())))
    return {split: torch.stack(c).float() for split, c in codes.items()}


def _task(ctx: Context, seed: int) -> Task:
    s: CTFeatureSettings = ctx.settings
    return load_task(ctx, "ct", s.n_train, s.n_test, seed)


def features_work(s: CTFeatureSettings) -> Work:
    """The NN and RBF network trained ``epochs``, dictionary learning ``dictionary_iter`` passes."""
    return (trained(epochs=s.epochs, examples=s.n_train, models=s.n_runs, networks=2)
            + trained(passes=s.dictionary_iter, examples=s.n_train, models=s.n_runs))


def linear_work(s: CTFeatureSettings) -> Work:
    """Fig 1: full-batch GD of a linear model per representation and step size."""
    return trained(steps=s.linear_steps, examples=s.n_train, models=s.n_runs, representations=len(REPS),
                   lrs=len(s.linear_lrs))


def alignment_work(s: CTFeatureSettings) -> Work:
    """Fig 5: alignment curves of each representation on the train points."""
    return analysed(models=s.n_runs, representations=len(REPS), examples=s.n_train)


@model(PAPER, "ct_features", settings=SETTINGS, resources=TRAIN_RESOURCES, work=features_work)
def train_ct_features(ctx: Context) -> dict:
    """The NN, RBF-network and dictionary-learning representations of Figs 1 and 5."""
    task = _task(ctx, ctx.seeds[0])
    reps = {kind: staged(ctx, kind, lambda ckpt, kind=kind: _network_features(ctx, task, kind, ckpt))
            for kind in ("nn", "rbf")}
    reps["dictionary"] = staged(ctx, "dictionary", lambda _: _dictionary_features(task, ctx.settings, ctx.seeds))
    clear_stages(ctx)
    return {"seeds": ctx.seeds, "reps": reps, "note": task.note()}


def _load(ctx: Context) -> tuple[dict, Task]:
    payload = ctx.load_model("ct_features")
    return payload, _task(ctx, payload["seeds"][0])


@artifact(PAPER, "fig1", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("ct_features",), work=linear_work)
def fig1(ctx: Context) -> Result:
    """Fig 1: GD learning curves (train and test MSE) of linear models on each representation."""
    s: CTFeatureSettings = ctx.settings
    payload, task = _load(ctx)
    result = Result()
    for rep in REPS:
        phi_tr, y_tr = normalized_pair(payload["reps"][rep]["train"].to(ctx.device), task.y_train)
        phi_te, y_te = normalized_pair(payload["reps"][rep]["test"].to(ctx.device), task.y_test)
        train_l, test_l, _ = gd_linear(phi_tr, y_tr[None], phi_te, y_te[None], s.linear_lrs, s.linear_steps)
        learning_auc = torch.nan_to_num((train_l / train_l[..., :1]).mean(-1), nan=math.inf)[:, 0]  # [lrs, runs]
        best = int(learning_auc.mean(-1).argmin())
        result.metrics[f"best_lr.{rep}.ct"] = s.linear_lrs[best]
        result.metrics[f"learning_auc.{rep}.ct"], result.metrics[f"learning_auc_se.{rep}.ct"] = mean_se(
            learning_auc[best])
        result.metrics[f"test_mse.{rep}.ct"], result.metrics[f"test_mse_se.{rep}.ct"] = mean_se(
            test_l[best, 0, :, -1])
        w_star = torch.linalg.lstsq(phi_tr, y_tr.unsqueeze(-1)).solution
        residual = (phi_tr @ w_star).squeeze(-1) - y_tr
        centred = y_tr - y_tr.mean(-1, keepdim=True)
        result.metrics[f"closed_form_train_rel_mse.{rep}.ct"], _ = mean_se(
            residual.pow(2).sum(-1) / centred.pow(2).sum(-1))
        result.arrays[f"train_curve.{rep}"] = train_l[best, 0].cpu().numpy()
        result.arrays[f"test_curve.{rep}"] = test_l[best, 0].cpu().numpy()
    result.notes += [payload["note"], "learning_auc: mean over GD steps of train MSE / initial train MSE; "
                     "step size per representation by the lowest mean learning_auc (diverging ones excluded)"]
    return result


@artifact(PAPER, "fig5", settings=SETTINGS, resources=MEASURE_RESOURCES, needs=("ct_features",), work=alignment_work)
def fig5(ctx: Context) -> Result:
    """Fig 5: alignment curves (Eq. 2, unnormalised) of the three representations."""
    payload, task = _load(ctx)
    result = Result()
    tau = torch.as_tensor(thresholds_for(task.y_train.shape[0]), dtype=torch.float64, device=ctx.device)
    for rep in REPS:
        phi, y = normalized_pair(payload["reps"][rep]["train"].to(ctx.device), task.y_train)
        result.metrics[f"alignment_auc.{rep}.ct"], result.metrics[f"alignment_auc_se.{rep}.ct"] = mean_se(
            alignment_auc(phi, y))
        for name, t in (("alignment_at_zero", 0.0), ("alignment_at_tau8", 8.0)):
            result.metrics[f"{name}.{rep}.ct"], _ = mean_se(
                alignment_curve(phi, y, torch.tensor([t], dtype=phi.dtype, device=phi.device))[..., 0])
        result.arrays[f"curve.{rep}"] = alignment_curve(phi, y, tau).cpu().numpy()
    result.arrays["thresholds"] = tau.cpu().numpy()
    result.notes += [payload["note"], f"||y||^2 of the train labels: {float(task.y_train.pow(2).sum()):.1f}"]
    return result
