"""imani2022 §5, Figs 6, 17, 18: training raises last-hidden-layer alignment in every setting.

Five sweeps around a base network (4 hidden layers of width 128, ReLU, Adam, batch 64):
depth (hidden layers, width 128), width (depth 4), activation, optimiser and batch size.
For each task (CIFAR-10 0/1, MNIST 0/1, CT Position) one model step, ``sweep_<task>``,
trains every config of every sweep with 5 runs each (configs sharing optimiser and batch
size in one loop; see ``nets``). The artifacts only measure:

- Fig 6: train data; depth, width and activation sweeps.
- Fig 17: train data; optimiser and batch-size sweeps.
- Fig 18: test data; all five sweeps.

Metrics: ``alignment_auc.<split>.<task>.<sweep>.<setting>.<init|trained>`` (mean over runs,
``_se`` twin), ``alignment_auc.<split>.<task>.input`` and
``min_alignment_gain.<split>.<sweep>.<task>.<vs_init|vs_input>`` = the minimum over the
sweep's settings of mean trained alignment minus the baseline's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from repalign.errors import DatasetMissing, RepalignError
from repalign.experiments.imani2022.nets import NetConfig, clear_stages, hidden_layers, staged, train_group
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.summary import alignment_stats, thresholds_for
from repalign.experiments.imani2022.tasks import TASKS, Task, load_task, mark_not_run
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact, model, trained
from repalign.experiments.storage import UpstreamNotRun
from repalign.results import Result

PAPER = "imani2022"
BASE = NetConfig()
LAYERWISE = NetConfig(depth=3)  # Fig 7's network (3 hidden layers of width 128), trained with the sweeps
SWEEPS = ("depth", "width", "activation", "optimizer", "batch_size")
BASELINES = ("vs_init", "vs_input")


@dataclass(frozen=True)
class SweepSettings:
    n_runs: int
    epochs: int
    n_train: int | None            # per task; None = every available point
    n_test: int | None
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    activations: tuple[str, ...]
    optimizers: tuple[str, ...]
    batch_sizes: tuple[int, ...]


SETTINGS = Tiered(
    smoke=SweepSettings(n_runs=2, epochs=1, n_train=128, n_test=128, depths=(3,), widths=(16,),
                        activations=("prelu",), optimizers=("sgd",), batch_sizes=(128,)),
    quick=SweepSettings(n_runs=5, epochs=20, n_train=1000, n_test=1000, depths=(1, 2, 3, 4),
                        widths=(32, 64, 128), activations=("tanh", "prelu", "leaky_relu", "linear"),
                        optimizers=("adam", "sgd", "adamw"), batch_sizes=(32, 128, 256)),
    paper=SweepSettings(n_runs=5, epochs=100, n_train=10_000, n_test=None, depths=(1, 2, 3, 4, 8),
                        widths=(32, 64, 128, 256, 512), activations=("tanh", "prelu", "leaky_relu", "linear"),
                        optimizers=("adam", "sgd", "adamw"), batch_sizes=(32, 128, 256)),
)
TRAIN_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=30, mem_mb=6000, gpu=1),
    paper=Resources(runtime_min=240, mem_mb=16000, gpu=1),
)
MEASURE_RESOURCES = Tiered(
    smoke=Resources(runtime_min=5, mem_mb=2000),
    quick=Resources(runtime_min=15, mem_mb=6000),
    paper=Resources(runtime_min=60, mem_mb=16000),
)


def sweep_points(s: SweepSettings, sweep: str) -> list[tuple[str, NetConfig]]:
    """``(setting label, config)`` for every setting of one sweep, in order."""
    if sweep == "depth":
        return [(f"depth{d}", replace(BASE, depth=d)) for d in s.depths]
    if sweep == "width":
        return [(f"width{w}", replace(BASE, width=w)) for w in s.widths]
    if sweep == "activation":
        return [(a, replace(BASE, activation=a)) for a in s.activations]
    if sweep == "optimizer":
        return [(o, replace(BASE, optimizer=o)) for o in s.optimizers]
    if sweep == "batch_size":
        return [(f"batch{b}", replace(BASE, batch_size=b)) for b in s.batch_sizes]
    raise ValueError(f"unknown sweep {sweep!r}; choose one of {SWEEPS}")


def all_configs(s: SweepSettings) -> list[NetConfig]:
    """Every distinct network the sweeps (and Fig 7) need, each trained once."""
    configs = [LAYERWISE] + [c for sweep in SWEEPS for _, c in sweep_points(s, sweep)]
    return list(dict.fromkeys(configs))


def sweep_work(s: SweepSettings) -> Work:
    """One task's sweep models: every distinct network, ``n_runs`` seeds, ``epochs`` over ``n_train``."""
    return trained(epochs=s.epochs, examples=s.n_train, models=s.n_runs, networks=len(all_configs(s)))


def measure_work(s: SweepSettings, tasks: int = len(TASKS)) -> Work:
    """Figs 6, 7, 17, 18: every network's last hidden layers, at init and trained, on each task's points."""
    return analysed(tasks=tasks, networks=len(all_configs(s)), models=s.n_runs, states=2, examples=s.n_train)


