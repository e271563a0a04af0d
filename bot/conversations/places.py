"""Turning what a subscriber typed (names, postal or INSEE codes, a location) into communes.

What cannot be settled alone becomes a ``PlaceQuestion``: one per place typed, each with
its own choices, asked one at a time by the conversation (``bot/conversations/enrollment.py``).

* A five-digit code is a postal code whenever some commune has it as one: people know
  their postal code, and 70310 (Faucogney's) must not bring Lure, whose INSEE code it
  happens to be. Only a code that is no postal code is read as an INSEE code.
* Suggestions for a name not found come from the départements the bot serves (its commune
  layers, ``geo.communes``), and, among those, from the person's own: a subscriber of
  Haute-Saône is not offered Lozère villages when the deployment serves both.
* A commune is shown with one code, its postal code, the same for everyone:
  « Vesoul — 70000 » (``Commune.label``); typed back (« Vesoul — 70000 », « Vesoul 70000 »)
  it names that commune.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.geo.communes import Commune, CommuneLayer
from bot.i18n import Translator
from bot.limits import PLACE_NAME_CHARS, PLACES_PER_MESSAGE

FIVE_DIGITS = re.compile(r"^(\d{5}|2[AB]\d{3})$", re.IGNORECASE)
# A name followed by a code, as a label reads (« Vesoul — 70000 », « Vesoul (70000) »).
NAME_AND_CODE = re.compile(r"^(?P<name>.*?\D)[\s(—–-]*(?P<code>\d{5}|2[AB]\d{3})\)?$",
                           re.IGNORECASE)
SUGGESTIONS = 5  # choices offered for a name not found
SEARCHED = 20  # close names looked at before keeping the person's départements' ones


class Doubt(Enum):
    """Why a place needs a question."""

    UNKNOWN = "unknown"  # no commune of that name: close names are suggested
    HOMONYMS = "homonyms"  # several communes bear that name
    POSTAL = "postal"  # a postal code several communes share


@dataclass(frozen=True)
class PlaceQuestion:
    """One place typed, and the communes it may mean (INSEE codes, best first)."""

    doubt: Doubt
    typed: str
    candidates: tuple[str, ...]
    count: int = 0  # how many communes the place may mean, before any was chosen

    def to_json(self) -> dict[str, Any]:
        return {"doubt": self.doubt.value, "typed": self.typed,
                "candidates": list(self.candidates), "count": self.count}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlaceQuestion:
        candidates = tuple(str(code) for code in data["candidates"])
        return cls(Doubt(data["doubt"]), str(data["typed"]), candidates,
                   int(data.get("count", len(candidates))))

    def text(self, t: Translator) -> str:
        """The question, its choices being the candidates' labels."""
        if self.doubt is Doubt.POSTAL:
            return t("places.ask_postal", code=self.typed,
                     count=self.count or len(self.candidates))
        if self.doubt is Doubt.HOMONYMS:
            return t("places.ask_homonyms", name=self.typed)
        return t("places.ask_unknown", name=self.typed)

    def label(self, commune: Commune) -> str:
        """A candidate as its choice reads: under a postal code question, that code."""
        return commune.label(self.typed if self.doubt is Doubt.POSTAL else None)

    def without(self, chosen: Iterable[str]) -> PlaceQuestion:
        """The question less the communes already chosen (nothing left: nothing to ask)."""
        taken = set(chosen)
        return PlaceQuestion(self.doubt, self.typed,
                             tuple(code for code in self.candidates if code not in taken),
                             self.count)


@dataclass
class Resolution:
    found: list[Commune] = field(default_factory=list)
    questions: list[PlaceQuestion] = field(default_factory=list)  # in the order typed
    problems: list[str] = field(default_factory=list)  # what no choice can answer


def describe_commune(commune: Commune) -> str:
    return commune.label()


def split_places(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]


