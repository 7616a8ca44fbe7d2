"""imani2022 claims added for issue 11 fail on the smallest result that contradicts the paper's sentence.

Each case gives metrics that satisfy every other part of the claim and violate exactly the
part the paper states (e.g. Fig 7 with monotone hidden layers but the input above layer 1).
"""

from pathlib import Path

import pytest

from repalign.targets import eval_claim, read_yaml

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = read_yaml((ROOT / "paper_targets.yaml").read_text())["imani2022"]["artifacts"]


def claim(artifact: str, target: str) -> str:
    return next(t["claim"] for t in ARTIFACTS[artifact]["targets"] if t["id"] == target)


def fig7(prefix: str, values: tuple[float, ...]) -> dict[str, float]:
    names = ["input"] + [f"{prefix}_layer{k}" for k in (1, 2, 3)]
    return {f"alignment_auc.{n}.mnist": v for n, v in zip(names, values)}


def three(metric: str, task: str, transfer: float, init: float, original: float) -> dict[str, float]:
    return {f"{metric}.transfer.{task}": transfer, f"{metric}.init.{task}": init, f"{metric}.original.{task}": original}


def shares(prefix: str, values: list[float]) -> dict[str, float]:
    return {f"{prefix}.last{k + 1}": v for k, v in enumerate(values)}


PAIRS = ("dslr_to_webcam", "dslr_to_amazon", "webcam_to_dslr", "webcam_to_amazon", "amazon_to_dslr", "amazon_to_webcam")

CASES = [  # (artifact, target, metrics that follow the paper, metrics that contradict it)
    ("fig7", "trained_monotone_mnist", fig7("trained", (0.39, 0.49, 0.57, 0.69)), fig7("trained", (0.50, 0.49, 0.57, 0.69))),
    ("fig7", "init_order_reversed_mnist", fig7("init", (0.39, 0.27, 0.14, 0.06)), fig7("init", (0.20, 0.27, 0.14, 0.06))),
    ("fig11", "similar_generalises_best", three("test_mse", "T1", 0.1, 0.2, 0.15), three("test_mse", "T1", 0.16, 0.2, 0.15)),
    ("fig11", "dissimilar_generalises_worst", three("test_mse", "T2", 0.3, 0.2, 0.25), three("test_mse", "T2", 0.24, 0.2, 0.25)),
    ("fig11", "similar_fits_with_smallest_weights", three("weight_norm_at_fit", "T1", 1, 3, 2),
     three("weight_norm_at_fit", "T1", 2.1, 3, 2)),
    ("fig11", "dissimilar_needs_largest_weights", three("weight_norm_at_fit", "T2", 4, 3, 2),
     three("weight_norm_at_fit", "T2", 2.9, 3, 2)),
    ("fig12", "no_monotone_increase_with_target",
     {"alignment_auc.layer1.T1": 0.15, "alignment_auc.layer2.T1": 0.12, "alignment_auc.layer3.T1": 0.11},
     {"alignment_auc.layer1.T1": 0.10, "alignment_auc.layer2.T1": 0.11, "alignment_auc.layer3.T1": 0.12}),
    ("fig14", "resnet18_positive_at_all_thresholds", shares("diff_positive_share.resnet18", [1, 1, 1, 1]),
     shares("diff_positive_share.resnet18", [1, 1, 0.98, 1])),
    ("fig14", "t2t_vit_positive_over_a_wide_range", shares("diff_positive_share.t2t_vit", [0.9, 0.7, 0.6, 0.8]),
     shares("diff_positive_share.t2t_vit", [0.9, 0.7, 0.45, 0.8])),
    ("fig16", "drop_curves_all_positive", {f"alignment_drop_positive_share.{p}": 1.0 for p in PAIRS},
     {f"alignment_drop_positive_share.{p}": 0.9 if p == "webcam_to_dslr" else 1.0 for p in PAIRS}),
    ("fig19", "resnet101_init_worse_than_resnet50_cifar10",
     {"alignment_auc.init.resnet101.cifar10": 0.01, "alignment_auc.init.resnet50.cifar10": 0.02},
     {"alignment_auc.init.resnet101.cifar10": 0.02, "alignment_auc.init.resnet50.cifar10": 0.02}),
]


@pytest.mark.parametrize("artifact, target, good, bad", CASES, ids=[f"{a}-{t}" for a, t, _, _ in CASES])
def test_claim_passes_the_papers_pattern_and_fails_its_smallest_violation(artifact, target, good, bad):
    assert eval_claim(claim(artifact, target), good)
    assert not eval_claim(claim(artifact, target), bad)

