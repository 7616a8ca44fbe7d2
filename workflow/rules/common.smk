# Configuration, validation and the registry the rules are built from.
import os
import shlex
import sys

from snakemake.utils import validate

SRC_DIR = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC_DIR)  # the workflow also runs without `pip install -e .`
from repalign.availability import step_datasets, workflow_key
from repalign.config import validate_config
from repalign.data.paths import require_data_root
from repalign.experiments import ARTIFACTS, MODELS
from repalign.targets import load_targets

# Name every bad key first, then let snakemake's own validate() have its say.
# --config download=false arrives as a string: validate_config turns it into a boolean.
CONFIG_SCHEMA = os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
validate_config(config, CONFIG_SCHEMA)
validate(config, schema="../schemas/config.schema.yaml")
# A data_root (or $REPALIGN_DATA) that does not exist stops the run here, before any job.
DATA_ROOT = require_data_root(config["data_root"])

TIER = config["tier"]
# Local multi-GPU runs (profiles/local-gpu) start each train/run job through gpu_slot.py,
# which pins the job to free GPUs via CUDA_VISIBLE_DEVICES; with resource gpu_slot=0
# (every other profile) it runs the command unchanged. See docs/cluster.md.
GPU_SLOT = f"python {shlex.quote(os.path.join(workflow.basedir, 'profiles', 'local-gpu', 'gpu_slot.py'))}"
# smoke runs on CPUs; quick and paper expect GPUs (the CUDA build also runs on a CPU).
CONDA_ENV = "../../envs/cpu.yaml" if TIER == "smoke" else "../../envs/cuda.yaml"
# Jobs import repalign from this checkout, also inside --sdm conda environments.
# (snakemake formats the prefix like a shell command: doubled braces are literal ones)
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(SRC_DIR)}:${{{{PYTHONPATH:-}}}}; ")
PAPER_TARGETS = "paper_targets.yaml"
# A bad paper_targets.yaml (unknown key, unparseable claim, tolerance for no tier) stops
# the workflow here, before any job, naming each paper/artifact/target.
TARGETS = load_targets(os.path.join(workflow.basedir, PAPER_TARGETS))
PAPERS = list(TARGETS)


onstart:
    # Before any job: where jobs run on this machine (not a cluster submit host, whose jobs
    # run elsewhere; not a dry run), it must have the configured CUDA device and be able to
    # write cache_dir.
    if workflow.local_exec:
        validate_config(config, CONFIG_SCHEMA, machine=True)


def result_path(paper, artifact):
    return f"results/{paper}/{artifact}.json"


def model_path(paper, name):
    return f"results/{paper}/models/{name}.pt"


def figure_path(paper, artifact):
    return f"figures/{paper}/{artifact}.png"


ALL_RESULTS = [result_path(p, a) for p, a in sorted(ARTIFACTS)]
ALL_FIGURES = [figure_path(p, a) for p, a in sorted(ARTIFACTS)]


def step_resources(table, key):
    """Resources of the step behind a job, at the configured tier (see repalign.experiments)."""

    def get(wildcards):
        step = table[(wildcards.paper, wildcards.name)]
        return getattr(step.resources[TIER], key)

    return get


def step_options():
    """The options every train/run job passes to `python -m repalign` that shape its
    results (a tracked parameter: changing one re-runs the jobs)."""
    opts = [f"--tier {TIER}", f"--device {config['device']}", f"--seed {config['seed']}"]
    if config["n_seeds"] is not None:
        opts.append(f"--n-seeds {config['n_seeds']}")
    if config["deterministic"]:
        opts.append("--deterministic")
    return " ".join(opts)


def data_options():
    """Where and how jobs find data. An untracked parameter: pointing data_root elsewhere
    re-runs nothing by itself; which jobs re-run when data appears is params.data_key's."""
    opts = [f"--missing-data {config['missing_data']}"]
    if config["data_root"] is not None:
        opts.append(f"--data-root {shlex.quote(str(config['data_root']))}")
    if config["cache_dir"] is not None:
        opts.append(f"--cache-dir {shlex.quote(str(config['cache_dir']))}")
    if config["download"]:
        opts.append("--download")
    return " ".join(opts)


STEP_OPTIONS = step_options()
DATA_OPTIONS = data_options()


def untracked(value):
    """A params function that snakemake leaves out of its rerun check: it compares only
    params not derived from a job's input (changes of those show in the input)."""
    return lambda wildcards, input: value


def data_key(kind):
    """The step's data key (repalign.availability): it changes, and the job re-runs, only
    when data that the step's last run lacked has appeared under the data root.
    (A function of the wildcards only: snakemake ignores params derived from `output`.)"""
    output_path = model_path if kind == "model" else result_path

    def get(wildcards):
        datasets = step_datasets(TARGETS, ARTIFACTS, kind, wildcards.paper, wildcards.name)
        return workflow_key(output_path(wildcards.paper, wildcards.name), datasets, DATA_ROOT)

    return get


def needed_models(wildcards):
    step = ARTIFACTS[(wildcards.paper, wildcards.name)]
    return {m: model_path(wildcards.paper, m) for m in step.needs}


def input_options(wildcards, input):
    return " ".join(f"--input {name}={path}" for name, path in input.items())


def caption_text(wildcards):
    """Title, source and targets of an artifact, for its report caption."""
    art = TARGETS[wildcards.paper]["artifacts"][wildcards.name]
    lines = [f"{wildcards.paper} {wildcards.name}: {art.get('title', '')}", ""]
    for t in art.get("targets") or []:
        what = t.get("claim") or f"{t['metric']} = {t.get('paper_value')}"
        lines.append(f"- {t['id']}: {what} ({t.get('source', '')})")
    return "\n".join(lines)
