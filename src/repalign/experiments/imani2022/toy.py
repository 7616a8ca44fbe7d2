"""imani2022 §4.1, Fig 4: two labelings of the same rank-2 representation.

1,000 unit vectors at angles π/4 + e and −3π/4 + e, e ~ N(0, spread²)
(``repalign.data.synthetic.toy_circle``). Labeling 1 splits the classes along v1 (the
two clusters), labeling 2 along v2 (across both clusters); ``toy_circle_labels``.

The representation is the 2-D points themselves, without a bias column: the paper's
matrix has exactly two singular values. Scaling: for n unit rows σ1² + σ2² = n (1,000
here), while the printed σ1 = 9.58, σ2 = 2.84 square to 99.8, i.e. a matrix with squared
Frobenius norm 100 (100 unit rows, or 1,000 rows scaled by 1/sqrt(10)). We keep the
text's 1,000 unit vectors and report ``sigma_1``/``sigma_2`` of that matrix scaled to
squared Frobenius norm ``frobenius_sq`` = 100, beside the unscaled values
(``sigma_*_unit_rows``). After this scaling only σ2/σ1 is free, and the spread sets it
(spread is not given in the paper; 0.3 rad is a round value, not fitted). Alignment and
label masses do not depend on the scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from repalign.data.synthetic import toy_circle, toy_circle_labels
from repalign.experiments.imani2022.peaks import mean_se
from repalign.experiments.imani2022.summary import thresholds_for
from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact
from repalign.metrics import alignment_auc, alignment_curve, label_projection_spectrum
from repalign.results import Result

PAPER = "imani2022"
LABELINGS = {"labeling1": "pc1", "labeling2": "pc2"}


@dataclass(frozen=True)
class ToySettings:
    n_runs: int
    n_points: int = 1000
    spread: float = 0.3
    frobenius_sq: float = 100.0


SETTINGS = Tiered(smoke=ToySettings(n_runs=2), quick=ToySettings(n_runs=10), paper=ToySettings(n_runs=10))
RESOURCES = Tiered.same(Resources(runtime_min=2, mem_mb=1000))


def toy_work(s: ToySettings) -> Work:
    return analysed(models=s.n_runs, examples=s.n_points)


@artifact(PAPER, "fig4", settings=SETTINGS, resources=RESOURCES, work=toy_work)
def fig4(ctx: Context) -> Result:
    """Fig 4: singular values of the toy representation and the alignment of both labelings."""
    s: ToySettings = ctx.settings
    sigmas, aucs, masses, curves = [], {k: [] for k in LABELINGS}, {}, {k: [] for k in LABELINGS}
    tau, scale = thresholds_for(s.n_points), np.sqrt(s.frobenius_sq / s.n_points)
    for seed in ctx.seeds:
        x, _ = toy_circle(s.n_points, s.spread, torch.Generator().manual_seed(seed), dtype=torch.float64)
        for name, labeling in LABELINGS.items():
            y = toy_circle_labels(x, labeling)
            sigma, proj = label_projection_spectrum(x, y)
            aucs[name].append(alignment_auc(x, y))
            masses.setdefault(name, []).append(proj / y.pow(2).sum())
            curves[name].append(alignment_curve(x, y, torch.as_tensor(tau)) / y.pow(2).sum())
        sigmas.append(sigma)
    sigma = torch.stack(sigmas)                                            # [runs, 2], unit rows
    scaled = sigma * scale
    result = Result()
    for i in (0, 1):
        result.metrics[f"sigma_{i + 1}"], result.metrics[f"sigma_{i + 1}_se"] = mean_se(scaled[:, i])
        result.metrics[f"sigma_{i + 1}_unit_rows"], _ = mean_se(sigma[:, i])
    result.metrics["sigma_ratio"], _ = mean_se(sigma[:, 1] / sigma[:, 0])
    for name in LABELINGS:
        result.metrics[f"alignment_auc.{name}"], result.metrics[f"alignment_auc_se.{name}"] = mean_se(
            torch.stack(aucs[name]))
        mass = torch.stack(masses[name])
        for i in (0, 1):
            result.metrics[f"label_mass.{name}.u{i + 1}"], _ = mean_se(mass[:, i])
        result.arrays[f"curve.{name}"] = torch.stack(curves[name]).numpy()
        result.arrays[f"y.{name}"] = toy_circle_labels(x, LABELINGS[name]).numpy()
    result.arrays["thresholds"] = tau * scale                            # in units of the scaled matrix
    result.arrays["x"] = x.numpy()                                         # the last run, for the scatter
    result.notes.append(
        f"{s.n_points} unit vectors, angular spread {s.spread} rad, no bias column (rank 2 as in the paper); "
        f"sigma_1/sigma_2 are for the matrix scaled to squared Frobenius norm {s.frobenius_sq:g} "
        f"(the printed values square to about 100, not {s.n_points}); unscaled values in sigma_*_unit_rows; "
        "alignment curves are divided by ||y||^2, thresholds in units of the scaled matrix")
    return result
