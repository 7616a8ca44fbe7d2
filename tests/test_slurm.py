"""The workflow on a real SLURM cluster, through profiles/slurm.

A single-node cluster (munged, slurmctld, slurmd from Debian's slurm-wlm and munge) is
started on localhost by tests/slurm_cluster.py, as root, with its files in a temporary
directory. The smoke DAG of imani2022's Figs 10-12 (models peaks_h1, peaks_h3; the three
experiments and their plots) then runs in a copy of the workflow with

    snakemake imani2022_fig10 imani2022_fig11 imani2022_fig12 --profile profiles/slurm
    (+ test-only overrides: the test cluster's partition, squeue status checks, and
    status polling every <= 2 s, see FAST_POLLING_SNAKEMAKE)

and one SLURM job is killed with ``scancel`` while it runs. Snakemake (keep-going, from
the profile) finishes the rest and fails; running the same command again must finish
the DAG by redoing only the killed job and what depends on it. Both invocations are one
scenario (a module fixture) that the tests below inspect from different sides: one
clean run plus one interrupted run would not fit the five minutes this test may take
on two cores (every SLURM job starts two snakemake processes before its own command).

Needs root and `apt-get install -y slurm-wlm munge`; skipped otherwise, except under
CI=true, where a missing cluster fails. Run:  pytest -m slurm tests/test_slurm.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import copy_workflow  # noqa: E402  (copies profiles/ too: snakemake loads profiles/default)
from slurm_cluster import ClusterUnavailable, SlurmCluster  # noqa: E402

pytestmark = pytest.mark.slurm
IN_CI = os.environ.get("CI", "").lower() == "true"

try:
    import snakemake_executor_plugin_slurm  # noqa: F401
except ImportError as exc:  # pip install -e '.[workflow]'
    if IN_CI:
        raise
    pytest.skip(f"snakemake-executor-plugin-slurm is not installed ({exc})",
                allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
PAPER = "imani2022"
MODELS = ("peaks_h1", "peaks_h3")
ARTIFACTS = ("fig10", "fig11", "fig12")
# The named targets of those figures (the paper's other figures are not part of this test)
TARGETS = tuple(f"{PAPER}_{a}" for a in ARTIFACTS)
# Per snakemake invocation; the whole module stays under five minutes on two cores.
INVOCATION_TIMEOUT_S = 240


# -- helpers ----------------------------------------------------------------------------
def job_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of snakemake and of its jobs (sbatch --export=ALL passes it on)."""
    env = dict(base)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    data = os.environ.get("REPALIGN_DATA")
    if data:  # e.g. /work/shared/data; imani2022 itself needs no dataset
        env["REPALIGN_DATA"] = data
    return env


def snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


# `python -m snakemake`, except that the SLURM plugin polls job states at most every 2 s.
# The plugin (2.8.0) waits 10 s longer after every status check that finds no finished
# job (1, 11, 21, ... s with --slurm-init-seconds-before-status-checks 1), which no
# option turns off; on this test's one-minute jobs that alone would cost over a minute
# of the module's five. Submission, status queries and error handling are unchanged.
FAST_POLLING_SNAKEMAKE = """
import sys
from snakemake_executor_plugin_slurm import Executor
def _capped(self, seconds):
    self._next_seconds_between_status_checks = min(seconds, 2)
Executor.next_seconds_between_status_checks = (
    Executor.next_seconds_between_status_checks.setter(_capped))
from snakemake.cli import main
main(sys.argv[1:])
"""


def cluster_snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", FAST_POLLING_SNAKEMAKE, *args]


