"""Figures from result files only: ``draw`` never retrains or recomputes a metric.

Each paper's modules, ``plots/<paper>.py`` and ``plots/<paper>_<topic>.py``, register
``plotter(paper, artifact)`` functions taking the result record and its arrays and returning
a matplotlib figure; ``draw`` imports only the modules of the paper it draws.

What could not run is drawn, never skipped silently: a ``not_run`` result, or an ``ok`` one
whose every metric is in ``not_run_metrics``, gives a placeholder figure that states the
reason; a plotter turns the axes of a panel whose data are missing into a placeholder with
``missing_panel``; ``draw`` adds a footnote for every not-run reason the figure does not show.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import textwrap
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from repalign.errors import RepalignError  # noqa: E402
from repalign.results import read_arrays, read_result  # noqa: E402

PLOTTERS: dict[tuple[str, str], Callable] = {}
# seaborn's whitegrid/paper theme as matplotlib ships it: importing seaborn (and scipy.stats
# with it) would cost every plot job ~2 s; plotters that draw with seaborn import it themselves.
STYLE = ("seaborn-v0_8-whitegrid", "seaborn-v0_8-paper", "seaborn-v0_8-deep")


def plotter(paper: str, artifact: str):
    def decorate(func):
        PLOTTERS[(paper, artifact)] = func
        return func
    return decorate


def plural(count: int, noun: str) -> str:
    """``1 run``, ``3 runs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def wrap(text: str, width: int = 80) -> str:
    """``text`` wrapped at ``width`` columns, each of its own lines on its own; list items (``- path``),
    paths and addresses stay whole, so a list of paths keeps one path per line."""
    return "\n".join(line if line.lstrip().startswith("- ") else
                     textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
                     for line in str(text).splitlines())


def not_run_reasons(record: dict, component: str | None = None) -> list[str]:
    """The distinct reasons in ``record["not_run_metrics"]``, first seen first; with ``component``, only
    those of the metrics that have it as one of their dot-separated name parts."""
    reasons = {}
    for name, reason in (record.get("not_run_metrics") or {}).items():
        if component is None or component in name.split("."):
            reasons.setdefault(reason, None)
    return list(reasons)


def not_run_panels(record: dict, shown: list[str]) -> list[str]:
    """The panels with not-run metrics named ``<metric>.<panel>`` (their last dot-separated part), less ``shown``."""
    names = (record.get("not_run_metrics") or {})
    return [p for p in dict.fromkeys(n.rsplit(".", 1)[-1] for n in names) if p not in shown]


def _reason_text(reasons: list[str], width: int) -> str:
    return "\n\n".join(wrap(r, width) for r in reasons)


def missing_panel(ax: plt.Axes, record: dict, title: str, component: str | None = None) -> None:
    """Make ``ax`` the placeholder of a panel that could not be drawn: ``title``, "not run" and why
    (the reasons of the metrics named with ``component``; all the record's reasons without it)."""
    reasons = not_run_reasons(record, component) or not_run_reasons(record) or ["its data are not in the result"]
    ax.axis("off")
    ax.set_title(title)
    fig = ax.figure
    columns = max(30, int(ax.get_position().width * fig.get_figwidth() * 72 / (0.6 * 6)))
    ax.text(0.0, 1.0, "not run:\n" + _reason_text(reasons, columns), transform=ax.transAxes, va="top",
            ha="left", fontsize=6, family="monospace", clip_on=False)


def _placeholder(record: dict) -> plt.Figure:
    """The whole figure when nothing of it could be computed."""
    reasons = [record["reason"]] if record.get("reason") else not_run_reasons(record)
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.text(0.0, 0.5, f"{record['paper']} {record['artifact']}: not run\n\n{_reason_text(reasons, 80)}",
            va="center", ha="left", fontsize=9, family="monospace")
    return fig


def _squash(text: str) -> str:
    return "".join(text.split())


def _footnote_unshown(fig: plt.Figure, record: dict) -> None:
    """Below the figure, each not-run reason that no text of the figure states yet, with its metrics' count."""
    shown = _squash(" ".join(t.get_text() for t in fig.findobj(Text)))
    names = record.get("not_run_metrics") or {}
    notes = []
    for reason in not_run_reasons(record):
        if _squash(reason) not in shown:
            count = sum(r == reason for r in names.values())
            notes.append(f"not run ({plural(count, 'metric')}): " + wrap(reason, 110))
    if notes:
        fig.text(0.0, 0.0, "\n\n".join(notes), va="top", ha="left", fontsize=6, family="monospace")


def _save(fig: plt.Figure, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    for path in (out, out.with_suffix(".pdf")):
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
    plt.close(fig)


def paper_modules(paper: str) -> list[str]:
    """The plot modules of one paper: ``<paper>`` and ``<paper>_<topic>`` in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name == paper or m.name.startswith(f"{paper}_"))


def figure(record: dict, arrays: dict) -> plt.Figure:
    """The figure of a result record and its arrays: the registered plotter's, with a footnote for
    not-run reasons it does not show, or the placeholder when nothing of the result could run."""
    paper, artifact = record["paper"], record["artifact"]
    for module in paper_modules(paper):
        importlib.import_module(f"repalign.plots.{module}")
    plt.style.use(STYLE)
    if record["status"] != "ok" or (not record.get("metrics") and record.get("not_run_metrics")):
        return _placeholder(record)
    if (paper, artifact) not in PLOTTERS:
        raise KeyError(f"no plotter registered for {paper}/{artifact}")
    try:
        fig = PLOTTERS[(paper, artifact)](record, arrays)
    except KeyError as exc:
        raise RepalignError(
            f"the {paper}/{artifact} plotter needs {exc}, which its result does not have (arrays: "
            f"{', '.join(sorted(arrays)) or 'none'}; {plural(len(record.get('not_run_metrics') or {}), 'metric')} "
            f"not run). If older code wrote the result, re-run it: snakemake {paper}_{artifact} --forcerun "
            f"results/{paper}/{artifact}.json; otherwise the plotter misses a case of its experiment") from exc
    _footnote_unshown(fig, record)
    fig.suptitle(f"{paper} {artifact} ({record['tier']} tier, {plural(len(record['seeds']), 'run')})",
                 fontsize=9, y=1.02)
    return fig


def draw(paper: str, artifact: str, result_path: Path, out: Path) -> None:
    """Write ``out`` (PNG) and the PDF beside it from ``result_path``."""
    record = read_result(result_path)
    if (record["paper"], record["artifact"]) != (paper, artifact):
        raise RepalignError(f"{result_path} is the result of {record['paper']}/{record['artifact']}, not of "
                            f"{paper}/{artifact}: pass --result results/{paper}/{artifact}.json")
    arrays = read_arrays(result_path) if record["status"] == "ok" else {}
    _save(figure(record, arrays), Path(out))
