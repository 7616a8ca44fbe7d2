"""Claims, tolerances and scorecard statuses."""

import json
from pathlib import Path

import pytest
import yaml

from repalign.errors import RepalignError
from repalign.scorecard_text import render_markdown, summarize
from repalign.targets import (eval_claim, evaluate_target, load_targets, parse_claim, read_yaml, refresh_scorecard,
                              scorecard)


def result(tier="quick", **metrics):
    return {"paper": "p", "artifact": "fig1", "status": "ok", "tier": tier, "metrics": metrics}


def test_claim_names_are_maximal_dotted_metric_names():
    _, names = parse_claim("a.b.c > abs(x.y) and min(a.b.d, 2) < 3 * q")
    assert names == ["a.b.c", "x.y", "a.b.d", "q"]


@pytest.mark.parametrize("bad", ["__import__('os')", "a[0] > 1", "(lambda: 1)()", "a.b > 'x'",
                                 "f(a) > 1", "a if b else c"])
def test_claims_outside_the_small_language_are_rejected(bad):
    with pytest.raises(RepalignError):
        parse_claim(bad)


def test_chained_comparisons_and_arithmetic():
    m = {"l.a": 1.0, "l.b": 2.0, "l.c": 3.0}
    assert eval_claim("l.a < l.b < l.c", m)
    assert not eval_claim("l.a < l.c < l.b", m)
    assert eval_claim("l.c - l.a > l.b - l.a and not l.a > l.b", m)
    assert eval_claim("abs(l.a - l.c) / 2 == 1", m)


def test_numeric_target_abs_and_rel_tolerance():
    t = {"id": "s", "metric": "sigma", "paper_value": 10.0, "tolerance": {"quick": 0.5}}
    assert evaluate_target("p", "fig1", t, result(sigma=10.4)).status == "pass"
    assert evaluate_target("p", "fig1", t, result(sigma=10.6)).status == "fail"
    rel = {**t, "tolerance_kind": "rel", "tolerance": {"quick": 0.1}}
    assert evaluate_target("p", "fig1", rel, result(sigma=10.9)).status == "pass"
    assert evaluate_target("p", "fig1", rel, result(sigma=11.1)).status == "fail"
    assert evaluate_target("p", "fig1", t, result(tier="smoke", sigma=99.0)).status == "not_run"


def test_missing_or_nan_metric_fails_at_every_tier():
    claim = {"id": "c", "claim": "a > b"}
    for tier in ("smoke", "quick"):
        rec = evaluate_target("p", "fig1", claim, result(tier=tier, a=1.0))
        assert rec.status == "fail" and "b is missing" in rec.reason
        rec = evaluate_target("p", "fig1", claim, result(tier=tier, a=1.0, b=None))
        assert rec.status == "fail"


def test_claim_tiers_decide_where_a_claim_is_evaluated():
    claim = {"id": "c", "claim": "a > b"}
    assert evaluate_target("p", "fig1", claim, result(tier="smoke", a=0.0, b=1.0)).status == "not_run"
    assert evaluate_target("p", "fig1", claim, result(tier="quick", a=0.0, b=1.0)).status == "fail"
    assert evaluate_target("p", "fig1", claim, result(tier="quick", a=2.0, b=1.0)).status == "pass"
    smoke_too = {**claim, "tiers": ["smoke"]}
    assert evaluate_target("p", "fig1", smoke_too, result(tier="smoke", a=0.0, b=1.0)).status == "fail"


def test_scorecard_statuses(tmp_path):
    targets = {"p": {"artifacts": {
        "fig1": {"targets": [{"id": "c", "claim": "a > b"}]},
        "fig2": {"targets": [{"id": "c", "claim": "a > b"}]},
        "fig3": {"kind": "sketch", "targets": [], "note": "sketch"},
        "fig4": {"targets": [{"id": "v", "metric": "a", "paper_value": 1.0, "tolerance": {"quick": 1}}]},
        "fig5": {"targets": [{"id": "c", "claim": "a > b"}]},
    }}}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "fig1.json").write_text(json.dumps(result(a=2.0, b=1.0)))
    (tmp_path / "p" / "fig5.json").write_text(json.dumps(
        {**result(), "status": "not_run", "reason": "dataset 'kmnist' not found"}))
    records = {r.artifact: r for r in scorecard(targets, tmp_path, {("p", "fig1"), ("p", "fig2"), ("p", "fig5")})}
    assert records["fig1"].status == "pass"
    assert records["fig2"].status == "not_run" and "snakemake p_fig2" in records["fig2"].reason
    assert records["fig3"].status == "not_run"
    assert records["fig4"].status == "not_implemented"
    assert records["fig5"].status == "not_run" and "kmnist" in records["fig5"].reason


