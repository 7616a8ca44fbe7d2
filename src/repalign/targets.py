"""paper_targets.yaml -> scorecard: every target of every artifact, with a status.

Statuses: ``pass``, ``fail``, ``not_run`` (with the reason: no result yet, a missing
dataset, or a target that this tier does not evaluate) and ``not_implemented`` (the
artifact has no experiment yet). A metric a target names that is missing from a result,
or is NaN/inf, is a ``fail`` at every tier: that is what the smoke tier checks.

Kinds: a target is a ``reproduction`` target (the default: a number or claim of the
paper) or a ``sanity`` check (``kind: sanity``: it holds by construction or checks the
implementation or the dataset, not the paper's finding). The scorecard counts the two
apart, so a sanity pass never inflates the reproduction count. A sanity claim is
evaluated at every tier unless its ``tiers`` say otherwise (it needs no scale to hold);
a numeric sanity target, like any numeric target, at the tiers of its ``tolerance``.
A failed sanity check is a ``fail`` like any other (``check`` exits non-zero).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from repalign.errors import RepalignError
from repalign.results import read_result

STATUSES = ("pass", "fail", "not_run", "not_implemented")
KINDS = ("reproduction", "sanity")
DEFAULT_CLAIM_TIERS = {"reproduction": ("quick", "paper"), "sanity": ("smoke", "quick", "paper")}
_FUNCTIONS = {"abs": abs, "min": min, "max": max}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
            ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Compare, ast.Lt, ast.LtE, ast.Gt,
            ast.GtE, ast.Eq, ast.NotEq, ast.Name, ast.Attribute, ast.Constant, ast.Call, ast.Load)


@dataclass
class Record:
    paper: str
    artifact: str
    target: str
    kind: str
    status: str
    paper_value: Any
    value: Any
    tolerance: Any
    tier: str | None
    reason: str | None


# ---- claims: a tiny, safe expression language over dotted metric names -------------

def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def parse_claim(claim: str) -> tuple[ast.Expression, list[str]]:
    """Parse a claim; return its tree and the metric names it uses, in order."""
    try:
        tree = ast.parse(claim, mode="eval")
    except SyntaxError as exc:
        raise RepalignError(f"claim '{claim}' is not a valid expression: {exc.msg}") from exc
    names: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise RepalignError(f"claim '{claim}' uses {type(node).__name__}, which is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise RepalignError(f"claim '{claim}' calls a function other than abs/min/max")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise RepalignError(f"claim '{claim}' has a non-numeric constant {node.value!r}")
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    inner |= {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in inner:
            name = _dotted(node)
            if name is None:
                raise RepalignError(f"claim '{claim}' has an attribute of something other than a name")
            if name not in names:
                names.append(name)
    return tree, names


def eval_claim(claim: str, metrics: dict[str, float]) -> bool:
    tree, _ = parse_claim(claim)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            return metrics[_dotted(node)]
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = ev(comp)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
        raise RepalignError(f"cannot evaluate {ast.dump(node)}")
    return bool(ev(tree))


# ---- loading and evaluating -------------------------------------------------------

def load_targets(path: Path) -> dict:
    """Load and shape-check ``paper_targets.yaml``; errors name the paper, artifact and target."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RepalignError(f"cannot read targets file {path}: {exc}") from exc
    for paper, entry in doc.items():
        for art_id, art in (entry.get("artifacts") or {}).items():
            for t in art.get("targets") or []:
                where = f"{path}: {paper}/{art_id}/{t.get('id')}"
                if ("metric" in t) == ("claim" in t):
                    raise RepalignError(f"{where}: a target needs exactly one of 'metric' or 'claim'")
                if t.get("kind", "reproduction") not in KINDS:
                    raise RepalignError(f"{where}: kind must be one of {', '.join(KINDS)}, "
                                        f"not {t['kind']!r}")
                if "claim" in t:
                    parse_claim(t["claim"])
                elif t.get("tolerance_kind", "abs") not in ("abs", "rel"):
                    raise RepalignError(f"{where}: tolerance_kind must be abs or rel")
    return doc


