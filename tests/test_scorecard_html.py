"""reports/scorecard.html: self-contained, one section per paper, figures beside their targets.

The last test loads the page in a real headless browser (Debian's ``chromium``, installed by
.ci/run) and reads the rendered DOM back; it skips, saying so, where no browser is installed.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from repalign.targets import load_targets, run_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WITH_FIGURE = (("imani2022", "fig10"), ("lou2022", "theory"))


class Page(HTMLParser):
    """The parts of the page the tests look at: sections, artifacts, images, statuses, details."""

    def __init__(self, text: str):
        super().__init__()
        self.papers, self.artifacts, self.images, self.statuses, self.details = [], [], {}, [], 0
        self.external = []
        self._artifact, self._status = None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-paper" in a:
            self.papers.append(a["data-paper"])
        if tag == "article":
            self._artifact = a.get("data-artifact")
            self.artifacts.append(self._artifact)
        if tag == "img":
            self.images[self._artifact] = a.get("src", "")
        if tag in ("img", "script", "link") and re.match(r"(https?:|//|file:)", a.get("src", a.get("href", ""))):
            self.external.append(a)
        if tag == "span" and "status" in (a.get("class") or "").split():
            self._status = a["class"]
        if tag == "details":
            self.details += 1

    def handle_data(self, data):
        if self._status:
            self.statuses.append((self._status, data))
            self._status = None


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def page(tmp_path):
    """The scorecard of the real paper_targets.yaml with one result (a pass, a fail) and two figures."""
    results = tmp_path / "results" / "imani2022"
    results.mkdir(parents=True)
    metrics = {f"alignment_auc.{r}.{t}": v for r, vals in
               {"transfer": (0.9, 0.8, 0.1), "init": (0.2, 0.2, 0.2), "original": (0.3, 0.3, 0.3)}.items()
               for t, v in zip(("S", "T1", "T2"), vals)}
    metrics["alignment_auc.transfer.T1"] = 0.25  # similar_rises fails: below original
    (results / "fig10.json").write_text(json.dumps({"paper": "imani2022", "artifact": "fig10", "status": "ok",
                                                    "tier": "quick", "metrics": metrics}))
    for paper, art in WITH_FIGURE:
        _png(tmp_path / "figures" / paper / f"{art}.png")
    run_check(tmp_path / "results", ROOT / "paper_targets.yaml", tmp_path / "reports", tmp_path / "figures")
    records = json.loads((tmp_path / "reports" / "scorecard.json").read_text())
    return tmp_path / "reports" / "scorecard.html", records


def _check_page(page: Page, records: list[dict]) -> None:
    targets = load_targets(ROOT / "paper_targets.yaml")
    assert page.papers == list(targets)
    assert page.artifacts == [f"{p}/{a}" for p in targets for a in targets[p]["artifacts"]]
    for paper, art in WITH_FIGURE:
        src = page.images[f"{paper}/{art}"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(page.images) == len(WITH_FIGURE)  # the others say "No figure yet"
    assert not page.external
    shown = [(cls.split()[-1], text) for cls, text in page.statuses]
    expected = [(f"status-{r['status']}", r["status"] + (f" ({r['why']})" if r["why"] else "")) for r in records]
    assert shown == expected
    assert ("status-fail", "fail") in shown and ("status-pass", "pass") in shown
    assert page.details == sum(bool(r["reason"]) for r in records)


def test_the_page_has_every_paper_figure_and_status_and_loads_nothing(page):
    path, records = page
    text = path.read_text()
    _check_page(Page(text), records)
    assert "Tier: <strong>quick</strong>" in text
    assert re.search(r"<td>reproduction targets[^<]*</td><td>\d+</td>", text)
    assert "<summary>why</summary>" in text


def test_the_page_in_a_headless_browser(page, tmp_path):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)}); "
                    "`apt-get install chromium` to run this test")
    path, records = page
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Page(proc.stdout)
    assert dom.papers, f"the browser rendered no paper section:\n{proc.stdout[:500]}\n{proc.stderr[-1000:]}"
    _check_page(dom, records)