def test_metrics_a_result_declares_not_run_give_not_run_with_the_reason():
    claim = {"id": "c", "claim": "a.ct > b.ct"}
    record = {**result(a=1.0), "not_run_metrics": {"a.ct": "dataset 'ct_slice' not found", "b.ct": "dataset 'ct_slice' not found"}}
    rec = evaluate_target("p", "fig1", claim, record)
    assert rec.status == "not_run" and "ct_slice" in rec.reason
    # a metric missing without a declared reason still fails
    partly = {**result(a=1.0), "not_run_metrics": {"a.ct": "x"}}
    assert evaluate_target("p", "fig1", claim, partly).status == "fail"


def test_sanity_checks_are_counted_apart_from_reproduction_targets(tmp_path):
    targets = {"p": {"artifacts": {"fig1": {"targets": [
        {"id": "claim", "claim": "a > b"},
        {"id": "by_construction", "kind": "sanity", "claim": "b < 2"},
        {"id": "broken", "kind": "sanity", "claim": "a < b"},
    ]}}}}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "fig1.json").write_text(json.dumps(result(tier="quick", a=2.0, b=1.0)))
    records = scorecard(targets, tmp_path, {("p", "fig1")})
    assert [r.kind for r in records] == ["reproduction", "sanity", "sanity"]
    summary = summarize(records)
    assert summary.evaluated == {"reproduction": {"evaluated": 1, "pass": 1, "fail": 0},
                                 "sanity": {"evaluated": 2, "pass": 1, "fail": 1}}
    text = render_markdown(records, summary)
    assert "| reproduction targets (the paper's claims and numbers) | 1 | 1 | 0 |" in text
    assert "| sanity checks (hold by construction; not evidence) | 2 | 1 | 1 |" in text


def test_sanity_claims_are_evaluated_at_every_tier_unless_their_tiers_say_otherwise():
    sanity = {"id": "s", "kind": "sanity", "claim": "a > b"}
    for tier in ("smoke", "quick", "paper"):
        assert evaluate_target("p", "fig1", sanity, result(tier=tier, a=0.0, b=1.0)).status == "fail"
    only_paper = {**sanity, "tiers": ["paper"]}
    assert evaluate_target("p", "fig1", only_paper, result(tier="smoke", a=0.0, b=1.0)).status == "not_run"
    # a reproduction claim still waits for quick
    assert evaluate_target("p", "fig1", {"id": "c", "claim": "a > b"}, result(tier="smoke", a=0.0, b=1.0)).status == "not_run"


def test_an_unknown_target_kind_is_an_error_naming_the_target(tmp_path):
    from repalign.targets import load_targets

    path = tmp_path / "t.yaml"
    path.write_text("p:\n  artifacts:\n    fig1:\n      targets:\n        - {id: x, kind: sanitty, claim: 'a > b'}\n")
    with pytest.raises(RepalignError, match=r"p/fig1/x: kind must be one of reproduction, sanity"):
        load_targets(path)


PATHS_REASON = "dataset 'kmnist' not found. Paths tried:\n  - /d/kmnist/a.gz\n  - /d/kmnist/b.gz\nTo obtain it: download"


def _mixed_scorecard(tmp_path):
    """One artifact per not_run case, plus a pass and a fail, at the smoke tier."""
    targets = {"p": {"artifacts": {
        "fig1": {"targets": [{"id": "claim", "claim": "a > b"},
                             {"id": "exact", "metric": "a", "paper_value": 2.0, "tolerance": {"smoke": 0.1}},
                             {"id": "wide", "metric": "b", "paper_value": 1.0, "tolerance": {"quick": 0.5}},
                             {"id": "off", "metric": "b", "paper_value": 5.0, "tolerance": {"smoke": 0.5}}]},
        "fig2": {"targets": [{"id": "c1", "claim": "a > b"}, {"id": "c2", "claim": "a < b"}]},
        "fig3": {"targets": [{"id": "c", "claim": "a > b"}]},
        "fig4": {"kind": "sketch", "targets": [], "note": "a sketch"},
        "fig5": {"targets": [{"id": "c", "claim": "a > b"}]},
    }}}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "fig1.json").write_text(json.dumps(result(tier="smoke", a=2.0, b=1.0)))
    (tmp_path / "p" / "fig2.json").write_text(json.dumps(
        {**result(tier="smoke"), "status": "not_run", "reason": PATHS_REASON}))
    records = scorecard(targets, tmp_path, {("p", f"fig{i}") for i in (1, 2, 3)})
    return {(r.artifact, r.target): r for r in records}, records