def _metric_values(names: list[str], metrics: dict) -> tuple[dict, str | None]:
    values, problems = {}, []
    for name in names:
        v = metrics.get(name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            problems.append(f"{name} is {'missing' if name not in metrics else repr(v)}")
        else:
            values[name] = v
    return values, ("; ".join(problems) or None)


def target_kind(t: dict) -> str:
    """``reproduction`` (the default) or ``sanity``."""
    return t.get("kind", "reproduction")


def claim_tiers(t: dict) -> tuple[str, ...]:
    """The tiers where a claim is evaluated: its ``tiers``, else the default for its kind."""
    return tuple(t.get("tiers", DEFAULT_CLAIM_TIERS[target_kind(t)]))


def evaluate_target(paper: str, art_id: str, t: dict, result: dict) -> Record:
    tier = result["tier"]
    metrics = result.get("metrics") or {}
    rec = Record(paper, art_id, t["id"], target_kind(t), "fail", None, None, None, tier, None)
    declared = result.get("not_run_metrics") or {}
    names = parse_claim(t["claim"])[1] if "claim" in t else [t["metric"]]
    absent = [n for n in names if n not in metrics]
    if absent and all(n in declared for n in absent):
        rec.status = "not_run"
        rec.paper_value = t.get("claim", t.get("paper_value"))
        rec.reason = "; ".join(dict.fromkeys(declared[n].splitlines()[0] for n in absent))
        return rec
    if "claim" in t:
        rec.paper_value = t["claim"]
        _, names = parse_claim(t["claim"])
        values, problem = _metric_values(names, metrics)
        rec.value = values
        tiers = claim_tiers(t)
        if problem:
            rec.reason = problem
        elif tier not in tiers:
            rec.status = "not_run"
            rec.reason = f"claim evaluated at {', '.join(tiers)} tier; here its metrics exist and are finite"
        else:
            rec.status = "pass" if eval_claim(t["claim"], values) else "fail"
        return rec
    rec.paper_value = t.get("paper_value")
    values, problem = _metric_values([t["metric"]], metrics)
    rec.value = values.get(t["metric"])
    tol = (t.get("tolerance") or {}).get(tier)
    kind = t.get("tolerance_kind", "abs")
    rec.tolerance = None if tol is None else f"±{tol}{' (relative)' if kind == 'rel' else ''}"
    if problem:
        rec.reason = problem
    elif tol is None:
        rec.status = "not_run"
        rec.reason = f"no tolerance at the {tier} tier; value recorded"
    else:
        bound = tol * abs(rec.paper_value) if kind == "rel" else tol
        rec.status = "pass" if abs(rec.value - rec.paper_value) <= bound else "fail"
        if rec.status == "fail":
            rec.reason = f"|{rec.value:.4g} - {rec.paper_value}| > {bound:.4g}"
    return rec


def scorecard(targets: dict, results_dir: Path, implemented: set[tuple[str, str]]) -> list[Record]:
    records = []
    for paper, entry in targets.items():
        for art_id, art in (entry.get("artifacts") or {}).items():
            tlist = art.get("targets") or []
            path = Path(results_dir) / paper / f"{art_id}.json"
            if not tlist:
                reason = art.get("note") or "no checkable target"
                status = "not_implemented" if (paper, art_id) not in implemented and art.get(
                    "kind") != "sketch" else "not_run"
                records.append(Record(paper, art_id, "-", "reproduction", status, None, None, None, None, reason))
                continue
            if (paper, art_id) not in implemented:
                records += [Record(paper, art_id, t["id"], target_kind(t), "not_implemented", t.get("paper_value", t.get("claim")),
                                   None, None, None, "no experiment yet") for t in tlist]
                continue
            if not path.exists():
                records += [Record(paper, art_id, t["id"], target_kind(t), "not_run", t.get("paper_value", t.get("claim")),
                                   None, None, None, f"no result yet: run `snakemake {paper}_{art_id}`")
                            for t in tlist]
                continue
            result = read_result(path)
            if result["status"] != "ok":
                records += [Record(paper, art_id, t["id"], target_kind(t), "not_run", t.get("paper_value", t.get("claim")),
                                   None, None, result["tier"], result.get("reason")) for t in tlist]
                continue
            records += [evaluate_target(paper, art_id, t, result) for t in tlist]
    return records


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_cell(x)}" for k, x in v.items())
    return str(v).replace("|", "\\|")


def counts(records: list[Record]) -> dict[str, int]:
    """pass/fail of reproduction targets and of sanity checks apart, then not_run, not_implemented."""
    out = {f"{kind} {status}": sum(r.kind == kind and r.status == status for r in records)
           for kind in KINDS for status in ("pass", "fail")}
    out.update({s: sum(r.status == s for r in records) for s in ("not_run", "not_implemented")})
    return out


def render_markdown(records: list[Record]) -> str:
    papers = list(dict.fromkeys(r.paper for r in records))
    columns = list(counts([]))
    lines = ["# Scorecard", "", "| paper | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for paper in papers:
        c = counts([r for r in records if r.paper == paper])
        lines.append(f"| {paper} | " + " | ".join(str(c[k]) for k in columns) + " |")
    lines.append("")
    for paper in papers:
        lines += [f"## {paper}", "",
                  "| artifact | target | kind | status | paper | reproduced | tolerance | tier | reason |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in records if r.paper == paper):
            lines.append("| " + " | ".join(_cell(x) for x in (
                r.artifact, r.target, r.kind, f"**{r.status}**" if r.status == "fail" else r.status,
                r.paper_value, r.value, r.tolerance, r.tier, r.reason)) + " |")
        lines.append("")
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_check(results_dir: Path, targets_path: Path, out_dir: Path) -> int:
    """Write ``scorecard.{json,md}`` under ``out_dir``; return the number of failed targets."""
    from repalign.experiments import ARTIFACTS

    records = scorecard(load_targets(targets_path), results_dir, set(ARTIFACTS))
    _write(Path(out_dir) / "scorecard.json", json.dumps([asdict(r) for r in records], indent=1))
    _write(Path(out_dir) / "scorecard.md", render_markdown(records))
    summary = counts(records)
    print(f"scorecard: {out_dir}/scorecard.md  " + "  ".join(f"{k.replace(' ', '_')}={v}" for k, v in summary.items()))
    failed = [r for r in records if r.status == "fail"]
    for r in failed:
        print(f"  FAIL {r.paper}/{r.artifact}/{r.target} ({r.kind}): {r.reason or r.value}")
    return len(failed)
