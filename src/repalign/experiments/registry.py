"""The registry of runnable steps: trained models shared between figures, and artifacts.

An *artifact* is one figure or table of a paper (``fig10``, ``table1``); it writes
``results/<paper>/<artifact>.json``. A *model* is a trained network that several artifacts
reuse (``results/<paper>/models/<name>.pt``), so re-plotting or adding a figure never
retrains. Each step carries its per-tier settings and per-tier resources in one place;
the Snakefile builds its rules from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from repalign.errors import ConfigError

TIERS = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class Resources:
    """What one job of a step asks a scheduler for."""

    runtime_min: int
    mem_mb: int = 2000
    gpu: int = 0
    cpus: int = 1


@dataclass(frozen=True)
class Tiered:
    """Settings (or resources) for the three tiers of one step."""

    smoke: Any
    quick: Any
    paper: Any

    @classmethod
    def same(cls, value: Any) -> "Tiered":
        """One value for every tier (e.g. the resources of a light measurement step)."""
        return cls(value, value, value)

    def __getitem__(self, tier: str):
        if tier not in TIERS:
            raise ValueError(f"unknown tier '{tier}'; choose one of {TIERS}")
        return getattr(self, tier)


@dataclass
class Context:
    """Everything a step function receives: settings for the chosen tier, device, seeds, paths."""

    paper: str
    name: str
    tier: str
    settings: Any
    device: torch.device
    seeds: list[int]
    data_root: Path
    cache_dir: Path
    download: bool = False
    inputs: dict[str, Path] = field(default_factory=dict)
    checkpoint: Path | None = None

    def load_model(self, name: str) -> dict:
        """Load a trained model produced by another step (declared in ``needs``)."""
        from repalign.experiments.storage import load_model_file

        if name not in self.inputs:  # the runner checks needs= first: this step loads an undeclared one
            raise KeyError(f"{self.paper}/{self.name} loads model '{name}', which is not among its "
                           f"inputs ({', '.join(self.inputs) or 'none'}): list it in the step's needs= "
                           f"and pass --input {name}=results/{self.paper}/models/{name}.pt")
        return load_model_file(self.inputs[name], self.device)


@dataclass(frozen=True)
class Step:
    paper: str
    name: str
    kind: str  # "artifact" or "model"
    func: Callable[[Context], Any]
    settings: Tiered
    resources: Tiered
    needs: tuple[str, ...] = ()
    work: Callable[[Any], Any] | None = None  # settings -> Work (or training examples), for repalign estimate

    def settings_for(self, tier: str, n_seeds: int | None = None):
        settings = self.settings[tier]
        if n_seeds is not None and hasattr(settings, "n_runs"):
            settings = replace(settings, n_runs=n_seeds)
        for key in ("epochs", "n_runs"):
            value = getattr(settings, key, None)
            if isinstance(value, int) and value < (1 if key == "n_runs" else 0):
                raise ConfigError(f"{self.paper}/{self.name} at the {tier} tier has {key}={value}; "
                                  f"{key} must be at least {1 if key == 'n_runs' else 0}"
                                  + (" (--n-seeds / config n_seeds)" if key == "n_runs" else
                                     " (fix its Tiered settings)"))
        return settings


ARTIFACTS: dict[tuple[str, str], Step] = {}
MODELS: dict[tuple[str, str], Step] = {}


# factors that weigh an example by the network's or the input's size rather than count examples
SIZE_FACTORS = ("pixels", "patch_pixels", "width", "width_squared", "layers")


@dataclass(frozen=True)
class Work:
    """What one step does at one tier, the quantity ``repalign estimate`` scales measured time by.

    ``terms`` is a sum of products of named counts, each read from the step's own settings
    (e.g. ``((("epochs", 100), ("examples", 10_000), ("models", 10)),)``). ``kind`` is
    ``"training"`` (examples through an optimiser, epochs x examples x models) or
    ``"analysis"`` (no training: items measured, projected linearly from measured wall time).
    """

    terms: tuple[tuple[tuple[str, float], ...], ...]
    kind: str = "training"

    def __post_init__(self):
        if self.kind not in ("training", "analysis"):
            raise ValueError(f"work kind '{self.kind}' must be 'training' or 'analysis'")
        for term in self.terms:
            for name, count in term:
                if not isinstance(count, (int, float)) or count < 0:
                    raise ValueError(f"work factor '{name}' is {count!r}; it must be a count >= 0")

    @property
    def amount(self) -> float:
        total = 0.0
        for term in self.terms:
            product = 1.0
            for _, count in term:
                product *= count
            total += product
        return total

    @property
    def unit(self) -> str:
        """``examples`` (or ``items analysed``), ``size-weighted`` where a factor is a size (pixels, width)."""
        weighted = any(name in SIZE_FACTORS for term in self.terms for name, _ in term)
        return ("size-weighted " if weighted else "") + ("examples" if self.kind == "training" else "items analysed")

    def __add__(self, other: "Work") -> "Work":
        if other.kind != self.kind:
            raise ValueError(f"cannot add {other.kind} work to {self.kind} work")
        return Work(self.terms + other.terms, self.kind)

    def describe(self) -> str:
        """e.g. ``100 epochs x 10,000 examples x 10 models``."""
        def count(v):
            return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"
        return " + ".join(" x ".join(f"{count(v)} {name}" for name, v in term) for term in self.terms)


def trained(**factors: float) -> Work:
    """Training work: the product of ``factors`` (epochs, examples, models, configurations, ...)."""
    return Work((tuple(factors.items()),), "training")


def analysed(**factors: float) -> Work:
    """Analysis work (no training): the product of ``factors`` (models, examples measured, ...)."""
    return Work((tuple(factors.items()),), "analysis")


def as_work(value) -> Work:
    """A declared work value: a ``Work``, or a bare number of training examples."""
    return value if isinstance(value, Work) else trained(examples=float(value))


def training_examples(settings) -> Work:
    """Declared work of ``n_runs`` models trained ``epochs`` times over ``n_train`` examples each."""
    return trained(epochs=settings.epochs, examples=settings.n_train, models=settings.n_runs)


def _register(table: dict, kind: str, paper: str, name: str, settings: Tiered,
              resources: Tiered, needs=(), work=None):
    def decorate(func):
        key = (paper, name)
        if key in table:
            raise ValueError(f"{kind} {paper}/{name} is registered twice")
        table[key] = Step(paper, name, kind, func, settings, resources, tuple(needs), work)
        return func
    return decorate


def artifact(paper: str, name: str, *, settings: Tiered, resources: Tiered, needs=(), work=None):
    """Register ``func(ctx) -> Result`` as the experiment behind figure/table ``name``.

    ``work``: ``settings -> Work`` (``trained(...)`` or ``analysed(...)``), the declared work
    from which ``repalign estimate`` projects a tier's cost. Every step declares it
    (``tests/test_declared_work.py``); derive it from the settings, never from copied numbers.
    Examples/s measured at one tier carries over to another only as far as the network is the
    same, so the estimate names the run it rests on.
    """
    return _register(ARTIFACTS, "artifact", paper, name, settings, resources, needs, work)


def model(paper: str, name: str, *, settings: Tiered, resources: Tiered, work=None):
    """Register ``func(ctx) -> dict`` that trains a model reused by several artifacts (``work``: as above)."""
    return _register(MODELS, "model", paper, name, settings, resources, work=work)