def test_each_not_run_case_has_its_own_why(tmp_path):
    by_id, _ = _mixed_scorecard(tmp_path)
    assert (by_id["fig1", "claim"].status, by_id["fig1", "claim"].why) == ("not_run", "tier")
    assert (by_id["fig1", "exact"].status, by_id["fig1", "exact"].why) == ("pass", None)
    assert (by_id["fig1", "wide"].status, by_id["fig1", "wide"].why) == ("not_run", "no_tolerance")
    assert by_id["fig1", "off"].status == "fail"
    assert by_id["fig2", "c1"].why == by_id["fig2", "c2"].why == "missing_data"
    assert by_id["fig3", "c"].why == "no_result"
    assert by_id["fig4", "-"].why == "no_target"
    assert by_id["fig5", "c"].status == "not_implemented" and by_id["fig5", "c"].why is None
    assert by_id["fig1", "claim"].evaluated_at == ["quick", "paper"]
    assert by_id["fig1", "wide"].evaluated_at == ["quick"]


def test_a_declared_not_run_metric_is_missing_data():
    record = {**result(tier="quick", b=1.0), "not_run_metrics": {"a": PATHS_REASON}}
    rec = evaluate_target("p", "fig1", {"id": "c", "claim": "a > b"}, record)
    assert (rec.status, rec.why) == ("not_run", "missing_data") and "/d/kmnist/b.gz" in rec.reason


def test_markdown_cells_are_one_line_and_each_reason_is_one_footnote(tmp_path):
    _, records = _mixed_scorecard(tmp_path)
    text = render_markdown(records, summarize(records))
    rows = [line for line in text.splitlines() if line.startswith("| fig")]
    assert len(rows) == len(records)
    assert all(line.replace("\\|", "").count("|") == 10 for line in rows), rows  # 9 cells each
    # the path-list reason of fig2's two targets: one footnote, cited twice, on one line
    flat = "dataset 'kmnist' not found. Paths tried: /d/kmnist/a.gz; /d/kmnist/b.gz. To obtain it: download"
    notes = [line for line in text.splitlines() if line.startswith("[^")]
    assert [n for n in notes if n.endswith(flat)] == [n for n in notes if "kmnist" in n]
    number = next(n for n in notes if "kmnist" in n).split("]")[0] + "]"
    assert sum(row.endswith(f" {number} |") for row in rows) == 2
    assert len(notes) == len({n.split(": ", 1)[1] for n in notes})  # each distinct reason once


def test_the_header_gives_tier_counts_why_and_next_step_with_an_estimate(tmp_path):
    _, records = _mixed_scorecard(tmp_path)
    asked = []

    def declared(tier, artifacts):
        asked.append((tier, artifacts))
        return 25

    summary = summarize(records, declared)
    text = render_markdown(records, summary)
    head = text.split("## Per paper")[0]
    assert "Tier: **smoke**" in head and "sanity checks" in head
    assert "| reproduction targets (the paper's claims and numbers) | 2 | 1 | 1 |" in head
    assert "2 a dataset is missing (`missing_data`)" in head
    assert "1 evaluated at another tier (`tier`)" in head
    assert "1 no tolerance at this tier (value recorded) (`no_tolerance`)" in head
    assert "1 no result yet (`no_result`)" in head
    assert "Missing data: kmnist" in head
    assert asked == [("quick", ["p/fig1"])]
    assert "`snakemake --cores all --config tier=quick` on one GPU evaluates 2 more targets of 1 artifact." in head
    assert "sum to 25 min" in head and "about 10 min per figure" in head


