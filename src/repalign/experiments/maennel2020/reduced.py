"""Run one maennel2020 step at its quick settings with some fields overridden (a stated CPU reduction).

    python -m repalign.experiments.maennel2020.reduced model cnn_filters --out m.pt n_examples=5000 filters=64
    python -m repalign.experiments.maennel2020.reduced artifact fig2 --out fig2.json --input cnn_filters=m.pt

The result is written as a quick-tier result whose recorded ``settings`` are the overridden
ones (the provenance of every reduction); the docs name each reduction beside its numbers.
Values are parsed as Python literals (``epochs=(1,2,5)``). A field of every upstream ``Setup`` of a
transfer step is set by ``setups.<field>=value`` (``setups.steps_up=200``), one of its options by
``setups.options.<key>=value`` (``setups.options.width=8``); ``setups.<name>.<field>=value`` sets it for the
set-up ``name`` only (``setups.exp34.steps_up=200``). Other dotted keys walk into nested settings
(``gaussian.steps=500``, ``gaussian.settings.synthetic_fc256.n_inputs=2000``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import logging

from repalign.experiments import load_paper
from repalign.experiments.registry import ARTIFACTS, MODELS, Tiered
from repalign.runner import run_step


def _replace_path(obj, path: list[str], value, key: str):
    """``obj`` with the field (dataclass) or entry (dict) at ``path`` set to ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict) and head in obj:
        return {**obj, head: _replace_path(obj[head], rest, value, key)}
    if dataclasses.is_dataclass(obj) and head in {f.name for f in dataclasses.fields(obj)}:
        return dataclasses.replace(obj, **{head: _replace_path(getattr(obj, head), rest, value, key)})
    raise ValueError(f"override {key}: {type(obj).__name__} has no field or entry '{head}'")


def with_overrides(settings, changes: dict):
    """``settings`` with ``changes`` applied. A dotted key walks into nested settings and their dicts
    (``gaussian.steps=500``, ``gaussian.settings.synthetic_fc256.n_inputs=2000``); ``setups.*`` keys change
    the upstream set-ups (see above)."""
    setups = dict(getattr(settings, "setups", {}))
    for key, value in changes.items():
        path = key.split(".")
        if path[0] != "setups" or len(path) < 2:
            settings = _replace_path(settings, path, value, key)
            continue
        path = path[1:]
        names = [path.pop(0)] if path[0] in setups else list(setups)
        if not names:
            raise ValueError(f"override {key}: these settings have no upstream set-ups")
        for name in names:
            s = setups[name]
            setups[name] = (dataclasses.replace(s, options={**s.options, path[1]: value}) if path[0] == "options"
                            else dataclasses.replace(s, **{path[0]: value}))
        settings = dataclasses.replace(settings, setups=setups)
    return settings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("model", "artifact"))
    parser.add_argument("name")
    parser.add_argument("--out", required=True)
    parser.add_argument("--input", action="append", default=[], help="name=path of a needed model")
    parser.add_argument("overrides", nargs="*", help="field=value of the quick settings")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    load_paper("maennel2020")
    table = MODELS if args.kind == "model" else ARTIFACTS
    key = ("maennel2020", args.name)
    step = table[key]
    changes = {}
    for item in args.overrides:
        field, _, value = item.partition("=")
        changes[field] = ast.literal_eval(value)
    settings = with_overrides(step.settings.quick, changes)
    table[key] = dataclasses.replace(step, settings=Tiered(step.settings.smoke, settings, step.settings.paper))
    run_step(args.kind, "maennel2020", args.name, tier="quick", out=args.out, device="cpu",
             inputs=dict(i.split("=", 1) for i in args.input))
    print(f"quick settings with overrides {changes}")


if __name__ == "__main__":
    main()
