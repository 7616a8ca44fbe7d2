"""Which datasets a workflow step uses and whether they are on disk: its *data key*.

The workflow passes a step's data key as a rule parameter, e.g. ``cifar10=present
mnist=missing``, and snakemake re-runs a job when a parameter changes. So that a step
re-runs exactly when data it lacked has appeared, the key is

* before the step has run: each dataset's presence on disk now (:func:`is_present`);
* after it ran: the key it ran with (the runner stores it in the output), except that each
  dataset the run *lacked* is looked up again. The run lacked a dataset when the output is
  incomplete (``not_run``, or some of its metrics not run), the run looked for the dataset
  and did not find it (a ``DatasetMissing`` was raised), and it is still missing afterwards.

Hence a complete output never re-runs for a change of data (pointing the data root at an
empty folder re-runs nothing), a not_run or partial one re-runs once its data is there, and
data that the run itself downloaded does not make the next run repeat it.

A step's datasets are the ``data:`` list of its artifact in paper_targets.yaml; a model
uses those of every artifact that needs it. That over-counts for a model (sweep_mnist also
lists CIFAR-10 and CT) but costs nothing: only datasets the run looked for are looked up again.
"""

from __future__ import annotations

import json
from pathlib import Path

from repalign.data.paths import resolve_data_root
from repalign.data.registry import DATASETS, dataset_present

PRESENT, MISSING = "present", "missing"
WEIGHTS_PREFIX = "weights:"  # "weights:<arch>_imagenet": torchvision's ImageNet weights of <arch>


def step_datasets(targets: dict, artifacts: dict, kind: str, paper: str, name: str) -> tuple[str, ...]:
    """The datasets step ``paper/name`` reads (those the key tracks), sorted.

    targets: paper_targets.yaml as loaded; artifacts: the registry's ARTIFACTS.
    """
    if kind == "artifact":
        names = [name]
    else:
        names = [a for (p, a), step in artifacts.items() if p == paper and name in step.needs]
    used = {d for a in names for d in targets[paper]["artifacts"][a].get("data") or []}
    return tuple(sorted(d for d in used if d in DATASETS or d.startswith(WEIGHTS_PREFIX)))


def weights_present(dataset: str) -> bool:
    """Whether torchvision's ImageNet weights ``weights:<arch>_imagenet`` are in torch's hub cache.

    torchvision names those files ``<arch>-<hash>.pth``; globbing for them avoids importing
    torchvision (seconds) while the workflow builds its DAG.
    """
    import torch

    arch = dataset[len(WEIGHTS_PREFIX):].removesuffix("_imagenet")
    return next((Path(torch.hub.get_dir()) / "checkpoints").glob(f"{arch}-*.pth"), None) is not None


def is_present(dataset: str, root=None) -> bool:
    """Whether ``dataset`` (a registry name or ``weights:<arch>_imagenet``) is on disk now."""
    if dataset.startswith(WEIGHTS_PREFIX):
        return weights_present(dataset)
    return dataset_present(dataset, resolve_data_root(root))


def format_key(status: dict[str, str]) -> str:
    return " ".join(f"{d}={s}" for d, s in sorted(status.items()))


def parse_key(key: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in key.split())


def current_key(datasets, root=None) -> str:
    """The key of a step that has not run: each dataset's presence now."""
    return format_key({d: PRESENT if is_present(d, root) else MISSING for d in datasets})


def lacking(key: str, complete: bool, reported_missing, root=None) -> list[str]:
    """The datasets a run with data key ``key`` lacked (see the module docstring).

    reported_missing: the datasets the run looked for and did not find.
    """
    if complete:
        return []
    return sorted(d for d, s in parse_key(key).items()
                  if s == MISSING and d in reported_missing and not is_present(d, root))


def read_record(path) -> dict | None:
    """The record of an output (a result ``.json`` or a model file), or None if absent or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        if path.suffix == ".json":
            record = json.loads(path.read_text())
        else:  # mmap: the header is read, the tensors are not
            import torch
            record = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception:  # unreadable or partial: treated as absent (snakemake decides the rest)
        return None
    return record if isinstance(record, dict) else None


def read_data_record(path) -> dict | None:
    """The ``data`` record ({"key", "lacking"}) the runner stored in an output, or None."""
    data = (read_record(path) or {}).get("data")
    return data if isinstance(data, dict) and isinstance(data.get("key"), str) else None


def workflow_key(output, datasets, root=None) -> str:
    """The data key of the step writing ``output``, as the workflow passes it (module docstring)."""
    record = read_data_record(output)
    if record is None:
        return current_key(datasets, root)
    stored = parse_key(record["key"])
    relook = set(record.get("lacking") or [])
    return format_key({d: (stored[d] if d in stored and d not in relook
                           else PRESENT if is_present(d, root) else MISSING) for d in datasets})
