"""Turning what a subscriber typed (names, postal or INSEE codes, a location) into communes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.context import Context
from bot.geo.communes import Commune

FIVE_DIGITS = re.compile(r"^(\d{5}|2[AB]\d{3})$", re.IGNORECASE)
MAX_PLACES_PER_MESSAGE = 20


@dataclass
class Resolution:
    found: list[Commune] = field(default_factory=list)
    candidates: list[Commune] = field(default_factory=list)  # to choose from
    problems: list[str] = field(default_factory=list)


def describe_commune(commune: Commune) -> str:
    postal = commune.postal_codes[0] if commune.postal_codes else commune.insee
    return f"{commune.name} ({postal})"


def split_places(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]


def resolve_places(ctx: Context, text: str,
                   location: tuple[float, float] | None = None) -> Resolution:
    resolution = Resolution()
    if location is not None:
        _resolve_location(ctx, location, resolution)
    parts = split_places(text)
    if len(parts) > MAX_PLACES_PER_MESSAGE:
        resolution.problems.append(ctx.t("places.too_many", max=MAX_PLACES_PER_MESSAGE))
        parts = parts[:MAX_PLACES_PER_MESSAGE]
    for part in parts:
        _resolve_part(ctx, part, resolution)
    if not parts and location is None:
        resolution.problems.append(ctx.t("places.empty"))
    return resolution


def _resolve_location(ctx: Context, location: tuple[float, float], out: Resolution) -> None:
    commune = ctx.services.geo.at_point(*location)
    if commune is None:
        out.problems.append(ctx.t("places.location_outside"))
    else:
        out.found.append(commune)


def _resolve_part(ctx: Context, part: str, out: Resolution) -> None:
    geo = ctx.services.geo
    if FIVE_DIGITS.match(part):
        commune = geo.by_insee(part.upper())
        by_postal = [] if commune else geo.by_postal_code(part)
        if commune is not None or len(by_postal) == 1:
            out.found.append(commune or by_postal[0])
        elif by_postal:
            out.problems.append(ctx.t("places.postal_several", code=part, count=len(by_postal)))
            out.candidates.extend(by_postal)
        else:
            out.problems.append(ctx.t("places.unknown_code", code=part))
        return
    _resolve_name(ctx, part, out)


def _resolve_name(ctx: Context, part: str, out: Resolution) -> None:
    if len(part) > 100:
        out.problems.append(ctx.t("places.too_long"))
        return
    search = ctx.services.geo.search(part)
    if len(search.exact) == 1:
        out.found.append(search.exact[0])
    elif search.exact:
        out.problems.append(ctx.t("places.ambiguous", name=part))
        out.candidates.extend(search.exact)
    elif search.suggestions:
        out.problems.append(ctx.t("places.did_you_mean", name=part))
        out.candidates.extend(search.suggestions)
    else:
        out.problems.append(ctx.t("places.unknown", name=part))
