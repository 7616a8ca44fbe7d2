"""Exceptions with messages a researcher can act on."""


class RepalignError(Exception):
    """Base class for errors raised by the suite."""


class DatasetMissing(RepalignError):
    """A dataset is not on disk and could not be downloaded.

    The message names the dataset, every path tried, and how to obtain it.
    """

    def __init__(self, dataset: str, tried: list, how: str):
        self.dataset = dataset
        self.tried = [str(p) for p in tried]
        self.how = how
        paths = "\n".join(f"  - {p}" for p in self.tried) or "  (no path)"
        super().__init__(
            f"dataset '{dataset}' not found. Paths tried:\n{paths}\nTo obtain it: {how}"
        )


class CorruptDataset(RepalignError):
    """A dataset file exists but cannot be parsed (truncated, wrong format)."""


class ConfigError(RepalignError):
    """A configuration value is unknown or invalid; the message names the key."""


class NonFiniteLoss(RepalignError):
    """Training produced a NaN or infinite loss; nothing is written."""
