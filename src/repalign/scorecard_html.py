"""``reports/scorecard.html``: the scorecard as one self-contained page.

A summary at the top (the same as the Markdown scorecard's), then one section per paper
and, in it, every artifact's figure (``figures/<paper>/<artifact>.png`` embedded as base64)
beside its targets: the paper's value, ours, the tolerance and the status in colour, with
the reason folded away in a ``<details>``. No external file, script or font is loaded.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from repalign.scorecard_text import KIND_LABELS, Summary, missing_data_sentence, not_run_sentence, status_text, tier_sentence
from repalign.targets import KINDS, Record

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; padding: 0 1em; max-width: 90em; color: #222; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
code { background: #f3f3f3; padding: 0 .2em; }
.artifact { display: flex; gap: 1.5em; border-top: 1px solid #ddd; padding: 1em 0; }
.artifact figure { margin: 0; flex: 0 0 32em; }
.artifact figure img { width: 100%; }
.artifact figcaption { color: #777; font-size: 80%; }
.artifact .checks { flex: 1 1 0; min-width: 0; overflow-x: auto; }
.nofigure { flex: 0 0 32em; color: #777; font-style: italic; }
.status { font-weight: bold; padding: 0 .3em; border-radius: .2em; white-space: nowrap; }
.status-pass { background: #c8ecc8; color: #125412; }
.status-fail { background: #f6c4c4; color: #8b0000; }
.status-not_run { background: #eee; color: #555; }
.status-not_implemented { background: #f5ecd0; color: #6b5200; }
td.claim { font-family: monospace; font-size: 90%; max-width: 30em; }
details summary { cursor: pointer; color: #555; }
details pre { white-space: pre-wrap; max-width: 40em; }
"""


def _inline(text: str) -> str:
    """Escape, then render the summary's two Markdown marks: **bold** and `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "<br>".join(f"{html.escape(k)} = {_value(x)}" for k, x in v.items())
    return html.escape(str(v))


def _summary(s: Summary, records: list[Record]) -> str:
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{s.evaluated[k]['evaluated']}</td>"
                   f"<td>{s.evaluated[k]['pass']}</td><td>{s.evaluated[k]['fail']}</td></tr>"
                   for k, label in KIND_LABELS.items())
    parts = [f"<p>{_inline(tier_sentence(s))}</p>",
             f"<table class='counts'><tr><th></th><th>evaluated</th><th>pass</th><th>fail</th></tr>{rows}</table>",
             f"<p>{_inline(not_run_sentence(s))}</p>"]
    if missing_data_sentence(s):
        parts.append(f"<p>{_inline(missing_data_sentence(s))}</p>")
    parts += [f"<p class='next'><strong>Next step:</strong> {_inline(step.text())}</p>" for step in s.next_steps]
    papers = "".join(f"<li><a href='#paper-{p}'>{p}</a></li>" for p in dict.fromkeys(r.paper for r in records))
    return f"<section id='summary'><h1>Scorecard</h1>{''.join(parts)}<ul class='papers'>{papers}</ul></section>"


def _figure(paper: str, art_id: str, figures_dir: Path) -> str:
    path = figures_dir / paper / f"{art_id}.png"
    if not path.is_file():
        return f"<p class='nofigure'>No figure yet ({html.escape(str(path))}).</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure><img alt='{paper} {art_id}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(str(path))}</figcaption></figure>")


def _target_row(r: Record) -> str:
    reason = ""
    if r.reason:
        reason = f"<details><summary>why</summary><pre>{html.escape(r.reason)}</pre></details>"
    paper_cls = " class='claim'" if isinstance(r.paper_value, str) else ""
    return (f"<tr class='target' data-target='{html.escape(r.target)}' data-status='{r.status}'>"
            f"<td>{html.escape(r.target)}</td>"
            f"<td><span class='status status-{r.status}'>{html.escape(status_text(r))}</span>{reason}</td>"
            f"<td{paper_cls}>{_value(r.paper_value)}</td><td>{_value(r.value)}</td><td>{_value(r.tolerance)}</td>"
            f"<td>{r.tier or ''}</td><td>{r.kind}</td></tr>")


def render_html(records: list[Record], summary: Summary, targets: dict, figures_dir: Path) -> str:
    sections = []
    for paper in dict.fromkeys(r.paper for r in records):
        entry = targets.get(paper) or {}
        articles = []
        for art_id in dict.fromkeys(r.artifact for r in records if r.paper == paper):
            art = (entry.get("artifacts") or {}).get(art_id) or {}
            rows = "".join(_target_row(r) for r in records if r.paper == paper and r.artifact == art_id)
            articles.append(
                f"<article class='artifact' id='{paper}-{art_id}' data-artifact='{paper}/{art_id}'>"
                f"{_figure(paper, art_id, figures_dir)}<div class='checks'><h3>{art_id}: {html.escape(art.get('title', ''))}</h3>"
                "<table class='targets'><tr><th>target</th><th>status</th><th>paper</th><th>ours</th>"
                f"<th>tolerance</th><th>tier</th><th>kind</th></tr>{rows}</table></div></article>")
        mine = [r for r in records if r.paper == paper]
        counts = " · ".join(
            [f"{kind}: {sum(r.kind == kind and r.status == 'pass' for r in mine)} pass, "
             f"{sum(r.kind == kind and r.status == 'fail' for r in mine)} fail" for kind in KINDS]
            + [f"{status}: {sum(r.status == status for r in mine)}" for status in ("not_run", "not_implemented")])
        sections.append(f"<section class='paper' id='paper-{paper}' data-paper='{paper}'>"
                        f"<h2>{paper}: {html.escape(entry.get('title', ''))}</h2>"
                        f"<p class='paper-counts'>{counts}</p>{''.join(articles)}</section>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>repalign scorecard</title>"
            f"<style>{_CSS}</style></head><body>{_summary(summary, records)}{''.join(sections)}</body></html>\n")