def stop_process(proc: subprocess.Popen) -> None:
    """End a snakemake we started: SIGTERM (it cancels its SLURM jobs), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


@dataclass
class Job:
    jobid: int
    rule: str
    name: str  # the `name` wildcard ("" for rules without wildcards)
    local: bool
    slurm_id: str | None = None

    @property
    def step(self) -> tuple[str, str]:
        return (self.rule, self.name)


@dataclass
class Invocation:
    log: str
    returncode: int
    seconds: float
    jobs: dict[int, Job] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)

    @classmethod
    def parse(cls, log: str, returncode: int, seconds: float) -> "Invocation":
        inv = cls(log, returncode, seconds)
        # Job blocks as snakemake prints them:
        #   rule train_model:            (localrule plot_artifact: for local rules)
        #       ...
        #       jobid: 3
        #       wildcards: paper=imani2022, name=peaks_h1
        block = re.compile(r"^(local)?rule (\w+):\n((?:[ \t]+\S.*\n)+)", re.M)
        for m in block.finditer(log):
            body = m.group(3)
            jobid = re.search(r"^\s+jobid: (\d+)", body, re.M)
            if not jobid:
                continue
            name = re.search(r"^\s+wildcards:.*\bname=(\w+)", body, re.M)
            inv.jobs[int(jobid.group(1))] = Job(int(jobid.group(1)), m.group(2),
                                                name.group(1) if name else "",
                                                local=bool(m.group(1)))
        for m in re.finditer(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", log,
                             re.M):
            inv.jobs[int(m.group(1))].slurm_id = m.group(2)
        inv.finished = {int(j) for j in re.findall(r"^Finished jobid: (\d+)", log, re.M)}
        return inv

    def steps(self, *, local: bool | None = None) -> set[tuple[str, str]]:
        return {j.step for j in self.jobs.values() if local is None or j.local == local}

    def submission_lines(self) -> list[str]:
        return re.findall(r"^Job \d+ has been submitted with SLURM jobid .*$", self.log, re.M)


def metrics_of(workdir: Path) -> dict[str, dict]:
    out = {}
    for artifact in ARTIFACTS:
        result = json.loads((workdir / "results" / PAPER / f"{artifact}.json").read_text())
        out[artifact] = {"status": result["status"], "metrics": result["metrics"]}
    return out


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except ClusterUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true but the SLURM test cluster cannot run here: {exc}")
        pytest.skip(f"no local SLURM test cluster: {exc}")
    # Any other error (ClusterStartError) is a real failure and propagates.
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The same steps run by snakemake's local executor: the reference results.

    Started in the background, at low priority, while the cluster runs: it uses the CPU
    that the cluster leaves idle between status checks (the module's time budget).
    """
    workdir = copy_workflow(tmp_path_factory.mktemp("local") / "wf")
    targets = [f"results/{PAPER}/{a}.json" for a in ARTIFACTS]
    log = open(workdir.parent / "local.log", "w")
    proc = subprocess.Popen(["nice", "-n", "10", *snakemake_cmd("--cores", "2", *targets)],
                            cwd=workdir, env=job_env(os.environ), stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    try:
        yield proc, workdir
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def local_metrics(local_run):
    proc, workdir = local_run
    proc.wait(timeout=INVOCATION_TIMEOUT_S)
    log = (workdir.parent / "local.log").read_text()
    assert proc.returncode == 0, log[-5000:]
    return metrics_of(workdir)


@dataclass
class Scenario:
    workdir: Path
    first: Invocation
    second: Invocation
    cancelled: Job  # as seen in the first invocation's log
    squeue: dict[str, tuple[str, str]]  # SLURM job id -> (state, comment)


def _scancel_first_running_artifact(cluster: SlurmCluster, proc: subprocess.Popen) -> str:
    """Wait until a run_artifact job has been RUNNING in SLURM for a few seconds, scancel it.

    The job's own snakemake is starting up in it by then (the step's command itself
    starts some 20 s later on two cores; waiting for that would leave the node's other
    CPU idle for that long, which the test's time budget does not allow).
    """
    deadline = time.monotonic() + INVOCATION_TIMEOUT_S
    running_since: dict[str, float] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("snakemake exited before a run_artifact job started")
        for jobid, state, comment in cluster.squeue("%i|%T|%k"):
            if state == "RUNNING" and comment.startswith("rule_run_artifact_"):
                since = running_since.setdefault(jobid, time.monotonic())
                if time.monotonic() - since >= 3:
                    subprocess.run(["scancel", jobid], env=cluster.env, check=True)
                    return jobid
        time.sleep(0.5)
    raise AssertionError("no run_artifact job was seen running")


@pytest.fixture(scope="module")
def scenario(cluster, local_run, tmp_path_factory) -> Scenario:
    workdir = copy_workflow(tmp_path_factory.mktemp("cluster") / "wf")
    partitions = workdir.parent / "partitions.yaml"
    # The test cluster's only partition, in place of the site's partitions.yaml.
    partitions.write_text(
        f"partitions:\n  {cluster.partition}:\n    max_threads: {cluster.cpus}\n"
        f"    max_mem_mb: {cluster.real_memory}\n")
    cmd = cluster_snakemake_cmd(
        *TARGETS, "--profile", str(PROFILE),
        # test-only overrides of the profile: the test cluster's partition, and status
        # checks from squeue (no accounting database) every second instead of 40 s.
        "--slurm-partition-config", str(partitions),
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
        "--seconds-between-status-checks", "1",
    )
    env = job_env(cluster.env)

    log1 = workdir.parent / "first.log"
    t0 = time.monotonic()
    with open(log1, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            cancelled_id = _scancel_first_running_artifact(cluster, proc)
            proc.wait(timeout=INVOCATION_TIMEOUT_S)
        finally:
            stop_process(proc)
    first = Invocation.parse(log1.read_text(), proc.returncode, time.monotonic() - t0)

    t0 = time.monotonic()
    rerun = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=INVOCATION_TIMEOUT_S)
    (workdir.parent / "second.log").write_text(rerun.stdout)
    second = Invocation.parse(rerun.stdout, rerun.returncode, time.monotonic() - t0)

    cancelled = next(j for j in first.jobs.values() if j.slurm_id == cancelled_id)
    squeue = {i: (state, comment) for i, state, comment in cluster.squeue("%i|%T|%k")}
    print(f"\nfirst invocation {first.seconds:.0f} s, second {second.seconds:.0f} s; "
          f"cancelled SLURM job {cancelled_id} ({cancelled.rule} {cancelled.name})")
    for line in first.submission_lines() + second.submission_lines():
        print(line)
    return Scenario(workdir, first, second, cancelled, squeue)


# -- tests ------------------------------------------------------------------------------
def test_every_cluster_job_goes_through_sbatch(scenario):
    expected = {("train_model", m) for m in MODELS} | {("run_artifact", a) for a in ARTIFACTS}
    for inv in (scenario.first, scenario.second):
        for job in inv.jobs.values():
            if job.rule in ("train_model", "run_artifact"):
                assert not job.local, f"{job.step} ran on the submit host:\n{inv.log}"
                assert job.slurm_id, f"{job.step} has no SLURM job id:\n{inv.log}"
            else:  # plots and the named targets are local rules
                assert job.local and job.slurm_id is None, (job, inv.log)
        assert len(inv.submission_lines()) == len(inv.steps(local=False))
    ran = scenario.first.steps(local=False) | scenario.second.steps(local=False)
    assert ran == expected

    # slurmctld knows every one of those jobs (MinJobAge keeps them listed), under the
    # rule and wildcards snakemake put in --comment, and all but the killed one completed.
    for inv in (scenario.first, scenario.second):
        for job in inv.jobs.values():
            if job.slurm_id is None:
                continue
            state, comment = scenario.squeue[job.slurm_id]
            assert comment == f"rule_{job.rule}_wildcards_{PAPER}_{job.name}"
            if job is scenario.cancelled:
                assert state == "CANCELLED"
            else:
                assert state == "COMPLETED", (job, state)


def test_cluster_results_equal_a_local_run(scenario, local_metrics):
    assert scenario.second.returncode == 0, scenario.second.log
    # Provenance (wall time, host, device) differs between runs; the metrics must not.
    assert metrics_of(scenario.workdir) == local_metrics
    for artifact in ARTIFACTS:
        assert (scenario.workdir / "figures" / PAPER / f"{artifact}.png").stat().st_size > 0


def test_scancel_then_rerun_resumes_without_redoing_finished_jobs(scenario):
    first, second, killed = scenario.first, scenario.second, scenario.cancelled
    assert killed.rule == "run_artifact"
    # The first invocation reports the killed job and fails (after finishing the rest:
    # the profile sets keep-going).
    assert first.returncode != 0
    assert re.search(rf"SLURM-job '{killed.slurm_id}' failed, SLURM status is: 'CANCELLED'",
                     first.log), first.log
    assert killed.jobid not in first.finished
    done_first = {first.jobs[j].step for j in first.finished}
    others = {("run_artifact", a) for a in ARTIFACTS if a != killed.name}
    assert {("train_model", m) for m in MODELS} | others <= done_first

    # The second invocation (the same command) redoes the killed job, its plot and its
    # named target, and nothing that finished before.
    assert second.returncode == 0, second.log
    assert second.steps() == {killed.step, ("plot_artifact", killed.name),
                              (f"{PAPER}_{killed.name}", "")}
    assert not second.steps() & done_first
    assert {second.jobs[j].step for j in second.finished} == second.steps()


# -- a GPU job on the test cluster's count-only GPU GRES -----------------------------------
# Options the plugin's docs (snakemake-executor-plugin-slurm 2.8.0) tell users not to force
# on GPU jobs, or that it manages itself (a duplicate GPU request): --ntasks-per-gpu makes
# the job step's srun fail ("SLURM_TRES_PER_TASK is mutually exclusive with --ntasks-per-gpu").
DISCOURAGED_GPU_OPTIONS = ("--ntasks-per-gpu", "--gpus-per-task", "--gres")


def _wait_running(cluster: SlurmCluster, proc: subprocess.Popen, comment: str) -> str:
    deadline = time.monotonic() + INVOCATION_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"snakemake exited before {comment} ran")
        for jobid, state, job_comment in cluster.squeue("%i|%T|%k"):
            if state == "RUNNING" and job_comment == comment:
                return jobid
        time.sleep(0.5)
    raise AssertionError(f"no RUNNING SLURM job {comment}")


