"""Claims, tolerances and scorecard statuses."""

import json

import pytest

from repalign.errors import RepalignError
from repalign.targets import eval_claim, evaluate_target, parse_claim, scorecard


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
    from repalign.targets import counts, render_markdown

    targets = {"p": {"artifacts": {"fig1": {"targets": [
        {"id": "claim", "claim": "a > b"},
        {"id": "by_construction", "kind": "sanity", "claim": "b < 2"},
        {"id": "broken", "kind": "sanity", "claim": "a < b"},
    ]}}}}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "fig1.json").write_text(json.dumps(result(tier="quick", a=2.0, b=1.0)))
    records = scorecard(targets, tmp_path, {("p", "fig1")})
    assert [r.kind for r in records] == ["reproduction", "sanity", "sanity"]
    c = counts(records)
    assert (c["reproduction pass"], c["reproduction fail"], c["sanity pass"], c["sanity fail"]) == (1, 0, 1, 1)
    assert "sanity pass" in render_markdown(records)


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
