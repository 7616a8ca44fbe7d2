"""paper_targets.yaml -> scorecard: every target of every artifact, with a status.

Statuses: ``pass``, ``fail``, ``not_run`` and ``not_implemented`` (the artifact has no
experiment yet). A ``not_run`` record says why (``Record.why``, one of WHYS): the data is
missing (``missing_data``; ``upstream`` for a model that could not be trained), the claim is
evaluated at another tier (``tier``), a number has no tolerance at this tier
(``no_tolerance``), there is no result yet (``no_result``), or the artifact has nothing to
check (``no_target``). A metric a target names that is missing from a result, or is
NaN/inf, is a ``fail`` at every tier: that is what the smoke tier checks. So is every
target of an artifact whose last run, or the training of a model it needs, diverged (the
runner's ``<out>.failed`` marker; the reason is that run's error).

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
import difflib
import json
import math
import operator
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from repalign.errors import RepalignError
from repalign.experiments.registry import TIERS
from repalign.results import read_result

KINDS = ("reproduction", "sanity")
DEFAULT_CLAIM_TIERS = {"reproduction": ("quick", "paper"), "sanity": ("smoke", "quick", "paper")}
_FUNCTIONS = {"abs": abs, "min": min, "max": max}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
            ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Compare, ast.Lt, ast.LtE, ast.Gt,
            ast.GtE, ast.Eq, ast.NotEq, ast.Name, ast.Attribute, ast.Constant, ast.Call, ast.Load)


# Why a target is not_run (the record's ``why``).
WHYS = {
    "missing_data": "a dataset is missing",
    "upstream": "a model it needs was not trained",
    "tier": "evaluated at another tier",
    "no_tolerance": "no tolerance at this tier (value recorded)",
    "no_result": "no result yet",
    "no_target": "nothing to check (a sketch, or no checkable number)",
}


@dataclass
class Record:
    """One target's line of the scorecard. ``why`` (one of WHYS) says why it is not_run;
    ``tier`` is the tier of the result it was scored on, ``evaluated_at`` the tiers that compare it."""

    paper: str
    artifact: str
    target: str
    kind: str
    status: str
    why: str | None
    paper_value: Any
    value: Any
    tolerance: Any
    tier: str | None
    evaluated_at: list[str]
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

PAPER_KEYS = {"title", "artifacts"}
ARTIFACT_KEYS = {"title", "kind", "data", "targets", "tier_note", "companion_of", "note"}
TARGET_KEYS = {"id", "source", "metric", "paper_value", "tolerance", "tolerance_kind", "claim",
               "tiers", "kind"}


def _unknown(keys, allowed: set, what: str) -> list[str]:
    return [f"unknown {what} key '{k}' (allowed: {', '.join(sorted(allowed))})"
            for k in keys if k not in allowed]


def _target_errors(t: dict) -> list[str]:
    """What is wrong with one target (without where it is)."""
    errors = _unknown(t, TARGET_KEYS, "target")
    if ("metric" in t) == ("claim" in t):
        errors.append("a target needs exactly one of 'metric' or 'claim'")
    if t.get("kind", "reproduction") not in KINDS:
        errors.append(f"kind must be one of {', '.join(KINDS)}, not {t['kind']!r}")
    if "claim" in t:
        try:
            parse_claim(str(t["claim"]))
        except RepalignError as exc:
            errors.append(str(exc))
        bad = [x for x in t.get("tiers") or [] if x not in TIERS]
        if bad:
            errors.append(f"tiers {bad} are not tiers (use {', '.join(TIERS)})")
    elif "metric" in t:
        if t.get("tolerance_kind", "abs") not in ("abs", "rel"):
            errors.append("tolerance_kind must be abs or rel")
        tol = t.get("tolerance") or {}
        if not isinstance(tol, dict):
            errors.append(f"tolerance must map tiers ({', '.join(TIERS)}) to numbers, not {tol!r}")
            tol = {}
        for tier, value in tol.items():
            if tier not in TIERS:
                errors.append(f"tolerance for '{tier}', which is not a tier (use {', '.join(TIERS)})")
            elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                errors.append(f"tolerance at the {tier} tier must be a number >= 0, not {value!r}")
        value = t.get("paper_value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"a metric target needs a numeric paper_value, not {value!r}")
    return errors


def targets_errors(doc, path) -> list[str]:
    """Every problem of a ``paper_targets.yaml`` document, each prefixed ``path: paper/artifact/id``."""
    if not isinstance(doc, dict):
        return [f"{path}: expected a mapping of papers, got {type(doc).__name__}"]
    errors = []
    for paper, entry in doc.items():
        entry = entry or {}
        errors += [f"{path}: {paper}: {e}" for e in _unknown(entry, PAPER_KEYS, "paper")]
        for art_id, art in (entry.get("artifacts") or {}).items():
            art = art or {}
            errors += [f"{path}: {paper}/{art_id}: {e}" for e in _unknown(art, ARTIFACT_KEYS, "artifact")]
            ids = [t.get("id") for t in art.get("targets") or []]
            errors += [f"{path}: {paper}/{art_id}/{i}: target id used {ids.count(i)} times"
                       for i in sorted({i for i in ids if ids.count(i) > 1}, key=str)]
            for t in art.get("targets") or []:
                errors += [f"{path}: {paper}/{art_id}/{t.get('id')}: {e}" for e in _target_errors(t)]
    return errors


def read_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed by libyaml where PyYAML has it: about 10x faster on
    paper_targets.yaml (0.07 s instead of 0.6 s, paid by every snakemake invocation, scorecard
    and test module that reads it). A document it rejects is parsed again by the pure-Python
    parser, whose error quotes the offending line."""
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return yaml.safe_load(text)


