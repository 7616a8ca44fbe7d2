"""``python -m repalign estimate``: a tier's device-hours, projected from measured runs.

For each registered step at the target tier, on the named device:

1. a run of that step at that tier on that device exists: its wall time (measured, not projected);
2. else, from the step's declared work (``work=`` on ``@model``/``@artifact``: a ``Work``
   computed from the step's settings, epochs x examples x models for training, items measured
   for analysis) and its largest run at another tier on that device: the measured rate
   (declared work of that run / its wall time, start-up and evaluation included) applied to
   the target tier's declared work;
3. else no estimate, and the line says what is missing. Nothing is guessed.

Each paper's total is shown beside the compute the paper states, where it states any.
"""

from __future__ import annotations

from dataclasses import dataclass

from repalign.compute.rows import Row
from repalign.experiments.registry import TIERS, Step, Work, as_work


@dataclass(frozen=True)
class StatedCompute:
    """What a paper says about its own compute; ``gpu_hours``: the total it implies, if any."""

    text: str
    gpu_hours: float | None = None
    gpu_hours_basis: str = ""


SHARON_DRS_CONFIGS = 13  # the rows of the DRS configuration table in sharon2024 App. F
STATED_COMPUTE = {
    "imani2022": StatedCompute("no run times; App. D names the hardware only (ResNet18 ImageNet "
                               "pre-training on 4 V100, fine-tuning on 1 K80 or V100, Office-31 on 1 V100)"),
    "maennel2020": StatedCompute("none stated"),
    "lou2022": StatedCompute("none stated"),
    "sharon2024": StatedCompute(
        "App. C (RTX 3090/4090): ~15 h training per CIFAR-10 model (~48 h Tiny ImageNet); CKA heatmaps "
        "~15 h x 6 GPUs per model; DRS heatmaps ~3 days x 12 GPUs per model",
        gpu_hours=SHARON_DRS_CONFIGS * 3 * 24 * 12,
        gpu_hours_basis=f"at least: {SHARON_DRS_CONFIGS} DRS configurations (App. F) x 864 GPU-h, "
                        "before training and CKA maps"),
    "canatar2022": StatedCompute("none stated (48 runs of 5000 epochs, no time given)"),
}


@dataclass(frozen=True)
class Estimate:
    step: Step
    hours: float | None
    basis: str          # which measurement the number rests on, or what is missing


def declared_work(step: Step, tier: str, n_seeds: int | None = None) -> Work | None:
    return None if step.work is None else as_work(step.work(step.settings_for(tier, n_seeds)))


def _rows_of(step: Step, rows: list[Row], device: str) -> list[Row]:
    return [r for r in rows if r.key == (step.kind, step.paper, step.name) and r.status == "ok" and r.on(device)]


def estimate_step(step: Step, tier: str, rows: list[Row], device: str) -> Estimate:
    """The device-hours of ``step`` at ``tier`` on ``device`` (see the module docstring)."""
    measured = _rows_of(step, rows, device)
    direct = [r for r in measured if r.tier == tier and r.n_seeds is None]
    if direct:
        r = max(direct, key=lambda r: r.finished_at)
        return Estimate(step, r.wall_time_s / 3600,
                        f"measured: {r.source} ({tier}, {r.device_name}, {r.wall_time_s:.1f} s)")
    work = declared_work(step, tier)
    not_run = [r for r in rows if r.key == (step.kind, step.paper, step.name) and r.status != "ok"]
    why = f" (its runs were not_run: {not_run[-1].short_reason})" if not_run and not measured else ""
    if work is None:
        return Estimate(step, None, f"no estimate: no {tier}-tier run on '{device}' and no declared work{why}")
    timed = [r for r in measured if r.wall_time_s > 0 and declared_work(step, r.tier, r.n_seeds).amount > 0]
    if not timed:
        return Estimate(step, None, f"no estimate: declared {work.kind} work {work.describe()} = "
                                    f"{work.amount:,.0f} {work.unit}, but no timed run on '{device}'{why}")
    r = max(timed, key=lambda r: declared_work(step, r.tier, r.n_seeds).amount)
    done = declared_work(step, r.tier, r.n_seeds).amount
    rate = done / r.wall_time_s
    how = "" if work.kind == "training" else "analysis, linear in its measured wall time: "
    return Estimate(step, work.amount / rate / 3600,
                    f"projected: {how}{work.describe()} = {work.amount:,.0f} {work.unit} at {rate:,.1f} "
                    f"{work.unit}/s, measured by {r.source} ({r.tier}, {r.device_name}: {done:,.0f} {work.unit} "
                    f"in {r.wall_time_s:.1f} s)" + _size_caveat(step, r.tier, tier))


