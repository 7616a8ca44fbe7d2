"""Validation of the workflow configuration with messages that name the offending key.

Besides the schema (types, allowed values), :func:`check_config` tests what only this machine
can answer: a CUDA device that exists, a cache_dir that can be written. Both run when the
workflow is parsed, before any job starts.
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

import jsonschema
import yaml

from repalign.errors import ConfigError


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def normalise_booleans(config: dict, schema_path: Path) -> dict:
    """Turn 'true'/'false'/'yes'/'no' strings (any case) of boolean keys into booleans, in place.

    ``snakemake --config download=false`` passes the string 'false' (only ``False`` parses
    as a boolean); anything else is left for the schema to reject.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    for key, prop in schema.get("properties", {}).items():
        value = config.get(key)
        if prop.get("type") == "boolean" and isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE or low in _FALSE:
                config[key] = low in _TRUE
    return config


def config_errors(config: dict, schema_path: Path) -> list[str]:
    """Every schema violation of ``config``, each naming its key and the allowed values."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    messages = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(e.path)):
        if err.validator == "additionalProperties":
            allowed = ", ".join(schema["properties"])
            messages.append(f"{err.message}.{_did_you_mean(err.instance, schema['properties'])} "
                            f"Allowed keys: {allowed}")
            continue
        key = ".".join(str(p) for p in err.path) or "(top level)"
        hint = schema.get("properties", {}).get(key, {}).get("description", "")
        messages.append(f"config key '{key}': {err.message}" + (f" ({hint})" if hint else ""))
    return messages


def _did_you_mean(given: dict, known) -> str:
    """' Did you mean 'data_root' (not 'dataroot')?' for each unknown key close to a known one."""
    hints = []
    for key in sorted(set(given) - set(known)):
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        if close:
            hints.append(f" Did you mean '{close[0]}' (not '{key}')?")
    return "".join(hints)


def machine_errors(config: dict) -> list[str]:
    """What this machine cannot provide: a requested CUDA device, a writable cache_dir."""
    from repalign.data.paths import resolve_cache_dir

    errors = []
    device = str(config.get("device") or "auto")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            errors.append(f"config key 'device' is '{device}', but this machine has "
                          f"{count} CUDA device(s). Use --config device=cpu or device=auto"
                          + (f", or a cuda:N with N < {count}" if count else ""))
    cache = resolve_cache_dir(config.get("cache_dir"))
    problem = _unwritable(cache)
    if problem:
        errors.append(f"config key 'cache_dir' resolves to {cache}, which is not a writable "
                      f"folder ({problem}). Point cache_dir (or $REPALIGN_CACHE) at a folder you "
                      "can write, e.g. --config cache_dir=/tmp/repalign-cache")
    return errors


def _unwritable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (created if absent), else None. A real
    write, not os.access: root passes access() on read-only mounts and /proc."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def validate_config(config: dict, schema_path: Path, machine: bool = False) -> None:
    """Raise ``ConfigError`` listing every invalid or unknown key in ``config``; with
    ``machine``, also what this machine cannot provide (see :func:`machine_errors`).
    Boolean strings are normalised first (:func:`normalise_booleans`)."""
    normalise_booleans(config, schema_path)
    errors = config_errors(config, schema_path)
    if machine and not errors:
        errors = machine_errors(config)
    if errors:
        raise ConfigError("invalid configuration (config/config.yaml or --config):\n  - "
                          + "\n  - ".join(errors))
