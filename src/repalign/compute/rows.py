"""Ledger rows: what each step run cost, read from the provenance of its result or model file.

``results/<paper>/<artifact>.json`` and ``results/<paper>/models/<name>.pt`` carry a
``provenance`` block written by ``repalign.runner`` (device, wall time, peak memory and,
for steps that train through ``repalign.train``, examples/s and steps/s).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from repalign.errors import RepalignError


@dataclass(frozen=True)
class Row:
    kind: str                 # "model" or "artifact"
    paper: str
    name: str
    tier: str
    status: str               # "ok" or "not_run"
    reason: str | None
    device: str               # e.g. "cpu", "cuda:0"
    device_name: str          # e.g. "NVIDIA H200", "cpu: AMD EPYC (2 threads)"
    wall_time_s: float
    finished_at: str
    source: Path
    n_seeds: int | None = None        # the run's --n-seeds override (None: the tier's own count)
    peak_rss_mb: float | None = None
    peak_cuda_mb: float | None = None
    examples_per_s: float | None = None
    steps_per_s: float | None = None
    load_avg_1min: float | None = None  # the machine's load average when the step finished

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.paper, self.name

    @property
    def short_reason(self) -> str:
        """The first sentence of why the step did not run (e.g. "dataset 'office31' not found")."""
        return (self.reason or "").strip().splitlines()[0].split(". ")[0][:100] if self.reason else ""

    @property
    def is_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def started(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.finished_at) - datetime.timedelta(seconds=self.wall_time_s)

    def on(self, device: str) -> bool:
        """Whether this run was on ``device``: a device type/name (``cpu``, ``cuda``, ``cuda:0``)
        or a case-insensitive part of the device name (``H200``, ``AMD EPYC``)."""
        wanted = device.lower()
        return (wanted in (self.device.lower(), self.device.split(":")[0].lower())
                or wanted in self.device_name.lower())


def row_from_record(record: dict, kind: str, source: Path) -> Row:
    prov = record.get("provenance")
    if not isinstance(prov, dict) or "wall_time_s" not in prov:
        raise RepalignError(f"{source} has no provenance block with wall_time_s; re-run its step "
                            "with `python -m repalign train/run` to record one.")
    throughput = prov.get("throughput") or {}
    return Row(kind=kind, paper=record["paper"], name=record["artifact"], tier=record["tier"],
               status=record["status"], reason=record.get("reason"), device=prov["device"],
               device_name=prov["device_name"], wall_time_s=float(prov["wall_time_s"]),
               finished_at=prov["finished_at"], source=source,
               n_seeds=(record.get("config") or {}).get("n_seeds"),
               peak_rss_mb=prov.get("peak_rss_mb"), peak_cuda_mb=prov.get("peak_cuda_mb"),
               examples_per_s=throughput.get("examples_per_s"), steps_per_s=throughput.get("steps_per_s"),
               load_avg_1min=prov.get("load_avg_1min"))


def _model_record(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a truncated file
        raise RepalignError(f"model file {path} is corrupt ({exc}). Delete it and re-run its rule.") from exc


def read_row(path: Path) -> Row:
    """The row of one result (``.json``) or model (``.pt``) file."""
    from repalign.results import read_result

    path = Path(path)
    if path.suffix == ".pt":
        return row_from_record(_model_record(path), "model", path)
    return row_from_record(read_result(path), "artifact", path)


def read_rows(results_dirs: list[Path]) -> list[Row]:
    """Every step run recorded under the given results folders (``<paper>/*.json``, ``<paper>/models/*.pt``)."""
    paths = []
    for root in map(Path, results_dirs):
        if not root.is_dir():
            raise RepalignError(f"results folder {root} does not exist; run some steps first "
                                "(snakemake, or `python -m repalign gpu-run`) or pass --results PATH.")
        paths += sorted(root.glob("*/*.json")) + sorted(root.glob("*/models/*.pt"))
    return [read_row(p) for p in paths]
