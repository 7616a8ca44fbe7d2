"""paper_targets.yaml: its shape, its coverage of shared/PAPERS.md, and the claim grammar.

1. Shape: paper -> title + artifacts; each artifact has a title, a valid kind, known data names and
   targets; each target has an id unique in its artifact and exactly one of ``metric`` (with
   ``paper_value``, per-tier ``tolerance`` and ``tolerance_kind``) or ``claim`` (with optional ``tiers``),
   and optionally ``kind: reproduction | sanity``.
2. Coverage: every figure and table number that PAPERS.md mentions under a ``## <key>:`` heading has
   an entry ``fig<N>`` / ``table<N>`` under that paper (plus the two unnumbered items the inventory
   names: maennel2020 ``appd1`` and lou2022 ``theory``).
3. Claims: each claim parses with ``ast`` in eval mode and uses only dotted metric names, numbers,
   comparisons, and/or/not, + - * /, abs(), min() and max().
"""

from __future__ import annotations

import ast
import copy
import keyword
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS_PATH = REPO / "paper_targets.yaml"
PAPERS_MD = Path(__file__).resolve().parents[1].parent / "shared" / "PAPERS.md"

PAPER_KEYS = {"imani2022", "maennel2020", "lou2022", "sharon2024", "canatar2022"}
TIERS = {"smoke", "quick", "paper"}
KINDS = {"figure", "table", "sketch"}
TARGET_KINDS = {"reproduction", "sanity"}  # a target's kind (default reproduction)
DATASETS = {
    "synthetic", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100",
    "office31", "imagenet", "tiny_imagenet", "ct_slice",
}
TOLERANCE_KINDS = {"abs", "rel"}
ARTIFACT_KEYS = {"title", "kind", "data", "companion_of", "tier_note", "note", "targets"}
TARGET_KEYS = {"id", "kind", "metric", "paper_value", "tolerance", "tolerance_kind", "source", "claim", "tiers"}
NUMERIC_ONLY = {"metric", "paper_value", "tolerance", "tolerance_kind"}
# Unnumbered items the inventory asks for by name (App. D.1 tables; Thms 1-2 + Cor. 1).
EXTRA_ARTIFACTS = {"maennel2020": {"appd1"}, "lou2022": {"theory"}}

ARTIFACT_ID = re.compile(r"^(?:fig|table)[1-9][0-9]*$")
SNAKE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
WEIGHTS = re.compile(r"^weights:[a-z0-9_]+$")

CLAIM_FUNCS = {"abs", "min", "max"}
CLAIM_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.Compare, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
    ast.Name, ast.Load, ast.Attribute, ast.Constant, ast.Call,
)


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def targets() -> dict:
    assert TARGETS_PATH.is_file(), f"missing {TARGETS_PATH}"
    data = yaml.safe_load(TARGETS_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "paper_targets.yaml must be a mapping of paper keys"
    return data


def _artifacts(data: dict):
    for paper, block in data.items():
        for aid, art in (block.get("artifacts") or {}).items():
            yield paper, aid, art


def _targets(data: dict):
    for paper, aid, art in _artifacts(data):
        for t in art.get("targets") or []:
            yield paper, aid, t


# --------------------------------------------------------------------------- claim grammar


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def claim_problems(claim: str) -> tuple[list[str], set[str]]:
    """Return (problems, metric names) for one claim expression."""
    try:
        tree = ast.parse(claim, mode="eval")
    except SyntaxError as exc:
        return [f"does not parse: {exc.msg}"], set()
    problems: list[str] = []
    metrics: set[str] = set()
    func_names: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, CLAIM_NODES):
            problems.append(f"node {type(node).__name__} not allowed")
            continue
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, (int, float))
        ):
            problems.append(f"constant {node.value!r} is not a number")
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in CLAIM_FUNCS):
                problems.append(f"call to {ast.unparse(node.func)} not allowed (only abs, min, max)")
            else:
                func_names.add(id(node.func))
            if node.keywords:
                problems.append("keyword arguments not allowed")
            if not node.args:
                problems.append(f"{ast.unparse(node)} has no arguments")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if _dotted(node) is None:
                problems.append(f"attribute access on a non-name: {ast.unparse(node)}")
        if isinstance(node, ast.Name) and id(node) not in func_names and node.id in CLAIM_FUNCS:
            problems.append(f"{node.id} used as a value")
    # collect outermost dotted names (an Attribute chain or a bare Name not used as a function)
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if id(node) in inner or id(node) in func_names:
            continue
        if isinstance(node, (ast.Attribute, ast.Name)):
            name = _dotted(node)
            if name is not None:
                metrics.add(name)
    if not isinstance(tree.body, (ast.Compare, ast.BoolOp)) and not (
        isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)
    ):
        problems.append("top level is not a predicate (comparison, and/or, not)")
    if not metrics:
        problems.append("references no metric")
    return problems, metrics


