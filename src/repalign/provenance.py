"""What produced a result: code version, packages, device, time."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("repalign", "torch", "torchvision", "numpy", "scipy", "pandas", "snakemake")

_throughput = {"examples": 0, "steps": 0, "seconds": 0.0}
# The provenance fields that differ between two runs of the same config and seed on one
# machine (everything else in a result is byte-identical on the CPU).
TIMING_FIELDS = ("wall_time_s", "finished_at", "load_avg_1min", "peak_rss_mb", "peak_cuda_mb", "throughput")


def record_throughput(*, examples: int, steps: int, seconds: float) -> None:
    """Add one timed stretch of work (e.g. a training run) to the current step's throughput.

    Every call is summed; ``collect`` reports the totals as examples/s and steps/s and starts
    the next step from zero. An example counts once per model that processes it.
    """
    _throughput["examples"] += int(examples)
    _throughput["steps"] += int(steps)
    _throughput["seconds"] += float(seconds)


def _pop_throughput() -> dict:
    done = dict(_throughput)
    _throughput.update(examples=0, steps=0, seconds=0.0)
    if done["seconds"] <= 0:
        return {}
    return {"throughput": {
        "examples": done["examples"], "steps": done["steps"], "seconds": round(done["seconds"], 3),
        "examples_per_s": round(done["examples"] / done["seconds"], 1),
        "steps_per_s": round(done["steps"] / done["seconds"], 2)}}


def peak_memory(device: torch.device) -> dict:
    """Peak resident memory of this process (MiB), and peak CUDA memory allocated on ``device``."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak = {"peak_rss_mb": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)}
    if device.type == "cuda":
        peak["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def git_commit(repo: Path | None = None) -> str:
    """The HEAD commit, suffixed with ``-dirty`` when tracked files differ; ``unknown`` outside git."""
    cwd = repo or Path.cwd()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {cpu} ({torch.get_num_threads()} threads)"


def collect(device: torch.device, wall_time_s: float) -> dict:
    """Provenance of a step that just finished: code, packages, device, time, memory, throughput."""
    return {
        "git_commit": git_commit(),
        "versions": package_versions(),
        "device": str(device),
        "device_name": device_name(device),
        "wall_time_s": round(wall_time_s, 3),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "load_avg_1min": round(os.getloadavg()[0], 2),  # other work on the machine slows this step down
        **peak_memory(device),
        **_pop_throughput(),
    }
