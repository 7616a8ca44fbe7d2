"""Figures of results that could not fully run: every plotter draws what exists and states why the
rest is missing, placeholders keep the line breaks of path lists, titles count runs correctly."""

import importlib
import json
import pkgutil

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text

import repalign.plots
from repalign.errors import DatasetMissing, RepalignError
from repalign.plots import PLOTTERS, draw, figure, missing_panel, plural, wrap
from repalign.results import read_arrays, write_result

for _module in pkgutil.iter_modules(repalign.plots.__path__):
    importlib.import_module(f"repalign.plots.{_module.name}")
EVERY_PLOTTER = sorted(PLOTTERS)
PATHS = ["/data/one/cifar-100-python", "/data/two/cifar100/a/rather/long/folder/name/that/must/stay/whole"]
MISSING = str(DatasetMissing("cifar100", PATHS, "download CIFAR-100 from https://www.cs.toronto.edu/~kriz/"
                                                "cifar.html and unpack it into the data root, or pass "
                                                "--config download=true"))


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def shows_paths_on_their_own_lines(fig) -> bool:
    lines = texts(fig).splitlines()
    return all(f"  - {p}" in lines for p in PATHS)


def record(paper="p", artifact="a", status="ok", **fields):
    return {"paper": paper, "artifact": artifact, "status": status, "tier": "smoke", "seeds": [0],
            "reason": None, "metrics": {}, "not_run_metrics": {}, **fields}


def test_wrap_breaks_prose_but_keeps_each_listed_path_whole_on_its_own_line():
    wrapped = wrap(MISSING, 40)
    lines = wrapped.splitlines()
    assert all(f"  - {p}" in lines for p in PATHS)
    assert all(len(line) <= 40 for line in lines if not line.startswith("  - ") and " " in line.strip())
    assert "".join(wrapped.split()) == "".join(MISSING.split())


def test_plural():
    assert (plural(1, "run"), plural(2, "run"), plural(0, "metric")) == ("1 run", "2 runs", "0 metrics")


@pytest.mark.parametrize("key", EVERY_PLOTTER, ids="/".join)
@pytest.mark.parametrize("case", ["not_run", "ok_without_metrics"])
def test_every_plotter_draws_a_result_that_did_not_run_as_a_placeholder_with_the_reason(key, case):
    paper, artifact = key
    if case == "not_run":
        rec = record(paper, artifact, status="not_run", reason=MISSING)
    else:  # every metric of the artifact not run, no arrays: the offline smoke run of imani2022 fig19
        rec = record(paper, artifact, not_run_metrics={"alignment_auc.original.cifar100": MISSING,
                                                       "alignment_auc.init.cifar100": MISSING})
    fig = figure(rec, {})
    try:
        assert f"{paper} {artifact}: not run" in texts(fig)
        assert shows_paths_on_their_own_lines(fig)
    finally:
        plt.close(fig)


def test_draw_writes_png_and_pdf_of_an_ok_result_whose_metrics_all_did_not_run(tmp_path):
    path = tmp_path / "fig19.json"
    write_result(path, record("imani2022", "fig19", not_run_metrics={"alignment_auc.original.cifar10": MISSING}),
                 {})
    draw("imani2022", "fig19", path, tmp_path / "fig19.png")
    assert (tmp_path / "fig19.png").stat().st_size > 1000 and (tmp_path / "fig19.pdf").stat().st_size > 1000


def _fake_plotter(monkeypatch, func):
    monkeypatch.setitem(PLOTTERS, ("p", "a"), func)


def test_title_counts_one_run_in_the_singular(monkeypatch):
    _fake_plotter(monkeypatch, lambda rec, arrays: plt.figure())
    fig = figure(record(metrics={"m": 1.0}), {})
    assert fig._suptitle.get_text() == "p a (smoke tier, 1 run)"
    plt.close(fig)


def test_a_reason_the_plotter_does_not_show_becomes_a_footnote_once_with_its_line_breaks(monkeypatch):
    _fake_plotter(monkeypatch, lambda rec, arrays: plt.figure())
    rec = record(metrics={"m.mnist": 1.0}, not_run_metrics={"m.cifar100": MISSING, "n.cifar100": MISSING})
    fig = figure(rec, {})
    assert shows_paths_on_their_own_lines(fig)
    assert texts(fig).count("Paths tried") == 1 and "not run (2 metrics)" in texts(fig)
    plt.close(fig)


