"""``python -m repalign ledger``: docs/compute.md, regenerated from the results' provenance.

One row per step run (tier, device, wall time, peak memory, throughput), which registered
steps have no run at each tier, and the compute targets of the suite (issue 17) evaluated on
those rows. GPU targets stay "unmeasured" until a GPU run's results are passed in.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from repalign.compute.estimate import STATED_COMPUTE, all_papers, estimate_tier, registered_steps
from repalign.compute.rows import Row, read_rows
from repalign.experiments.registry import TIERS, Step

QUICK_BUDGET_MIN = 60     # quick tier of every offline artifact, one H100/H200-class GPU
PAPER_FRACTION = 0.1      # paper tier's projected GPU-hours / the paper's stated compute
SMOKE_BUDGET_MIN = 10     # whole smoke DAG on the 2-core CPU
BIG_GPUS = ("H100", "H200")


def _num(value, fmt: str = "{:,.1f}") -> str:
    return "—" if value is None else fmt.format(value)


def _latest(rows: list[Row]) -> dict[tuple, Row]:
    """The most recent row of each step."""
    latest: dict[tuple, Row] = {}
    for r in sorted(rows, key=lambda r: r.finished_at):
        latest[r.key] = r
    return latest


def quick_target(rows: list[Row], today: str) -> list[str]:
    offline = {r.key for r in rows if r.status == "ok"}
    gpu = _latest([r for r in rows if r.tier == "quick" and r.status == "ok" and r.is_gpu
                   and any(g in r.device_name for g in BIG_GPUS)])
    cpu = _latest([r for r in rows if r.tier == "quick" and r.status == "ok" and not r.is_gpu])
    cpu_note = (f"CPU, quick tier: {len(cpu)} steps run, {sum(r.wall_time_s for r in cpu.values()) / 60:.1f} min "
                "of step wall time (not a GPU number)" if cpu else "no quick-tier CPU runs either")
    done = [gpu[k] for k in offline if k in gpu]
    total = sum(r.wall_time_s for r in done) / 60
    if offline and len(done) == len(offline):
        status = "met" if total <= QUICK_BUDGET_MIN else "missed"
        measured = f"{total:.1f} min over {len(done)} steps on {', '.join(sorted({r.device_name for r in done}))}"
    else:
        status = f"unmeasured ({today})"
        measured = (f"{len(done)} of {len(offline)} steps with offline data have a quick-tier H100/H200 run"
                    + (f" ({total:.1f} min so far)" if done else "") + f"; {cpu_note}")
    return [f"| quick tier, every step whose data is offline, one H100/H200 | <= {QUICK_BUDGET_MIN} min "
            f"| {measured} | {status} |"]


def paper_targets(steps: list[Step], rows: list[Row], today: str) -> list[str]:
    lines = []
    for total in estimate_tier(steps, all_papers(steps), "paper", rows, "cuda"):
        stated = STATED_COMPUTE.get(total.paper)
        if not total.estimates:
            measured, status = "no implemented steps", "not evaluable"
        elif not total.complete:
            measured = (f"{total.missing} of {len(total.estimates)} steps have no GPU estimate "
                        "(`repalign estimate --tier paper`)")
            status = f"unmeasured ({today})"
        else:
            measured, status = f"{total.hours:.2f} GPU-h projected", "no stated compute to compare"
        if stated is None or stated.gpu_hours is None:
            status = "not evaluable: the paper states no compute" if total.estimates else status
            bar = f"<= {PAPER_FRACTION} x stated (paper states: {stated.text if stated else 'none'})"
        else:
            bar = f"<= {PAPER_FRACTION * stated.gpu_hours:,.0f} GPU-h ({PAPER_FRACTION} x {stated.gpu_hours_basis})"
            if total.complete:
                status = "met" if total.hours <= PAPER_FRACTION * stated.gpu_hours else "missed"
        lines.append(f"| paper tier of {total.paper}, projected on a GPU | {bar} | {measured} | {status} |")
    return lines


def smoke_target(steps: list[Step], rows: list[Row], today: str) -> list[str]:
    smoke = _latest([r for r in rows if r.tier == "smoke" and not r.is_gpu])
    registered = {(s.kind, s.paper, s.name) for s in steps}
    missing = registered - set(smoke)
    if not smoke:
        return [f"| smoke tier, whole DAG, 2-core CPU | <= {SMOKE_BUDGET_MIN} min | no smoke runs | "
                f"unmeasured ({today}) |"]
    runs = list(smoke.values())
    summed = sum(r.wall_time_s for r in runs) / 60
    span = (max(datetime.datetime.fromisoformat(r.finished_at) for r in runs)
            - min(r.started for r in runs)).total_seconds() / 60
    measured = (f"{span:.1f} min from the first step's start to the last step's finish ({len(runs)} train/run "
                f"steps, their own wall times sum to {summed:.1f} min; job start-up between them is in the span, "
                "the plots and scorecard after the last step are not); "
                f"{', '.join(sorted({r.device_name for r in runs}))}")
    loads = sorted(r.load_avg_1min for r in runs if r.load_avg_1min is not None)
    if loads:
        measured += f"; load average at the steps' ends: median {loads[len(loads) // 2]:.1f}, max {loads[-1]:.1f}"
    if missing:
        status = f"partial: {len(missing)} registered steps have no smoke run"
    else:
        status = "met" if span <= SMOKE_BUDGET_MIN else "missed"
    return [f"| smoke tier, whole DAG, 2-core CPU | <= {SMOKE_BUDGET_MIN} min | {measured} | {status} |"]


def runs_table(rows: list[Row]) -> list[str]:
    lines = ["| paper | step | kind | tier | status | device | wall (s) | peak RSS (MiB) | peak CUDA (MiB) "
             "| train examples/s | train steps/s | finished |",
             "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    order = sorted(rows, key=lambda r: (r.paper, r.kind != "model", r.name, TIERS.index(r.tier), r.finished_at))
    for r in order:
        status = r.status if r.status == "ok" else f"{r.status}: {r.short_reason}"
        lines.append(f"| {r.paper} | {r.name} | {r.kind} | {r.tier} | {status} | {r.device_name} "
                     f"| {r.wall_time_s:,.1f} | {_num(r.peak_rss_mb)} | {_num(r.peak_cuda_mb)} "
                     f"| {_num(r.examples_per_s, '{:,.0f}')} | {_num(r.steps_per_s)} | {r.finished_at} |")
    return lines


def not_run_table(steps: list[Step], rows: list[Row]) -> list[str]:
    lines = ["| tier | paper | steps run (ok) | registered | not run (no result, or not_run) |", "|---|---|---:|---:|---|"]
    for tier in TIERS:
        ok = {r.key for r in rows if r.tier == tier and r.status == "ok"}
        for paper in sorted({s.paper for s in steps}):
            mine = sorted((s.kind, s.paper, s.name) for s in steps if s.paper == paper)
            absent = [f"{n}" + (" (model)" if k == "model" else "") for k, _, n in mine if (k, paper, n) not in ok]
            listed = "all" if len(absent) == len(mine) else (", ".join(absent) or "—")
            lines.append(f"| {tier} | {paper} | {len(mine) - len(absent)} | {len(mine)} | {listed} |")
    return lines


def render(rows: list[Row], steps: list[Step], sources: list[Path], today: str | None = None) -> str:
    today = today or datetime.date.today().isoformat()
    where = ", ".join(f"`{s}`" for s in sources)
    return "\n".join([
        "# Compute ledger",
        "",
        "<!-- Generated by `python -m repalign ledger`; do not edit by hand. -->",
        f"**Generated** by `python -m repalign ledger` (or `snakemake ledger`) from the provenance of the results "
        f"in {where} on {today}. Do not edit by hand: re-run the command after new results. GPU numbers come only "
        "from runs on a GPU, and every row names its device.",
        "",
        "## Targets",
        "",
        "| target | bar | measured | status |",
        "|---|---|---|---|",
        *quick_target(rows, today),
        *paper_targets(steps, rows, today),
        *smoke_target(steps, rows, today),
        "",
        f"## Runs ({len(rows)})",
        "",
        "Wall time is the step's own work inside its process (`repalign.runner`), without the ~2.5 s of process "
        "start-up. Peak RSS is the whole process's peak resident memory (torch alone is a few hundred MiB); peak "
        "CUDA is `torch.cuda.max_memory_allocated`. Train examples/s and steps/s are reported by steps that train "
        "through `repalign.train` (examples = optimiser steps x batch size x stacked models, summed over its "
        "training runs).",
        "",
        *runs_table(rows),
        "",
        "## Not run, by tier",
        "",
        *not_run_table(steps, rows),
        "",
    ])


def write_ledger(results_dirs: list[Path], out: Path) -> Path:
    """Read every row first, then write ``out`` atomically (a bad result file writes nothing)."""
    text = render(read_rows(results_dirs), registered_steps(), results_dirs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return out
