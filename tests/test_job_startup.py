"""A Snakemake job imports torch and its own paper's steps, nothing heavier.

Every job is a fresh process, so import time is paid ~100 times per smoke DAG: the
optional heavy libraries (scipy.stats, scikit-learn, torchvision, OpenCV,
scikit-image, timm, matplotlib) must be imported inside the functions that use them.
"""

import functools
import json
import subprocess
import sys

import pytest

from repalign.experiments import PAPERS

HEAVY = ("scipy.stats", "sklearn", "torchvision", "cv2", "skimage", "timm", "matplotlib")
# What a job of paper argv[1] loads: first its steps (a run/train job), then its plot modules (a plot job).
PROBE = """
import importlib, json, sys
from repalign.experiments import load_paper
from repalign.experiments.registry import ARTIFACTS, MODELS
paper, heavy = sys.argv[1], sys.argv[2:]
load_paper(paper)
report = {
    "steps": sum(p == paper for p, _ in [*ARTIFACTS, *MODELS]),
    "heavy": [name for name in heavy if name in sys.modules],
    "other_papers": sorted({m.split(".")[2] for m in sys.modules if m.startswith("repalign.experiments.")}
                           - {paper, "registry", "storage"}),
}
from repalign.plots import PLOTTERS, paper_modules
for module in paper_modules(paper):
    importlib.import_module("repalign.plots." + module)
report["plot_modules"] = paper_modules(paper)
report["unplotted"] = sorted(a for p, a in ARTIFACTS if p == paper and (p, a) not in PLOTTERS)
report["other_papers_plotted"] = sorted({p for p, _ in PLOTTERS} - {paper})
print(json.dumps(report))
"""


@functools.cache
def probe(paper: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, paper, *HEAVY], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("paper", PAPERS)
def test_loading_one_paper_imports_no_heavy_optional_library_and_no_other_paper(paper):
    report = probe(paper)
    assert report["steps"] > 0
    assert report["heavy"] == [], f"loading {paper} imports {report['heavy']}: import them where they are used"
    assert report["other_papers"] == [], report["other_papers"]


@pytest.mark.parametrize("paper", PAPERS)
def test_a_papers_plot_modules_register_a_plotter_for_each_of_its_artifacts(paper):
    """``draw`` imports ``plots/<paper>.py`` and ``plots/<paper>_<topic>.py``: together they cover every artifact."""
    report = probe(paper)
    assert paper in report["plot_modules"] and all(m.startswith(paper) for m in report["plot_modules"])
    assert report["unplotted"] == [] and report["other_papers_plotted"] == []


NOT_RUN_PROBE = """
import json, sys
from repalign.runner import run_step
kind, paper, name, root, out = sys.argv[1:]
assert run_step(kind, paper, name, tier="smoke", device="cpu", data_root=root, out=out) == "not_run"
print(json.dumps([m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules]))
"""


@pytest.mark.parametrize("kind,paper,name", [("artifact", "lou2022", "fig6"), ("model", "maennel2020", "cnn_filters")])
def test_a_step_without_its_data_is_not_run_without_importing_torch_dynamo(tmp_path, kind, paper, name):
    """torch._dynamo and torch._inductor cost ~2 s of CPU per job; a not_run job (every data job of
    tests/test_no_data.py) has no use for them. (``torch.use_deterministic_algorithms`` imports them.)"""
    (tmp_path / "empty").mkdir()
    out = subprocess.run([sys.executable, "-c", NOT_RUN_PROBE, kind, paper, name, str(tmp_path / "empty"),
                          str(tmp_path / f"{name}.out")], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []
