"""Where datasets and caches live.

Precedence for both: an explicitly configured value (the workflow config key
``data_root`` / ``cache_dir``, or a function argument) wins; otherwise an environment
variable; otherwise a default. The data root may be read-only (a shared offline copy
is), so caches are never written under it.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "REPALIGN_DATA"
CACHE_ENV = "REPALIGN_CACHE"
DEFAULT_DATA_ROOT = "data"
DEFAULT_CACHE_DIR = "~/.cache/repalign"


def _resolve(configured, env: str, default: str) -> Path:
    if configured is not None and str(configured) != "":
        return Path(configured).expanduser()
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser()
    return Path(default).expanduser()


def resolve_data_root(configured: str | os.PathLike | None = None) -> Path:
    """The data root: ``configured`` if given, else ``$REPALIGN_DATA``, else ``./data``."""
    return _resolve(configured, DATA_ENV, DEFAULT_DATA_ROOT)


def resolve_cache_dir(configured: str | os.PathLike | None = None) -> Path:
    """The cache dir: ``configured`` if given, else ``$REPALIGN_CACHE``, else ``~/.cache/repalign``."""
    return _resolve(configured, CACHE_ENV, DEFAULT_CACHE_DIR)


def require_data_root(configured: str | os.PathLike | None = None) -> Path:
    """The data root as :func:`resolve_data_root`, which must exist when it was configured.

    A ``data_root`` key or ``$REPALIGN_DATA`` naming a missing folder is a typo, not "no
    data": it raises ``ConfigError`` naming the setting and the path, before anything runs.
    The default ``./data`` may be absent (a fresh clone has no data; its steps are not_run).
    """
    from repalign.errors import ConfigError

    root = resolve_data_root(configured)
    if root.is_dir():
        return root
    if configured is not None and str(configured) != "":
        setting = "config key 'data_root' (config/config.yaml or --config data_root=...)"
    elif os.environ.get(DATA_ENV):
        setting = f"environment variable {DATA_ENV}"
    else:
        return root
    raise ConfigError(f"{setting} is {root}, which is not an existing folder. Fix the path, "
                      f"or create the folder (mkdir -p {root}) if downloads should go there.")


POINT_AT_LOCAL_COPY = (
    "To use a local copy, point the suite at the folder that holds it: "
    f"`--config data_root=PATH` or `{DATA_ENV}=PATH`."
)