def load_targets(path: Path) -> dict:
    """Load and check ``paper_targets.yaml``; the error lists every problem, each naming the
    paper, artifact and target id (see :func:`targets_errors`)."""
    try:
        doc = read_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RepalignError(f"cannot read targets file {path}: {exc}") from exc
    errors = targets_errors(doc, path)
    if errors:
        raise RepalignError(f"{len(errors)} problem(s) in {path}; fix them before running:\n  - "
                            + "\n  - ".join(errors))
    return doc


def target_names(t: dict) -> list[str]:
    """The metric names a target reads."""
    return parse_claim(t["claim"])[1] if "claim" in t else [t["metric"]]


def metric_errors(targets: dict, results_dir: Path, path) -> list[str]:
    """Targets naming a metric that the artifact's existing ``ok`` result (any tier) neither
    writes nor declares not run: a typo, or a metric the experiment never computes."""
    errors = []
    for paper, entry in targets.items():
        for art_id, art in (entry.get("artifacts") or {}).items():
            file = Path(results_dir) / paper / f"{art_id}.json"
            try:
                result = read_result(file) if file.is_file() else None
            except RepalignError as exc:
                errors.append(str(exc))
                continue
            if not result or result["status"] != "ok":
                continue
            written = set(result.get("metrics") or {}) | set(result.get("not_run_metrics") or {})
            for t in art.get("targets") or []:
                for name in target_names(t):
                    if name not in written:
                        close = difflib.get_close_matches(name, sorted(written), n=1)
                        errors.append(f"{path}: {paper}/{art_id}/{t['id']}: metric '{name}' is not "
                                      f"written by {paper}/{art_id} (its result {file})"
                                      + (f"; did you mean '{close[0]}'?" if close else ""))
    return errors


def validate_only(targets_path: Path, results_dir: Path | None, implemented: set) -> int:
    """``python -m repalign check --validate-only``: print every problem; return their number.

    Artifacts with targets but no registered step are counted, not errors: they are the
    papers' inventory, scored ``not_implemented``."""
    try:
        doc = load_targets(targets_path)
    except RepalignError as exc:
        print(f"INVALID {exc}")
        return max(1, str(exc).count("\n  - "))
    errors = metric_errors(doc, results_dir, targets_path) if results_dir is not None else []
    for e in errors:
        print(f"INVALID {e}")
    no_step = [(p, a) for p, e in doc.items() for a in (e.get("artifacts") or {}) if (p, a) not in implemented]
    n = sum(len(a.get("targets") or []) for e in doc.values() for a in (e.get("artifacts") or {}).values())
    print(f"{targets_path}: {len(doc)} papers, {n} targets: {len(errors)} problem(s); "
          f"{len(no_step)} artifacts have no step yet (not_implemented)")
    return len(errors)


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


def evaluated_at(t: dict) -> tuple[str, ...]:
    """The tiers where a target is compared: a claim's tiers, a number's tolerance tiers."""
    if "claim" in t:
        return claim_tiers(t)
    return tuple(tier for tier in TIERS if tier in (t.get("tolerance") or {}))


def _record(paper: str, art_id: str, t: dict, status: str, tier=None, why=None, reason=None) -> Record:
    return Record(paper=paper, artifact=art_id, target=t["id"], kind=target_kind(t), status=status,
                  why=why, paper_value=t.get("claim", t.get("paper_value")), value=None,
                  tolerance=None, tier=tier, evaluated_at=list(evaluated_at(t)), reason=reason)


