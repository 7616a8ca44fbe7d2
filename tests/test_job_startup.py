"""A Snakemake job imports torch and its own paper's steps, nothing heavier.

Every job is a fresh process, so import time is paid ~100 times per smoke DAG: the
optional heavy libraries (scipy.stats, scikit-learn, torchvision, OpenCV,
scikit-image, timm, matplotlib) must be imported inside the functions that use them.
"""

import json
import subprocess
import sys

import pytest

from repalign.experiments import PAPERS

HEAVY = ("scipy.stats", "sklearn", "torchvision", "cv2", "skimage", "timm", "matplotlib")
PROBE = """
import json, sys
from repalign.experiments import load_paper
from repalign.experiments.registry import ARTIFACTS, MODELS
load_paper(sys.argv[1])
print(json.dumps({
    "steps": sum(paper == sys.argv[1] for paper, _ in [*ARTIFACTS, *MODELS]),
    "heavy": [name for name in sys.argv[2:] if name in sys.modules],
    "other_papers": sorted({m.split(".")[2] for m in sys.modules if m.startswith("repalign.experiments.")}
                           - {sys.argv[1], "registry", "storage"}),
}))
"""


@pytest.mark.parametrize("paper", PAPERS)
def test_loading_one_paper_imports_no_heavy_optional_library_and_no_other_paper(paper):
    out = subprocess.run([sys.executable, "-c", PROBE, paper, *HEAVY], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["steps"] > 0
    assert report["heavy"] == [], f"loading {paper} imports {report['heavy']}: import them where they are used"
    assert report["other_papers"] == [], report["other_papers"]


@pytest.mark.parametrize("paper", PAPERS)
def test_a_papers_plot_modules_register_a_plotter_for_each_of_its_artifacts(paper):
    """``draw`` imports ``plots/<paper>.py`` and ``plots/<paper>_<topic>.py``: together they cover every artifact."""
    probe = f"""
import importlib, json
from repalign.experiments import load_paper
from repalign.experiments.registry import ARTIFACTS
from repalign.plots import PLOTTERS, paper_modules
load_paper({paper!r})
for module in paper_modules({paper!r}):
    importlib.import_module("repalign.plots." + module)
print(json.dumps({{"modules": paper_modules({paper!r}),
                  "unplotted": sorted(a for p, a in ARTIFACTS if p == {paper!r} and (p, a) not in PLOTTERS),
                  "other_papers": sorted({{p for p, _ in PLOTTERS}} - {{{paper!r}}})}}))
"""
    report = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True).stdout)
    assert paper in report["modules"] and all(m.startswith(paper) for m in report["modules"])
    assert report["unplotted"] == [] and report["other_papers"] == []
