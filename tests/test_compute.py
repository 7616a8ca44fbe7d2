"""The compute ledger, the pre-launch estimate and the budgeted runner (issue 17), on synthetic runs."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from repalign import provenance
from repalign.compute import estimate as est
from repalign.compute import gpu_run, ledger
from repalign.compute.rows import Row, read_rows
from repalign.errors import RepalignError
from repalign.experiments.registry import Resources, Step, Tiered, Work, analysed, trained, training_examples
from repalign.experiments.storage import save_model_file
from repalign.models import StackedMLP
from repalign.results import write_result
from repalign.train import EpochSampler, OptimConfig, train

CPU = "cpu: Test CPU (2 threads)"
H200 = "NVIDIA H200"
TODAY = "2026-12-01"


@dataclass(frozen=True)
class Sizes:
    epochs: int
    n_train: int
    n_runs: int = 1


SIZES = Tiered(smoke=Sizes(1, 1000), quick=Sizes(10, 1000), paper=Sizes(100, 36_000))
RES = Tiered.same(Resources(runtime_min=1))


def step(name: str, kind: str = "artifact", paper: str = "toy", work=None, needs=()) -> Step:
    return Step(paper, name, kind, lambda ctx: None, SIZES, RES, tuple(needs), work)


def examples(s: Sizes) -> Work:
    return training_examples(s)


def row(name: str, tier: str, wall: float, *, device: str = "cpu", device_name: str = CPU, kind: str = "artifact",
        paper: str = "toy", status: str = "ok", finished: str = "2026-12-01T10:00:00+00:00", reason: str | None = None,
        **extra) -> Row:
    return Row(kind=kind, paper=paper, name=name, tier=tier, status=status, reason=reason, device=device,
               device_name=device_name, wall_time_s=wall, finished_at=finished,
               source=Path(f"results/{paper}/{name}.json"), **extra)


def gpu_row(name: str, tier: str, wall: float, **kw) -> Row:
    return row(name, tier, wall, device="cuda:0", device_name=H200, **kw)


# --- provenance -------------------------------------------------------------------------------------

def test_collect_reports_summed_throughput_once_and_peak_memory():
    provenance.collect(torch.device("cpu"), 0.0)  # drop what earlier tests in this process trained
    provenance.record_throughput(examples=600, steps=6, seconds=2.0)
    provenance.record_throughput(examples=400, steps=4, seconds=3.0)
    first = provenance.collect(torch.device("cpu"), 6.0)
    assert first["throughput"] == {"examples": 1000, "steps": 10, "seconds": 5.0,
                                   "examples_per_s": 200.0, "steps_per_s": 2.0}
    assert first["peak_rss_mb"] > 50  # this process has torch loaded
    assert first["load_avg_1min"] >= 0
    assert "throughput" not in provenance.collect(torch.device("cpu"), 1.0)  # the next step starts from zero


def test_training_loop_records_steps_times_batch_times_models():
    x = torch.randn(10, 3)
    net = StackedMLP([3, 4, 1], seeds=[0, 1])
    sampler = EpochSampler(10, batch_size=4, n_models=2)
    provenance.collect(torch.device("cpu"), 0.0)  # drop anything recorded before
    train(net, lambda m, idx: m(x[idx]).pow(2).mean(dim=(1, 2)), sampler, 5, OptimConfig("sgd", lr=0.01))
    got = provenance.collect(torch.device("cpu"), 1.0)["throughput"]
    assert (got["examples"], got["steps"]) == (5 * 4 * 2, 5)
    assert got["seconds"] > 0


# --- rows and the ledger ------------------------------------------------------------------------------

def record(name: str, tier: str, wall: float, finished: str, status: str = "ok", **prov) -> dict:
    return {"paper": "toy", "artifact": name, "tier": tier, "status": status,
            "reason": None if status == "ok" else "dataset 'x' not found. Paths tried: /a, /b\nDownload it", "config": {"n_seeds": None},
            "provenance": {"device": "cpu", "device_name": CPU, "wall_time_s": wall, "finished_at": finished,
                           "peak_rss_mb": 700.0, **prov}}


def write_results(root: Path) -> Path:
    write_result(root / "toy" / "fig1.json",
                 record("fig1", "smoke", 30.0, "2026-12-01T10:01:00+00:00", load_avg_1min=3.0), {})
    write_result(root / "toy" / "fig2.json",
                 record("fig2", "smoke", 0.0, "2026-12-01T10:00:10+00:00", status="not_run", load_avg_1min=1.0), {})
    save_model_file(root / "toy" / "models" / "net.pt",
                    {**record("net", "smoke", 50.0, "2026-12-01T10:00:20+00:00", load_avg_1min=2.0,
                              throughput={"examples_per_s": 1234.0, "steps_per_s": 5.5}), "weights": [1]})
    return root


def test_rows_are_read_from_result_and_model_files(tmp_path):
    rows = {r.name: r for r in read_rows([write_results(tmp_path / "results")])}
    assert set(rows) == {"fig1", "fig2", "net"}
    assert rows["net"].kind == "model" and rows["net"].examples_per_s == 1234.0 and rows["net"].steps_per_s == 5.5
    assert rows["fig1"].peak_rss_mb == 700.0 and rows["fig1"].examples_per_s is None
    assert rows["fig2"].status == "not_run"


def test_ledger_lists_each_run_and_what_was_not_run(tmp_path):
    rows = read_rows([write_results(tmp_path / "results")])
    steps = [step("net", "model"), step("fig1", needs=("net",)), step("fig2"), step("fig3")]
    text = ledger.render(rows, steps, [tmp_path / "results"], today=TODAY)
    assert "do not edit by hand" in text.lower()
    assert "| toy | net | model | smoke | ok | cpu: Test CPU (2 threads) | 50.0 | 700.0 | — | 1,234 | 5.5 |" in text
    assert "| toy | fig2 | artifact | smoke | not_run: dataset 'x' not found |" in text
    assert "| smoke | toy | 2 | 4 | fig2, fig3 |" in text
    assert "| quick | toy | 0 | 4 | all |" in text


def test_smoke_target_is_the_span_from_first_start_to_last_finish(tmp_path):
    rows = read_rows([write_results(tmp_path / "results")])
    steps = [step("net", "model"), step("fig1"), step("fig2")]
    line = ledger.smoke_target(steps, rows, TODAY)[0]
    # net started 09:59:30 (finished 10:00:20 after 50 s), fig1 finished 10:01:00: 1.5 min; walls sum to 80 s
    assert "1.5 min from the first step's start" in line and "sum to 1.3 min" in line
    assert "load average at the steps' ends: median 2.0, max 3.0" in line
    assert line.endswith("| met |")
    assert "partial: 1 registered steps" in ledger.smoke_target([*steps, step("fig3")], rows, TODAY)[0]


def test_quick_target_stays_unmeasured_without_h100_h200_rows_and_is_met_or_missed_with_them():
    cpu = [row("a", "smoke", 5), row("b", "smoke", 5), row("a", "quick", 600)]
    assert "unmeasured (2026-12-01)" in ledger.quick_target(cpu, TODAY)[0]
    assert "0 of 2 steps" in ledger.quick_target(cpu, TODAY)[0]
    gpu = cpu + [gpu_row("a", "quick", 1200), gpu_row("b", "quick", 1500)]
    assert ledger.quick_target(gpu, TODAY)[0].endswith("| 45.0 min over 2 steps on NVIDIA H200 | met |")
    assert ledger.quick_target(gpu + [gpu_row("b", "quick", 3000, finished="2026-12-02T00:00:00+00:00")],
                               TODAY)[0].endswith("| missed |")  # the latest run of b counts


def test_a_result_without_provenance_is_named_and_no_ledger_is_written(tmp_path):
    root = write_results(tmp_path / "results")
    write_result(root / "toy" / "fig3.json", {"paper": "toy", "artifact": "fig3", "tier": "smoke", "status": "ok"}, {})
    out = tmp_path / "compute.md"
    with pytest.raises(RepalignError, match="fig3.json has no provenance"):
        ledger.write_ledger([root], out)
    assert not out.exists()


# --- estimate -------------------------------------------------------------------------------------------

def test_projection_is_declared_work_over_the_measured_rate_and_names_its_measurement():
    trained = step("net", "model", work=examples)
    # smoke: 1 epoch x 1000 examples in 10 s = 100 examples/s; paper: 100 x 36,000 = 3.6e6 examples = 10 h
    e = est.estimate_step(trained, "paper", [gpu_row("net", "smoke", 10.0, kind="model")], "cuda")
    assert e.hours == pytest.approx(10.0)
    assert e.basis.startswith("projected: 100 epochs x 36,000 examples x 1 models = 3,600,000 examples "
                              "at 100.0 examples/s")
    assert "results/toy/net.json (smoke, NVIDIA H200: 1,000 examples in 10.0 s)" in e.basis


def test_analysis_work_is_projected_linearly_from_measured_wall_time_and_says_so():
    def measured_items(s: Sizes) -> Work:
        return analysed(models=s.n_runs, examples=s.n_train * s.epochs)
    # smoke: 1,000 items in 2 s; paper: 3.6e6 items = 7,200 s = 2 h
    e = est.estimate_step(step("fig1", work=measured_items), "paper", [gpu_row("fig1", "smoke", 2.0)], "cuda")
    assert e.hours == pytest.approx(2.0)
    assert e.basis.startswith("projected: analysis, linear in its measured wall time: 1 models x 3,600,000 examples "
                              "= 3,600,000 items analysed at 500.0 items analysed/s")


def test_a_projection_across_tiers_whose_network_sizes_differ_says_so():
    @dataclass(frozen=True)
    class Sized:
        epochs: int
        n_train: int
        width: int
        n_runs: int = 1

    sized = Step("toy", "net", "model", lambda ctx: None, Tiered(Sized(1, 10, 16), Sized(2, 10, 16), Sized(3, 10, 200)),
                 RES, (), training_examples)
    rows = [gpu_row("net", "smoke", 1.0, kind="model")]
    assert est.estimate_step(sized, "paper", rows, "cuda").basis.endswith(
        "; sizes differ from the measured run (width 16 -> 200), so its rate may not carry over")
    assert "sizes differ" not in est.estimate_step(sized, "quick", rows, "cuda").basis


def test_work_terms_add_and_name_their_factors():
    w = training_examples(Sizes(2, 100, 3)) + Work(((("steps", 5), ("batch", 10)),))
    assert w.amount == 650 and w.describe() == "2 epochs x 100 examples x 3 models + 5 steps x 10 batch"
    assert w.unit == "examples" and trained(epochs=1, examples=2, pixels=4).unit == "size-weighted examples"
    with pytest.raises(ValueError, match="cannot add analysis work to training work"):
        w + analysed(items=1)
    with pytest.raises(ValueError, match="work factor 'examples' is None"):
        analysed(examples=None)


def test_projection_uses_the_largest_measured_run_and_ignores_other_devices():
    trained = step("net", "model", work=examples)
    rows = [gpu_row("net", "smoke", 10.0, kind="model"), gpu_row("net", "quick", 20.0, kind="model"),
            row("net", "quick", 1.0, kind="model")]  # a CPU run must not leak into a GPU estimate
    # quick: 10,000 examples in 20 s = 500 examples/s; paper 3.6e6 examples = 2 h
    assert est.estimate_step(trained, "paper", rows, "H200").hours == pytest.approx(2.0)


def test_a_run_at_the_tier_itself_is_its_measurement():
    e = est.estimate_step(step("fig1"), "quick", [gpu_row("fig1", "quick", 720.0)], "cuda")
    assert e.hours == pytest.approx(0.2) and e.basis.startswith("measured:")


def test_missing_measurement_or_work_is_reported_not_guessed():
    no_run = est.estimate_step(step("net", "model", work=examples), "paper", [row("net", "smoke", 1.0, kind="model")],
                               "cuda")
    assert no_run.hours is None and ("declared training work 100 epochs x 36,000 examples x 1 models = 3,600,000 "
                                     "examples, but no timed run on 'cuda'") in no_run.basis
    untimed = est.estimate_step(step("net", "model", work=examples), "paper", [gpu_row("net", "smoke", 0.0, kind="model")],
                                "cuda")  # a run too short to time gives no rate (and no division by zero)
    assert untimed.hours is None
    no_work = est.estimate_step(step("fig1"), "paper", [gpu_row("fig1", "smoke", 1.0)], "cuda")
    assert no_work.hours is None and "no declared work" in no_work.basis
    failed = est.estimate_step(step("fig1"), "quick", [gpu_row("fig1", "quick", 0.0, status="not_run",
                                                                reason="dataset 'x' not found. Paths tried: /a")], "cuda")
    assert failed.hours is None and failed.basis.endswith("(its runs were not_run: dataset 'x' not found)")


def test_paper_total_is_a_lower_bound_while_a_step_has_no_estimate_and_sits_beside_the_stated_compute():
    steps = [step("net", "model", work=examples), step("fig1", needs=("net",))]
    rows = [gpu_row("net", "smoke", 10.0, kind="model")]
    totals = est.estimate_tier(steps, ["toy", "sharon2024"], "paper", rows, "cuda")
    text = est.render(totals, "paper", "cuda")
    assert "toy: at least 10.000 h (1 of 2 steps without estimate); paper states: none recorded" in text
    assert "sharon2024: no implemented steps; paper states: App. C" in text and "implied 11,232 GPU-h" in text
    assert "Total, paper tier on 'cuda': at least 10.000 h: 1 of 2 steps have no estimate" in text
    nothing = est.render(est.estimate_tier(steps, ["toy"], "paper", [], "cuda"), "paper", "cuda")
    assert "toy: no estimate for any of its 2 steps" in nothing
    assert "Total, paper tier on 'cuda': no estimate: none of the 2 steps" in nothing
    complete = est.PaperTotal("sharon2024", [est.Estimate(steps[0], 100.0, "x")])
    assert "ratio 0.0089 (target <= 0.1)" in est.paper_line(complete)


# --- the budgeted runner --------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_jobs() -> list[gpu_run.Job]:
    net, fig1, fig2 = step("net", "model"), step("fig1", needs=("net",)), step("fig2")
    return [gpu_run.Job(s, Path(f"{s.name}.json")) for s in (net, fig1, fig2)]


def run_fake(jobs, *, budget_s, estimates, took, exit_codes=None):
    clock, said = FakeClock(), []

    def run(job, limit_s):
        clock.now += min(took[job.step.name], limit_s)
        return None if took[job.step.name] > limit_s else (exit_codes or {}).get(job.step.name, 0)

    outcomes = gpu_run.execute(jobs, budget_s=budget_s, estimate=lambda j: estimates.get(j.step.name, (None, "none")),
                               run=run, say=said.append, status_of=lambda j: "ok", clock=clock)
    return {o.job.step.name: o for o in outcomes}, said


def test_a_job_whose_estimate_does_not_fit_is_skipped_and_the_next_still_runs():
    # 330 s budget - 30 s reserve = 300 s: net takes 100 s, fig1 is estimated at 250 s > 200 s left, fig2 fits
    got, said = run_fake(fake_jobs(), budget_s=330, estimates={"fig1": (250.0, "measured: x")},
                         took={"net": 100, "fig1": 250, "fig2": 50})
    assert [got[n].status for n in ("net", "fig1", "fig2")] == ["ok", "skipped", "ok"]
    assert "skipped artifact toy/fig1: estimated 250 s > 200 s left (measured: x)" in said


def test_a_job_without_estimate_is_stopped_at_the_budget_and_its_dependants_skipped():
    got, said = run_fake(fake_jobs(), budget_s=130, estimates={}, took={"net": 500, "fig1": 1, "fig2": 1})
    assert got["net"].status == "stopped" and got["net"].seconds == pytest.approx(100)
    assert got["fig1"].reason == "needs model(s) net, which did not run"
    assert got["fig2"].status == "skipped" and "under the 15 s a job needs to start" in got["fig2"].reason


def test_a_failed_model_blocks_its_artifacts():
    got, _ = run_fake(fake_jobs(), budget_s=1000, estimates={}, took={"net": 1, "fig1": 1, "fig2": 1},
                      exit_codes={"net": 3})
    assert got["net"].status == "failed" and got["fig1"].status == "skipped" and got["fig2"].status == "ok"


def test_a_missing_estimates_folder_is_named(tmp_path):
    with pytest.raises(RepalignError, match="results folder .*nowhere does not exist"):
        gpu_run.gpu_run(["lou2022/theory"], out=tmp_path / "out", tier="smoke", budget_s=60, device="cpu",
                        estimates_from=[tmp_path / "nowhere"])
    assert not (tmp_path / "out").exists()


def test_plan_runs_the_needed_models_first(tmp_path):
    jobs = gpu_run.plan(["imani2022/fig10", "imani2022/fig12", "imani2022/peaks_h1"], tmp_path)
    assert [j.label for j in jobs] == ["model imani2022/peaks_h1", "model imani2022/peaks_h3",
                                       "artifact imani2022/fig10", "artifact imani2022/fig12"]
    assert jobs[2].inputs == {"peaks_h1": tmp_path / "imani2022" / "models" / "peaks_h1.pt"}
    with pytest.raises(RepalignError, match="'imani2022/nope' is not registered"):
        gpu_run.plan(["imani2022/nope"], tmp_path)


def test_gpu_run_on_cpu_runs_one_smoke_step_and_skips_the_one_that_does_not_fit(tmp_path):
    """Two real smoke steps in subprocesses; an earlier run says the second takes 10,000 s here."""
    here = provenance.device_name(torch.device("cpu"))
    earlier = tmp_path / "earlier"
    write_result(earlier / "imani2022" / "fig8.json",
                 {"paper": "imani2022", "artifact": "fig8", "tier": "smoke", "status": "ok", "config": {},
                  "provenance": {"device": "cpu", "device_name": here, "wall_time_s": 10_000.0,
                                 "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}}, {})
    out = tmp_path / "out"
    code = gpu_run.gpu_run(["lou2022/theory", "imani2022/fig8"], out=out, tier="smoke", budget_s=240,
                           device="cpu", estimates_from=[earlier])
    assert code == 0
    summary = {s["step"]: s for s in json.loads((out / "gpu_run.json").read_text())}
    assert summary["artifact lou2022/theory"]["status"] == "ok"
    assert summary["artifact imani2022/fig8"]["status"] == "skipped"
    log = (out / "gpu_run.log").read_text()
    assert "skipped artifact imani2022/fig8: estimated 10000 s >" in log and "earlier/imani2022/fig8.json" in log
    assert (out / "results" / "lou2022" / "theory.json").exists()
    assert not (out / "results" / "imani2022" / "fig8.json").exists()
    assert "| lou2022 | theory | artifact | smoke | ok |" in (out / "ledger.md").read_text()
    assert (out / "logs" / "lou2022" / "theory.log").exists()
