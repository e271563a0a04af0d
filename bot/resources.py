"""Files that ship inside the package, found wherever the bot is installed.

The migrations (``bot.migrations``), the default data and configuration files
(``bot.defaults``: categories, communities, commune layers, ``base-config.yaml``), the
message catalogues and the CAP schema are read through ``importlib.resources``, never from
the current directory or the repository's layout, so ``pip install`` gives a bot that runs
from any folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# A configured path written ``bundled:NAME`` names a file shipped in bot.defaults.
BUNDLED_PREFIX = "bundled:"


def package_path(package: str, name: str = "") -> Path:
    """A shipped file or folder as a real path (wheels install as files, never zipped)."""
    resource = resources.files(package)
    if name:
        resource = resource.joinpath(*name.split("/"))
    if not isinstance(resource, Path):
        raise RuntimeError(f"{package} is not installed as files ({resource!r})")
    return resource


def bundled(name: str) -> Path:
    """A default data or configuration file shipped with the bot (``config/`` in the
    repository)."""
    return package_path("bot.defaults", name)


def migrations_dir() -> Path:
    return package_path("bot.migrations")


def is_bundled(configured: str) -> bool:
    return configured.startswith(BUNDLED_PREFIX)


def bundled_name(configured: str) -> str:
    return configured.removeprefix(BUNDLED_PREFIX).lstrip("/")
