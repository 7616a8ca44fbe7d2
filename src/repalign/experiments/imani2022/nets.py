"""Fully connected networks of imani2022 §4.2 and §5, trained many at a time.

A ``NetConfig`` is one point of a sweep (depth = number of hidden layers, width,
activation, optimiser, batch size). Every config's runs are one ``StackedMLP``; configs
that share an optimiser and a batch size are trained together in ONE call of the shared
loop (a ``ModuleList`` of stacks, one loss per run, one sampler with a permutation per
run). Adam and SGD update each parameter independently, so this equals training every
network alone. Initial weights are never stored: ``StackedMLP`` draws them from the seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from repalign.experiments.imani2022.tasks import Task, per_example_loss
from repalign.experiments.registry import Context
from repalign.experiments.storage import load_model_file, save_model_file
from repalign.models import StackedMLP
from repalign.train import EpochSampler, OptimConfig, train

# The paper names no optimiser settings beyond "Adam" (lr 1e-3 in §7.1); the sweep's
# other optimisers are our choice and are recorded with every result.
OPTIMIZERS = {
    "adam": OptimConfig("adam", lr=1e-3),
    "sgd": OptimConfig("sgd", lr=1e-2, momentum=0.9),
    "adamw": OptimConfig("adamw", lr=1e-3, weight_decay=1e-2),
}


@dataclass(frozen=True)
class NetConfig:
    """One network of a sweep; defaults are the paper's base point (depth 4, width 128, Adam)."""

    depth: int = 4
    width: int = 128
    activation: str = "relu"
    optimizer: str = "adam"
    batch_size: int = 64

    @property
    def key(self) -> str:
        return f"d{self.depth}_w{self.width}_{self.activation}_{self.optimizer}_b{self.batch_size}"

    def widths(self, d_in: int) -> list[int]:
        return [d_in] + [self.width] * self.depth + [1]

    def build(self, d_in: int, seeds: list[int], device) -> StackedMLP:
        return StackedMLP(self.widths(d_in), seeds=seeds, activation=self.activation).to(device)


def staged(ctx: Context, stage: str, fn: Callable[[Path | None], dict]) -> dict:
    """Run one stage of a model step that trains several groups, resumably.

    ``fn(checkpoint)`` trains the group (passing ``checkpoint`` to ``train``); its output
    is kept beside the step's checkpoint until the whole step has finished, so a killed
    step redoes only the unfinished stage, from its last checkpoint.
    """
    if ctx.checkpoint is None:
        return fn(None)
    done = ctx.checkpoint.with_name(f"{ctx.checkpoint.name}.{stage}.done")
    if done.exists():
        return load_model_file(done, ctx.device)
    out = fn(ctx.checkpoint.with_name(f"{ctx.checkpoint.name}.{stage}"))
    save_model_file(done, out)
    return out


def clear_stages(ctx: Context) -> None:
    """Remove the finished-stage files once the step's output is complete."""
    if ctx.checkpoint is not None:
        for path in ctx.checkpoint.parent.glob(f"{ctx.checkpoint.name}.*.done"):
            path.unlink()


def train_group(ctx: Context, task: Task, configs: list[NetConfig], epochs: int, *,
                labels: torch.Tensor | None = None, checkpoint: Path | None = None,
                desc: str = "group") -> dict:
    """Train every config's runs (seeds ``ctx.seeds``) on the task's train split together.

    All configs must share optimiser and batch size. ``labels`` ([runs, n]) replaces the
    task's labels per run (e.g. shuffled labels). Returns ``{config key: final state}``,
    the per-run final train loss and the per-epoch mean loss, keyed the same way.
    """
    if len({(c.optimizer, c.batch_size) for c in configs}) != 1:
        raise ValueError("train_group needs configs with one optimiser and one batch size")
    runs, (n, d_in) = len(ctx.seeds), task.x_train.shape
    y = task.y_train.expand(runs, n) if labels is None else labels
    nets = torch.nn.ModuleList([c.build(d_in, ctx.seeds, ctx.device) for c in configs])
    run_axis = torch.arange(runs, device=ctx.device)[:, None]

    def losses(model, idx):  # idx [configs·runs, batch] -> one mean loss per run
        out = []
        for k, net in enumerate(model):
            i = idx[k * runs:(k + 1) * runs]
            pred = net(task.x_train[i]).squeeze(-1)
            out.append(per_example_loss(task, pred, y[run_axis, i]).mean(dim=1))
        return torch.cat(out)

    sampler = EpochSampler(n, configs[0].batch_size, n_models=len(configs) * runs,
                           seed=ctx.seeds[0], device=ctx.device)
    log = train(nets, losses, sampler, epochs * sampler.steps_per_epoch, OPTIMIZERS[configs[0].optimizer],
                checkpoint=checkpoint, desc=desc)
    with torch.no_grad():
        every = torch.arange(n, device=ctx.device).expand(len(configs) * runs, -1)
        final = losses(nets, every).reshape(len(configs), runs).cpu().numpy()
    per_epoch = log.losses.reshape(epochs, sampler.steps_per_epoch, len(configs), runs).mean(axis=1)
    return {c.key: {"config": asdict(c), "final_state": net.state_dict(), "final_train_loss": final[k],
                    "epoch_train_loss": per_epoch[:, k]}
            for k, (c, net) in enumerate(zip(configs, nets))}


def hidden_layers(config: NetConfig, d_in: int, seeds: list[int], x: torch.Tensor,
                  state: dict | None) -> list[torch.Tensor]:
    """Hidden activations (float64, ``[runs, n, width]`` each) at init (``state=None``) or trained."""
    net = config.build(d_in, seeds, x.device)
    if state is not None:
        net.load_state_dict(state)
    with torch.no_grad():
        return [h.double() for h in net.forward_with_hidden(x)[1]]