def train_sweep(ctx: Context, task_name: str) -> dict:
    s: SweepSettings = ctx.settings
    task = load_task(ctx, task_name, s.n_train, s.n_test, ctx.seeds[0])
    groups: dict[tuple[str, int], list[NetConfig]] = {}
    for c in all_configs(s):
        groups.setdefault((c.optimizer, c.batch_size), []).append(c)
    trained = {}
    for (opt, batch), configs in groups.items():
        stage = f"{opt}_b{batch}"
        trained.update(staged(ctx, stage, lambda ckpt, configs=configs, stage=stage: train_group(
            ctx, task, configs, s.epochs, checkpoint=ckpt, desc=f"{PAPER}/sweep_{task_name}/{stage}")))
    clear_stages(ctx)
    return {"task": task_name, "seeds": ctx.seeds, "note": task.note(), "configs": trained}


def _register_sweep_model(task_name: str) -> None:
    @model(PAPER, f"sweep_{task_name}", settings=SETTINGS, resources=TRAIN_RESOURCES, work=sweep_work)
    def train_sweep_task(ctx: Context) -> dict:
        """Every sweep network of Figs 6, 7, 17, 18 on one task, 5 runs each."""
        return train_sweep(ctx, task_name)


for _task in TASKS:
    _register_sweep_model(_task)


def load_trained(ctx: Context, task_name: str) -> tuple[dict, Task]:
    """The task's sweep models and the data they were trained on (raises if either is missing)."""
    s: SweepSettings = ctx.settings
    payload = ctx.load_model(f"sweep_{task_name}")
    return payload, load_task(ctx, task_name, s.n_train, s.n_test, payload["seeds"][0])


def trained_entry(payload: dict, config: NetConfig) -> dict:
    """The stored training output of ``config``; a clear error when the model file predates it."""
    if config.key not in payload["configs"]:
        raise RepalignError(
            f"model sweep_{payload['task']} has no network {config.key}: it was trained with other sweep "
            f"settings (it has {sorted(payload['configs'])}). Delete results/imani2022/models/"
            f"sweep_{payload['task']}.pt and run its rule again.")
    return payload["configs"][config.key]


def gain_names(split: str, sweeps: tuple[str, ...], task_name: str) -> list[str]:
    return [f"min_alignment_gain.{split}.{sweep}.{task_name}.{b}" for sweep in sweeps for b in BASELINES]


def measure_sweeps(ctx: Context, split: str, sweeps: tuple[str, ...]) -> Result:
    """Last-hidden-layer alignment at init and after training for each setting of ``sweeps``."""
    s: SweepSettings = ctx.settings
    result = Result()
    for task_name in TASKS:
        try:
            payload, task = load_trained(ctx, task_name)
        except (DatasetMissing, UpstreamNotRun) as exc:
            mark_not_run(result, gain_names(split, sweeps, task_name), str(exc))
            continue
        x, y = task.split(split)
        input_auc, input_curve = alignment_stats(x, y)
        result.metrics[f"alignment_auc.{split}.{task_name}.input"] = float(input_auc)
        result.arrays[f"input_curve.{task_name}"] = input_curve
        result.arrays[f"thresholds.{task_name}"] = thresholds_for(x.shape[0])
        for sweep in sweeps:
            curves, gains = [], {b: [] for b in BASELINES}
            for label, cfg in sweep_points(s, sweep):
                entry = trained_entry(payload, cfg)
                means, states = {}, []
                for state_name, state in (("init", None), ("trained", entry["final_state"])):
                    last = hidden_layers(cfg, x.shape[1], payload["seeds"], x, state)[-1]
                    auc, curve = alignment_stats(last, y)
                    name = f"alignment_auc.{split}.{task_name}.{sweep}.{label}.{state_name}"
                    means[state_name], result.metrics[name + "_se"] = mean_se(auc)
                    result.metrics[name] = means[state_name]
                    states.append(curve)
                result.metrics[f"train_loss.{task_name}.{sweep}.{label}"] = float(
                    np.mean(entry["final_train_loss"]))
                gains["vs_init"].append(means["trained"] - means["init"])
                gains["vs_input"].append(means["trained"] - float(input_auc))
                curves.append(np.stack(states))
            for b in BASELINES:
                result.metrics[f"min_alignment_gain.{split}.{sweep}.{task_name}.{b}"] = min(gains[b])
            result.arrays[f"curves.{task_name}.{sweep}"] = np.stack(curves)  # [settings, init/trained, runs, T]
            result.arrays[f"labels.{sweep}"] = np.array([label for label, _ in sweep_points(s, sweep)])
        result.notes.append(f"{payload['note']} (alignment on the {split} split)")
    result.notes.append("networks: depth = hidden layers; classification trained with the logistic loss "
                        "on ±1 labels, CT with squared error; optimisers adam (lr 1e-3), sgd (lr 1e-2, "
                        "momentum 0.9), adamw (lr 1e-3, wd 1e-2); the same data subset for every run")
    return result


FIG_SWEEPS = {"fig6": ("train", ("depth", "width", "activation")),
              "fig17": ("train", ("optimizer", "batch_size")),
              "fig18": ("test", SWEEPS)}
NEEDS = tuple(f"sweep_{t}" for t in TASKS)


def _register_sweep_artifact(fig: str, split: str, sweeps: tuple[str, ...]) -> None:
    @artifact(PAPER, fig, settings=SETTINGS, resources=MEASURE_RESOURCES, needs=NEEDS, work=measure_work)
    def measure(ctx: Context) -> Result:
        """Alignment gain of the last hidden layer over its init and over the input."""
        return measure_sweeps(ctx, split, sweeps)


for _fig, (_split, _sweeps) in FIG_SWEEPS.items():
    _register_sweep_artifact(_fig, _split, _sweeps)