def _tolerance_text(t: dict, tier: str) -> str | None:
    tol = (t.get("tolerance") or {}).get(tier)
    return None if tol is None else f"±{tol}{' (relative)' if t.get('tolerance_kind') == 'rel' else ''}"


def evaluate_target(paper: str, art_id: str, t: dict, result: dict) -> Record:
    """Score one target against one ``ok`` result (see the module docstring for the statuses)."""
    tier = result["tier"]
    metrics = result.get("metrics") or {}
    rec = _record(paper, art_id, t, "fail", tier)
    declared = result.get("not_run_metrics") or {}
    names = target_names(t)
    absent = [n for n in names if n not in metrics]
    if absent and all(n in declared for n in absent):
        rec.status, rec.why = "not_run", "missing_data"
        rec.reason = "; ".join(dict.fromkeys(declared[n] for n in absent))
        return rec
    values, problem = _metric_values(names, metrics)
    if "claim" in t:
        rec.value = values
        if problem:
            rec.reason = problem
        elif tier not in claim_tiers(t):
            rec.status, rec.why = "not_run", "tier"
            rec.reason = (f"claim evaluated at the {', '.join(claim_tiers(t))} tier; "
                          "here its metrics exist and are finite")
        else:
            rec.status = "pass" if eval_claim(t["claim"], values) else "fail"
        return rec
    rec.value = values.get(t["metric"])
    rec.tolerance = _tolerance_text(t, tier)
    tol = (t.get("tolerance") or {}).get(tier)
    if problem:
        rec.reason = problem
    elif tol is None:
        rec.status, rec.why = "not_run", "no_tolerance"
        rec.reason = f"no tolerance at the {tier} tier (evaluated at {', '.join(evaluated_at(t))}); value recorded"
    else:
        bound = tol * abs(rec.paper_value) if t.get("tolerance_kind") == "rel" else tol
        rec.status = "pass" if abs(rec.value - rec.paper_value) <= bound else "fail"
        if rec.status == "fail":
            rec.reason = f"|{rec.value:.4g} - {rec.paper_value}| > {bound:.4g}"
    return rec


def _why_result_not_run(result: dict) -> str:
    """A ``not_run`` result: a missing dataset (the runner's reason), or an untrained upstream model."""
    return "upstream" if result.get("why") == "upstream" else "missing_data"


def _failure(results_dir: Path, paper: str, art_id: str, models: tuple[str, ...]) -> str | None:
    """The error of the artifact's last run, or of a model it needs, if that run diverged
    (the runner's ``<out>.failed`` marker, see :func:`repalign.runner.failure_marker`)."""
    markers = [Path(results_dir) / paper / f"{art_id}.json.failed"]
    markers += [Path(results_dir) / paper / "models" / f"{m}.pt.failed" for m in models]
    for marker in markers:
        if marker.is_file():
            return f"the last run failed ({marker}): {marker.read_text().strip()}"
    return None


def scorecard(targets: dict, results_dir: Path, implemented: set[tuple[str, str]],
              needs: dict[tuple[str, str], tuple[str, ...]] | None = None) -> list[Record]:
    """One record per target of every artifact (one per artifact that has no target).

    ``needs`` maps an artifact to the models it trains on; a failed run of either (a diverged
    training) makes its targets ``fail`` with that run's error, whatever result is present.
    """
    records = []
    for paper, entry in targets.items():
        for art_id, art in (entry.get("artifacts") or {}).items():
            tlist = art.get("targets") or []
            path = Path(results_dir) / paper / f"{art_id}.json"
            if not tlist:
                placeholder = {"id": "-"}
                if (paper, art_id) in implemented or art.get("kind") == "sketch":
                    records.append(_record(paper, art_id, placeholder, "not_run", why="no_target",
                                           reason=art.get("note") or "no checkable target"))
                else:
                    records.append(_record(paper, art_id, placeholder, "not_implemented",
                                           reason="no experiment yet"))
            elif (paper, art_id) not in implemented:
                records += [_record(paper, art_id, t, "not_implemented", reason="no experiment yet")
                            for t in tlist]
            elif failure := _failure(results_dir, paper, art_id, (needs or {}).get((paper, art_id), ())):
                records += [_record(paper, art_id, t, "fail", reason=failure) for t in tlist]
            elif not path.exists():
                records += [_record(paper, art_id, t, "not_run", why="no_result",
                                    reason=f"no result yet: run `snakemake {paper}_{art_id}`") for t in tlist]
            else:
                try:
                    result = read_result(path)
                except RepalignError as exc:  # corrupt, or another schema_version: never scored
                    records += [_record(paper, art_id, t, "fail", reason=str(exc)) for t in tlist]
                    continue
                if result["status"] != "ok":
                    records += [_record(paper, art_id, t, "not_run", result["tier"], _why_result_not_run(result),
                                        result.get("reason")) for t in tlist]
                else:
                    records += [evaluate_target(paper, art_id, t, result) for t in tlist]
    return records


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def declared_minutes(tier: str, artifacts: list[str]) -> int:
    """Sum of the declared ``runtime_min`` at ``tier`` of these artifacts and the models they need."""
    from repalign.experiments import ARTIFACTS, MODELS

    steps = {}
    for name in artifacts:
        paper, art = name.split("/")
        step = ARTIFACTS[(paper, art)]
        steps[(paper, art, "artifact")] = step
        steps.update({(paper, m, "model"): MODELS[(paper, m)] for m in step.needs})
    return sum(step.resources[tier].runtime_min for step in steps.values())


