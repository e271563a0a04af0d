"""Turning what a subscriber typed (names, postal or INSEE codes, a location) into communes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.geo.communes import Commune, CommuneLayer
from bot.i18n import Translator
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


def resolve_places(geo: CommuneLayer, t: Translator, text: str,
                   location: tuple[float, float] | None = None) -> Resolution:
    """The communes ``text`` (and ``location``) name; problems worded with ``t``."""
    places = _Places(geo, t)
    resolution = Resolution()
    if location is not None:
        places.resolve_location(location, resolution)
    parts = split_places(text)
    if len(parts) > PLACES_PER_MESSAGE:
        resolution.problems.append(t("places.too_many", max=PLACES_PER_MESSAGE))
        parts = parts[:PLACES_PER_MESSAGE]
    for part in parts:
        places.resolve_part(part, resolution)
    if not parts and location is None:
        resolution.problems.append(t("places.empty"))
    return resolution


@dataclass(frozen=True)
class _Places:
    geo: CommuneLayer
    t: Translator

    def resolve_location(self, location: tuple[float, float], out: Resolution) -> None:
        try:
            commune = self.geo.at_point(*location)
        except ValueError:  # not a real position (NaN, out of range): nothing can be inside it
            commune = None
        if commune is None:
            out.problems.append(self.t("places.location_outside"))
        else:
            out.found.append(commune)

    def resolve_part(self, part: str, out: Resolution) -> None:
        if FIVE_DIGITS.match(part):
            self._resolve_code(part.upper(), out)
            return
        self._resolve_name(part, out)

    def _resolve_code(self, code: str, out: Resolution) -> None:
        """A code may be an INSEE code, a postal code, or both for different communes
        (70100 is Gray's postal code and another commune's INSEE code): ask when unsure."""
        geo = self.geo
        by_insee = geo.by_insee(code)
        matches = ([by_insee] if by_insee else []) + [
            c for c in geo.by_postal_code(code) if c is not by_insee]
        if len(matches) == 1:
            out.found.append(matches[0])
        elif matches:
            out.problems.append(self.t("places.postal_several", code=code, count=len(matches)))
            out.candidates.extend(matches)
        else:
            out.problems.append(self.t("places.unknown_code", code=code))

    def _resolve_name(self, part: str, out: Resolution) -> None:
        if len(part) > PLACE_NAME_CHARS:
            out.problems.append(self.t("places.too_long"))
            return
        search = self.geo.search(part)
        if len(search.exact) == 1:
            out.found.append(search.exact[0])
        elif search.exact:
            out.problems.append(self.t("places.ambiguous", name=part))
            out.candidates.extend(search.exact)
        elif search.suggestions:
            out.problems.append(self.t("places.did_you_mean", name=part))
            out.candidates.extend(search.suggestions)
        else:
            out.problems.append(self.t("places.unknown", name=part))
