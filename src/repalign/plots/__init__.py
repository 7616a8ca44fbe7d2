"""Figures from result files only: ``draw`` never retrains or recomputes a metric.

Each paper's modules, ``plots/<paper>.py`` and ``plots/<paper>_<topic>.py``, register
``plotter(paper, artifact)`` functions taking the result record and its arrays and returning
a matplotlib figure; ``draw`` imports only the modules of the paper it draws. A ``not_run``
result gives a placeholder figure that states the reason.
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


def _placeholder(record: dict) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    reason = textwrap.fill(str(record.get("reason")), 80)
    ax.text(0.0, 0.5, f"{record['paper']} {record['artifact']}: not run\n\n{reason}",
            va="center", ha="left", fontsize=9, family="monospace")
    return fig


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


def draw(paper: str, artifact: str, result_path: Path, out: Path) -> None:
    """Write ``out`` (PNG) and the PDF beside it from ``result_path``."""
    for module in paper_modules(paper):
        importlib.import_module(f"repalign.plots.{module}")
    record = read_result(result_path)
    plt.style.use(STYLE)
    if record["status"] != "ok":
        fig = _placeholder(record)
    else:
        if (paper, artifact) not in PLOTTERS:
            raise KeyError(f"no plotter registered for {paper}/{artifact}")
        fig = PLOTTERS[(paper, artifact)](record, read_arrays(result_path))
        fig.suptitle(f"{paper} {artifact} ({record['tier']} tier, {len(record['seeds'])} runs)",
                     fontsize=9, y=1.02)
    _save(fig, Path(out))
