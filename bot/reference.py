"""Communities and alert categories: data files, not code."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bot.config import ConfigError
from bot.yamltext import AliasRefused, load_yaml

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Community:
    key: str
    label: str
    description: str
    # Joined only through an invitation of the community, or a request one of its référents
    # accepts (maires, élus, réservistes: alerts about suspects reach them).
    vetted: bool = False


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    label: str
    severity: str
    max_fact_age: timedelta | None
    default_expiry: timedelta
    required_approvals: int
    all_communities: bool
    protected: bool
    prosecutor_authorisation: bool = False


def fold(text: str) -> str:
    """Lowercase without accents, for matching what people type against keys."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Reference:
    communities: dict[str, Community]
    categories: dict[str, Category]

    def community(self, typed: str) -> Community | None:
        key = fold(typed).rstrip("s")  # "commerçants" finds "commercant"
        return self.communities.get(key) or self.communities.get(fold(typed))

    def category(self, typed: str) -> Category | None:
        return self.categories.get(fold(typed))


def load_reference(communities_path: Path, categories_path: Path) -> Reference:
    return Reference(
        communities=_by_key(communities_path, _load_communities(communities_path)),
        categories=_by_key(categories_path, _load_categories(categories_path)),
    )


Keyed = TypeVar("Keyed", Community, Category)


def _by_key(path: Path, items: list[Keyed]) -> dict[str, Keyed]:
    result: dict[str, Keyed] = {}
    for item in items:
        if item.key in result:
            raise ConfigError(f"{path}: key {item.key!r} is defined twice")
        result[item.key] = item
    return result


def _entries(path: Path, top: str) -> list[dict[str, Any]]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except AliasRefused as error:
        raise ConfigError(f"{path}: {error}") from None
    except (yaml.YAMLError, ValueError):
        raise ConfigError(f"{path}: invalid YAML") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    entries = data.get(top) if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: {top}: expected a non-empty list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: {top}[{index}]: expected a mapping")
    return entries


def _field(path: Path, where: str, entry: dict[str, Any], name: str, kind: type) -> Any:
    if name not in entry:
        raise ConfigError(f"{path}: {where}.{name}: missing")
    value = entry[name]
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (
            kind is bool)):
        raise ConfigError(f"{path}: {where}.{name}: expected {kind.__name__}, got {value!r}")
    return value


def _check_keys(path: Path, where: str, entry: dict[str, Any], allowed: set[str]) -> str:
    for name in entry:
        if name not in allowed:
            raise ConfigError(f"{path}: {where}.{name}: unknown key")
    key = _field(path, where, entry, "key", str)
    if key is None or not KEY_PATTERN.match(key):
        raise ConfigError(f"{path}: {where}.key: lowercase letters, digits and _ only")
    return str(key)


def _load_communities(path: Path) -> list[Community]:
    result = []
    for index, entry in enumerate(_entries(path, "communities")):
        where = f"communities[{index}]"
        key = _check_keys(path, where, entry, {"key", "label", "description", "vetted"})
        label = _field(path, where, entry, "label", str)
        description = _field(path, where, entry, "description", str) or ""
        vetted = "vetted" in entry and _field(path, where, entry, "vetted", bool) is True
        result.append(Community(key, label, description, vetted))
    return result


CATEGORY_KEYS = {"key", "label", "severity", "max_fact_age_minutes", "default_expiry_hours",
                 "required_approvals", "all_communities", "protected",
                 "prosecutor_authorisation"}


def _load_categories(path: Path) -> list[Category]:
    return [_category(path, f"categories[{i}]", entry)
            for i, entry in enumerate(_entries(path, "categories"))]


def _category(path: Path, where: str, entry: dict[str, Any]) -> Category:
    key = _check_keys(path, where, entry, CATEGORY_KEYS)
    severity = _field(path, where, entry, "severity", str)
    if severity not in SEVERITIES:
        raise ConfigError(f"{path}: {where}.severity: one of {', '.join(SEVERITIES)}")
    max_age = _field(path, where, entry, "max_fact_age_minutes", int)
    expiry = _field(path, where, entry, "default_expiry_hours", int)
    approvals = _field(path, where, entry, "required_approvals", int)
    if expiry is None or expiry < 1 or approvals is None or approvals < 1:
        raise ConfigError(f"{path}: {where}: expiry and approvals must be at least 1")
    return Category(
        key=key,
        label=_field(path, where, entry, "label", str),
        severity=severity,
        max_fact_age=None if max_age is None else timedelta(minutes=max_age),
        default_expiry=timedelta(hours=expiry),
        required_approvals=approvals,
        all_communities=bool(_field(path, where, entry, "all_communities", bool)),
        protected=bool(_field(path, where, entry, "protected", bool)),
        prosecutor_authorisation=bool(entry.get("prosecutor_authorisation") is True),
    )