def run_check(results_dir: Path, targets_path: Path, out_dir: Path, figures_dir: Path = Path("figures")) -> int:
    """Write ``scorecard.{json,md,html}`` under ``out_dir``; return the number of failed targets."""
    from repalign.experiments import ARTIFACTS
    from repalign.scorecard_html import render_html
    from repalign.scorecard_text import render_markdown, summarize

    targets = load_targets(targets_path)
    records = scorecard(targets, results_dir, set(ARTIFACTS), {k: tuple(s.needs) for k, s in ARTIFACTS.items()})
    summary = summarize(records, declared_minutes)
    _write(Path(out_dir) / "scorecard.md", render_markdown(records, summary))
    _write(Path(out_dir) / "scorecard.html", render_html(records, summary, targets, Path(figures_dir)))
    # last: its time stamp says which results the scorecard has seen (results_newer_than_scorecard)
    _write(Path(out_dir) / "scorecard.json", json.dumps([asdict(r) for r in records], indent=1))
    e = summary.evaluated
    print(f"scorecard: {out_dir}/scorecard.md and .html  tier={summary.tier}  "
          f"reproduction pass={e['reproduction']['pass']} fail={e['reproduction']['fail']}  "
          f"sanity pass={e['sanity']['pass']} fail={e['sanity']['fail']}  "
          f"not_run={sum(summary.not_run.values())} not_implemented={summary.not_implemented}")
    failed = [r for r in records if r.status == "fail"]
    for r in failed:
        why = r.reason or f"'{r.paper_value}' is false with " + ", ".join(f"{k}={v:.4g}" for k, v in r.value.items())
        print(f"  FAIL {r.paper}/{r.artifact}/{r.target} ({r.kind}): {why}")
    for step in summary.next_steps:
        print(f"  next: {step.text()}")
    return len(failed)


def results_newer_than_scorecard(results_dir: Path, out_dir: Path) -> list[Path]:
    """Result files written after ``out_dir/scorecard.json`` (every one when there is none), oldest first."""
    stamp = Path(out_dir) / "scorecard.json"
    since = stamp.stat().st_mtime if stamp.exists() else -math.inf
    newer = [p for p in Path(results_dir).glob("*/*.json") if p.stat().st_mtime > since]
    return sorted(newer, key=lambda p: p.stat().st_mtime)


def refresh_scorecard(results_dir: Path, targets_path: Path, out_dir: Path, figures_dir: Path) -> str:
    """After a run (Snakefile ``onsuccess``): rewrite the scorecard if results are newer than it.

    A run of one figure (``snakemake imani2022_fig10``) does not include the scorecard rule;
    without this, the end message would point at a scorecard that predates the new result.
    Returns the message to print.
    """
    out = Path(out_dir)
    existed = (out / "scorecard.json").exists()
    newer = results_newer_than_scorecard(results_dir, out_dir)
    if not newer:
        return (f"Scorecard (current): {out}/scorecard.html (and .md, .json)" if existed
                else "No results yet, so no scorecard.")
    try:
        run_check(Path(results_dir), Path(targets_path), out, Path(figures_dir))
    except RepalignError as exc:
        return (f"Scorecard NOT updated ({exc}); {len(newer)} results are newer than {out}/scorecard.json. "
                "Fix that, then run `snakemake check --cores 1`.")
    what = (f"updated for the {len(newer)} result(s) newer than it (latest {newer[-1]})" if existed
            else f"written for the {len(newer)} result(s) present")
    return f"Scorecard {what}: {out}/scorecard.html (and .md, .json)"