def test_a_quick_tier_training_job_holds_the_gpu_gres(cluster, tmp_path):
    """`--profile profiles/slurm --config tier=quick`: training (registry gpu=1) is submitted
    with --gpus=1 and slurmctld allocates the node's GPU GRES to it. The job runs on the CPU
    (the GRES is count-only) and is cancelled once slurmctld shows the allocation: a quick
    training run takes minutes."""
    workdir = copy_workflow(tmp_path / "wf")
    partitions = tmp_path / "partitions.yaml"
    partitions.write_text(f"partitions:\n  {cluster.partition}:\n    max_gpu: 1\n"
                          f"    max_threads: {cluster.cpus}\n    max_mem_mb: {cluster.real_memory}\n")
    cmd = cluster_snakemake_cmd(
        f"results/{PAPER}/models/peaks_h1.pt", "--profile", str(PROFILE), "--config", "tier=quick",
        "--slurm-partition-config", str(partitions), "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
        "--verbose")  # logs the plugin's "sbatch call: ..."
    log = tmp_path / "gpu.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=workdir, env=job_env(cluster.env), stdout=fh,
                                stderr=subprocess.STDOUT)
        try:
            jobid = _wait_running(cluster, proc, f"rule_train_model_wildcards_{PAPER}_peaks_h1")
            shown = subprocess.run(["scontrol", "show", "job", "-d", jobid], env=cluster.env,
                                   capture_output=True, text=True, timeout=10).stdout
        finally:
            stop_process(proc)  # SIGTERM: snakemake scancels its job
    text = log.read_text()
    assert "TresPerJob=gres:gpu:1" in shown, shown          # requested ...
    assert re.search(r"^\s*JOB_GRES=gpu:1$", shown, re.M), shown  # ... and allocated
    assert re.search(r"GRES=gpu:1\(IDX:0\)", shown), shown
    (call,) = re.findall(r"sbatch call: (.*)$", text, re.M)
    assert "--gpus=1" in call.split(), call
    for option in DISCOURAGED_GPU_OPTIONS:
        assert option not in call, (option, call)
    assert f"-p {cluster.partition}" in call, call