def resolve_places(geo: CommuneLayer, t: Translator, text: str,
                   location: tuple[float, float] | None = None,
                   home: Iterable[str] = ()) -> Resolution:
    """The communes ``text`` (and ``location``) name, the questions left, and the problems
    worded with ``t``. ``home``: INSEE codes the person has already chosen, whose
    départements suggestions keep to."""
    places = _Places(geo, t)
    resolution = Resolution()
    if location is not None:
        places.resolve_location(location, resolution)
    parts = split_places(text)
    if len(parts) > PLACES_PER_MESSAGE:
        resolution.problems.append(t("places.too_many", max=PLACES_PER_MESSAGE))
        parts = parts[:PLACES_PER_MESSAGE]
    settled = [places.resolve_part(part, resolution) for part in parts]
    # Names not found last: the places settled above tell which départements are the
    # person's. The questions keep the order the places were typed in.
    known = [c for c in map(geo.by_insee, home) if c is not None] + resolution.found
    known += [c for question in resolution.questions
              for c in map(geo.by_insee, question.candidates) if c is not None]
    departements = {commune.departement for commune in known}
    for index, part in enumerate(parts):
        if settled[index] is None:
            question = places.suggest(part, departements, resolution)
            if question is not None:
                resolution.questions.insert(_position(settled, index), question)
                settled[index] = False
    if not parts and location is None:
        resolution.problems.append(t("places.empty"))
    return resolution


def _position(settled: list[bool | None], index: int) -> int:
    """Where the question of part ``index`` goes among those already asked."""
    return sum(1 for flag in settled[:index] if flag is False)


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

    def resolve_part(self, part: str, out: Resolution) -> bool | None:
        """Settle ``part`` if it can be without suggestions: True when found or a problem,
        False when it became a question, None for a name to suggest for (later)."""
        if FIVE_DIGITS.match(part):
            return self._resolve_code(part.upper(), out)
        if part.isdecimal():  # « 3 »: a choice's number not among those shown, or a typo
            out.problems.append(self.t("places.not_a_code", typed=part))
            return True
        if len(part) > PLACE_NAME_CHARS:
            out.problems.append(self.t("places.too_long"))
            return True
        labelled = NAME_AND_CODE.match(part)
        if labelled is not None and self._resolve_labelled(
                labelled["name"], labelled["code"].upper(), out):
            return True
        search = self.geo.search(part, limit=0)
        if len(search.exact) == 1:
            out.found.append(search.exact[0])
            return True
        if search.exact:
            out.questions.append(PlaceQuestion(Doubt.HOMONYMS, part, tuple(
                c.insee for c in search.exact), len(search.exact)))
            return False
        return None

    def _resolve_code(self, code: str, out: Resolution) -> bool:
        postal = self.geo.by_postal_code(code)
        if len(postal) == 1:
            out.found.append(postal[0])
            return True
        if postal:  # the most populous first: the town people mean most often
            ranked = sorted(postal, key=lambda c: (-(c.population or 0), c.name))
            out.questions.append(PlaceQuestion(Doubt.POSTAL, code, tuple(
                c.insee for c in ranked), len(ranked)))
            return False
        commune = self.geo.by_insee(code)
        if commune is None:
            out.problems.append(self.t("places.unknown_code", code=code))
        else:
            out.found.append(commune)
        return True

    def _resolve_labelled(self, name: str, code: str, out: Resolution) -> bool:
        """« Vesoul — 70000 »: the commune of that name with that postal (or INSEE) code."""
        exact = self.geo.search(name.strip(), limit=0).exact
        matching = [c for c in exact if code in c.postal_codes or code == c.insee]
        if len(matching) == 1:
            out.found.append(matching[0])
            return True
        return False

    def suggest(self, part: str, departements: set[str],
                out: Resolution) -> PlaceQuestion | None:
        """The question for a name not found, or None (then a problem) with nothing close."""
        close = self.geo.search(part, limit=SEARCHED).suggestions
        own = [c for c in close if c.departement in departements]
        chosen = (own or close)[:SUGGESTIONS]
        if not chosen:
            out.problems.append(self.t("places.unknown", name=part))
            return None
        return PlaceQuestion(Doubt.UNKNOWN, part, tuple(c.insee for c in chosen), len(chosen))
