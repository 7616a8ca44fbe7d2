"""What the scorecard says above and around its tables: the tier, what it evaluates, the
counts, and the next step; and the Markdown rendering (one-line cells, reasons as footnotes).

The HTML scorecard (``repalign.scorecard_html``) uses the same summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from repalign.targets import KINDS, TIERS, WHYS, Record

TIER_MEANS = {
    "smoke": ("the CPU plumbing run (minutes, CI): every metric a target names must be written and "
              "finite; it compares only numbers that are exact at any size (a smoke tolerance) and "
              "sanity checks. The paper's claims are compared at quick and paper."),
    "quick": ("one GPU, about 10 min per figure at reduced sizes: the paper's claims and the numbers "
              "with a (wide) quick tolerance."),
    "paper": "the papers' own settings: every claim and every number with a paper tolerance (seed noise).",
}
_DATASET = re.compile(r"dataset '([^']+)' not found")


@dataclass
class NextStep:
    tier: str
    n_targets: int
    artifacts: list[str]
    declared_min: int | None  # sum of the steps' declared runtime_min at that tier, or None

    def text(self) -> str:
        how = f"`snakemake --cores all --config tier={self.tier}`"
        where = "one GPU" if self.tier == "quick" else "the papers' hardware (GPUs)"
        estimate = ""
        if self.declared_min is not None:
            estimate = (f" Estimate: the steps' declared time limits at {self.tier} sum to "
                        f"{self.declared_min} min ({self.declared_min / 60:.1f} h of single jobs; an "
                        "upper bound, not a measurement)")
            if self.tier == "quick":
                estimate += "; the tier is designed for about 10 min per figure"
            estimate += "."
        return (f"{how} on {where} evaluates {self.n_targets} more targets of "
                f"{len(self.artifacts)} artifact{'s' * (len(self.artifacts) != 1)}.{estimate}")


@dataclass
class Summary:
    tiers: dict[str, int]                 # tier -> number of results scored at it
    evaluated: dict[str, dict[str, int]]  # kind -> {"evaluated", "pass", "fail"}
    not_run: dict[str, int]               # why -> count
    not_implemented: int
    missing_datasets: list[str]
    next_steps: list[NextStep] = field(default_factory=list)

    @property
    def tier(self) -> str | None:
        """The highest tier any result was scored at."""
        present = [t for t in TIERS if t in self.tiers]
        return present[-1] if present else None


def summarize(records: list[Record], declared_min=None) -> Summary:
    """Counts and next steps. ``declared_min(tier, artifacts)`` sums the declared runtimes."""
    tiers: dict[str, int] = {}
    for paper, art, tier in dict.fromkeys((r.paper, r.artifact, r.tier) for r in records if r.tier):
        tiers[tier] = tiers.get(tier, 0) + 1
    evaluated = {k: {"evaluated": 0, "pass": 0, "fail": 0} for k in KINDS}
    for r in records:
        if r.status in ("pass", "fail"):
            evaluated[r.kind]["evaluated"] += 1
            evaluated[r.kind][r.status] += 1
    not_run = {w: sum(r.status == "not_run" and r.why == w for r in records) for w in WHYS}
    datasets = sorted({m for r in records if r.why == "missing_data" for m in _DATASET.findall(r.reason or "")})
    summary = Summary(tiers, evaluated, not_run, sum(r.status == "not_implemented" for r in records), datasets)
    waiting: dict[str, list[Record]] = {}
    for r in records:
        if r.status == "not_run" and r.why in ("tier", "no_tolerance"):
            later = [t for t in r.evaluated_at if TIERS.index(t) > TIERS.index(r.tier)]
            if later:
                waiting.setdefault(later[0], []).append(r)
    for tier in TIERS:
        if tier in waiting:
            arts = list(dict.fromkeys(f"{r.paper}/{r.artifact}" for r in waiting[tier]))
            minutes = declared_min(tier, arts) if declared_min else None
            summary.next_steps.append(NextStep(tier, len(waiting[tier]), arts, minutes))
    return summary


def status_text(r: Record) -> str:
    return f"{r.status} ({r.why})" if r.why else r.status


def one_line(text: str) -> str:
    """A reason as one line: a path list ('Paths tried:' then '  - a', '  - b') becomes 'a; b.'."""
    out, prev_item = "", False
    for line in str(text).splitlines():
        item = re.match(r"^\s*-\s+(.*)", line)
        part = (item.group(1) if item else line).strip()
        if part:
            sep = "" if not out else "; " if item and prev_item else ". " if prev_item else " "
            out, prev_item = out + sep + part, bool(item)
    return out


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_cell(x)}" for k, x in v.items())
    return one_line(v).replace("|", "\\|")


KIND_LABELS = {"reproduction": "reproduction targets (the paper's claims and numbers)",
               "sanity": "sanity checks (hold by construction; not evidence)"}


def tier_sentence(s: Summary) -> str:
    if s.tier is None:
        return "No results yet: run `snakemake --cores all`."
    mixed = "" if len(s.tiers) == 1 else " (results of several tiers: " + ", ".join(
        f"{n} at {t}" for t, n in s.tiers.items()) + ")"
    return f"Tier: **{s.tier}**{mixed}. The {s.tier} tier is {TIER_MEANS[s.tier]}"


def not_run_sentence(s: Summary) -> str:
    waiting = "; ".join(f"{n} {WHYS[w]} (`{w}`)" for w, n in s.not_run.items() if n)
    return (f"Not run: {sum(s.not_run.values())} targets" + (f": {waiting}." if waiting else ".")
            + f" Not implemented (no experiment yet): {s.not_implemented}.")


def missing_data_sentence(s: Summary) -> str | None:
    if not s.missing_datasets:
        return None
    return ("Missing data: " + ", ".join(s.missing_datasets)
            + " (see the README's data section; set `REPALIGN_DATA`).")


def header_lines(s: Summary) -> list[str]:
    """The scorecard's opening: tier, what it evaluates, counts, not-run breakdown, next step."""
    lines = [tier_sentence(s), "", "| | evaluated | pass | fail |", "|---|---|---|---|"]
    for kind, label in KIND_LABELS.items():
        c = s.evaluated[kind]
        lines.append(f"| {label} | {c['evaluated']} | {c['pass']} | {c['fail']} |")
    lines += ["", not_run_sentence(s)]
    if missing_data_sentence(s):
        lines += ["", missing_data_sentence(s)]
    for step in s.next_steps:
        lines += ["", f"**Next step:** {step.text()}"]
    return lines


