"""Validation of the workflow configuration with messages that name the offending key."""

from __future__ import annotations

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
            messages.append(f"{err.message}. Allowed keys: {allowed}")
            continue
        key = ".".join(str(p) for p in err.path) or "(top level)"
        hint = schema.get("properties", {}).get(key, {}).get("description", "")
        messages.append(f"config key '{key}': {err.message}" + (f" ({hint})" if hint else ""))
    return messages


def validate_config(config: dict, schema_path: Path) -> None:
    """Raise ``ConfigError`` listing every invalid or unknown key in ``config``."""
    errors = config_errors(config, schema_path)
    if errors:
        raise ConfigError("invalid configuration (config/config.yaml or --config):\n  - "
                          + "\n  - ".join(errors))
