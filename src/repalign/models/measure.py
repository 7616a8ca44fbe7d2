"""Named measurement layers: one declared, depth-ordered list per model, read in one forward pass.

CKA maps (sharon2024), activation histograms (maennel2020), probes and layer kernels
(canatar2022) all read a model's representations through ``measure``. Every model that
``repalign.models.build`` returns carries ``measurement_layers``: ``MeasurementLayer``
entries in depth order, each naming a submodule and whether its output or its first input
is the representation (the head's input is the penultimate layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import torch
from torch import nn

__all__ = ["MeasurementLayer", "declare_layers", "layer_names", "measure"]


@dataclass(frozen=True)
class MeasurementLayer:
    """Representation ``name`` is the output (or, with ``at='input'``, the first input) of ``module``."""

    name: str
    module: str  # a path of ``model.named_modules()``
    at: Literal["output", "input"] = "output"


def declare_layers(model: nn.Module, layers: Iterable[MeasurementLayer]) -> nn.Module:
    """Attach ``layers`` (in depth order) to ``model`` after checking their names and module paths."""
    layers = tuple(layers)
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"measurement layer names repeat: {names}")
    modules = dict(model.named_modules())
    for layer in layers:
        if layer.module not in modules:
            raise ValueError(f"measurement layer '{layer.name}': no submodule '{layer.module}' in "
                             f"{type(model).__name__}")
        if layer.at not in ("output", "input"):
            raise ValueError(f"measurement layer '{layer.name}': at must be 'output' or 'input', got '{layer.at}'")
    model.measurement_layers = layers
    return model


def layer_names(model: nn.Module) -> list[str]:
    """The model's measurement layers, in depth order."""
    return [layer.name for layer in _declared(getattr(model, "_orig_mod", model))]


def measure(model: nn.Module, x: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The activations of ``layers`` (default: all, in depth order) from ONE forward pass of ``x``.

    Each activation is a copy taken when its module runs, so later in-place operations of the
    forward pass cannot change it. Gradients flow through the copies unless the caller
    disables them (``torch.no_grad()`` for measurement). A ``torch.compile`` d model is
    measured through its original (eager) module, where the hooks run.
    """
    model = getattr(model, "_orig_mod", model)
    declared = {layer.name: layer for layer in _declared(model)}
    wanted = list(declared) if layers is None else list(dict.fromkeys(layers))
    unknown = [name for name in wanted if name not in declared]
    if unknown:
        raise ValueError(f"unknown measurement layers {unknown} of {type(model).__name__}; "
                         f"choose from {list(declared)}")
    modules = dict(model.named_modules())
    recorded: dict[str, torch.Tensor] = {}

    def recorder(layer: MeasurementLayer):
        def record(value: torch.Tensor) -> None:
            if layer.name in recorded:
                raise ValueError(f"measurement layer '{layer.name}' ({layer.module}) ran twice in one forward pass")
            recorded[layer.name] = value.clone()

        if layer.at == "input":
            return lambda module, args: record(args[0])
        return lambda module, args, out: record(out)

    handles = []
    try:
        for name in wanted:
            layer, module = declared[name], modules[declared[name].module]
            hook = recorder(layer)
            handles.append(module.register_forward_pre_hook(hook) if layer.at == "input"
                           else module.register_forward_hook(hook))
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in wanted if name not in recorded]
    if missing:
        raise ValueError(f"measurement layers {missing} did not run in the forward pass")
    return {name: recorded[name] for name in wanted}


def _declared(model: nn.Module) -> tuple[MeasurementLayer, ...]:
    layers = getattr(model, "measurement_layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} declares no measurement layers; build it with "
                         f"repalign.models.build")
    return layers
