"""The scorecard through snakemake, on a scratch copy and a few small jobs (never the whole DAG).

- A run of one figure, which does not include the scorecard rule, still ends with a scorecard
  that holds its result (Snakefile ``onsuccess``), and says so.
- ``snakemake --report`` shows the HTML scorecard (mime text/html), not a .md download.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from conftest import copy_workflow, snakemake

from repalign.experiments import ARTIFACTS


@pytest.fixture(scope="module")
def one_figure(tmp_path_factory):
    """``snakemake imani2022_fig4`` (synthetic, seconds) in a scratch copy."""
    workdir = copy_workflow(tmp_path_factory.mktemp("scorecard_wf"))
    proc = snakemake(workdir, "imani2022_fig4", check=True)
    return workdir, proc.stdout + proc.stderr


def _records(workdir):
    return {(r["paper"], r["artifact"], r["target"]): r
            for r in json.loads((workdir / "reports/scorecard.json").read_text())}


def test_a_one_figure_run_writes_the_scorecard_and_says_so(one_figure):
    workdir, log = one_figure
    assert "Scorecard written for the 1 result(s) present: reports/scorecard.html" in log
    records = _records(workdir)
    assert records["imani2022", "fig4", "sigma_1"]["tier"] == "smoke"
    assert records["imani2022", "fig4", "sigma_1"]["value"] is not None
    assert records["imani2022", "fig10", "source_rises"]["why"] == "no_result"
    assert (workdir / "reports/scorecard.html").stat().st_size > 1000
    head = (workdir / "reports/scorecard.md").read_text().split("## Per paper")[0]
    assert "Tier: **smoke**" in head and "sanity checks" in head
    assert "**Next step:** `snakemake --cores all --config tier=quick` on one GPU evaluates" in head

    # a second one-figure run updates it again
    proc = snakemake(workdir, "imani2022_fig8", check=True)
    assert "Scorecard updated for the 1 result(s) newer than it (latest results/imani2022/fig8.json)" in proc.stdout
    assert _records(workdir)["imani2022", "fig8", "low_alignment_equal_shares"]["tier"] == "smoke"


def test_the_report_shows_the_html_scorecard(one_figure):
    workdir, _ = one_figure
    # --report needs every report item on disk; stand-ins for the figures not run here
    for paper, art in ARTIFACTS:
        for ext in ("png", "pdf"):
            path = workdir / f"figures/{paper}/{art}.{ext}"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(workdir / f"figures/imani2022/fig4.{ext}", path)
    snakemake(workdir, "--report", "report.zip", check=True)
    with zipfile.ZipFile(workdir / "report.zip") as z:
        page = z.read("report/report.html").decode()
    entry = page[page.index('"reports/scorecard.html": {'):][:3000]
    assert '"mime_type": "text/html"' in entry
    assert '"reports/scorecard.md"' not in page
