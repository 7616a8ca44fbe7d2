"""Trained-model files shared between artifacts, and the not-run marker they may carry."""

from __future__ import annotations

from pathlib import Path

import torch

from repalign.errors import RepalignError
from repalign.results import atomic_write


class UpstreamNotRun(RepalignError):
    """A model this step needs could not be trained (e.g. its dataset is missing)."""


def save_model_file(path: Path, payload: dict) -> None:
    atomic_write(path, lambda fh: torch.save(payload, fh))


def load_model_file(path: Path, device: torch.device) -> dict:
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises several types for a truncated file
        raise RepalignError(f"model file {path} is corrupt ({exc}). Delete it and re-run its rule.") from exc
    if payload.get("status") == "not_run":
        raise UpstreamNotRun(payload["reason"])
    return payload