def test_a_missing_panel_states_its_own_reason_and_no_footnote_repeats_it(monkeypatch):
    other = str(DatasetMissing("kmnist", ["/data/KMNIST"], "download KMNIST"))

    def plot(rec, arrays):
        fig, axes = plt.subplots(1, 3)
        missing_panel(axes[1], rec, "cifar100", "cifar100")
        missing_panel(axes[2], rec, "kmnist", "kmnist")
        return fig

    _fake_plotter(monkeypatch, plot)
    rec = record(metrics={"m.mnist": 1.0}, not_run_metrics={"m.cifar100": MISSING, "m.kmnist": other})
    fig = figure(rec, {})
    axes = fig.axes
    assert "cifar100" in axes[1].get_title() and "/data/one/cifar-100-python" in texts(axes[1])
    assert "KMNIST" not in texts(axes[1]) and "/data/KMNIST" in texts(axes[2])
    assert texts(fig).count("Paths tried") == 2 and "metric)" not in texts(fig)
    plt.close(fig)


def test_a_plotter_missing_an_array_names_it_and_the_fix_instead_of_a_bare_key_error(tmp_path):
    path = tmp_path / "fig10.json"
    write_result(path, record("imani2022", "fig10", metrics={"alignment_auc.init.S": 0.5}), {"thresholds": np.ones(3)})
    with pytest.raises(RepalignError, match=r"needs 'curves'.*arrays: thresholds.*--forcerun"):
        draw("imani2022", "fig10", path, tmp_path / "fig10.png")
    assert not (tmp_path / "fig10.png").exists()


def test_drawing_another_artifacts_result_is_an_error_naming_both(tmp_path):
    path = tmp_path / "fig10.json"
    write_result(path, record("imani2022", "fig10", status="not_run", reason=MISSING), {})
    with pytest.raises(RepalignError, match=r"result of imani2022/fig10, not of imani2022/fig11"):
        draw("imani2022", "fig11", path, tmp_path / "fig11.png")
    assert not (tmp_path / "fig11.png").exists()


# ---- every plotter on the smoke results with one dataset removed -----------------------------

DATASETS = ("mnist", "fashion_mnist", "fmnist", "kmnist", "cifar10", "cifar100", "office31", "imagenet",
            "tiny_imagenet", "ct", "ct_slice")


def mentions(name: str, dataset: str) -> bool:
    """Whether a metric or array name (or a panel label) is of ``dataset``: one of its dot-separated parts is
    the dataset, or starts or ends with it as an underscore-separated word (``resnet18_cifar10``)."""
    return any(p == dataset or p.startswith(f"{dataset}_") or p.endswith(f"_{dataset}") for p in name.split("."))


def without(rec: dict, arrays: dict, dataset: str, reason: str) -> tuple[dict, dict]:
    """``rec`` and ``arrays`` as the experiment writes them when ``dataset`` is missing (as far as names tell)."""
    dropped = {k for k in rec["metrics"] if mentions(k, dataset)}
    rec = {**rec, "metrics": {k: v for k, v in rec["metrics"].items() if k not in dropped},
           "not_run_metrics": {**rec.get("not_run_metrics", {}), **dict.fromkeys(dropped, reason)}}
    kept = {}
    for key, value in arrays.items():
        if mentions(key, dataset):
            continue
        if value.dtype.kind == "U" and value.ndim == 1:
            value = np.array([v for v in value if not mentions(str(v), dataset)], dtype=value.dtype)
        kept[key] = value
    return rec, kept


@pytest.mark.workflow
def test_every_plotter_draws_a_smoke_result_without_one_of_its_datasets_and_says_why(smoke_dag):
    """Fails naming each (artifact, dataset) whose figure raised or does not state the reason."""
    failures, drawn = [], 0
    for path in sorted((smoke_dag / "results").glob("*/*.json")):
        rec = json.loads(path.read_text())
        if rec["status"] != "ok":
            continue
        arrays = read_arrays(path)
        for dataset in DATASETS:
            if not any(mentions(k, dataset) for k in rec["metrics"]):
                continue
            reason = str(DatasetMissing(dataset, [f"/nowhere/{dataset}"], f"put {dataset} there"))
            partial, kept = without(rec, arrays, dataset, reason)
            try:
                fig = figure(partial, kept)
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"{rec['paper']}/{rec['artifact']} without {dataset}: {type(exc).__name__}: {exc}")
                continue
            if f"  - /nowhere/{dataset}" not in texts(fig).splitlines():
                failures.append(f"{rec['paper']}/{rec['artifact']} without {dataset}: the figure does not say why")
            plt.close(fig)
            drawn += 1
    assert not failures, "\n".join(failures)
    assert drawn > 0
