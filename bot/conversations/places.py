"""Turning what a subscriber typed (names, postal or INSEE codes, a location) into communes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.context import Context
from bot.geo.communes import Commune
from bot.limits import PLACE_NAME_CHARS, PLACES_PER_MESSAGE

FIVE_DIGITS = re.compile(r"^(\d{5}|2[AB]\d{3})$", re.IGNORECASE)


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
    if len(parts) > PLACES_PER_MESSAGE:
        resolution.problems.append(ctx.t("places.too_many", max=PLACES_PER_MESSAGE))
        parts = parts[:PLACES_PER_MESSAGE]
    for part in parts:
        _resolve_part(ctx, part, resolution)
    if not parts and location is None:
        resolution.problems.append(ctx.t("places.empty"))
    return resolution


def _resolve_location(ctx: Context, location: tuple[float, float], out: Resolution) -> None:
    try:
        commune = ctx.services.geo.at_point(*location)
    except ValueError:  # not a real position (NaN, out of range): nothing can be inside it
        commune = None
    if commune is None:
        out.problems.append(ctx.t("places.location_outside"))
    else:
        out.found.append(commune)


def _resolve_part(ctx: Context, part: str, out: Resolution) -> None:
    if FIVE_DIGITS.match(part):
        _resolve_code(ctx, part.upper(), out)
        return
    _resolve_name(ctx, part, out)


def _resolve_code(ctx: Context, code: str, out: Resolution) -> None:
    """A code may be an INSEE code, a postal code, or both for different communes
    (70100 is Gray's postal code and another commune's INSEE code): ask when unsure."""
    geo = ctx.services.geo
    by_insee = geo.by_insee(code)
    matches = ([by_insee] if by_insee else []) + [
        c for c in geo.by_postal_code(code) if c is not by_insee]
    if len(matches) == 1:
        out.found.append(matches[0])
    elif matches:
        out.problems.append(ctx.t("places.postal_several", code=code, count=len(matches)))
        out.candidates.extend(matches)
    else:
        out.problems.append(ctx.t("places.unknown_code", code=code))


def _resolve_name(ctx: Context, part: str, out: Resolution) -> None:
    if len(part) > PLACE_NAME_CHARS:
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
