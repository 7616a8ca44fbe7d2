"""Wall-clock and CPU-time measurement shared by the benchmark suites."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import NamedTuple

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Timing(NamedTuple):
    wall: float  # seconds on the clock
    cpu: float  # seconds of CPU time of this process (all threads)

    def __truediv__(self, other: "Timing") -> str:
        return f"{self.wall / other.wall:.1f}x wall, {self.cpu / other.cpu:.1f}x CPU time"

    def __str__(self) -> str:
        return f"{self.wall:9.3f} s wall {self.cpu:9.3f} s CPU"


def once(fn: Callable[[], object]) -> tuple[Timing, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), out


def best_time(fn: Callable[[], object], repeats: int) -> tuple[Timing, object]:
    fn()  # warm-up
    runs = [once(fn) for _ in range(repeats)]
    best = Timing(min(t.wall for t, _ in runs), min(t.cpu for t, _ in runs))
    return best, runs[-1][1]


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU's model and torch's thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_model()}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
