"""imani2022 §5, Fig 7: alignment of every hidden layer before and after training.

The network is the 3-hidden-layer, width-128 ReLU net trained with Adam (batch 64) in the
sweeps' model steps (``sweeps.LAYERWISE``), 5 runs, measured on its training data for
MNIST 0/1 and CT Position. Metrics ``alignment_auc.<rep>.<task>`` with rep ``input``,
``init_layer<k>`` and ``trained_layer<k>`` (mean over runs, ``_se`` twin).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from repalign.errors import DatasetMissing
from repalign.experiments.imani2022.nets import hidden_layers
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.summary import alignment_stats, thresholds_for
from repalign.experiments.imani2022.sweeps import (LAYERWISE, MEASURE_RESOURCES, PAPER, SETTINGS, load_trained,
                                                   measure_work, trained_entry)
from repalign.experiments.imani2022.tasks import mark_not_run
from repalign.experiments.registry import Context, artifact
from repalign.experiments.storage import UpstreamNotRun
from repalign.results import Result

FIG7_TASKS = ("mnist", "ct")


def rep_names() -> list[str]:
    layers = range(1, LAYERWISE.depth + 1)
    return ["input"] + [f"init_layer{k}" for k in layers] + [f"trained_layer{k}" for k in layers]


@artifact(PAPER, "fig7", settings=SETTINGS, resources=MEASURE_RESOURCES,
          needs=tuple(f"sweep_{t}" for t in FIG7_TASKS), work=partial(measure_work, tasks=len(FIG7_TASKS)))
def fig7(ctx: Context) -> Result:
    """Fig 7: per-layer alignment of the input and the 3 hidden layers, at init and trained."""
    result = Result()
    for task_name in FIG7_TASKS:
        try:
            payload, task = load_trained(ctx, task_name)
        except (DatasetMissing, UpstreamNotRun) as exc:
            mark_not_run(result, [f"alignment_auc.{r}.{task_name}" for r in rep_names()], str(exc))
            continue
        x, y = task.x_train, task.y_train
        state = trained_entry(payload, LAYERWISE)["final_state"]
        reps = [x] + [h for s in (None, state) for h in hidden_layers(LAYERWISE, x.shape[1], payload["seeds"], x, s)]
        curves = []
        for name, rep in zip(rep_names(), reps):
            auc, curve = alignment_stats(rep, y)
            metric = f"alignment_auc.{name}.{task_name}"
            result.metrics[metric], result.metrics[metric + "_se"] = mean_se(auc.reshape(-1))
            curves.append(np.broadcast_to(curve, (len(payload["seeds"]), curve.shape[-1])))
        result.arrays[f"curves.{task_name}"] = np.stack(curves)  # [reps, runs, T]
        result.arrays[f"thresholds.{task_name}"] = thresholds_for(x.shape[0])
        result.notes.append(payload["note"])
    result.arrays["reps"] = np.array(rep_names())
    return result