def render_markdown(records: list[Record], summary: Summary) -> str:
    papers = list(dict.fromkeys(r.paper for r in records))
    lines = ["# Scorecard", "", *header_lines(summary), "", "## Per paper", "",
             "| paper | reproduction pass | reproduction fail | sanity pass | sanity fail | not_run | not_implemented |",
             "|---|---|---|---|---|---|---|"]
    for paper in papers:
        mine = [r for r in records if r.paper == paper]
        cells = [sum(r.kind == k and r.status == s for r in mine) for k in KINDS for s in ("pass", "fail")]
        cells += [sum(r.status == s for r in mine) for s in ("not_run", "not_implemented")]
        lines.append(f"| {paper} | " + " | ".join(map(str, cells)) + " |")
    notes: dict[str, int] = {}
    for paper in papers:
        lines += ["", f"## {paper}", "",
                  "| artifact | target | kind | status | paper | reproduced | tolerance | tier | reason |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in records if r.paper == paper):
            note = ""
            if r.reason:
                key = one_line(r.reason)
                note = f"[^{notes.setdefault(key, len(notes) + 1)}]"
            status = f"**{r.status}**" if r.status == "fail" else status_text(r)
            lines.append("| " + " | ".join(_cell(x) for x in (
                r.artifact, r.target, r.kind, status, r.paper_value, r.value, r.tolerance, r.tier)) + f" | {note} |")
    lines += ["", "## Reasons", ""]
    lines += [f"[^{n}]: {text}" for text, n in notes.items()]
    return "\n".join(lines) + "\n"
