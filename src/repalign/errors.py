"""Exceptions with messages a researcher can act on."""

import os
from contextlib import contextmanager

_missing_seen: list[set] = []  # the innermost datasets_reported_missing() block collects here


class RepalignError(Exception):
    """Base class for errors raised by the suite."""


class DatasetMissing(RepalignError):
    """A dataset is not on disk and could not be downloaded.

    The message names the dataset, every path tried, and how to obtain it. Its first line
    is a complete sentence (the scorecard shows only that line): where the dataset was
    looked for.
    """

    def __init__(self, dataset: str, tried: list, how: str):
        self.dataset = dataset
        self.tried = [str(p) for p in tried]
        self.how = how
        for seen in _missing_seen:
            seen.add(dataset)
        paths = "\n".join(f"  - {p}" for p in self.tried)
        super().__init__(f"dataset '{dataset}' not found {_where(self.tried)}.\n"
                         + (f"Paths tried:\n{paths}\n" if paths else "")
                         + f"To obtain it: {how}")


@contextmanager
def datasets_reported_missing():
    """Collect the name of every ``DatasetMissing`` raised inside the block, also those the
    code inside catches (a panel whose data is missing): what a run looked for and lacked."""
    seen: set = set()
    _missing_seen.append(seen)
    try:
        yield seen
    finally:
        _missing_seen.remove(seen)


def _where(tried: list[str]) -> str:
    """'at P' for one path, 'under D (N paths tried)' for several: D is their common folder."""
    if not tried:
        return "(no path was tried)"
    if len(tried) == 1:
        return f"at {tried[0]}"
    try:
        return f"under {os.path.commonpath(tried)} ({len(tried)} paths tried)"
    except ValueError:  # relative and absolute paths mixed
        return f"at any of {len(tried)} paths"


class CorruptDataset(RepalignError):
    """A dataset file exists but cannot be parsed (truncated, wrong format)."""


class ConfigError(RepalignError):
    """A configuration value is unknown or invalid; the message names the key."""


class NonFiniteLoss(RepalignError):
    """Training produced a NaN or infinite loss; nothing is written."""


class NonFiniteMetric(NonFiniteLoss):
    """An experiment produced a NaN or infinite metric; nothing is written, as for a loss."""
