"""The 21 figures of sharon2024: which runs each reads and what it measures on them.

Every figure reads trained runs (``run_<prefix>`` model steps) and writes ``<prefix>.*``
metrics for each (``analysis.run_metrics``); ViT figures add block-transition summaries,
DRS figures (4, 5, 6, 18) train the per-layer probes at the run's DRS epochs (``drs``), and
Fig 19 compares conv1 with a second initialisation. Tiny ImageNet runs are ``not_run``
offline (``DatasetMissing`` in the run step), and so are the figures that read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from repalign.experiments.registry import Context, Resources, Tiered, Work, analysed, artifact
from repalign.experiments.sharon2024.analysis import other_init_metrics, run_metrics, vit_transition_metrics
from repalign.experiments.sharon2024.drs import DrsSettings, drs_metrics, run_drs
from repalign.experiments.sharon2024.runs import PAPER, TRAIN_SPLIT_SIZE
from repalign.experiments.sharon2024.runs import SETTINGS as RUN_SETTINGS
from repalign.results import Result


@dataclass(frozen=True)
class FigureSettings:
    drs: DrsSettings     # used by the DRS figures only
    drs_snapshots: int   # weight snapshots of a DRS run: the runs' drs_points at the same tier


SETTINGS = Tiered(
    smoke=FigureSettings(DrsSettings(planes=2, resolution=6, probe_epochs=2, probe_n_train=200, probe_lr=1e-3),
                         RUN_SETTINGS.smoke.drs_points),
    quick=FigureSettings(DrsSettings(planes=20, resolution=20, probe_epochs=3, probe_n_train=5000),
                         RUN_SETTINGS.quick.drs_points),
    paper=FigureSettings(DrsSettings(planes=500, resolution=50, probe_epochs=10, probe_n_train=None),
                         RUN_SETTINGS.paper.drs_points),
)
RESOURCES = Tiered(smoke=Resources(runtime_min=5, mem_mb=3000), quick=Resources(runtime_min=20, mem_mb=16000, gpu=1),
                   paper=Resources(runtime_min=60 * 24, mem_mb=64000, gpu=1))


@dataclass(frozen=True)
class Figure:
    runs: tuple[str, ...]
    drs: tuple[str, ...] = ()
    vit: bool = False
    other_init: bool = False


FIGURES = {
    "fig1": Figure(("noise0",)),
    "fig2": Figure(("noise20", "noise0")),
    "fig3": Figure(("vit_noise0",), vit=True),
    "fig4": Figure(("noise0",), drs=("noise0",)),
    "fig5": Figure(("noise20", "noise0"), drs=("noise20", "noise0")),
    "fig6": Figure(("noise0", "noise20"), drs=("noise0", "noise20")),
    "fig7": Figure(("noise10",)),
    "fig8": Figure(("k32",)),
    "fig9": Figure(("k42",)),
    "fig10": Figure(("k52",)),
    "fig11": Figure(("tiny_noise0",)),
    "fig12": Figure(("resnet50_noise20",)),
    "fig13": Figure(("sgdm_noise0", "noise0")),
    "fig14": Figure(("sgdm_noise20", "noise20")),
    "fig15": Figure(("sgd_noise20", "noise20")),
    "fig16": Figure(("adam_wd", "noise0")),
    "fig17": Figure(("vit_noise20",), vit=True),
    "fig18": Figure(("vit_noise0",), drs=("vit_noise0",)),
    "fig19": Figure(("noise0",), other_init=True),
    "fig20": Figure(("tiny_noise20", "tiny_noise0")),
    "fig21": Figure(("tiny_noise20",)),
}


def figure_result(ctx: Context, figure: Figure) -> Result:
    result = Result()
    for prefix in figure.runs:
        payload = ctx.load_model(f"run_{prefix}")  # UpstreamNotRun (e.g. no Tiny ImageNet) -> not_run
        info = run_metrics(payload, result)
        if figure.vit:
            vit_transition_metrics(payload, info, result)
        if figure.other_init:
            other_init_metrics(payload, info, result)
        if prefix in figure.drs:
            drs_metrics(payload, run_drs(payload, ctx.settings.drs, ctx.device, ctx.seeds[0]), result)
    result.arrays["runs"] = list(figure.runs)
    return result


def figure_work(s: FigureSettings, figure: Figure) -> Work:
    """A figure reads its runs' stored CKA maps (one item per run); a DRS figure also trains a probe per
    layer on each weight snapshot and evaluates it on every plane point (App. E), counted per snapshot."""
    work = analysed(runs=len(figure.runs))
    for _ in figure.drs:
        work = (work + analysed(snapshots=s.drs_snapshots, probe_epochs=s.drs.probe_epochs,
                                examples=s.drs.probe_n_train or TRAIN_SPLIT_SIZE["cifar10"])
                + analysed(snapshots=s.drs_snapshots, planes=s.drs.planes, points=s.drs.resolution ** 2))
    return work


def _register(name: str, figure: Figure) -> None:
    @artifact(PAPER, name, settings=SETTINGS, resources=RESOURCES, needs=tuple(f"run_{p}" for p in figure.runs),
              work=partial(figure_work, figure=figure))
    def make(ctx: Context) -> Result:
        return figure_result(ctx, figure)

    make.__doc__ = f"sharon2024 {name}: runs {figure.runs}" + (f", DRS of {figure.drs}" if figure.drs else "")


for _name, _figure in FIGURES.items():
    _register(_name, _figure)