def test_declared_minutes_sum_the_artifact_and_the_models_it_needs():
    from repalign.experiments import ARTIFACTS, MODELS
    from repalign.targets import declared_minutes

    step = ARTIFACTS[("imani2022", "fig10")]
    expected = step.resources["quick"].runtime_min + sum(
        MODELS[("imani2022", m)].resources["quick"].runtime_min for m in step.needs)
    assert step.needs and declared_minutes("quick", ["imani2022/fig10"]) == expected
    # a model shared by two artifacts counts once
    both = declared_minutes("quick", ["imani2022/fig10", "imani2022/fig11"])
    assert both == expected + ARTIFACTS[("imani2022", "fig11")].resources["quick"].runtime_min


def test_refresh_rewrites_a_scorecard_older_than_a_result(tmp_path):
    import os

    targets = tmp_path / "t.yaml"
    targets.write_text("imani2022:\n  artifacts:\n    fig10:\n      targets:\n        - {id: c, claim: 'a > b'}\n")
    results, out = tmp_path / "results", tmp_path / "reports"
    assert refresh_scorecard(results, targets, out, tmp_path / "figures") == "No results yet, so no scorecard."
    (results / "imani2022").mkdir(parents=True)
    path = results / "imani2022" / "fig10.json"
    path.write_text(json.dumps({**result(tier="quick", a=2.0, b=1.0), "paper": "imani2022", "artifact": "fig10"}))
    message = refresh_scorecard(results, targets, out, tmp_path / "figures")
    assert message.startswith("Scorecard written for the 1 result(s) present") and (out / "scorecard.html").exists()
    assert json.loads((out / "scorecard.json").read_text())[0]["status"] == "pass"
    assert refresh_scorecard(results, targets, out, tmp_path / "figures").startswith("Scorecard (current)")
    # a newer result (a later one-figure run) makes it stale again
    path.write_text(json.dumps({**result(tier="quick", a=0.0, b=1.0), "paper": "imani2022", "artifact": "fig10"}))
    later = (out / "scorecard.json").stat().st_mtime + 5
    os.utime(path, (later, later))
    assert refresh_scorecard(results, targets, out, tmp_path / "figures").startswith(
        f"Scorecard updated for the 1 result(s) newer than it (latest {path})")
    assert json.loads((out / "scorecard.json").read_text())[0]["status"] == "fail"


def test_with_results_of_two_tiers_each_waits_for_the_tier_after_its_own(tmp_path):
    targets = {"p": {"artifacts": {f"fig{i}": {"targets": [{"id": "c", "claim": "a > b"}]} for i in (1, 2)}}}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "fig1.json").write_text(json.dumps(result(tier="smoke", a=2.0, b=1.0)))
    (tmp_path / "p" / "fig2.json").write_text(json.dumps({**result(tier="quick", a=2.0, b=1.0), "artifact": "fig2"}))
    paper_only = {**targets["p"]["artifacts"]["fig2"]["targets"][0], "tiers": ["paper"]}
    targets["p"]["artifacts"]["fig2"]["targets"].append({**paper_only, "id": "late"})
    summary = summarize(scorecard(targets, tmp_path, {("p", "fig1"), ("p", "fig2")}))
    assert summary.tier == "quick" and summary.tiers == {"smoke": 1, "quick": 1}
    assert [(s.tier, s.artifacts) for s in summary.next_steps] == [("quick", ["p/fig1"]), ("paper", ["p/fig2"])]
    assert "Tier: **quick** (results of several tiers: 1 at smoke, 1 at quick)" in render_markdown(
        scorecard(targets, tmp_path, {("p", "fig1"), ("p", "fig2")}), summary)


BAD_TARGETS = """\
p:
  title: P
  artifacts:
    fig1:
      title: F
      colour: red
      targets:
        - {id: parse, claim: 'a >> > b'}
        - {id: tol, metric: a, paper_value: 1.0, tolerance: {quik: 0.1}}
        - {id: typo, metric: a, paper_value: 1.0, tolerance: {quick: 0.1}, tolerence_kind: rel}
        - {id: typo, claim: 'a > b', tiers: [smok]}
"""