# settings that change a network's or an input's size, so that a rate measured at one tier need not
# hold at another unless the declared work weighs them (``registry.SIZE_FACTORS``)
SIZE_SETTINGS = ("width", "widths", "hidden", "depth", "cnn_width", "width_scale", "resnet50_width",
                 "resnet50_blocks", "vit_shape", "image_size", "crop", "filters", "units", "features", "t2t")


def _size_caveat(step: Step, measured_tier: str, tier: str) -> str:
    """``; sizes differ from the measured run: width 16 -> 200`` where such settings differ between the tiers."""
    here, there = step.settings_for(tier), step.settings_for(measured_tier)
    diffs = [f"{k} {getattr(there, k)!r} -> {getattr(here, k)!r}" for k in SIZE_SETTINGS
             if hasattr(here, k) and getattr(here, k) != getattr(there, k)]
    return f"; sizes differ from the measured run ({', '.join(diffs)}), so its rate may not carry over" if diffs else ""


@dataclass(frozen=True)
class PaperTotal:
    paper: str
    estimates: list[Estimate]

    @property
    def hours(self) -> float:
        return sum(e.hours for e in self.estimates if e.hours is not None)

    @property
    def missing(self) -> int:
        return sum(e.hours is None for e in self.estimates)

    @property
    def complete(self) -> bool:
        return bool(self.estimates) and self.missing == 0


def estimate_tier(steps: list[Step], papers: list[str], tier: str, rows: list[Row], device: str) -> list[PaperTotal]:
    """One total per paper (models first, then artifacts); a paper without steps has an empty total."""
    order = sorted(steps, key=lambda s: (s.paper, s.kind != "model", s.name))
    return [PaperTotal(p, [estimate_step(s, tier, rows, device) for s in order if s.paper == p]) for p in papers]


def _hours(h: float | None) -> str:
    return "     —" if h is None else f"{h:8.3f} h"


def paper_line(total: PaperTotal) -> str:
    """The paper's projected total beside what the paper states."""
    stated = STATED_COMPUTE.get(total.paper, StatedCompute("none recorded"))
    if not total.estimates:
        ours = "no implemented steps"
    elif total.complete:
        ours = f"{total.hours:.3f} h"
    elif total.missing == len(total.estimates):
        ours = f"no estimate for any of its {len(total.estimates)} steps"
    else:
        ours = f"at least {total.hours:.3f} h ({total.missing} of {len(total.estimates)} steps without estimate)"
    line = f"{total.paper}: {ours}; paper states: {stated.text}"
    if stated.gpu_hours:
        line += f"; implied {stated.gpu_hours:,.0f} GPU-h ({stated.gpu_hours_basis})"
        if total.complete:
            line += f"; ratio {total.hours / stated.gpu_hours:.2g} (target <= 0.1)"
    return line


def render(totals: list[PaperTotal], tier: str, device: str) -> str:
    lines = [f"Projected {tier}-tier device-hours on '{device}'. measured: a run of the step at this tier; "
             "projected: its declared work / the rate of its largest run on this device (start-up and evaluation "
             "included); —: no estimate, and the line says what is missing."]
    for total in totals:
        lines.append("")
        lines.append(paper_line(total))
        for e in total.estimates:
            needs = f" (needs {', '.join(e.step.needs)})" if e.step.needs else ""
            lines.append(f"  {_hours(e.hours)}  {e.step.kind:8s} {e.step.name}{needs}: {e.basis}")
    grand = sum(t.hours for t in totals)
    missing = sum(t.missing for t in totals)
    n = sum(len(t.estimates) for t in totals)
    lines.append("")
    if missing == 0 and n:
        summary = f"{grand:.3f} h"
    elif missing == n:
        summary = f"no estimate: none of the {n} steps has a measurement or a projection on '{device}'"
    else:
        summary = f"at least {grand:.3f} h: {missing} of {n} steps have no estimate (see their lines)"
    lines.append(f"Total, {tier} tier on '{device}': {summary}")
    return "\n".join(lines)


def registered_steps() -> list[Step]:
    from repalign.experiments import ARTIFACTS, MODELS

    return [*MODELS.values(), *ARTIFACTS.values()]


def all_papers(steps: list[Step]) -> list[str]:
    """The five papers (``STATED_COMPUTE``) and any other paper with steps."""
    return list(STATED_COMPUTE) + sorted({s.paper for s in steps} - set(STATED_COMPUTE))


def run_estimate(results_dirs: list, tier: str, device: str) -> str:
    from repalign.compute.rows import read_rows

    if tier not in TIERS:
        raise ValueError(f"unknown tier '{tier}'; choose one of {TIERS}")
    steps = registered_steps()
    rows = read_rows(results_dirs)
    return render(estimate_tier(steps, all_papers(steps), tier, rows, device), tier, device)
