"""Validation of the workflow configuration with messages that name the offending key."""

from __future__ import annotations

import difflib
from pathlib import Path

import jsonschema
import yaml

from repalign.errors import ConfigError


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


def validate_config(config: dict, schema_path: Path) -> None:
    """Raise ``ConfigError`` listing every invalid or unknown key in ``config``."""
    errors = config_errors(config, schema_path)
    if errors:
        raise ConfigError("invalid configuration (config/config.yaml or --config):\n  - "
                          + "\n  - ".join(errors))