def test_every_targets_file_problem_is_named_by_paper_artifact_and_target(tmp_path):
    from repalign.targets import load_targets

    path = tmp_path / "t.yaml"
    path.write_text(BAD_TARGETS)
    with pytest.raises(RepalignError) as info:
        load_targets(path)
    msg = str(info.value)
    assert msg.startswith(f"6 problem(s) in {path}")
    assert f"{path}: p/fig1: unknown artifact key 'colour'" in msg
    assert f"{path}: p/fig1/parse: claim 'a >> > b' is not a valid expression" in msg
    assert f"{path}: p/fig1/tol: tolerance for 'quik', which is not a tier (use smoke, quick, paper)" in msg
    assert f"{path}: p/fig1/typo: unknown target key 'tolerence_kind'" in msg
    assert f"{path}: p/fig1/typo: target id used 2 times" in msg
    assert "p/fig1/typo: tiers ['smok'] are not tiers" in msg


def _validate_cli(tmp_path, targets_text, results=None):
    from repalign.cli import main

    path = tmp_path / "t.yaml"
    path.write_text(targets_text)
    argv = ["check", "--validate-only", "--targets", str(path), "--results", str(tmp_path / "results")]
    return main(argv)


def test_validate_only_exits_non_zero_and_writes_no_scorecard(tmp_path, capsys):
    assert _validate_cli(tmp_path, BAD_TARGETS) == 1
    out = capsys.readouterr().out
    assert "INVALID 6 problem(s)" in out and "p/fig1/parse" in out
    assert not (tmp_path / "reports").exists() and not list(tmp_path.glob("scorecard*"))
    assert _validate_cli(tmp_path, "p:\n  artifacts:\n    fig1:\n      targets:\n"
                                   "        - {id: c, claim: 'a > b'}\n") == 0
    # an artifact without a step is the papers' inventory (scored not_implemented): counted, not an error
    assert "0 problem(s); 1 artifacts have no step yet (not_implemented)" in capsys.readouterr().out


def test_validate_only_names_a_metric_the_artifacts_result_never_writes(tmp_path, capsys):
    (tmp_path / "results" / "p").mkdir(parents=True)
    (tmp_path / "results" / "p" / "fig1.json").write_text(json.dumps(
        {**result(tier="smoke", accuracy=0.9, loss=0.1), "not_run_metrics": {"kmnist.acc": "missing"}}))
    text = ("p:\n  artifacts:\n    fig1:\n      targets:\n"
            "        - {id: ok, claim: 'accuracy > loss and kmnist.acc > 0'}\n"
            "        - {id: bad, claim: 'acuracy > loss'}\n")
    assert _validate_cli(tmp_path, text) == 1
    out = capsys.readouterr().out
    assert "p/fig1/bad: metric 'acuracy' is not written by p/fig1" in out and "did you mean 'accuracy'" in out
    assert "p/fig1/ok" not in out


def test_a_result_of_another_schema_version_is_a_fail_with_the_fix_never_a_score(tmp_path):
    from repalign.results import SCHEMA_VERSION, read_result, write_result

    path = tmp_path / "p" / "fig1.json"
    write_result(path, result(a=2.0, b=1.0), {})
    assert read_result(path)["schema_version"] == SCHEMA_VERSION
    targets = {"p": {"artifacts": {"fig1": {"targets": [{"id": "c", "claim": "a > b"}]}}}}
    assert scorecard(targets, tmp_path, {("p", "fig1")})[0].status == "pass"
    for version, age in ((SCHEMA_VERSION - 1, "an older"), (SCHEMA_VERSION + 1, "another")):
        path.write_text(json.dumps({**result(a=2.0, b=1.0), "schema_version": version}))
        with pytest.raises(RepalignError, match=rf"{path} has schema_version {version}, written by {age} "
                                                rf"version.*Re-run its rule: snakemake --forcerun {path}"):
            read_result(path)
        (rec,) = scorecard(targets, tmp_path, {("p", "fig1")})
        assert rec.status == "fail" and rec.value is None and f"schema_version {version}" in rec.reason


def test_read_yaml_gives_safe_loads_document_and_its_error_quotes_the_bad_line(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "paper_targets.yaml").read_text()
    assert read_yaml(text) == yaml.safe_load(text)
    bad = tmp_path / "targets.yaml"
    bad.write_text("lou2022:\n  artifacts: [fig1, fig2\n  title: x\n")
    with pytest.raises(RepalignError, match=r"(?s)line 3.*\^"):  # the pure-Python parser's caret under the line
        load_targets(bad)
