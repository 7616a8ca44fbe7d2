"""``python -m repalign gpu-run``: run a list of steps on a bare machine (no snakemake) within a budget.

    python -m repalign gpu-run imani2022/fig10 lou2022/fig1 --tier quick --budget-min 9 --out gpu_out

The models the named artifacts need are added and run first, then the artifacts, each as
``python -m repalign train|run`` in its own process. Before each job the time left is
compared with its estimate (``repalign estimate`` on this device, from ``--estimates-from``
and the output folder's own results): a job that does not fit is skipped, and so is one
whose model did not run. A job without an estimate runs with the time left as its limit and
is stopped there. Everything lands in ``--out``: ``results/``, one log per job in ``logs/``,
``gpu_run.log`` (every decision, with its reason), ``gpu_run.json`` and ``ledger.md``.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import repalign
from repalign.errors import RepalignError
from repalign.experiments.registry import Step

RESERVE_S = 30.0     # kept back from the budget: stopping a job (KILL_GRACE_S) and writing the ledger
KILL_GRACE_S = 10.0  # SIGTERM, then SIGKILL after this long
MIN_START_S = 15.0   # a job is not started with less time left (process start-up alone takes ~3 s)


@dataclass(frozen=True)
class Job:
    step: Step
    out: Path
    inputs: dict[str, Path] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.step.kind} {self.step.paper}/{self.step.name}"

    def argv(self, tier: str, device: str, data_root: str | None, cache_dir: str | None) -> list[str]:
        verb = "train" if self.step.kind == "model" else "run"
        argv = [sys.executable, "-m", "repalign", verb, self.step.paper, self.step.name, "--tier", tier,
                "--device", device, "--out", str(self.out)]
        argv += [f"--input={name}={path}" for name, path in self.inputs.items()]
        argv += ["--data-root", data_root] if data_root else []
        argv += ["--cache-dir", cache_dir] if cache_dir else []
        return argv


def _lookup(spec: str) -> Step:
    from repalign.experiments import PAPERS, load_paper
    from repalign.experiments.registry import ARTIFACTS, MODELS

    paper, sep, name = spec.partition("/")
    if not sep or paper not in PAPERS:
        raise RepalignError(f"step '{spec}': expected PAPER/NAME with PAPER one of {', '.join(PAPERS)} "
                            "(`python -m repalign list` lists the steps)")
    load_paper(paper)
    step = ARTIFACTS.get((paper, name)) or MODELS.get((paper, name))
    if step is None:
        raise RepalignError(f"step '{spec}' is not registered; `python -m repalign list` lists the steps")
    return step


def plan(specs: list[str], results: Path) -> list[Job]:
    """Models first (named ones and those the named artifacts need, first mention first), then artifacts."""
    from repalign.experiments.registry import MODELS

    steps = [_lookup(spec) for spec in specs]
    models: list[Step] = []
    for step in steps:
        wanted = [step] if step.kind == "model" else [MODELS[(step.paper, m)] for m in step.needs]
        models += [m for m in wanted if m not in models]

    def model_path(paper: str, name: str) -> Path:
        return results / paper / "models" / f"{name}.pt"

    jobs = [Job(m, model_path(m.paper, m.name)) for m in models]
    seen = set()
    for s in steps:
        if s.kind == "artifact" and s not in seen:
            seen.add(s)
            jobs.append(Job(s, results / s.paper / f"{s.name}.json",
                            {m: model_path(s.paper, m) for m in s.needs}))
    return jobs


def launch(argv: list[str], log_path: Path, timeout_s: float) -> int | None:
    """Run ``argv`` with its output in ``log_path``; its exit code, or None when stopped at ``timeout_s``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    src = str(Path(repalign.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return None


@dataclass
class Outcome:
    job: Job
    status: str      # ok, not_run, failed, stopped, skipped
    reason: str = ""
    seconds: float = 0.0


def _written_status(job: Job) -> str:
    from repalign.compute.rows import read_row

    return read_row(job.out).status if job.out.exists() else "failed"


def execute(jobs: list[Job], *, budget_s: float, estimate: Callable[[Job], tuple[float | None, str]],
            run: Callable[[Job, float], int | None], say: Callable[[str], None],
            status_of: Callable[[Job], str] = _written_status,
            clock: Callable[[], float] = time.monotonic) -> list[Outcome]:
    """Run ``jobs`` in order, each only if it fits before ``budget_s - RESERVE_S``; say why one does not."""
    deadline = clock() + budget_s - RESERVE_S
    outcomes: list[Outcome] = []
    done: dict[str, str] = {}  # model name -> status
    for job in jobs:
        left = deadline - clock()
        seconds, basis = estimate(job)
        blocked = [m for m in job.step.needs if done.get(m) != "ok"]
        if blocked:
            outcome = Outcome(job, "skipped", f"needs model(s) {', '.join(blocked)}, which did not run")
        elif left < MIN_START_S:
            outcome = Outcome(job, "skipped", f"{max(left, 0):.0f} s left of the budget, under the "
                                              f"{MIN_START_S:.0f} s a job needs to start")
        elif seconds is not None and seconds > left:
            outcome = Outcome(job, "skipped", f"estimated {seconds:.0f} s > {left:.0f} s left ({basis})")
        else:
            say(f"start {job.label}: {left:.0f} s left; "
                + (f"estimated {seconds:.0f} s ({basis})" if seconds is not None else f"{basis}; limit {left:.0f} s"))
            began = clock()
            code = run(job, left)
            took = clock() - began
            if code is None:
                outcome = Outcome(job, "stopped", f"stopped at the budget after {took:.0f} s; nothing written", took)
            elif code != 0:
                outcome = Outcome(job, "failed", f"exit code {code}; see its log", took)
            else:
                outcome = Outcome(job, status_of(job), "", took)
        if job.step.kind == "model":
            done[job.step.name] = outcome.status
        say(f"{outcome.status} {job.label}" + (f" in {outcome.seconds:.1f} s" if outcome.seconds else "")
            + (f": {outcome.reason}" if outcome.reason else ""))
        outcomes.append(outcome)
    return outcomes


def gpu_run(specs: list[str], *, out: Path, tier: str, budget_s: float, device: str = "auto",
            estimates_from: list[Path] = (), data_root: str | None = None, cache_dir: str | None = None) -> int:
    """The ``gpu-run`` verb; exit code 1 when a job failed, else 0 (skipped and stopped jobs are logged)."""
    from repalign.compute.estimate import estimate_step
    from repalign.compute.ledger import write_ledger
    from repalign.compute.rows import read_rows
    from repalign.provenance import device_name
    from repalign.runner import resolve_device

    began = time.monotonic()
    out = Path(out)
    results = out / "results"
    jobs = plan(specs, results)
    here = device_name(resolve_device(device))
    past = read_rows([*estimates_from, *([results] if results.is_dir() else [])])
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / "gpu_run.log"

    def say(message: str) -> None:
        line = f"{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S} {message}"
        print(line, flush=True)
        with open(log_file, "a") as fh:
            fh.write(line + "\n")

    def estimate(job: Job) -> tuple[float | None, str]:
        e = estimate_step(job.step, tier, past, here)
        return (None if e.hours is None else 3600 * e.hours), e.basis

    def run(job: Job, limit_s: float) -> int | None:
        log_path = out / "logs" / job.step.paper / f"{job.step.name}.log"
        return launch(job.argv(tier, device, data_root, cache_dir), log_path, limit_s)

    say(f"gpu-run: {len(jobs)} jobs at the {tier} tier on {here}, budget {budget_s:.0f} s "
        f"({RESERVE_S:.0f} s kept back to stop cleanly and write the ledger)")
    outcomes = execute(jobs, budget_s=budget_s - (time.monotonic() - began), estimate=estimate, run=run, say=say)
    summary = [{"step": o.job.label, "status": o.status, "reason": o.reason, "seconds": round(o.seconds, 1)}
               for o in outcomes]
    (out / "gpu_run.json").write_text(json.dumps(summary, indent=2))
    if results.is_dir():
        say(f"ledger: {write_ledger([results], out / 'ledger.md')}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "not_run", "failed", "stopped", "skipped")}
    say("done in {:.0f} s: ".format(time.monotonic() - began) + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return 1 if counts["failed"] else 0
