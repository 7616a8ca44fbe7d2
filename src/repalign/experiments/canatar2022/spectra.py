"""canatar2022 Figs 3, 4, 5 (Sec. V): layers 9 and 10 of three models picked from the ResNet-11 grid.

As the paper picks them among the kept runs: ``worst`` (lowest test accuracy), ``best``
(highest), and ``high_cka``: a model with very high target CKA in the last two layers but a
poor test accuracy, i.e. of the kept runs other than the best whose min(CKA₉, CKA₁₀) on the
train set is in the top third, the one with the lowest test accuracy (the rule is ours; the
paper points at "the tenth model from the left"). For each: the eigenvalues of the layer
kernels and the target's cumulative power C(ρ) (Eq. 3) on the spectrum probe at epochs 0,
the middle epoch and the end, from the p × p feature Gram in float64 (``kernels``).
"""

from __future__ import annotations

import numpy as np

from repalign.experiments.canatar2022.kernels import spectrum_summary
from repalign.experiments.canatar2022.resnet import LIGHT, PAPER, SETTINGS, SPECTRUM_LAYERS, kept_runs, summary_work
from repalign.experiments.registry import Context, artifact
from repalign.results import Result

PICKS = {"fig3": "worst", "fig4": "best", "fig5": "high_cka"}


def pick(runs: list[dict], which: str) -> dict:
    """``runs`` ordered by test accuracy (``kept_runs``); see the module docstring for the rule."""
    if which == "worst":
        return runs[0]
    if which == "best":
        return runs[-1]
    candidates = runs[:-1] or runs
    high = np.array([min(r["cka_target_train"][8], r["cka_target_train"][9]) for r in candidates])
    top = [r for r, h in zip(candidates, high) if h >= np.quantile(high, 2 / 3)]
    return min(top, key=lambda r: r["test_accuracy"])


def model_spectra(run: dict, prefix: str, result: Result) -> None:
    """Metrics ``<prefix>.*`` and arrays of one model's layer 9/10 spectra at its recorded epochs."""
    m, a = result.metrics, result.arrays
    epochs = sorted(run["spectra"])
    stage = {epochs[0]: "init", epochs[-1]: "final"}
    m[f"{prefix}.test_accuracy"] = run["test_accuracy"]
    m[f"{prefix}.train_accuracy"] = run["train_accuracy"]
    a["epochs"] = np.array(epochs)
    for k, layer in enumerate(SPECTRUM_LAYERS):
        m[f"{prefix}.cka_target.train.{layer}"] = float(run["cka_target_train"][8 + k])
        for epoch in epochs:
            spec = run["spectra"][epoch][layer]
            a[f"{layer}.epoch{epoch}.eigs"] = spec["eigs"]
            a[f"{layer}.epoch{epoch}.cum_power"] = spec["cum_power"]
            if epoch not in stage:
                continue
            s = spectrum_summary(spec)
            m[f"{prefix}.kernel_rank.{layer}.{stage[epoch]}"] = s["kernel_rank"]
            m[f"{prefix}.rank99.{layer}.{stage[epoch]}"] = s["rank99"]
            m[f"{prefix}.top10_share.{layer}.{stage[epoch]}"] = s["top10_share"]
            m[f"{prefix}.cum_power.train.{layer}.{stage[epoch]}.mode10"] = s["cum_power_mode10"]
    result.notes.append(f"{prefix} model: {run['label']}, test accuracy {run['test_accuracy']:.1f}%, "
                        f"train accuracy {run['train_accuracy']:.1f}%; spectra at epochs {epochs}")


def _spectrum_artifact(name: str):
    which = PICKS[name]

    @artifact(PAPER, name, settings=SETTINGS, resources=LIGHT, needs=("resnet_grid",), work=summary_work)
    def step(ctx: Context) -> Result:
        payload = ctx.load_model("resnet_grid")
        runs = kept_runs(payload)
        if not runs:
            raise ValueError(f"no run of the grid reached {payload['keep_above']}% train accuracy: nothing to pick")
        result = Result(notes=list(payload["notes"]))
        model_spectra(pick(runs, which), which, result)
        return result

    step.__doc__ = f"Fig {name[3:]}: eigenspectrum and cumulative power of layers 9, 10 of the {which} model."
    return step


fig3, fig4, fig5 = (_spectrum_artifact(name) for name in PICKS)