def metric_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return f"metric name {name!r} is not a non-empty string"
    segments = name.split(".")
    for seg in segments:
        if not SEGMENT.match(seg) or keyword.iskeyword(seg):
            return f"metric name {name!r}: segment {seg!r} is not a usable identifier"
    if segments[0] in CLAIM_FUNCS:
        return f"metric name {name!r} starts with the claim function {segments[0]!r}"
    return None


# --------------------------------------------------------------------------- PAPERS.md parsing

_REF = re.compile(
    r"\b(Fig|Figs|Figure|Figures|Table|Tables)\.?\s+"
    r"((?:\d+|[IVXLC]+)\b(?:\s*(?:,|\band\b|&|[–—-]|\bto\b)\s*(?:\d+|[IVXLC]+)\b)*)"
)
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}


def _to_int(token: str) -> int:
    if token.isdigit():
        return int(token)
    total = 0
    for a, b in zip(token, token[1:] + " "):
        v = _ROMAN[a]
        total += -v if b != " " and _ROMAN[b] > v else v
    return total


def extract_refs(text: str) -> set[str]:
    """Artifact ids (fig<N>, table<N>) for every figure / table number mentioned in ``text``."""
    refs: set[str] = set()
    for m in _REF.finditer(text):
        prefix = "fig" if m.group(1).startswith("Fig") else "table"
        for part in re.split(r"\s*(?:,|\band\b|&)\s*", m.group(2)):
            part = part.strip()
            if not part:
                continue
            rng = re.fullmatch(r"(\w+)\s*(?:[–—-]|\bto\b)\s*(\w+)", part)
            if rng:
                lo, hi = _to_int(rng.group(1)), _to_int(rng.group(2))
                assert lo <= hi, f"descending range {part!r}"
                refs.update(f"{prefix}{n}" for n in range(lo, hi + 1))
            else:
                refs.add(f"{prefix}{_to_int(part)}")
    return refs