# -- GPU requests, without daemons ------------------------------------------------------
FAKE_SBATCH = """#!{python}
# Records each sbatch call (one JSON list per line) and refuses it: snakemake then reports
# the job as failed, and nothing is queued.
import json, sys
with open({record!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit("sbatch stand-in: not submitted")
"""
FAKE_FAIL = "#!/bin/sh\nexit 1\n"  # sacct/sacctmgr/sshare/scontrol without a cluster


def test_profile_requests_gpus_and_gpu_partition_for_gpu_steps(tmp_path):
    """At tier quick, training asks for a GPU: --gpus=1 on the profile's GPU partition.

    The jobs are submitted to a stand-in sbatch that records its arguments, with the
    profile's own partitions.yaml: no SLURM daemons are involved.
    """
    workdir = copy_workflow(tmp_path / "wf")
    # peaks_h1 exists already, so fig10 (a CPU step at tier quick) is ready to submit
    # together with the training of peaks_h3 (a GPU step).
    model = workdir / "results" / PAPER / "models" / "peaks_h1.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch_calls.jsonl"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable, record=str(record)))
    for tool in ("sacct", "sacctmgr", "sshare", "scontrol", "sinfo", "squeue"):
        (bin_dir / tool).write_text(FAKE_FAIL)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = job_env(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.pop("SLURM_CONF", None)
    proc = subprocess.run(
        snakemake_cmd(f"results/{PAPER}/models/peaks_h3.pt", f"results/{PAPER}/fig10.json",
                      "--profile", str(PROFILE), "--config", "tier=quick",
                      "--slurm-status-command", "squeue",
                      "--slurm-init-seconds-before-status-checks", "1",
                      "--seconds-between-status-checks", "1"),
        cwd=workdir, env=env, capture_output=True, text=True, timeout=INVOCATION_TIMEOUT_S)
    assert proc.returncode != 0  # nothing was really submitted
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    by_comment = {}
    for argv in calls:
        by_comment[argv[argv.index("--comment") + 1]] = argv
    train = by_comment[f"rule_train_model_wildcards_{PAPER}_peaks_h3"]
    measure = by_comment[f"rule_run_artifact_wildcards_{PAPER}_fig10"]
    assert "--gpus=1" in train and train[train.index("-p") + 1] == "gpu", train
    assert not any(a.startswith(("--gpus", "--gres")) for a in measure), measure
    assert measure[measure.index("-p") + 1] == "cpu", measure
    # the registry's per-tier runtime and memory reach sbatch
    assert train[train.index("-t") + 1] == "15" and train[train.index("--mem") + 1] == "4000"
    assert "--cpus-per-task=1" in train



# -- profiles/local-gpu: one GPU per job ---------------------------------------------------
GPU_SLOT = REPO / "profiles" / "local-gpu" / "gpu_slot.py"
REPORT_GPU = 'echo "[${CUDA_VISIBLE_DEVICES-unset}]" $(date +%s.%N); sleep 1; date +%s.%N'


def test_gpu_slot_gives_each_job_its_own_gpu(tmp_path):
    """gpu_slot.py (profiles/local-gpu) pins concurrent jobs to different GPUs."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="0,1", REPALIGN_GPU_LOCK_DIR=str(tmp_path))
    env.pop("SLURM_JOB_ID", None)

    def slot(*args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(GPU_SLOT), *args, "--", "sh", "-c",
                                 REPORT_GPU], env={**env, **extra},
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    jobs = [slot("1") for _ in range(3)]  # three one-GPU jobs, two GPUs
    runs = sorted((float(start), gpu, float(end)) for gpu, start, end in
                  (j.communicate(timeout=60)[0].replace("\n", " ").split() for j in jobs))
    (s1, g1, e1), (s2, g2, e2), (s3, g3, _) = runs
    assert {g1, g2} == {"[0]", "[1]"}  # the first two ran at once, each on its own GPU
    assert s3 >= min(e1, e2) - 0.1 and g3 in {"[0]", "[1]"}  # the third waited for one
    assert all(j.returncode == 0 for j in jobs)

    def visible(*args: str, **extra: str) -> str:
        return slot(*args, **extra).communicate(timeout=60)[0].split()[0]

    assert visible("0") == "[]"  # a CPU job sees no GPU
    assert visible("--enable", "0", "1") == "[0,1]"  # other profiles: unchanged
    assert visible("1", SLURM_JOB_ID="7") == "[0,1]"  # inside SLURM: SLURM's choice