def parse_papers_md(text: str) -> dict[str, set[str]]:
    """{paper key: referenced artifact ids} from the ``## <key>: ...`` sections of PAPERS.md."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        head = re.match(r"^##\s+([A-Za-z0-9_]+)\s*:", line)
        if head:
            current = head.group(1)
            sections[current] = []
        elif line.startswith("#"):
            current = None
        elif current is not None:
            sections[current].append(line)
    return {key: extract_refs("\n".join(lines)) for key, lines in sections.items()}


def missing_artifacts(data: dict, required: dict[str, set[str]]) -> list[str]:
    out = []
    for paper, ids in sorted(required.items()):
        have = set(((data.get(paper) or {}).get("artifacts") or {}).keys())
        out += [f"{paper}/{aid}" for aid in sorted(ids - have)]
    return out


@pytest.fixture(scope="module")
def papers_md_refs() -> dict[str, set[str]]:
    if not PAPERS_MD.is_file():
        pytest.skip(f"inventory {PAPERS_MD} not present (the repo's sibling shared/ checkout); "
                    "coverage cannot be checked here")
    return parse_papers_md(PAPERS_MD.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- tests: parser


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Fig 6 (train) and Figs 17, 18 (optimizer)", {"fig6", "fig17", "fig18"}),
        ("Figs 12–15: hyperparameter sweeps", {"fig12", "fig13", "fig14", "fig15"}),
        ("Fig 2 (and Fig 7, Figs 9, 10): FFNN", {"fig2", "fig7", "fig9", "fig10"}),
        ("Table 1, Tables 2–7 (App. E.3)", {f"table{i}" for i in range(1, 8)}),
        ("Fig 4 and Fig 20: f(σ)", {"fig4", "fig20"}),
        ("Fig 4 (and Figs 11–15, 8): the grid", {"fig4", "fig8", *{f"fig{i}" for i in range(11, 16)}}),
        ("Figs 4, 5, 6 and Fig 18: DRS", {"fig4", "fig5", "fig6", "fig18"}),
        ("Figs 1 and 2: PreAct ResNet-18", {"fig1", "fig2"}),
        ("Fig 1, Fig 2, Fig 6, Table I: a custom ResNet with 11 conv layers", {"fig1", "fig2", "fig6", "table1"}),
        ("Fig 18 and Table 4: networks of width 2048", {"fig18", "table4"}),
        ("Figs 3, 4, 5: layers 9 and 10 at epochs 0, 25 and 5,000", {"fig3", "fig4", "fig5"}),
        ("from App. Tables 1–3. Claim", {"table1", "table2", "table3"}),
        ("Figs 16-18 (hyphen)", {"fig16", "fig17", "fig18"}),
        ("Fig. 3 and Figure 9", {"fig3", "fig9"}),
        ("(Thms 1–2, Cor. 1) and Eq. 7; App. D.1 tables", set()),
    ],
)
def test_extract_refs(text, expected):
    assert extract_refs(text) == expected


def test_parse_sections_keeps_papers_apart():
    md = "# Title\n| key | x |\n## alpha: a\n- Fig 1, Figs 2–3\n## beta: b\n- Table II and Fig 4\n"
    assert parse_papers_md(md) == {"alpha": {"fig1", "fig2", "fig3"}, "beta": {"table2", "fig4"}}


def test_coverage_check_detects_a_deleted_entry(targets, papers_md_refs):
    """The coverage check must be able to fail: drop one required entry and it reports it."""
    paper = sorted(papers_md_refs)[0]
    victim = sorted(papers_md_refs[paper])[0]
    broken = copy.deepcopy(targets)
    broken[paper]["artifacts"].pop(victim, None)
    before = set(missing_artifacts(targets, papers_md_refs))
    after = set(missing_artifacts(broken, papers_md_refs))
    assert after - before == {f"{paper}/{victim}"}


def test_claim_checker_rejects_disallowed_syntax():
    for bad in ("__import__('os').system('x')", "a.b < c[0]", "a.b < 'x'", "sum(a.b) > 1",
                "a.b < max(c.d, key=1)", "a.b if c.d else e.f", "a.b ** 2 > 1", "a.b + 1",
                "lambda: 1", "[a.b] == [1]", "a.b < True", "f(a.b).c > 1"):
        problems, _ = claim_problems(bad)
        assert problems, f"accepted {bad!r}"
    problems, names = claim_problems("not a.b < c.d <= 3 and abs(e - f.g) < 0.5 * max(h.i, -2)")
    assert problems == []
    assert names == {"a.b", "c.d", "e", "f.g", "h.i"}


# --------------------------------------------------------------------------- tests: the file


def test_paper_blocks(targets):
    assert set(targets) == PAPER_KEYS
    for paper, block in targets.items():
        assert isinstance(block, dict), paper
        assert set(block) == {"title", "artifacts"}, f"{paper}: keys {sorted(block)}"
        assert isinstance(block["title"], str) and block["title"].strip(), paper
        assert isinstance(block["artifacts"], dict) and block["artifacts"], paper


def test_artifact_shape(targets):
    errors = []
    for paper, aid, art in _artifacts(targets):
        where = f"{paper}/{aid}"
        if not (ARTIFACT_ID.match(aid) or aid in EXTRA_ARTIFACTS.get(paper, set())):
            errors.append(f"{where}: id must be fig<N> or table<N>")
        if not isinstance(art, dict):
            errors.append(f"{where}: not a mapping")
            continue
        if set(art) - ARTIFACT_KEYS:
            errors.append(f"{where}: unknown keys {sorted(set(art) - ARTIFACT_KEYS)}")
        for key in ("title", "kind", "data", "targets"):
            if key not in art:
                errors.append(f"{where}: missing {key}")
        if not (isinstance(art.get("title"), str) and art["title"].strip()):
            errors.append(f"{where}: empty title")
        if art.get("kind") not in KINDS:
            errors.append(f"{where}: kind {art.get('kind')!r} not in {sorted(KINDS)}")
        data = art.get("data")
        if not isinstance(data, list) or not data:
            errors.append(f"{where}: data must be a non-empty list")
        else:
            for d in data:
                if not (d in DATASETS or (isinstance(d, str) and WEIGHTS.match(d))):
                    errors.append(f"{where}: unknown data name {d!r}")
        for key in ("tier_note", "note"):
            if key in art and not (isinstance(art[key], str) and art[key].strip()):
                errors.append(f"{where}: {key} must be a non-empty string")
        if "companion_of" in art:
            comp = art["companion_of"]
            if comp == aid or comp not in targets[paper]["artifacts"]:
                errors.append(f"{where}: companion_of {comp!r} is not another artifact of {paper}")
        tlist = art.get("targets")
        if not isinstance(tlist, list):
            errors.append(f"{where}: targets must be a list")
        elif art.get("kind") == "sketch":
            if tlist:
                errors.append(f"{where}: a sketch has targets: []")
            if "note" not in art:
                errors.append(f"{where}: a sketch needs a note saying there is nothing to compute")
        elif not tlist:
            errors.append(f"{where}: no targets")
    assert not errors, "\n".join(errors)


def test_target_shape(targets):
    errors = []
    for paper, aid, art in _artifacts(targets):
        seen: set[str] = set()
        for t in art.get("targets") or []:
            tid = t.get("id") if isinstance(t, dict) else None
            where = f"{paper}/{aid}/{tid}"
            if not isinstance(t, dict):
                errors.append(f"{paper}/{aid}: target is not a mapping")
                continue
            if not (isinstance(tid, str) and SNAKE_ID.match(tid)):
                errors.append(f"{where}: id must be snake_case")
            elif tid in seen:
                errors.append(f"{where}: duplicate id")
            seen.add(tid)
            if set(t) - TARGET_KEYS:
                errors.append(f"{where}: unknown keys {sorted(set(t) - TARGET_KEYS)}")
            if not (isinstance(t.get("source"), str) and t["source"].strip()):
                errors.append(f"{where}: missing source")
            if t.get("kind", "reproduction") not in TARGET_KINDS:
                errors.append(f"{where}: kind {t['kind']!r} not in {sorted(TARGET_KINDS)}")
            has_metric, has_claim = "metric" in t, "claim" in t
            if has_metric == has_claim:
                errors.append(f"{where}: needs exactly one of metric / claim")
                continue
            if has_metric:
                problem = metric_name_problem(t["metric"])
                if problem:
                    errors.append(f"{where}: {problem}")
                if "tiers" in t:
                    errors.append(f"{where}: numeric targets use tolerance tiers, not tiers")
                value = t.get("paper_value")
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    errors.append(f"{where}: paper_value {value!r} is not a number")
                kind = t.get("tolerance_kind")
                if kind not in TOLERANCE_KINDS:
                    errors.append(f"{where}: tolerance_kind {kind!r} not in {sorted(TOLERANCE_KINDS)}")
                if kind == "rel" and value == 0:
                    errors.append(f"{where}: relative tolerance around 0")
                tol = t.get("tolerance")
                if not isinstance(tol, dict) or not tol:
                    errors.append(f"{where}: tolerance must be a non-empty per-tier mapping")
                else:
                    if set(tol) - TIERS:
                        errors.append(f"{where}: tolerance tiers {sorted(set(tol) - TIERS)} unknown")
                    for tier, v in tol.items():
                        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                            errors.append(f"{where}: tolerance[{tier}] = {v!r} is not a positive number")
            else:
                if set(t) & NUMERIC_ONLY:
                    errors.append(f"{where}: claim with numeric keys {sorted(set(t) & NUMERIC_ONLY)}")
                if not (isinstance(t["claim"], str) and t["claim"].strip()):
                    errors.append(f"{where}: empty claim")
                tiers = t.get("tiers", ["smoke", "quick", "paper"] if t.get("kind") == "sanity" else ["quick", "paper"])
                if not (isinstance(tiers, list) and tiers and set(tiers) <= TIERS
                        and len(set(tiers)) == len(tiers)):
                    errors.append(f"{where}: tiers {tiers!r} must be a non-empty subset of {sorted(TIERS)}")
    assert not errors, "\n".join(errors)


def test_claims_use_only_the_allowed_grammar(targets):
    errors = []
    for paper, aid, t in _targets(targets):
        if "claim" not in t:
            continue
        problems, names = claim_problems(t["claim"])
        errors += [f"{paper}/{aid}/{t.get('id')}: {p}  [{t['claim']}]" for p in problems]
        for name in names:
            problem = metric_name_problem(name)
            if problem:
                errors.append(f"{paper}/{aid}/{t.get('id')}: {problem}")
    assert not errors, "\n".join(errors)


def test_no_metric_is_a_prefix_of_another_in_one_artifact(targets):
    """Results files may be nested by dots: 'a.b' and 'a.b.c' cannot both be leaves."""
    errors = []
    for paper, aid, art in _artifacts(targets):
        names: set[str] = set()
        for t in art.get("targets") or []:
            if "metric" in t:
                names.add(t["metric"])
            elif "claim" in t:
                names |= claim_problems(t["claim"])[1]
        for n in names:
            for m in names:
                if m != n and m.startswith(n + "."):
                    errors.append(f"{paper}/{aid}: {n!r} is a prefix of {m!r}")
    assert not errors, "\n".join(errors)


def test_every_papers_md_figure_and_table_has_an_entry(targets, papers_md_refs):
    assert set(papers_md_refs) == PAPER_KEYS, f"PAPERS.md sections: {sorted(papers_md_refs)}"
    required = {p: refs | EXTRA_ARTIFACTS.get(p, set()) for p, refs in papers_md_refs.items()}
    missing = missing_artifacts(targets, required)
    assert not missing, "no entry in paper_targets.yaml for: " + ", ".join(missing)


def test_inventory_specific_entries(targets):
    imani = targets["imani2022"]["artifacts"]
    assert imani["fig3"]["kind"] == "sketch" and imani["fig3"]["targets"] == []
    # fig10-12 are implemented (src/repalign/experiments/imani2022/peaks.py): fixed contract.
    expected = {
        "fig10": {
            "source_rises": "alignment_auc.transfer.S > alignment_auc.init.S and alignment_auc.transfer.S > alignment_auc.original.S",
            "similar_rises": "alignment_auc.transfer.T1 > alignment_auc.init.T1 and alignment_auc.transfer.T1 > alignment_auc.original.T1",
            "dissimilar_falls": "alignment_auc.transfer.T2 < alignment_auc.init.T2 and alignment_auc.transfer.T2 < alignment_auc.original.T2",
        },
        "fig11": {
            "similar_learns_fastest": "learning_auc.transfer.T1 < learning_auc.init.T1 and learning_auc.transfer.T1 < learning_auc.original.T1",
            "dissimilar_learns_slowest": "learning_auc.transfer.T2 > learning_auc.init.T2 and learning_auc.transfer.T2 > learning_auc.original.T2",
            "similar_generalises_best": "test_mse.transfer.T1 < test_mse.init.T1 and test_mse.transfer.T1 < test_mse.original.T1",
            "dissimilar_generalises_worst": "test_mse.transfer.T2 > test_mse.init.T2 and test_mse.transfer.T2 > test_mse.original.T2",
            "similar_fits_with_smallest_weights": "weight_norm_at_fit.transfer.T1 < weight_norm_at_fit.init.T1 and weight_norm_at_fit.transfer.T1 < weight_norm_at_fit.original.T1",
            "dissimilar_needs_largest_weights": "weight_norm_at_fit.transfer.T2 > weight_norm_at_fit.init.T2 and weight_norm_at_fit.transfer.T2 > weight_norm_at_fit.original.T2",
        },
        "fig12": {
            "source_monotone": "alignment_auc.layer1.S < alignment_auc.layer2.S < alignment_auc.layer3.S",
            "no_monotone_increase_with_target": "not (alignment_auc.layer1.T1 < alignment_auc.layer2.T1 < alignment_auc.layer3.T1)",
        },
    }
    for fig, claims in expected.items():
        got = {t["id"]: (t.get("claim"), t.get("tiers")) for t in imani[fig]["targets"]}
        assert got == {k: (v, ["quick", "paper"]) for k, v in claims.items()}, fig
        assert imani[fig]["data"] == ["synthetic"], fig

    fig15 = {t["metric"]: t["paper_value"] for t in imani["fig15"]["targets"] if "metric" in t}
    assert len(fig15) == 8
    assert sum(1 for t in targets["maennel2020"]["artifacts"]["table1"]["targets"] if "metric" in t) == 16
    appd1 = {t["metric"]: t["paper_value"] for t in targets["maennel2020"]["artifacts"]["appd1"]["targets"]
             if "metric" in t and t["metric"].startswith("data.sigma_sq_")}
    assert sorted(appd1.values(), reverse=True) == [12.3, 1.45, 1.18, 1.06, 0.37, 0.32, 0.28, 0.23,
                                                    0.128, 0.126, 0.115, 0.096]

    theory = {t["id"]: t for t in targets["lou2022"]["artifacts"]["theory"]["targets"]}
    slope = theory["equilibrium_slope"]
    assert slope["metric"] == "equilibrium_slope" and slope["paper_value"] == pytest.approx(0.6)
    assert slope["tolerance"] == {"smoke": 0.05, "quick": 0.05, "paper": 0.05}
    assert slope["tolerance_kind"] == "abs"
    assert theory["forward_loss_exponent"]["metric"] == "forward_loss_exponent"
    assert theory["forward_loss_exponent"]["paper_value"] == -2
    assert theory["backward_loss_exponent"]["metric"] == "backward_loss_exponent"
    assert theory["backward_loss_exponent"]["paper_value"] == -3
